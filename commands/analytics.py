"""What the step log says: report, funnel, stuck, indicators, cohorts, export-log.

`analytics` and `learner` load pandas and LightGBM, so they are imported inside the commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from commands._errors import exit_codes
from commands._options import DbOption, JsonOption, NowOption, duration, instant, optional_instant
from commands._output import err, out, print_json
from commands._wiring import open_store
from engine.errors import NextmoveError

if TYPE_CHECKING:
    from analytics import Indicator
    from engine import Store

app = typer.Typer()

# analytics.DEFAULT_OUTCOME, written out so that --help need not import analytics;
# tests/test_cli_app.py checks that the two agree.
DEFAULT_OUTCOME = "sale"


@app.command()
@exit_codes
def report(
    process: Annotated[str, typer.Option(help="The process to report on, e.g. "
                                         "prospect_journey.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "report.html"),
    heat: Annotated[str, typer.Option(help="Colour the steps on the map by: waiting (prospects "
                                      "waiting there now) or dwell (median hours spent "
                                      "there).")] = "waiting",
    outcome: Annotated[str | None, typer.Option(help="The outcome that counts as converted "
                                                "(default: sale).")] = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One self-contained HTML page: the map with a heat overlay, the funnel chart, stuck
    prospects, leading indicators and content use. Opens without a network."""
    from analytics import write_report
    from analytics.report import HEAT_METRICS

    if heat not in HEAT_METRICS:
        raise NextmoveError(f"--heat must be one of {', '.join(HEAT_METRICS)}")
    from engine.clock import ManualClock, SystemClock

    clock = ManualClock(instant(now, "--now")) if now else SystemClock()
    with open_store(db) as store:
        data = write_report(store, process, output, clock=clock, heat=heat, outcome=outcome)
    if as_json:
        print_json({"output": str(output), **data.to_dict()})
        return
    out.print(f"wrote {output}: {data.process_id} v{data.version}, "
              f"{data.summary['instances']} prospect(s), map coloured by {heat}", markup=False)
    if data.map_problem:
        err.print(f"[yellow]warning:[/yellow] {escape(data.map_problem)}")


def _hours(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


@app.command()
@exit_codes
def funnel(
    process: Annotated[str, typer.Option(help="Process (or imported log) name.")],
    since: Annotated[str | None, typer.Option(help="Only instances started at or after this "
                                              "time (ISO 8601).")] = None,
    distributor: Annotated[str | None, typer.Option(help="Only this distributor's "
                                                    "instances.")] = None,
    market: Annotated[str | None, typer.Option(help="Only instances whose context market is "
                                               "this, e.g. US.")] = None,
    outcome: Annotated[str, typer.Option(help="Step or outcome event that counts as "
                                         "conversion.")] = DEFAULT_OUTCOME,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per step: arrivals, what people did, who moved on or dropped, time spent, conversion."""
    import analytics

    start = optional_instant(since, "--since")
    with open_store(db) as store:
        found = analytics.funnel(store, process, since=start, distributor=distributor,
                                 market=market, outcome=outcome)
    if as_json:
        print_json(found.to_dict())
        return
    table = Table("step", "instances", "entered", "completed", "skipped", "varied", "moved on",
                  "waiting", "dropped", "median h", "p90 h", f"→ {outcome}", box=None)
    for s in found:
        table.add_row(s.step_name, str(s.instances), str(s.entered), str(s.completed),
                      str(s.skipped), str(s.varied), str(s.moved_on), str(s.waiting),
                      str(s.dropped), _hours(s.median_hours), _hours(s.p90_hours),
                      f"{s.conversion:.1%}")
    out.print(table)
    out.print(f"{found.instances} instance(s), {found.converted} reached {outcome!r} "
              f"({found.conversion:.1%})", markup=False)


def incidents_of(store: Store, process: str, distributor: str | None) -> list[dict[str, Any]]:
    """Instances of `process` in incident: stuck until an operator acts (see `retry`)."""
    from engine.runtime import queries as runtime_queries

    out = []
    for instance in runtime_queries.list_instances(
            store, process_id=process, distributor_id=distributor, status="incident"):
        last = next(e for e in reversed(runtime_queries.history(store, instance.id))
                    if e.kind == "incident")
        out.append({"instance_id": instance.id, "prospect_id": instance.prospect_id,
                    "distributor_id": instance.distributor_id, "step_id": last.step_id,
                    "since": last.at.isoformat(), "error": (last.data or {}).get("error")})
    return out


@app.command()
@exit_codes
def stuck(
    process: Annotated[str, typer.Option(help="Process name.")],
    older_than: Annotated[str | None, typer.Option(help="Waiting longer than this ISO "
                                                   "duration, e.g. P3D (default: longer than "
                                                   "the step's own 90th percentile).")] = None,
    distributor: Annotated[str | None, typer.Option(help="Only this distributor.")] = None,
    market: Annotated[str | None, typer.Option(help="Only this market.")] = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Instances waiting on a step longer than usual, by step and distributor, and the
    instances in incident (a step failed: they wait for an operator's retry)."""
    import analytics

    limit = duration(older_than, "--older-than")
    from engine.clock import SystemClock

    moment = instant(now, "--now") if now else SystemClock().now()
    with open_store(db) as store:
        found = analytics.stuck(store, process, moment, older_than=limit,
                                distributor=distributor, market=market)
        broken = incidents_of(store, process, distributor)
    if as_json:
        print_json({**found.to_dict(), "incidents": broken})
        return
    table = Table("step", "distributor", "instances", "oldest waiting h", "limit h", box=None)
    for g in found.groups:
        table.add_row(g.step_name, g.distributor_id, str(g.instances),
                      f"{g.waited_hours(moment):.1f}", f"{g.limit_hours:.1f}")
    out.print(table)
    out.print(f"{found.instances} stuck instance(s) in {len(found.groups)} group(s)",
              markup=False)
    for item in broken:
        out.print(f"incident: instance {item['instance_id']} (prospect {item['prospect_id']}) "
                  f"at {item['step_id']} since {item['since']}: {item['error']}; after fixing "
                  f"the map: nextmove retry {item['instance_id']}", markup=False)


IndicatorOption = Annotated[list[str] | None, typer.Option(
    "--indicator", help="Redefine or add an indicator: NAME=ITEM[,ITEM][@KIND[+KIND]], items "
    "are step ids or hook:NAME (e.g. contacts_added=add_contact@entered).")]
AsOfOption = Annotated[str | None, typer.Option(
    help="Judge as of this time (default: the newest event).")]
EventsOfOption = Annotated[str | None, typer.Option(help="Count only this process's events.")]


def _definitions(specs: list[str] | None) -> Sequence[Indicator]:
    import analytics

    return analytics.with_overrides([analytics.parse_indicator(s) for s in specs or []])


@app.command()
@exit_codes
def indicators(
    indicator: IndicatorOption = None,
    as_of: AsOfOption = None,
    process: EventsOfOption = None,
    top: Annotated[int, typer.Option(help="Show this many distributors.")] = 20,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Leading indicators per distributor: activity per week, days to first sale."""
    import analytics

    definitions = _definitions(indicator)
    moment = optional_instant(as_of, "--as-of")
    with open_store(db) as store:
        found = analytics.indicators(store, definitions=definitions, as_of=moment,
                                     process_id=process)
    if as_json:
        print_json(found.to_dict())
        return
    names = [d.name for d in definitions]
    table = Table("distributor", "enrolled", *(f"{n}/wk" for n in names), "days to sale",
                  box=None)
    for d in found.distributors[:top]:
        table.add_row(d.distributor_id, f"{d.enrolled_at:%Y-%m-%d}",
                      *(f"{d.per_week(n):.1f}" for n in names),
                      "" if d.days_to_first_sale is None else f"{d.days_to_first_sale:.1f}")
    out.print(table)
    out.print(f"{len(found.distributors)} distributor(s); first sale within "
              f"{found.window_days} days: {found.first_sale_share:.0%} of {found.observed} "
              "observed long enough", markup=False)


@app.command()
@exit_codes
def cohorts(
    indicator: IndicatorOption = None,
    as_of: AsOfOption = None,
    process: EventsOfOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Distributors by enrollment week: activity per week and first sales within 14 days."""
    import analytics

    definitions = _definitions(indicator)
    moment = optional_instant(as_of, "--as-of")
    with open_store(db) as store:
        found = analytics.cohorts(store, definitions=definitions, as_of=moment,
                                  process_id=process)
    if as_json:
        print_json(found.to_dict())
        return
    names = [d.name for d in definitions]
    table = Table("week", "distributors", *(f"{n}/wk" for n in names), "first sale ≤14d",
                  "median days", box=None)
    for w in found.weeks:
        share = f"{w.first_sale_share:.0%} of {w.observed}" if w.observed else ""
        table.add_row(f"{w.week:%Y-%m-%d}", str(w.distributors),
                      *(f"{w.per_week[n]:.2f}" for n in names), share,
                      _hours(w.median_days_to_first_sale))
    out.print(table)


@app.command("export-log")
@exit_codes
def export_log(
    process: Annotated[str, typer.Option(help="Process (or imported log) name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write: .xes, "
                                         ".xes.gz, .csv, .csv.gz or .parquet.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export a process's event log with XES column names (imports back with import-log)."""
    import learner

    try:
        with open_store(db) as store:
            report = learner.export_log(store, process, output)
    except NextmoveError:
        raise
    except ValueError as exc:  # an unknown file suffix
        raise NextmoveError(str(exc)) from exc
    if as_json:
        print_json(report.to_dict())
    else:
        out.print(f"wrote {report.cases} case(s), {report.events} event(s) to {output}",
                  markup=False)
