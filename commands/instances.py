"""Running instances: start, complete, skip, vary, outcome, show, list, tick, worker, signal,
and for instances in incident: retry, migrate-instance."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from commands._errors import PARTIAL, exit_codes
from commands._options import (
    ActorOption,
    DbOption,
    JsonOption,
    NowOption,
    ProcessOption,
    ProspectOption,
    UsedOption,
    instance_ref,
    json_object,
)
from commands._output import (
    emit_instance,
    err,
    instance_json,
    out,
    own_id,
    print_instance,
    print_json,
    print_json_line,
    progress,
)
from commands._wiring import engine_for

if TYPE_CHECKING:
    from engine.runtime import BroadcastResult, Fired
    from engine.runtime.bulk import OnError

app = typer.Typer()

class OnErrorChoice(StrEnum):
    skip = "skip"
    reject = "reject"


StepArgument = Annotated[str, typer.Argument(help="The waiting step's id.")]
InstanceArgument = Annotated[int | None, typer.Argument(help="Instance id.")]


@app.command()
@exit_codes
def start(
    process: Annotated[str, typer.Argument(help="Process id, e.g. prospect_journey.")],
    prospect: Annotated[str | None, typer.Option("--prospect", "-p", help="Prospect id.")] = None,
    distributor: Annotated[
        str | None, typer.Option("--distributor", "-d", help="Distributor id.")] = None,
    context: Annotated[str | None, typer.Option(help="Prospect attributes as JSON.")] = None,
    bulk: Annotated[Path | None, typer.Option(
        "--bulk", help="Start one instance per row of this CSV file (columns prospect_id, "
        "distributor_id, optional sponsor_id; other columns join the context), a batch per "
        "transaction. Bad rows are reported by row and line; the others are started "
        "(exit 1).", exists=True, dir_okay=False)] = None,
    on_error: Annotated[OnErrorChoice, typer.Option(
        "--on-error", help="With --bulk: skip bad rows and start the others, or reject: "
        "start nothing if any row is bad.")] = OnErrorChoice.skip,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, max=1_000_000, help="Rows per transaction with --bulk.")] = 500,
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
        _start_bulk(process, bulk, batch_size, new, actor, now, db, as_json,
                    "reject" if on_error is OnErrorChoice.reject else "skip")
        return
    if prospect is None or distributor is None:
        raise typer.BadParameter("--prospect and --distributor are required (or --bulk FILE)",
                                 param_hint="--prospect/--distributor")
    ctx = json_object(context, "--context")
    instance = engine_for(db, now=now).start(process, prospect, distributor, ctx, new=new,
                                             actor=actor)
    emit_instance(instance, as_json)


def _start_bulk(process: str, path: Path, batch_size: int, new: bool, actor: str | None,
                now: str | None, db: str | None, as_json: bool, on_error: OnError) -> None:
    from engine.runtime import start_csv
    from engine.runtime.bulk import count_rows

    engine = engine_for(db, now=now)
    bar, step = progress("starting", count_rows(path), as_json)
    with bar:
        summary = start_csv(engine, process, path, batch_size=batch_size, new=new, actor=actor,
                            progress=step, on_error=on_error)
    if as_json:
        print_json(summary.to_dict())
    else:
        out.print(f"{summary.rows} rows: {summary.started} started, {summary.existing} already "
                  f"active, {len(summary.bad)} bad ({summary.batches} transactions)")
        for bad in summary.bad:
            err.print(str(bad), markup=False)
    if summary.bad:
        raise typer.Exit(PARTIAL)


@app.command()
@exit_codes
def complete(
    step: StepArgument,
    instance: InstanceArgument = None,
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
    ref = instance_ref(instance, prospect, process)
    values = json_object(data, "--data")
    result = engine_for(db, now=now).complete(ref, step, values, actor=actor, used=used)
    emit_instance(result, as_json)


@app.command()
@exit_codes
def skip(
    step: StepArgument,
    instance: InstanceArgument = None,
    prospect: ProspectOption = None,
    process: ProcessOption = None,
    reason: Annotated[str | None, typer.Option(help="Why (recorded).")] = None,
    actor: ActorOption = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Skip a waiting step (refused only for required steps)."""
    ref = instance_ref(instance, prospect, process)
    result = engine_for(db, now=now).skip(ref, step, reason, actor=actor)
    emit_instance(result, as_json)


@app.command()
@exit_codes
def vary(
    step: StepArgument,
    note: Annotated[str, typer.Option(help="What was done instead (recorded).")],
    instance: InstanceArgument = None,
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
    ref = instance_ref(instance, prospect, process)
    values = json_object(data, "--data")
    result = engine_for(db, now=now).vary(ref, step, note, actor=actor, data=values, used=used)
    emit_instance(result, as_json)


@app.command()
@exit_codes
def outcome(
    kind: Annotated[str, typer.Argument(help="customer_order, distributor_enrolled, sale or "
                                        "lost.")],
    prospect: Annotated[str, typer.Option("--prospect", "-p", help="The prospect.")],
    process: ProcessOption = None,
    amount: Annotated[float | None, typer.Option(help="Order or sale amount (a finite "
                                                 "number, zero or more).")] = None,
    actor: ActorOption = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a business result for a prospect (their first sale counts for the distributor)."""
    from engine import ProspectRef

    event = engine_for(db, now=now).outcome(ProspectRef(prospect, process), kind, amount=amount,
                                            actor=actor)
    if as_json:
        print_json(own_id(event.to_dict(), "event_id"))
    else:
        out.print(f"recorded {kind} for prospect {prospect} (instance {event.instance_id})",
                  markup=False)


@app.command()
@exit_codes
def show(
    instance: InstanceArgument = None,
    prospect: ProspectOption = None,
    process: ProcessOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """An instance's current steps, its history, and its prospect's events that nothing
    waited for (held until a step waits for them, or expired)."""
    ref = instance_ref(instance, prospect, process)
    detail = engine_for(db).show(ref)
    if as_json:
        shown = own_id(detail.to_dict(), "instance_id")
        shown["history"] = [own_id(e, "event_id") for e in shown["history"]]
        if shown["incident"] is not None:
            shown["incident"] = own_id(shown["incident"], "event_id")
        print_json(shown)
        return
    print_instance(detail.instance)
    incident = detail.incident
    if incident is not None:
        data = incident.data or {}
        out.print(f"  incident since {incident.at:%Y-%m-%d %H:%M:%S} at step {incident.step_id}: "
                  f"{data.get('error')}\n  fix the map, then: nextmove retry "
                  f"{detail.instance.id}", markup=False)
    table = Table("at", "step", "event", "actor", "data", box=None)
    for event in detail.history:
        table.add_row(f"{event.at:%Y-%m-%d %H:%M:%S}", event.step_name, event.kind,
                      event.actor or "", json.dumps(event.data) if event.data else "")
    out.print(table)
    if detail.held:
        out.print(f"events of prospect {detail.instance.prospect_id} nothing waited for:")
        held = Table("received", "message", "id", "status", "until", "data", box=None)
        for item in detail.held:
            held.add_row(f"{item.received_at:%Y-%m-%d %H:%M:%S}", item.message, item.message_id,
                         item.status,
                         f"{item.expires_at:%Y-%m-%d %H:%M:%S}" if item.expires_at else "",
                         json.dumps(item.data) if item.data else "")
        out.print(held)


@app.command("list")
@exit_codes
def list_(
    process: Annotated[str | None, typer.Option(help="Only this process.")] = None,
    distributor: Annotated[str | None, typer.Option(help="Only this distributor.")] = None,
    prospect: Annotated[str | None, typer.Option(help="Only this prospect.")] = None,
    step: Annotated[str | None, typer.Option(help="Only instances waiting at this step.")] = None,
    status: Annotated[str | None, typer.Option(
        help="active, completed or incident (a step failed: see retry).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000, help="At most this many.")] = 100,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Instances, newest first, filtered by process, distributor, step and status; says when
    more match than --limit shows (`more` in --json)."""
    found = engine_for(db).list_instances(
        process_id=process, distributor_id=distributor, prospect_id=prospect, step=step,
        status=status, limit=min(limit + 1, 1_000_000))  # one more: are there more?
    more = len(found) > limit
    found = found[:limit]
    if as_json:
        print_json({"instances": [instance_json(i) for i in found], "more": more})
        return
    table = Table("id", "process", "v", "prospect", "distributor", "status", "waiting at",
                  box=None)
    if not found:
        out.print("no instances match")
        return
    for i in found:
        table.add_row(str(i.id), i.process_id, str(i.definition_version), i.prospect_id,
                      i.distributor_id, i.status, ", ".join(i.waiting_steps))
    out.print(table)
    if more:
        out.print(f"the newest {limit} shown; more match (raise --limit or narrow the filters)",
                  markup=False)


def _fired_line(item: Fired) -> str:
    return (f"{item.at:%Y-%m-%d %H:%M:%S} fired {item.kind} {item.step_id} "
            f"instance {item.instance_id} ({item.process_id}, prospect {item.prospect_id})")


BatchOption = Annotated[int, typer.Option(min=1, max=1_000_000,
                                          help="Instances claimed per batch.")]


@app.command()
@exit_codes
def tick(
    batch: BatchOption = 100,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fire every timer that is due now, once, and report what it did: the timers fired, the
    automatic steps run and the incidents (instances whose step failed; the others go on).
    A late cycle timer fires once and moves to its next time (see docs/limits.md)."""
    report = engine_for(db, now=now).tick(batch)
    if as_json:
        print_json(report.to_dict())
        return
    for item in report:
        out.print(_fired_line(item), markup=False)
    for incident in report.incidents:
        err.print(f"incident: instance {incident.instance_id} at {incident.step}: "
                  f"{incident.error}", markup=False)
    timers = sum(1 for item in report if item.kind == "timer")
    held = f", {len(report) - timers} held event(s) delivered" if len(report) > timers else ""
    out.print(f"{timers} timer(s) fired{held}, {report.steps} step(s) run, "
              f"{len(report.incidents)} incident(s)")


@app.command()
@exit_codes
def worker(
    poll: Annotated[float, typer.Option(min=0.01, help="Seconds between polls when idle.")
                    ] = 5.0,
    batch: BatchOption = 100,
    name: Annotated[str | None, typer.Option(help="Worker name (recorded on claims).")] = None,
    drift_every: Annotated[str | None, typer.Option(
        help="Also run the drift check (`drift --act`) this often, e.g. P1D; needs "
             "--drift-process.")] = None,
    drift_process: Annotated[str | None, typer.Option(help="The process to watch.")] = None,
    drift_outcome: Annotated[str | None, typer.Option(
        help="Its success outcome (default: the outcomes its map declares as converting).")
                             ] = None,
    drift_horizon: Annotated[str | None, typer.Option(
        help="Count the outcome only within this ISO duration of the start.")] = "P14D",
    drift_webhook_url: Annotated[str | None, typer.Option(
        "--drift-webhook", metavar="URL",
        help="POST each drift alert acted on to URL, signed with "
             "NEXTMOVE_DRIFT_WEBHOOK_SECRET (default: NEXTMOVE_DRIFT_WEBHOOK_URL).")] = None,
    learn_every: Annotated[str | None, typer.Option(
        help="Also refresh continuous learning (`policy refresh`) this often, e.g. P1D; "
             "needs --learn-process.")] = None,
    learn_process: Annotated[str | None, typer.Option(help="The process to learn from.")
                             ] = None,
    learn_outcome: Annotated[str | None, typer.Option(
        help="Its success outcome (default: the outcomes its map declares as converting).")
                             ] = None,
    learn_horizon: Annotated[str | None, typer.Option(
        help="An outcome not seen within this ISO duration of the start is a failure; "
             "before, pending.")] = "P14D",
    learn_outcomes: Annotated[int | None, typer.Option(
        min=1, help="Refresh sooner, once this many new outcomes were recorded.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fire due timers in a loop; stops cleanly on Ctrl-C or SIGTERM after the step in hand."""
    from commands._drift import drift_chores, drift_webhook
    from commands._learn import learn_chores
    from engine.worker import run_worker

    engine = engine_for(db, recorded=False)  # a loop in real time
    chores = drift_chores(engine, drift_every, drift_process, drift_outcome, drift_horizon,
                          drift_webhook(drift_webhook_url))
    chores += learn_chores(engine, learn_every, learn_process, learn_outcome, learn_horizon,
                           learn_outcomes)

    def report(item: Fired) -> None:
        if as_json:
            print_json_line(item.to_dict())
        else:
            out.print(_fired_line(item), markup=False)

    stats = run_worker(engine, poll_interval=poll, batch=batch, name=name, on_fired=report,
                       chores=chores)
    err.print(f"worker stopped ({stats.stopped_by or 'done'}): {stats.fired} timer(s) fired, "
              f"{stats.incidents} incident(s)")


@app.command()
@exit_codes
def signal(
    message: Annotated[str, typer.Argument(help="Event name, e.g. video_played.")],
    prospect: Annotated[str | None, typer.Option(
        "--prospect", "-p", help="The prospect it is about (a message to their instances).")
    ] = None,
    broadcast: Annotated[bool, typer.Option(
        "--broadcast", help="A BPMN signal for every instance waiting on it, whatever the "
        "prospect (instead of --prospect); each delivery is one step.")] = False,
    message_id: Annotated[str | None, typer.Option(
        "--id", help="Id of this event, unique per prospect and message: sending it again "
        "has no effect.")] = None,
    data: Annotated[str | None, typer.Option(help="Event data as JSON.")] = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deliver a prospect event to the instances waiting for it, or hold it for the prospect
    (exit 0) until a step waits for it or its time to live passes (docs/messages.md); or
    (--broadcast) a BPMN signal to every instance waiting on it."""
    if broadcast == (prospect is not None):
        raise typer.BadParameter(
            "say who it is for: --prospect ID (a prospect event) or --broadcast (a BPMN "
            "signal for every instance waiting on it), not both", param_hint="--prospect")
    payload = json_object(data, "--data")
    engine = engine_for(db, now=now)
    if prospect is None:
        print_broadcast(engine.broadcast(message, signal_id=message_id, data=payload), as_json)
        return
    result = engine.signal(message, prospect, message_id=message_id, data=payload)
    if as_json:
        print_json(result.to_dict())
        return
    if result.duplicate:
        out.print(f"duplicate: message {result.message_id} was already received; no effect",
                  markup=False)
    elif result.held:
        until = f" until {result.expires_at:%Y-%m-%d %H:%M:%S}" if result.expires_at else ""
        out.print(f"held: nothing of prospect {prospect} waits for {message!r} yet; "
                  f"{result.message_id} is held{until} and delivered when a step waits for it",
                  markup=False)
    else:
        for item in result.fired:
            out.print(_fired_line(item), markup=False)
        out.print(f"delivered to {len(result.delivered)} instance(s)")


def print_broadcast(result: BroadcastResult, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    for item in result.fired:
        out.print(_fired_line(item), markup=False)
    out.print(f"signal {result.signal!r} ({result.signal_id}) delivered to "
              f"{len(result.delivered)} instance(s)", markup=False)
    if result.already:
        out.print(f"already delivered before to {len(result.already)} instance(s)")
    if result.failed:
        ids = ", ".join(str(i) for i in result.failed)
        err.print(f"failed at instance(s) {ids}: the map raised an error there and nothing "
                  "was written for them", markup=False)


@app.command()
@exit_codes
def retry(
    instance: InstanceArgument = None,
    prospect: ProspectOption = None,
    process: ProcessOption = None,
    actor: ActorOption = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the step an instance in incident failed at again (after fixing the map and
    moving the instance to the fixed version with migrate-instance)."""
    ref = instance_ref(instance, prospect, process)
    emit_instance(engine_for(db, now=now).retry(ref, actor=actor), as_json)


@app.command("migrate-instance")
@exit_codes
def migrate_instance(
    to_version: Annotated[int, typer.Option("--to-version", help="The definition version to "
                                            "move to (deploy prints the versions).")],
    instance: InstanceArgument = None,
    prospect: ProspectOption = None,
    process: ProcessOption = None,
    actor: ActorOption = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move an instance (active or in incident) to another version of its process; refused
    when a step it waits at, or has passed through, is not in that version."""
    ref = instance_ref(instance, prospect, process)
    emit_instance(engine_for(db, now=now).migrate_instance(ref, to_version, actor=actor),
                  as_json)
