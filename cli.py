"""The `nextmove` command line: parse arguments, call one public function, print.

Exit codes: 0 success; 1 a problem with the input or the request (invalid map, unknown
instance, step not waiting, required step, ...); 2 a conflict: another worker changed the
instance first and nothing was applied (typer also uses 2 for command-line usage errors).
Every command takes --json for scripts; errors are then printed as JSON too.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import analytics
import compliance
import learner
from analytics.report import HEAT_METRICS, write_report
from content_catalog import StoredRecommender, policy_store
from engine import (
    Engine,
    ManualClock,
    NextmoveError,
    Problem,
    ProspectRef,
    Store,
    VersionConflict,
)
from engine.clock import SystemClock, parse_duration, parse_instant
from engine.definitions.compile import export_bpmn
from engine.runtime import Fired, InstanceRef, start_csv
from engine.runtime.bulk import count_rows
from engine.worker import run_worker
from nextmove import load as load_maps
from nextmove import open_engine, open_store
from simulator import SimulationConfig
from simulator import simulate as run_simulation
from simulator.demo import DemoReport, run_demo

app = typer.Typer(
    help="nextmove: guided-selling journeys as process maps, run per prospect.\n\n"
    "Exit codes: 0 success; 1 a problem with the input or the request (invalid map, unknown "
    "instance, step not waiting, required step); 2 a conflict: another worker changed the "
    "instance first and nothing was applied (2 is also a command-line usage error). "
    "The database is --db, else $NEXTMOVE_DB, else ./nextmove.db. Every command takes --json.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

DbOption = Annotated[
    str | None,
    typer.Option("--db", envvar="NEXTMOVE_DB",
                 help="SQLite file or database URL (postgresql://...). Default: ./nextmove.db"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ProspectOption = Annotated[
    str | None, typer.Option("--prospect", "-p", help="Act on this prospect's instance.")
]
ProcessOption = Annotated[
    str | None, typer.Option("--process", help="Which process, when a prospect has several.")
]
ActorOption = Annotated[str | None, typer.Option("--actor", help="Who did it (recorded).")]
NowOption = Annotated[
    str | None,
    typer.Option("--now", envvar="NEXTMOVE_NOW",
                 help="Act as if it were this time (ISO 8601, e.g. 2026-03-01T09:00:00Z); "
                      "for simulations and tests."),
]
UsedOption = Annotated[
    str | None, typer.Option("--used", help="The content option used (the card's suggestion "
                             "or another one).")]
AllowScripts = Annotated[
    bool,
    typer.Option("--allow-scripts", envvar="NEXTMOVE_ALLOW_SCRIPTS",
                 help="Run script tasks: this executes the designer's Python code."),
]


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _fail(exc: NextmoveError, as_json: bool) -> NoReturn:
    code = 2 if isinstance(exc, VersionConflict) else 1
    if as_json:
        _print_json(exc.to_dict())
    else:
        problems = getattr(exc, "problems", None)
        if problems:
            _print_problems(problems)
        else:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
    raise typer.Exit(code)


def _guard(as_json: bool, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except NextmoveError as exc:
        _fail(exc, as_json)


def _engine(db: str | None, allow_scripts: bool = False, now: str | None = None,
            recommend: bool = True) -> Engine:
    clock = None
    if now:
        try:
            clock = ManualClock(parse_instant(now))
        except ValueError as exc:
            raise NextmoveError(f"--now {now!r} is not an ISO 8601 time: {exc}") from exc
    return open_engine(db, clock=clock, allow_scripts=allow_scripts, recommend=recommend,
                       progress=_UpgradeBar())


class _UpgradeBar:
    """A progress bar on stderr while an older database is upgraded (nothing otherwise)."""

    def __init__(self) -> None:
        self.bar = Progress(TextColumn("upgrading the database: {task.description}"),
                            BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=err, transient=True)
        self.tasks: dict[str, Any] = {}

    def __call__(self, what: str, done: int, total: int) -> None:
        if what not in self.tasks:
            self.bar.start()
            self.tasks[what] = self.bar.add_task(what, total=total)
        self.bar.update(self.tasks[what], completed=done, total=total)
        if done >= total:
            self.bar.stop()


def _json_arg(text: str | None, name: str, as_json: bool) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(NextmoveError(f"{name} is not valid JSON: {exc.msg} at column {exc.colno}"), as_json)
    if not isinstance(value, dict):
        _fail(NextmoveError(f"{name} must be a JSON object like '{{\"key\": \"value\"}}'"),
              as_json)
    return value


def _ref(instance: int | None, prospect: str | None, process: str | None,
         as_json: bool) -> InstanceRef:
    if instance is not None and prospect is not None:
        _fail(NextmoveError("give an instance id or --prospect, not both"), as_json)
    if instance is not None:
        return instance
    if prospect is None:
        _fail(NextmoveError("say which instance: an instance id or --prospect P"), as_json)
    return ProspectRef(prospect, process)


def _print_problems(problems: list[Problem], console: Console = err) -> None:
    for problem in problems:
        colour = "red" if problem.severity == "error" else "yellow"
        console.print(f"[{colour}]{problem.severity}[/{colour}] {escape(str(problem))}")


def _emit_instance(instance: Any, as_json: bool) -> None:
    if as_json:
        _print_json(instance.to_dict())
    else:
        _print_instance(instance)


def _print_instance(instance: Any) -> None:
    out.print(f"instance {instance.id}  {instance.process_id} v{instance.definition_version}  "
              f"prospect {instance.prospect_id}  distributor {instance.distributor_id}  "
              f"[{instance.status}]", markup=False)
    for wait in instance.waiting:
        extra = ""
        if wait.hook:
            extra += f"  hook={wait.hook}"
        if wait.due_at:
            extra += f"  due {wait.due_at:%Y-%m-%d %H:%M}"
        if wait.message:
            extra += f"  message={wait.message}"
        out.print(f"  waiting: {wait.step_id} ({wait.name}) [{wait.kind}]{extra}", markup=False)


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="BPMN/YAML files or folders.")],
    as_json: JsonOption = False,
    allow_scripts: AllowScripts = False,
) -> None:
    """Check process maps and catalogs; print every problem. Exit 1 if any error."""
    report = load_maps(paths, allow_scripts=allow_scripts)
    if as_json:
        _print_json({
            "ok": report.ok,
            "files": report.files,
            "processes": [d.process_id for d in report.definitions],
            "problems": [p.to_dict() for p in report.problems],
        })
    else:
        _print_problems(report.problems, out)
        status = "[green]ok[/green]" if report.ok else "[red]failed[/red]"
        out.print(f"{status}: {len(report.files)} file(s), {len(report.definitions)} process(es), "
                  f"{len(report.errors)} error(s), "
                  f"{len(report.problems) - len(report.errors)} warning(s)")
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def export(
    source: Annotated[Path, typer.Argument(help="A YAML process map.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="BPMN file to write "
                                                "(default: next to the map, .bpmn).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Compile a YAML map to BPMN 2.0 with diagram layout, to open in a modeler."""
    target = output or source.with_suffix(".bpmn")
    compiled = _guard(as_json, lambda: export_bpmn(source, target))
    if as_json:
        _print_json({"process": compiled.process_id, "output": str(target),
                     "bytes": len(compiled.xml)})
    else:
        out.print(f"wrote {target} (process {compiled.process_id})", markup=False)


@app.command()
def deploy(
    paths: Annotated[list[Path], typer.Argument(help="BPMN/YAML files or folders.")],
    db: DbOption = None,
    as_json: JsonOption = False,
    allow_scripts: AllowScripts = False,
) -> None:
    """Validate and deploy process maps; unchanged content keeps its version."""
    deployed = _guard(as_json, lambda: _engine(db, allow_scripts).deploy(paths))
    if as_json:
        catalogs = [{**asdict(c), "deployed_at": c.deployed_at.isoformat()}
                    for c in deployed.catalogs]
        _print_json({"processes": [d.to_dict() for d in deployed], "catalogs": catalogs})
        return
    for d in deployed:
        what = "deployed" if d.created else "unchanged"
        out.print(f"{what}: {d.process_id} v{d.version} ({d.source_file})", markup=False)
    for c in deployed.catalogs:
        what = "deployed" if c.created else "unchanged"
        policies = f"; default policies for {len(c.policies_created)} new hook(s)" \
            if c.policies_created else ""
        out.print(f"{what}: catalog {c.name} v{c.version} ({c.source_file}){policies}",
                  markup=False)


@app.command()
def start(
    process: Annotated[str, typer.Argument(help="Process id, e.g. prospect_journey.")],
    prospect: Annotated[str | None, typer.Option("--prospect", "-p", help="Prospect id.")] = None,
    distributor: Annotated[
        str | None, typer.Option("--distributor", "-d", help="Distributor id.")] = None,
    context: Annotated[str | None, typer.Option(help="Prospect attributes as JSON.")] = None,
    bulk: Annotated[Path | None, typer.Option(
        "--bulk", help="Start one instance per row of this CSV file (columns prospect_id, "
        "distributor_id, optional sponsor_id; other columns join the context), a batch per "
        "transaction. Bad rows are reported by row number; the others are started.",
        exists=True, dir_okay=False)] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, help="Rows per transaction with --bulk.")] = 500,
    new: Annotated[bool, typer.Option("--new", help="Start another instance even if one is "
                                      "active for this prospect.")] = False,
    actor: ActorOption = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a process for a prospect (returns their active instance if there is one), or for
    every prospect in a CSV file with --bulk."""
    if bulk is not None:
        if prospect or distributor or context:
            raise typer.BadParameter("--bulk takes prospects from the file, not from "
                                     "--prospect/--distributor/--context", param_hint="--bulk")
        _start_bulk(process, bulk, batch_size, new, actor, now, db, as_json)
        return
    if prospect is None or distributor is None:
        raise typer.BadParameter("--prospect and --distributor are required (or --bulk FILE)",
                                 param_hint="--prospect/--distributor")
    ctx = _json_arg(context, "--context", as_json)
    instance = _guard(as_json, lambda: _engine(db, now=now).start(
        process, prospect, distributor, ctx, new=new, actor=actor))
    _emit_instance(instance, as_json)


def _start_bulk(process: str, path: Path, batch_size: int, new: bool, actor: str | None,
                now: str | None, db: str | None, as_json: bool) -> None:
    engine = _guard(as_json, lambda: _engine(db, now=now))
    bar, step = _progress("starting", count_rows(path), as_json)
    with bar:
        summary = _guard(as_json, lambda: start_csv(
            engine, process, path, batch_size=batch_size, new=new, actor=actor, progress=step))
    if as_json:
        _print_json(summary.to_dict())
    else:
        out.print(f"{summary.rows} rows: {summary.started} started, {summary.existing} already "
                  f"active, {len(summary.bad)} bad ({summary.batches} transactions)")
        for bad in summary.bad:
            err.print(f"row {bad.row}: {bad.reason}", markup=False)
    if summary.bad:
        raise typer.Exit(1)


@app.command()
def complete(
    step: Annotated[str, typer.Argument(help="The waiting step's id.")],
    instance: Annotated[int | None, typer.Argument(help="Instance id.")] = None,
    prospect: ProspectOption = None,
    process: ProcessOption = None,
    data: Annotated[str | None, typer.Option(help="Step data as JSON, e.g. "
                                             "'{\"interest\": \"customer\"}'.")] = None,
    used: UsedOption = None,
    actor: ActorOption = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record that a waiting step was done, and move the instance on."""
    ref = _ref(instance, prospect, process, as_json)
    values = _json_arg(data, "--data", as_json)
    result = _guard(as_json, lambda: _engine(db, now=now).complete(ref, step, values,
                                                                   actor=actor, used=used))
    _emit_instance(result, as_json)


@app.command()
def skip(
    step: Annotated[str, typer.Argument(help="The waiting step's id.")],
    instance: Annotated[int | None, typer.Argument(help="Instance id.")] = None,
    prospect: ProspectOption = None,
    process: ProcessOption = None,
    reason: Annotated[str | None, typer.Option(help="Why (recorded).")] = None,
    actor: ActorOption = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Skip a waiting step (refused only for required steps)."""
    ref = _ref(instance, prospect, process, as_json)
    result = _guard(as_json, lambda: _engine(db, now=now).skip(ref, step, reason, actor=actor))
    _emit_instance(result, as_json)


@app.command()
def vary(
    step: Annotated[str, typer.Argument(help="The waiting step's id.")],
    note: Annotated[str, typer.Option(help="What was done instead (recorded).")],
    instance: Annotated[int | None, typer.Argument(help="Instance id.")] = None,
    prospect: ProspectOption = None,
    process: ProcessOption = None,
    data: Annotated[str | None, typer.Option(help="Step data as JSON.")] = None,
    used: UsedOption = None,
    actor: ActorOption = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record that something else than the card suggested was done; the journey moves on."""
    ref = _ref(instance, prospect, process, as_json)
    values = _json_arg(data, "--data", as_json)
    result = _guard(as_json, lambda: _engine(db, now=now).vary(
        ref, step, note, actor=actor, data=values, used=used))
    _emit_instance(result, as_json)


@app.command()
def outcome(
    kind: Annotated[str, typer.Argument(help="customer_order, distributor_enrolled, sale or "
                                        "lost.")],
    prospect: Annotated[str, typer.Option("--prospect", "-p", help="The prospect.")],
    process: ProcessOption = None,
    amount: Annotated[float | None, typer.Option(help="Order or sale amount.")] = None,
    actor: ActorOption = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a business result for a prospect (their first sale counts for the distributor)."""
    event = _guard(as_json, lambda: _engine(db, now=now).outcome(
        ProspectRef(prospect, process), kind, amount=amount, actor=actor))
    if as_json:
        _print_json(event.to_dict())
    else:
        out.print(f"recorded {kind} for prospect {prospect} (instance {event.instance_id})",
                  markup=False)


@app.command()
def cards(
    distributor: Annotated[str, typer.Option("--distributor", "-d", help="Distributor id.")],
    limit: Annotated[int, typer.Option(help="At most this many instances.")] = 500,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The distributor's action cards: due and overdue follow-ups first."""
    found = _guard(as_json, lambda: _engine(db, now=now, recommend=True).cards(
        distributor, limit=limit))
    if as_json:
        _print_json([c.to_dict() for c in found])
        return
    if not found:
        out.print("no cards: nothing waits on this distributor")
    for card in found:
        flag = "OVERDUE " if card.overdue else ""
        head = f"{flag}{card.step_name} — prospect {card.prospect_id} ({card.process_id})"
        out.print(head, markup=False, style="bold")
        if card.guidance:
            out.print(f"  {card.guidance}", markup=False)
        if card.control == "required":
            out.print(f"  required: {card.basis}", markup=False)
        for item in card.content:
            mark = "→" if item.top else " "
            out.print(f"  {mark} {item.option_id}  {item.title or ''}  "
                      f"(p={item.probability:.2f})", markup=False)
        if card.suggested_message:
            out.print(f"  message: {card.suggested_message}", markup=False)
        if card.follow_up_at:
            out.print(f"  follow up by {card.follow_up_at:%Y-%m-%d %H:%M}", markup=False)
        if card.waiting_for:
            out.print(f"  we'll remind you when: {', '.join(card.waiting_for)}", markup=False)


@app.command()
def recommend(
    hook: Annotated[str, typer.Option(help="The content hook, e.g. intro_video.")],
    context: Annotated[str | None, typer.Option(help="One context as JSON.")] = None,
    contexts: Annotated[Path | None, typer.Option(help="A JSONL file: one context per line; "
                                                  "prints one JSON result per line.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed the exploration (reproducible).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rank a hook's content for a context with the active policy, with propensities."""
    rng = random.Random(seed)
    recommender = _guard(as_json, lambda: StoredRecommender(open_store(db)))
    if contexts is not None:
        rows = _jsonl(contexts, as_json)
        results = _guard(as_json, lambda: recommender.recommend_many(hook, rows, rng))
        write = sys.stdout.write
        for found in results:
            write(json.dumps(found.to_dict() if found else None) + "\n")
        return
    found = _guard(as_json, lambda: recommender.recommend(
        hook, _json_arg(context, "--context", as_json), rng))
    if found is None:
        _fail(NextmoveError(f"nothing in the catalog fills hook {hook!r} for this context"),
              as_json)
    why = recommender.explain(hook, _json_arg(context, "--context", as_json))
    if as_json:
        _print_json({**found.to_dict(), "why": list(why)})
        return
    table = Table("", "option", "score", "probability shown", box=None)
    for item in found.ranked:
        table.add_row("→" if item.option_id == found.shown else "", item.option_id,
                      f"{item.score:.3f}", f"{item.probability:.3f}")
    out.print(table)
    out.print(f"policy v{found.policy_version}; shown {found.shown} with propensity "
              f"{found.propensity:.3f}", markup=False)
    for line in why:
        out.print(f"  why: {line}", markup=False)


def _jsonl(path: Path, as_json: bool) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        _fail(NextmoveError(f"cannot read {path}: {exc}"), as_json)
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            _fail(NextmoveError(f"{path}:{number}: not JSON: {exc.msg}"), as_json)
        if not isinstance(value, dict):
            _fail(NextmoveError(f"{path}:{number}: a context must be a JSON object"), as_json)
        rows.append(value)
    return rows


def _progress(label: str, total: int, as_json: bool) -> tuple[Progress, Callable[[int], None]]:
    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, disable=as_json)
    task = bar.add_task(label, total=total)
    return bar, lambda done: bar.update(task, completed=done)


SizeDistributors = Annotated[int, typer.Option(help="Distributors in the population.")]
SizeDays = Annotated[int, typer.Option(help="Simulated days.")]
SizeSeed = Annotated[int, typer.Option(help="Seed: the same seed gives the same run.")]


@app.command()
def simulate(
    distributors: SizeDistributors = 300,
    days: SizeDays = 60,
    seed: SizeSeed = 7,
    policy: Annotated[str, typer.Option(help="active (as stored), catalog (defaults) or "
                                        "oracle (knows the hidden model).")] = "active",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Drive the engine with a synthetic field force on a simulated clock."""
    config = SimulationConfig(distributors=distributors, days=days, seed=seed)
    bar, step = _progress("simulating days", days, as_json)
    with bar:
        result = _on_store(db, as_json, lambda store: run_simulation(
            store, config, policy=policy, progress=step))
    summary = {"distributors": result.distributors, "prospects": result.prospects,
               "actions": result.actions, "videos_played": result.videos_played,
               "outcomes": result.outcomes,
               "first_sale_within_14_days": result.first_sale_within_14_days}
    if as_json:
        _print_json(summary)
    else:
        for key, value in summary.items():
            out.print(f"{key}: {value}", markup=False)


@app.command()
def demo(
    distributors: SizeDistributors = 300,
    days: SizeDays = 60,
    seed: SizeSeed = 7,
    db: Annotated[Path, typer.Option("--db", help="The demo's SQLite file (replaced).")] = Path(
        "nextmove-demo.db"),
    learn: Annotated[bool, typer.Option(
        "--learn/--no-learn",
        help="Learn from the first run, then simulate the same field force again on "
             "<db>.after.db with the learned policies and compare.")] = True,
    explore: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="The first run is a learning period: how often a card leads "
                               "with a random catalog option instead of the catalog's pick "
                               "(1.0: always; what there is to learn from).")] = 1.0,
    content_strength: Annotated[float, typer.Option(
        min=0.0, help="The hidden world: how much content matters, as a multiple of the "
                      "simulator's calibrated effects. At 1.0 a demo-sized log is too small "
                      "for any proposal to clear its confidence bound.")] = 3.0,
    as_json: JsonOption = False,
) -> None:
    """The LifeVantage journey end to end on a fresh SQLite file, with a short report.

    Simulates a field force on the catalog's default recommendations, reports the funnel,
    waits, first sales and content use; then learns a policy per hook from that log, applies
    what off-policy evaluation says beats the catalog, simulates the same people again with it
    and shows the change.
    """
    config = SimulationConfig(distributors=distributors, days=days, seed=seed,
                              content_strength=content_strength)
    bar, step = _progress("simulating days", days * (2 if learn else 1), as_json)
    with bar:
        report = _guard(as_json, lambda: run_demo(db, config, progress=step, learn=learn,
                                                  explore=explore))
    if as_json:
        _print_json(report.to_dict())
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
    table = Table("step", "median h", "p90 h", "waiting now", box=None,
                  title="Where prospects wait longest", title_justify="left")
    for w in report.waits[:6]:
        table.add_row(w.step_name, f"{w.median_hours:.0f}", f"{w.p90_hours:.0f}",
                      str(w.waiting_now))
    out.print(table)
    if report.first_sales:
        fs = report.first_sales
        out.print(f"First sale within 14 days: {fs.share:.0%} of {fs.distributors} new "
                  "distributors", markup=False)
    table = Table("hook", "shown", "used suggestion", "used other", "skipped", "varied",
                  title="Content shown vs used", box=None, title_justify="left")
    for c in report.content:
        table.add_row(c.hook, str(c.shown), str(c.used_suggestion), str(c.used_other),
                      str(c.skipped), str(c.varied))
    out.print(table)
    if report.learned is not None:
        _print_demo_learning(report)


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


@app.command()
def show(
    instance: Annotated[int | None, typer.Argument(help="Instance id.")] = None,
    prospect: ProspectOption = None,
    process: ProcessOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """An instance's current steps and its history."""
    ref = _ref(instance, prospect, process, as_json)
    detail = _guard(as_json, lambda: _engine(db).show(ref))
    if as_json:
        _print_json(detail.to_dict())
        return
    _print_instance(detail.instance)
    table = Table("at", "step", "event", "actor", "data", box=None)
    for event in detail.history:
        table.add_row(f"{event.at:%Y-%m-%d %H:%M:%S}", event.step_name, event.kind,
                      event.actor or "", json.dumps(event.data) if event.data else "")
    out.print(table)


@app.command("list")
def list_(
    process: Annotated[str | None, typer.Option(help="Only this process.")] = None,
    distributor: Annotated[str | None, typer.Option(help="Only this distributor.")] = None,
    prospect: Annotated[str | None, typer.Option(help="Only this prospect.")] = None,
    step: Annotated[str | None, typer.Option(help="Only instances waiting at this step.")] = None,
    status: Annotated[str | None, typer.Option(help="active or completed.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Instances, newest first, filtered by process, distributor, step and status."""
    found = _guard(as_json, lambda: _engine(db).list_instances(
        process_id=process, distributor_id=distributor, prospect_id=prospect, step=step,
        status=status, limit=limit))
    if as_json:
        _print_json([i.to_dict() for i in found])
        return
    table = Table("id", "process", "v", "prospect", "distributor", "status", "waiting at",
                  box=None)
    for i in found:
        table.add_row(str(i.id), i.process_id, str(i.definition_version), i.prospect_id,
                      i.distributor_id, i.status, ", ".join(i.waiting_steps))
    out.print(table)


def _fired_line(item: Fired) -> str:
    return (f"{item.at:%Y-%m-%d %H:%M:%S} fired {item.kind} {item.step_id} "
            f"instance {item.instance_id} ({item.process_id}, prospect {item.prospect_id})")


@app.command()
def tick(
    batch: Annotated[int, typer.Option(help="Instances claimed per batch.")] = 100,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fire every timer that is due now, once, and report what fired."""
    fired = _guard(as_json, lambda: _engine(db, now=now).tick(batch))
    if as_json:
        _print_json({"fired": [f.to_dict() for f in fired]})
        return
    for item in fired:
        out.print(_fired_line(item), markup=False)
    out.print(f"{len(fired)} timer(s) fired")


@app.command()
def worker(
    poll: Annotated[float, typer.Option(help="Seconds between polls when idle.")] = 5.0,
    batch: Annotated[int, typer.Option(help="Instances claimed per batch.")] = 100,
    name: Annotated[str | None, typer.Option(help="Worker name (recorded on claims).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fire due timers in a loop; stops cleanly on Ctrl-C or SIGTERM after the step in hand."""
    engine = _guard(as_json, lambda: _engine(db))

    def report(item: Fired) -> None:
        if as_json:
            sys.stdout.write(json.dumps(item.to_dict()) + "\n")
            sys.stdout.flush()
        else:
            out.print(_fired_line(item), markup=False)

    stats = _guard(as_json, lambda: run_worker(
        engine, poll_interval=poll, batch=batch, name=name, on_fired=report))
    err.print(f"worker stopped ({stats.stopped_by or 'done'}): {stats.fired} timer(s) fired")


@app.command()
def signal(
    message: Annotated[str, typer.Argument(help="Event name, e.g. video_played.")],
    prospect: Annotated[str, typer.Option("--prospect", "-p", help="The prospect it is about.")],
    message_id: Annotated[str | None, typer.Option(
        "--id", help="Unique id of this event: delivering it again has no effect.")] = None,
    data: Annotated[str | None, typer.Option(help="Event data as JSON.")] = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deliver a prospect event to the instances waiting for it."""
    payload = _json_arg(data, "--data", as_json)
    result = _guard(as_json, lambda: _engine(db, now=now).signal(
        message, prospect, message_id=message_id, data=payload))
    if as_json:
        _print_json(result.to_dict())
        return
    if result.duplicate:
        out.print(f"duplicate: message {result.message_id} was already received; no effect",
                  markup=False)
    elif result.unmatched:
        out.print(f"unmatched: nothing of prospect {prospect} waits for {message!r}; "
                  f"recorded as {result.message_id}", markup=False)
    else:
        for item in result.fired:
            out.print(_fired_line(item), markup=False)
        out.print(f"delivered to {len(result.delivered)} instance(s)")


@app.command()
def audit(
    paths: Annotated[list[Path] | None, typer.Argument(help="BPMN/YAML maps or folders.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="md, json or sarif.")] = "md",
    fail_on: Annotated[str, typer.Option(help="Exit 1 on an unacknowledged finding at or "
                                         "above: info, low, medium, high.")] = "high",
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Write the report here.")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Check the hash-chained trails in "
                                         "the database — each prospect's step log (cards "
                                         "shown, choices made) and the policy log (versions "
                                         "saved, activated, rolled back, with each policy's "
                                         "content hash) — for edited, removed or reordered "
                                         "records and edited policies. Exit 1 on tampering. "
                                         "Keep the JSON output (it holds the policy log's "
                                         "head) to pass as --anchor later.")] = False,
    anchor: Annotated[Path | None, typer.Option("--anchor", help="With --verify: a kept "
                                                "`audit --verify --json` output (or "
                                                '{"records": N, "head": H}); the policy log '
                                                "must still reach that head, which catches a "
                                                "log rewritten with fresh hashes.")] = None,
    trail: Annotated[bool, typer.Option("--trail", help="Summarise what contractors did "
                                        "with each step: followed, skipped, varied.")] = False,
    process: Annotated[str | None, typer.Option(help="With --trail: one process.")] = None,
    since: Annotated[str | None, typer.Option(help="With --trail: from this date.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Guidance, not control: audit maps for control indicators, or the runtime trail.

    --verify proves the trail unaltered: every card shown and choice made (step log) and
    every policy change (policy log) is a hash-chained record; exit 1 names what changed."""
    if verify:
        kept = _guard(as_json, lambda: compliance.read_anchor(anchor)) if anchor else None
        check = _on_store(db, as_json, lambda store: compliance.verify_trail(store, anchor=kept))
        _emit_report(check.to_dict(), _verification_text(check), output, as_json)
        raise typer.Exit(0 if check.ok else 1)
    if trail:
        start = _guard(as_json, lambda: parse_instant(since)) if since else None
        summary = _on_store(db, as_json, lambda store: compliance.trail_summary(
            store, process=process, since=start))
        _emit_report(summary.to_dict(), _trail_text(summary), output, as_json)
        return
    if not paths:
        _fail(NextmoveError("give maps to audit, or --verify / --trail"), as_json)
    report = _guard(as_json, lambda: compliance.audit(paths, fail_on=fail_on))
    renderers = {"md": compliance.to_markdown, "json": compliance.to_json,
                 "sarif": compliance.to_sarif}
    if output_format not in renderers:
        _fail(NextmoveError(f"--format must be one of {', '.join(renderers)}"), as_json)
    text = compliance.to_json(report) if as_json else renderers[output_format](report)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        out.print(f"wrote {output}", markup=False)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    raise typer.Exit(1 if report.failed(fail_on) else 0)


def _emit_report(data: dict[str, Any], text: str, output: Path | None, as_json: bool) -> None:
    body = json.dumps(data, indent=2, default=str) + "\n" if as_json else text
    if output is not None:
        output.write_text(body, encoding="utf-8")
    else:
        sys.stdout.write(body)


def _verification_text(check: Any) -> str:
    if not check.tampered:
        lines = [f"step log intact: {check.checked} events checked, no tampering found"]
    else:
        lines = [f"STEP LOG TAMPERED: {len(check.tampered)} problem(s) in {check.checked} events"]
        lines += [f"  {t.what}: instance {t.instance_id} — {t.detail}" for t in check.tampered]
    policy = check.policy
    if policy.ok:
        lines.append(f"policy log intact: {policy.checked} records checked, no tampering found"
                     + (" (and it still reaches the anchor)" if policy.anchor else ""))
    else:
        lines.append(f"POLICY LOG TAMPERED: {len(policy.tampered)} problem(s) in "
                     f"{policy.checked} records")
        lines += [f"  {t.what}: " + (f"record {t.record_id} — " if t.record_id else "")
                  + t.detail for t in policy.tampered]
    if policy.ok:  # what to keep outside the database, for --anchor later
        lines.append(f"policy log head after {policy.records} records: {policy.head}")
    return "\n".join(lines) + "\n"


def _trail_text(summary: Any) -> str:
    lines = [f"{summary.contractors} contractor(s); {summary.deviated} "
             f"({summary.deviation_share:.0%}) skipped or varied a step at least once", ""]
    lines.append(f"{'step':32} {'offered':>8} {'followed':>9} {'skipped':>8} {'varied':>7} "
                 f"{'deviated':>9}")
    for st in summary.steps:
        lines.append(f"{st.name[:32]:32} {st.offered:>8} {st.followed:>9} {st.skipped:>8} "
                     f"{st.varied:>7} {st.deviation_share:>8.0%}")
    return "\n".join(lines) + "\n"


def _horizon(text: str | None, as_json: bool) -> timedelta | None:
    if not text:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        _fail(NextmoveError(f"--horizon: {exc}"), as_json)


@app.command("import-log")
def import_log(
    path: Annotated[Path, typer.Argument(help="CSV, Parquet or XES (.xes, .xes.gz) event log.")],
    process: Annotated[str, typer.Option(help="Name to file the log under (not a deployed "
                                         "map's id).")],
    on_error: Annotated[str, typer.Option(help="skip: leave malformed rows out and report "
                                          "them; reject: import nothing if any.")] = "skip",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a historical event log with XES column names, to learn and analyse from."""
    if on_error not in ("skip", "reject"):
        _fail(NextmoveError("--on-error must be skip or reject"), as_json)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                   console=err, disable=as_json)
    task = bar.add_task("importing", total=None)

    def progress(p: Any) -> None:
        bar.update(task, description=f"{p.phase} {p.unit}", completed=p.done, total=p.total)

    with bar:
        report = _on_store(db, as_json, lambda store: learner.import_log(
            store, path, process, on_error=on_error, progress=progress))  # type: ignore[arg-type]
    if as_json:
        _print_json(report.to_dict())
    else:
        out.print(f"imported {report.cases_written} case(s), {report.events_written} event(s), "
                  f"{len(report.activities)} activities into {process!r}", markup=False)
        for problem in report.problems:
            out.print(f"  skipped: {problem}", markup=False)


@app.command()
def variants(
    process: Annotated[str, typer.Option(help="Process (or imported log) name.")],
    outcome: Annotated[str | None, typer.Option(help="Step or outcome that counts as success, "
                                                "e.g. customer_order.")] = None,
    horizon: Annotated[str | None, typer.Option(help="Only count the outcome within this "
                                                "ISO duration of the start, e.g. P14D.")] = None,
    with_content: Annotated[bool, typer.Option("--with-content", help="Tell paths apart by "
                                               "the content used at each step.")] = False,
    top: Annotated[int, typer.Option(help="Show this many variants.")] = 20,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Paths prospects took (as process-mining tools count them), with outcome rates."""
    window = _horizon(horizon, as_json)
    found = _on_store(db, as_json, lambda store: learner.variants(
        store, process, outcome=outcome, horizon=window, with_content=with_content))
    if as_json:
        _print_json([v.to_dict() for v in found])
        return
    table = Table("#", "cases", "share", "rate (95% CI)", "p", "path", box=None)
    for v in found[:top]:
        rate = "" if v.rate is None else f"{v.rate:.1%} ({v.ci_low:.1%}-{v.ci_high:.1%})"
        p_value = "" if v.p_adjusted is None else f"{v.p_adjusted:.3f}" + (
            " *" if v.significant else "")
        table.add_row(str(v.rank), str(v.cases), f"{v.share:.1%}", rate, p_value, v.label)
    out.print(table)
    out.print(f"{len(found)} variant(s); * = outcome rate differs from variant 1 "
              "(Holm-adjusted p < 0.05)", markup=False)


OutcomeOption = Annotated[str, typer.Option(help="The step or outcome that counts as "
                                           "success, e.g. customer_order or sale.")]
HorizonOption = Annotated[str | None, typer.Option(help="Count the outcome only within this "
                                                   "ISO duration of the start, e.g. P14D.")]


@app.command()
def learn(
    process: Annotated[str, typer.Option(help="The process whose log to learn from.")],
    outcome: OutcomeOption,
    horizon: HorizonOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Propose and evaluate; change "
                                          "nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Apply even where the estimate is "
                                        "not better.")] = False,
    seed: Annotated[int, typer.Option(help="Seed for the model and the bootstrap.")] = 0,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Learn which content leads to the outcome; propose new policies, evaluated off-policy."""
    window = _horizon(horizon, as_json)
    store = _guard(as_json, lambda: open_store(db))
    try:
        with err.status("learning from the log...", spinner="dots") if not as_json else _quiet():
            proposal = _guard(as_json, lambda: learner.propose(
                store, process, outcome=outcome, horizon=window, seed=seed))
        applied = [] if dry_run else _guard(as_json, lambda: learner.apply(store, proposal,
                                                                          force=force))
    finally:
        store.dispose()
    if as_json:
        _print_json({**proposal.to_dict(), "applied": applied, "dry_run": dry_run})
        return
    out.print(f"{proposal.decisions} logged decisions of {process!r}, outcome {outcome!r}",
              markup=False)
    for hp in proposal.hooks:
        dr, cur, new = hp.lift["dr"], hp.current["dr"], hp.new["dr"]
        state = "applied" if hp.hook in applied else ("better" if hp.beats else "kept current")
        out.print(f"\n{hp.hook}: {state} — DR value {cur.value:.3f} → {new.value:.3f}, lift "
                  f"{dr.value:+.3f} [{dr.low:+.3f}, {dr.high:+.3f}] ({hp.decisions} decisions)",
                  markup=False)
        for reason in hp.reasons[:4]:
            out.print(f"  - {reason}", markup=False)
    for hook, why in proposal.skipped.items():
        out.print(f"{hook}: no proposal ({why})", markup=False)
    if dry_run:
        out.print("\ndry run: nothing applied", markup=False)


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


@app.command()
def drift(
    process: Annotated[str, typer.Option(help="The process whose log to watch.")],
    outcome: OutcomeOption,
    horizon: HorizonOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Content items whose outcome rate dropped after being shown (a sequential test)."""
    alerts = _on_store(db, as_json, lambda store: learner.detect(
        store, process, outcome=outcome, horizon=_horizon(horizon, as_json)))
    if as_json:
        _print_json([a.to_dict() for a in alerts])
        return
    if not alerts:
        out.print("no significant drop in any content item's outcome rate")
    for a in alerts:
        since = f" since {a.since:%Y-%m-%d}" if a.since else ""
        out.print(f"{a.hook}/{a.option_id}: {a.rate_before:.1%} → {a.rate_after:.1%}{since} "
                  f"(drop {a.drop:.1%}, confidence {a.confidence:.1%})", markup=False)


@app.command()
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
    if heat not in HEAT_METRICS:
        _fail(NextmoveError(f"--heat must be one of {', '.join(HEAT_METRICS)}"), as_json)
    try:
        clock = ManualClock(parse_instant(now)) if now else SystemClock()
    except ValueError as exc:
        _fail(NextmoveError(f"--now {now!r} is not an ISO 8601 time: {exc}"), as_json)
    data = _on_store(db, as_json, lambda store: write_report(
        store, process, output, clock=clock, heat=heat, outcome=outcome))
    if as_json:
        _print_json({"output": str(output), **data.to_dict()})
        return
    out.print(f"wrote {output}: {data.process_id} v{data.version}, "
              f"{data.summary['instances']} prospect(s), map coloured by {heat}", markup=False)
    if data.map_problem:
        err.print(f"[yellow]warning:[/yellow] {escape(data.map_problem)}")


def _since(text: str | None, as_json: bool, option: str = "--since") -> Any:
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError as exc:
        _fail(NextmoveError(f"{option} {text!r} is not an ISO 8601 time: {exc}"), as_json)


def _hours(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _on_store(db: str | None, as_json: bool, action: Callable[[Store], Any]) -> Any:
    """Run `action` on the database, then close it (a PostgreSQL pool is not left open)."""
    store = _guard(as_json, lambda: open_store(db))
    try:
        return _guard(as_json, lambda: action(store))
    finally:
        store.dispose()


@app.command()
def funnel(
    process: Annotated[str, typer.Option(help="Process (or imported log) name.")],
    since: Annotated[str | None, typer.Option(help="Only instances started at or after this "
                                              "time (ISO 8601).")] = None,
    distributor: Annotated[str | None, typer.Option(help="Only this distributor's "
                                                    "instances.")] = None,
    market: Annotated[str | None, typer.Option(help="Only instances whose context market is "
                                               "this, e.g. US.")] = None,
    outcome: Annotated[str, typer.Option(help="Step or outcome event that counts as "
                                         "conversion.")] = analytics.DEFAULT_OUTCOME,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per step: arrivals, what people did, who moved on or dropped, time spent, conversion."""
    start = _since(since, as_json)
    found = _on_store(db, as_json, lambda store: analytics.funnel(
        store, process, since=start, distributor=distributor, market=market,
        outcome=outcome))
    if as_json:
        _print_json(found.to_dict())
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


@app.command()
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
    """Instances waiting on a step longer than usual, by step and distributor."""
    limit = None
    if older_than:
        try:
            limit = parse_duration(older_than)
        except ValueError as exc:
            _fail(NextmoveError(f"--older-than: {exc}"), as_json)
    moment = _since(now, as_json, "--now") if now else SystemClock().now()
    found = _on_store(db, as_json, lambda store: analytics.stuck(
        store, process, moment, older_than=limit, distributor=distributor, market=market))
    if as_json:
        _print_json(found.to_dict())
        return
    table = Table("step", "distributor", "instances", "oldest waiting h", "limit h", box=None)
    for g in found.groups:
        table.add_row(g.step_name, g.distributor_id, str(g.instances),
                      f"{g.waited_hours(moment):.1f}", f"{g.limit_hours:.1f}")
    out.print(table)
    out.print(f"{found.instances} stuck instance(s) in {len(found.groups)} group(s)",
              markup=False)


IndicatorOption = Annotated[list[str] | None, typer.Option(
    "--indicator", help="Redefine or add an indicator: NAME=ITEM[,ITEM][@KIND[+KIND]], items "
    "are step ids or hook:NAME (e.g. contacts_added=add_contact@entered).")]
AsOfOption = Annotated[str | None, typer.Option(
    help="Judge as of this time (default: the newest event).")]
EventsOfOption = Annotated[str | None, typer.Option(help="Count only this process's events.")]


def _definitions(specs: list[str] | None, as_json: bool) -> Any:
    parsed = _guard(as_json, lambda: [analytics.parse_indicator(s) for s in specs or []])
    return analytics.with_overrides(parsed)


@app.command()
def indicators(
    indicator: IndicatorOption = None,
    as_of: AsOfOption = None,
    process: EventsOfOption = None,
    top: Annotated[int, typer.Option(help="Show this many distributors.")] = 20,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Leading indicators per distributor: activity per week, days to first sale."""
    definitions = _definitions(indicator, as_json)
    moment = _since(as_of, as_json, "--as-of")
    found = _on_store(db, as_json, lambda store: analytics.indicators(
        store, definitions=definitions, as_of=moment, process_id=process))
    if as_json:
        _print_json(found.to_dict())
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
def cohorts(
    indicator: IndicatorOption = None,
    as_of: AsOfOption = None,
    process: EventsOfOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Distributors by enrollment week: activity per week and first sales within 14 days."""
    definitions = _definitions(indicator, as_json)
    moment = _since(as_of, as_json, "--as-of")
    found = _on_store(db, as_json, lambda store: analytics.cohorts(
        store, definitions=definitions, as_of=moment, process_id=process))
    if as_json:
        _print_json(found.to_dict())
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
def export_log(
    process: Annotated[str, typer.Option(help="Process (or imported log) name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write: .xes, "
                                         ".xes.gz, .csv, .csv.gz or .parquet.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export a process's event log with XES column names (imports back with import-log)."""
    try:
        report = _on_store(db, as_json, lambda store: learner.export_log(store, process, output))
    except ValueError as exc:
        _fail(NextmoveError(str(exc)), as_json)
    if as_json:
        _print_json(report.to_dict())
    else:
        out.print(f"wrote {report.cases} case(s), {report.events} event(s) to {output}",
                  markup=False)


policy_app = typer.Typer(help="Recommendation policies: history, activation, rollback.",
                         no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@policy_app.command("history")
def policy_history(
    hook: Annotated[str | None, typer.Option(help="Only this hook.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every stored policy version per hook, and which one is active."""
    versions = _on_store(db, as_json, lambda store: policy_store.history(store, hook))
    if as_json:
        _print_json([{**asdict(v), "created_at": v.created_at.isoformat(),
                      "last_activated_at": v.last_activated_at.isoformat()
                      if v.last_activated_at else None} for v in versions])
        return
    table = Table("hook", "version", "kind", "active", "created", "note", box=None)
    for v in versions:
        table.add_row(v.hook, str(v.version), v.kind, "yes" if v.active else "",
                      f"{v.created_at:%Y-%m-%d %H:%M}", v.note or "")
    out.print(table)


@policy_app.command("activate")
def policy_activate(
    hook: Annotated[str, typer.Argument(help="The hook.")],
    version: Annotated[int, typer.Argument(help="The version to make active.")],
    reason: Annotated[str | None, typer.Option(help="Why (logged).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a stored policy version the active one for its hook."""
    found = _on_store(db, as_json, lambda store: policy_store.activate(
        store, hook, version, reason=reason))
    _report_active(found, as_json)


@policy_app.command("rollback")
def policy_rollback(
    hook: Annotated[str, typer.Argument(help="The hook.")],
    reason: Annotated[str | None, typer.Option(help="Why (logged).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Go back to the version that was active before the current one."""
    found = _on_store(db, as_json, lambda store: policy_store.rollback(store, hook, reason=reason))
    _report_active(found, as_json)


def _report_active(found: Any, as_json: bool) -> None:
    if as_json:
        _print_json({"hook": found.hook, "active_version": found.version, "kind": found.kind})
    else:
        out.print(f"{found.hook}: version {found.version} ({found.kind}) is active", markup=False)


if __name__ == "__main__":
    app()
