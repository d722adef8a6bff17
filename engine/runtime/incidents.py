"""Incidents: a step that fails at run time parks its instance instead of vanishing.

When a step fails (a bad expression, a bad duration, an undeclared name, a script error, a
work limit exceeded), the pipeline writes, in one transaction guarded by the instance's
version: status `incident`, and an `incident` event chained to the trail whose data holds

    {"error": "...", "type": "ExecutionError", "step": "<the step being done>",
     "failed_at": "<the element that failed>", "limit": "<limit name or null>",
     "replay": {...what `retry` runs again...}}

The instance's state, waiting steps and visits stay as they were before the failing step:
what the person (or the timer, or the event) did is not applied; it is kept in `replay` so
`retry` can run the same step again once the map is fixed (see `migrate-instance`).

Replays: {"type": "start"} (run the new instance's first steps), {"type": "engine"} (fire
due timers and run automatic steps), {"type": "person", "step", "kind", "data", "used",
"actor"}, {"type": "message", "message", "data", "message_id"}, {"type": "signal", "signal",
"data", "signal_id"} (a broadcast's).

A prospect event's (or a broadcast signal's) receipt is written with the incident (status
`incident`, the instance's id): it was received, so the same id sent again is a duplicate, not
a new event; the retry that delivers it marks that receipt `delivered` in its own step
(`recorded_receipt`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from sqlalchemy import Connection, insert, select, update

from engine.durations import DurationError
from engine.errors import (
    EngineRuntimeError,
    ExecutionError,
    NextmoveError,
    StepRequired,
)
from engine.limits import WorkLimitExceeded, run_engine_steps
from engine.runtime import tokens
from engine.runtime._acts import Acted, NotWaiting
from engine.runtime._step_rows import db_time
from engine.runtime.queries import INSTANCE, RECEIPT, STEP_EVENT
from engine.runtime.versions import LoadedDefinition
from engine.store import trail
from engine.store.kinds import EventKind

Act = Callable[[BpmnWorkflow, LoadedDefinition], Acted]

# Event columns an incident or a migration leaves empty.
_EMPTY_COLUMNS = ("actor", "hook", "content_shown", "content_used", "propensity",
                  "policy_version", "visit_ms", "paired")
ENGINE_REPLAY: dict[str, Any] = {"type": "engine"}
START_REPLAY: dict[str, Any] = {"type": "start"}


def person_replay(step: str, kind: str, data: Mapping[str, Any], used: str | None,
                  actor: str | None) -> dict[str, Any]:
    return {"type": "person", "step": step, "kind": kind, "data": dict(data), "used": used,
            "actor": actor}


def message_replay(message: str, data: Mapping[str, Any], message_id: str) -> dict[str, Any]:
    return {"type": "message", "message": message, "data": dict(data),
            "message_id": message_id}


def signal_replay(signal: str, data: Mapping[str, Any], signal_id: str) -> dict[str, Any]:
    return {"type": "signal", "signal": signal, "data": dict(data), "signal_id": signal_id}


def received(replay: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, id) of the prospect event or broadcast signal a replay delivers, if any."""
    kind = replay.get("type")
    if kind in ("message", "signal") and replay.get(f"{kind}_id") is not None:
        return str(replay[kind]), str(replay[f"{kind}_id"])
    return None


def signal_act(signal: str, data: Mapping[str, Any], signal_id: str) -> Act:
    """A broadcast BPMN signal reaches the instance's catch (`NotWaiting` if none waits)."""
    payload = dict(data)

    def act(workflow: BpmnWorkflow, _definition: LoadedDefinition) -> Acted:
        found = tokens.catching(workflow, SignalEventDefinition, signal)
        if not found:
            raise NotWaiting
        # The catch's own definition: it equals itself whichever parser class made it.
        workflow.catch(BpmnEvent(found[0], payload))
        run_engine_steps(workflow)  # counted against the step's work limits
        return Acted(data={"signal_id": signal_id, **payload}, data_kinds=("signal",))

    return act


def person_act(instance_id: int, step: str, kind: str, data: Mapping[str, Any],
               actor: str | None, used: str | None = None) -> Act:
    """A person did (`completed`, `varied`) or skipped `step`."""

    def act(workflow: BpmnWorkflow, definition: LoadedDefinition) -> Acted:
        task = tokens.find_ready(workflow, step)
        if task is None:
            raise NotWaiting
        props = definition.steps.get(step, {}).get("properties", {})
        if kind == "skipped" and props.get("control") == "required":
            raise StepRequired(instance_id, step, props.get("basis"))
        if kind != "skipped":  # a varied step's note is the person's words, not map data
            task.data.update({k: v for k, v in data.items() if k != "note" or kind != "varied"})
        task.run()
        run_engine_steps(workflow)
        return Acted(str(task.id), kind, actor, dict(data), content_used=used)

    return act


def engine_act(workflow: BpmnWorkflow, _definition: LoadedDefinition) -> Acted:
    """Fire due timers and run the automatic steps (a timer's step, a start's first steps)."""
    workflow.refresh_timers()
    run_engine_steps(workflow)
    return Acted()


def act_for(instance_id: int, replay: Mapping[str, Any], actor: str | None) -> Act:
    """The step an incident recorded, to run again."""
    kind = replay.get("type")
    if kind == "person":
        return person_act(instance_id, replay["step"], replay["kind"], replay.get("data") or {},
                          replay.get("actor") or actor, replay.get("used"))
    if kind == "message":
        name, payload = replay["message"], dict(replay.get("data") or {})

        def catch(workflow: BpmnWorkflow, _definition: LoadedDefinition) -> Acted:
            if not tokens.waiting_for(workflow, name):
                raise NotWaiting
            workflow.catch(BpmnEvent(MessageEventDefinition(name), payload))
            run_engine_steps(workflow)
            return Acted(data={"message_id": replay.get("message_id"), **payload},
                         data_kinds=("message",), actor=actor)

        return catch
    if kind == "signal":
        return signal_act(replay["signal"], replay.get("data") or {}, replay["signal_id"])
    return engine_act


def guarded(instance_id: int | None, step: str | None, action: Callable[[], Any]) -> Any:
    """Run `action`; a failure of the map becomes an `ExecutionError` (a work limit keeps
    its own type); a refusal of the request (`EngineRuntimeError`) passes as it is."""
    try:
        return action()
    except WorkLimitExceeded as exc:
        raise exc.at(instance_id, step) from exc
    except (EngineRuntimeError, NotWaiting):
        raise
    except (NextmoveError, DurationError) as exc:  # an expression or a timer gone wrong
        raise ExecutionError(instance_id, step, str(exc)) from exc
    except RecursionError as exc:  # Spiff recurses per loop pass in places
        raise WorkLimitExceeded("engine_steps", 0, 0, None, instance_id, step) from exc
    except Exception as exc:  # a failing map must not leave a half-applied step behind
        limit = limit_in(exc)
        if limit is not None:  # raised inside Spiff, which wrapped it
            raise limit.at(instance_id, step) from exc
        ours = _ours_in(exc)  # Spiff wraps our expression and duration errors: say ours
        detail = str(ours).strip() if ours is not None else f"{type(exc).__name__}: {exc}"
        raise ExecutionError(instance_id, step, detail) from exc


def _ours_in(exc: BaseException) -> BaseException | None:
    seen: BaseException | None = exc.__cause__ or getattr(exc, "exception", None)
    while seen is not None:
        if isinstance(seen, (NextmoveError, ValueError, TypeError)):
            return seen
        seen = seen.__cause__ or getattr(seen, "exception", None)
    return None


def limit_in(exc: BaseException) -> WorkLimitExceeded | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, WorkLimitExceeded):
            return seen
        seen = seen.__cause__ or getattr(seen, "exception", None)
    return None


def failed_element(exc: BaseException, fallback: str | None) -> str | None:
    """The BPMN element a failure happened at: the one a work limit names, or the task Spiff
    names in the error, if any."""
    if isinstance(exc, WorkLimitExceeded) and exc.element:
        return exc.element
    seen: BaseException | None = exc
    while seen is not None:
        task = getattr(seen, "task", None)
        found = getattr(getattr(task, "task_spec", None), "bpmn_id", None)
        if found:
            return str(found)
        seen = seen.__cause__ or getattr(seen, "exception", None)
    return fallback


def incident_row(
    instance_id: int, definition: LoadedDefinition, label: str | None, exc: ExecutionError,
    failed_at: str | None, replay: Mapping[str, Any], now: datetime,
) -> dict[str, Any]:
    """The `incident` step event (not yet chained)."""
    step = failed_at or label or ""
    data = {"error": exc.detail, "type": type(exc).__name__, "step": label,
            "failed_at": failed_at, "limit": getattr(exc, "limit", None),
            "replay": dict(replay)}
    row: dict[str, Any] = dict.fromkeys(_EMPTY_COLUMNS)
    row.update({"instance_id": instance_id, "step_id": step,
                "step_name": definition.steps.get(step, {}).get("name", step),
                "kind": str(EventKind.INCIDENT), "data": json.dumps(data, default=str),
                "at": db_time(now)})
    return row


def write_incident(
    conn: Connection, header: Mapping[str, Any], row: dict[str, Any], now: datetime,
    receipt: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Park the instance in `incident` with `row` chained to its trail, if its version is
    still `header["version"]`; the new header values, or None (another step won). The
    `receipt` of the prospect event the step delivered is stored with status `incident`, so
    its id stays seen (raises the driver's IntegrityError, nothing written, if it was)."""
    head = trail.chain_rows(header.get("chain_head") or trail.GENESIS, [row])
    values = {"status": "incident", "version": header["version"] + 1, "chain_head": head,
              "updated_at": db_time(now), "lease_owner": None, "lease_until": None}
    moved = conn.execute(update(INSTANCE).where(
        INSTANCE.c.id == header["id"], INSTANCE.c.version == header["version"],
    ).values(**values)).rowcount
    if moved != 1:
        return None
    conn.execute(insert(STEP_EVENT).values(**row))
    if receipt is not None:
        conn.execute(insert(RECEIPT).values(**{**receipt, "instance_id": header["id"]},
                                            status="incident"))
    return values


def recorded_receipt(conn: Connection, instance_id: int, prospect_id: str,
                     replay: Mapping[str, Any]) -> int | None:
    """The id of the receipt the incident recorded for its prospect event or broadcast signal
    (`replay`), if any (incidents recorded before receipts were kept have none)."""
    key = received(replay)
    if key is None:
        return None
    found = conn.execute(select(RECEIPT.c.id).where(
        RECEIPT.c.prospect_id == prospect_id, RECEIPT.c.message == key[0],
        RECEIPT.c.message_id == key[1], RECEIPT.c.instance_id == instance_id,
        RECEIPT.c.status == "incident")).scalar()
    return None if found is None else int(found)


def last_incident(conn: Connection, instance_id: int) -> dict[str, Any]:
    """What the instance's latest incident recorded (its event data)."""
    text = conn.execute(select(STEP_EVENT.c.data).where(
        STEP_EVENT.c.instance_id == instance_id, STEP_EVENT.c.kind == EventKind.INCIDENT,
    ).order_by(STEP_EVENT.c.id.desc()).limit(1)).scalar()
    if text is None:
        raise NextmoveError(f"instance {instance_id} has no recorded incident")
    found: dict[str, Any] = json.loads(text)
    return found


def migrated_row(header: Mapping[str, Any], source: LoadedDefinition, target: LoadedDefinition,
                 actor: str | None, now: datetime) -> dict[str, Any]:
    """The `migrated` step event (not yet chained) of a move from `source` to `target`."""
    row: dict[str, Any] = dict.fromkeys(_EMPTY_COLUMNS)
    row.update({"instance_id": header["id"], "step_id": target.process_id,
                "step_name": target.process_id, "kind": str(EventKind.MIGRATED),
                "actor": actor, "at": db_time(now),
                "data": json.dumps({"from_version": source.version,
                                    "to_version": target.version})})
    return row
