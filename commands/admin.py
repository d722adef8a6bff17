"""Simulation: `simulate` a field force, and the end-to-end `demo`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table

from commands._errors import exit_codes
from commands._options import DbOption, JsonOption
from commands._output import out, print_json, progress
from commands._wiring import open_store

if TYPE_CHECKING:
    from simulator.demo import DemoReport

app = typer.Typer()

SizeDistributors = Annotated[int, typer.Option(min=1, help="Distributors in the population.")]
SizeDays = Annotated[int, typer.Option(min=1, help="Simulated days.")]
SizeSeed = Annotated[int, typer.Option(help="Seed: the same seed gives the same run.")]


@app.command()
@exit_codes
def simulate(
    distributors: SizeDistributors = 300,
    days: SizeDays = 60,
    seed: SizeSeed = 7,
    policy: Annotated[str, typer.Option(help="active (as stored), catalog (defaults) or "
                                        "oracle (knows the hidden model).")] = "active",
    db: DbOption = None,
    relaxed_durability: Annotated[bool, typer.Option(
        "--relaxed-durability",
        help="For a throwaway simulation database only: commits do not wait for the log to "
             "reach the disk (PostgreSQL synchronous_commit=off, SQLite synchronous=OFF); a "
             "crash may lose the last steps. Default: one durable commit per step.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Drive the engine with a synthetic field force on a simulated clock."""
    from simulator import SimulationConfig
    from simulator import simulate as run_simulation
    from simulator.arms import first_sales

    config = SimulationConfig(distributors=distributors, days=days, seed=seed)
    bar, step = progress("simulating days", days, as_json)
    with bar, open_store(db, durable=not relaxed_durability) as store:
        result = run_simulation(store, config, policy=policy, progress=step)
        first = first_sales(store)  # the declared indicator, as `indicators` reads it
    summary = {"distributors": result.distributors, "prospects": result.prospects,
               "actions": result.actions, "videos_played": result.videos_played,
               "outcomes": result.outcomes,
               "first_sale_within_14_days": first.share,
               "completed_twice": result.completed_twice, "stalled": result.stalled}
    if as_json:
        print_json(summary)
    else:
        for key, value in summary.items():
            out.print(f"{key}: {value}", markup=False)


@app.command()
@exit_codes
def demo(
    distributors: SizeDistributors = 300,
    days: SizeDays = 60,
    seed: SizeSeed = 7,
    db: Annotated[Path, typer.Option("--db", help="The demo's SQLite file (replaced).")] = Path(
        "nextmove-demo.db"),
    learning: Annotated[Literal["continuous", "batch"], typer.Option(
        help="continuous: three arms on the same world and field force (catalog default, "
             "continuous learning from day one, an oracle) compared; batch: a learning "
             "period, `learn`, and a second run with what was learned.")] = "continuous",
    learn: Annotated[bool, typer.Option(
        "--learn/--no-learn",
        help="Batch: learn from the first run, then simulate the same field force again on "
             "<db>.after.db with the learned policies and compare.")] = True,
    explore: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Batch: the first run is a learning period: how often a card "
                               "leads with a random catalog option instead of the catalog's "
                               "pick (1.0: always; what there is to learn from).")] = 1.0,
    content_strength: Annotated[float, typer.Option(
        min=0.0, help="The hidden world: how much content matters, as a multiple of the "
                      "simulator's calibrated effects (1.0: the seeds' effect sizes).")] = 1.0,
    as_json: JsonOption = False,
) -> None:
    """The LifeVantage journey end to end on a fresh SQLite file, with a short report.

    Continuous (default): the same field force on the catalog default, with continuous
    learning from day one (on --db) and with an oracle that knows the hidden model; reports
    the funnel, waits, first sales and content use of the learning run, and each arm's
    conversion and first sales within 14 days with 95% intervals. Batch: a learning period on
    the catalog, then the learned policies on the same people, compared.
    """
    from simulator import SimulationConfig
    from simulator.demo import run_demo

    config = SimulationConfig(distributors=distributors, days=days, seed=seed,
                              content_strength=content_strength)
    runs = 3 if learning == "continuous" else (2 if learn else 1)
    bar, step = progress("simulating days", days * runs, as_json)
    with bar:
        report = run_demo(db, config, progress=step, learn=learn, explore=explore,
                          learning=learning)
    if as_json:
        print_json(report.to_dict())
    else:
        _print_demo(report)


def _print_demo(report: DemoReport) -> None:
    r = report.result
    out.print(f"\nLifeVantage demo: {r.distributors} distributors, {r.prospects} prospects, "
              f"{report.config.days} days (seed {report.config.seed}, content effects "
              f"×{report.config.content_strength:g}); database {report.database}", markup=False)
    out.print(f"{r.actions} contractor actions, {r.videos_played} videos played, outcomes "
              f"{r.outcomes}", markup=False)
    table = Table("step", "entered", "completed", "skipped", "varied", "dropped",
                  "median h", "converted", title="Funnel by step (converted: ordered or "
                  "enrolled later)", box=None, title_justify="left")
    for f in report.funnel:
        median = "" if f.median_hours is None else f"{f.median_hours:.0f}"
        table.add_row(f.step_name, str(f.entered), str(f.completed), str(f.skipped),
                      str(f.varied), str(f.dropped), median, f"{f.conversion:.0%}")
    out.print(table)
    out.print(f"Converted ({report.outcome.replace('+', ' or ')}): {report.converted} of "
              f"{r.prospects} prospects ({report.conversion:.1%})", markup=False)
    table = Table("step", "median h", "p90 h", "waiting now", box=None,
                  title="Where prospects wait longest", title_justify="left")
    for w in report.waits[:6]:
        table.add_row(w.step_name, f"{w.median_hours:.0f}", f"{w.p90_hours:.0f}",
                      str(w.waiting_now))
    out.print(table)
    if report.first_sales:
        fs = report.first_sales
        out.print(f"First sale within {fs.days} days: {fs.share:.1%} of {fs.distributors} "
                  "new distributors", markup=False)
    table = Table("hook", "shown", "used suggestion", "used other", "skipped", "varied",
                  title="Content shown vs used", box=None, title_justify="left")
    for c in report.content:
        table.add_row(c.hook, str(c.shown), str(c.used_suggestion), str(c.used_other),
                      str(c.skipped), str(c.varied))
    out.print(table)
    if report.learned is not None:
        _print_demo_learning(report)
    if report.arms is not None:
        _print_demo_arms(report)


def _print_demo_arms(report: DemoReport) -> None:
    arms = report.arms
    assert arms is not None
    table = Table("arm", "prospects", "conversion [95% CI]", "first sale ≤ 14 days [95% CI]",
                  title=f"Three arms, the same field force and hidden world (content effects "
                        f"×{arms.config.content_strength:g})", box=None, title_justify="left")
    names = {"catalog": "catalog default", "continuous": "continuous learning",
             "oracle": "oracle (knows the hidden model)"}
    for name, arm in arms.arms.items():
        c, f = arm.conversion, arm.first_sale
        table.add_row(names[name], str(c.n),
                      f"{c.value:.1%} [{c.interval[0]:.1%}, {c.interval[1]:.1%}]",
                      f"{f.value:.0%} of {f.n} [{f.interval[0]:.0%}, {f.interval[1]:.0%}]")
    out.print(table)
    captured = arms.captured
    if captured is None:
        out.print("The oracle converted no more than the catalog default in this run: no lift "
                  "to capture.", markup=False)
    else:
        share, low, high = captured
        out.print(f"Continuous learning captured {share:.0%} of the oracle's conversion lift "
                  f"over the catalog default (95% CI {low:.0%} to {high:.0%}); "
                  f"{arms.arms['continuous'].refreshes} policy versions stored in "
                  f"{report.database}.", markup=False)


def _print_demo_learning(report: DemoReport) -> None:
    learned = report.learned
    assert learned is not None
    table = Table("hook", "decisions", "segments by", "DR lift [90% CI]", "applied",
                  title=f"Learned from {learned.decisions} logged decisions (outcome: the "
                        "prospect ordered or enrolled)", box=None, title_justify="left")
    for hp in learned.hooks:
        dr = hp.lift["dr"]
        table.add_row(hp.hook, str(hp.decisions), ", ".join(hp.features) or "(everyone)",
                      f"{dr.value:+.3f} [{dr.low:+.3f}, {dr.high:+.3f}]",
                      "yes" if hp.hook in report.applied else "no")
    for hook, why in learned.skipped.items():
        table.add_row(hook, "", "", why, "no")
    out.print(table)
    if report.comparison is None:
        return
    before, after = report.comparison.before, report.comparison.after
    table = Table("run", "policy", "prospects", "converted", "first sale ≤ 14 days",
                  title="Before and after: the same field force and hidden world", box=None,
                  title_justify="left")
    for name, run in (("before", before), ("after", after)):
        table.add_row(name, run.policy, str(run.prospects),
                      f"{run.converted} ({run.conversion:.1%})",
                      f"{run.first_sale_share:.0%} of {run.first_sale_distributors}")
    out.print(table)
    d, low, high = report.comparison.difference
    out.print(f"Conversion change: {100 * d:+.1f} percentage points (95% CI {100 * low:+.1f} "
              f"to {100 * high:+.1f}); the learned "
              f"policies are active in {report.database}, the second run is in "
              f"{after.database}.", markup=False)
