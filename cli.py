"""The `nextmove` command line: parse arguments, call one public function, print.

Exit codes: 0 success; 1 a problem with the input or the request (invalid map, unknown
instance, step not waiting, required step, ...); 2 a conflict: another worker changed the
instance first and nothing was applied (typer also uses 2 for command-line usage errors).
Every command takes --json for scripts; errors are then printed as JSON too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine import (
    Engine,
    ManualClock,
    NextmoveError,
    Problem,
    ProspectRef,
    Store,
    VersionConflict,
)
from engine import load as load_maps
from engine.clock import parse_instant
from engine.definitions.compile import export_bpmn
from engine.runtime import Fired, InstanceRef
from engine.worker import run_worker

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


def _engine(db: str | None, allow_scripts: bool = False, now: str | None = None) -> Engine:
    clock = None
    if now:
        try:
            clock = ManualClock(parse_instant(now))
        except ValueError as exc:
            raise NextmoveError(f"--now {now!r} is not an ISO 8601 time: {exc}") from exc
    return Engine(Store(db), allow_scripts=allow_scripts, clock=clock)


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
        _print_json([d.to_dict() for d in deployed])
        return
    for d in deployed:
        what = "deployed" if d.created else "unchanged"
        out.print(f"{what}: {d.process_id} v{d.version} ({d.source_file})", markup=False)


@app.command()
def start(
    process: Annotated[str, typer.Argument(help="Process id, e.g. prospect_journey.")],
    prospect: Annotated[str, typer.Option("--prospect", "-p", help="Prospect id.")],
    distributor: Annotated[str, typer.Option("--distributor", "-d", help="Distributor id.")],
    context: Annotated[str | None, typer.Option(help="Prospect attributes as JSON.")] = None,
    new: Annotated[bool, typer.Option("--new", help="Start another instance even if one is "
                                      "active for this prospect.")] = False,
    actor: ActorOption = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a process for a prospect (returns their active instance if there is one)."""
    ctx = _json_arg(context, "--context", as_json)
    instance = _guard(as_json, lambda: _engine(db, now=now).start(
        process, prospect, distributor, ctx, new=new, actor=actor))
    if as_json:
        _print_json(instance.to_dict())
    else:
        _print_instance(instance)


@app.command()
def complete(
    step: Annotated[str, typer.Argument(help="The waiting step's id.")],
    instance: Annotated[int | None, typer.Argument(help="Instance id.")] = None,
    prospect: ProspectOption = None,
    process: ProcessOption = None,
    data: Annotated[str | None, typer.Option(help="Step data as JSON, e.g. "
                                             "'{\"interest\": \"customer\"}'.")] = None,
    actor: ActorOption = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record that a waiting step was done, and move the instance on."""
    ref = _ref(instance, prospect, process, as_json)
    values = _json_arg(data, "--data", as_json)
    result = _guard(as_json, lambda: _engine(db, now=now).complete(ref, step, values,
                                                                   actor=actor))
    if as_json:
        _print_json(result.to_dict())
    else:
        _print_instance(result)


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
    if as_json:
        _print_json(result.to_dict())
    else:
        _print_instance(result)


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


if __name__ == "__main__":
    app()
