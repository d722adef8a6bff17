"""BPMN signals broadcast from outside: every instance waiting on the signal, one step each.

BPMN signals are broadcasts, unlike messages (which nextmove routes to one prospect's
instances, `events.signal`): `broadcast` reaches every active instance with a signal catch,
a boundary signal event or an event-based gateway branch waiting for the signal, whatever
its prospect. Each delivery is its own durable step (state, events, receipt in one
transaction); a repeated `signal_id` moves an instance at most once (the receipt's unique
(message_id, instance_id) pair), so a broadcast cut short can be sent again with the same id
to reach the rest. A signal nobody waits for is lost, as BPMN says: it is neither held nor
recorded.

A signal thrown inside an instance (an intermediate or end signal throw event) is caught
inside that same instance only, as SpiffWorkflow runs it; see docs/design.md for why it does
not cross into other prospects' instances. It reaches only what waits for it when it is
thrown: one nothing caught is dropped after the step (`tokens.drop_uncaught`), not saved.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from sqlalchemy import select

from engine.clock import as_utc
from engine.errors import ExecutionError, UnknownSignal, VersionConflict
from engine.runtime import events, incidents
from engine.runtime.events import Runtime
from engine.runtime.model import BroadcastResult, Fired
from engine.runtime.pipeline import DuplicateReceipt, NotWaiting
from engine.runtime.queries import DEFINITION, INSTANCE
from engine.runtime.versions import LoadedDefinition

__all__ = ["broadcast", "caught_signals", "waiting_on"]

log = logging.getLogger("nextmove.signals")


def waiting_on(engine: Runtime, name: str) -> list[tuple[int, str]]:
    """(instance id, prospect id) of the active instances waiting for signal `name`, by id."""
    needle = json.dumps({"signal": name})[1:-1]  # as the waiting column writes it
    with engine.store.read() as conn:
        rows = conn.execute(select(INSTANCE.c.id, INSTANCE.c.prospect_id).where(
            INSTANCE.c.status == "active",
            INSTANCE.c.waiting.contains(needle, autoescape=True),
        ).order_by(INSTANCE.c.id)).all()
    return [(int(r[0]), str(r[1])) for r in rows]


def broadcast(
    engine: Runtime, name: str, *, signal_id: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> BroadcastResult:
    """Deliver BPMN signal `name` to every instance waiting for it, one step per instance."""
    signal_id = signal_id or uuid.uuid4().hex
    payload = dict(data or {})
    received_at = as_utc(engine.clock.now()).replace(tzinfo=None)
    act = incidents.signal_act(name, payload, signal_id)
    replay = incidents.signal_replay(name, payload, signal_id)  # what `retry` delivers again

    delivered: list[int] = []
    already: list[int] = []
    failed: list[int] = []
    fired: list[Fired] = []
    waiting = waiting_on(engine, name)
    if not waiting:
        _check_caught(engine, name)
    for instance_id, prospect_id in waiting:
        receipt = {"message_id": signal_id, "message": name, "prospect_id": prospect_id,
                   "data": json.dumps(payload) if payload else None,
                   "received_at": received_at, "instance_id": instance_id}
        for _attempt in range(3):  # a racing step moved it: look again at the fresh state
            try:
                # Timers due by now happened before the signal: they fire first, at their own
                # due times (an event-based gateway then takes only the timer's branch).
                with suppress(NotWaiting):
                    events.fire_instance(engine, instance_id, fired)
                engine.pipeline.advance(instance_id, name, act, moved=fired, receipt=receipt,
                                        replay=replay)
            except VersionConflict:
                continue
            except NotWaiting:
                break
            except DuplicateReceipt:
                already.append(instance_id)
                break
            except ExecutionError as exc:  # the map failed there: the others still get it
                log.warning("instance %s: %s", instance_id, exc)
                failed.append(instance_id)
                break
            delivered.append(instance_id)
            break
    return BroadcastResult(name, signal_id, tuple(delivered), tuple(fired), tuple(already),
                           tuple(failed))


def caught_signals(definition: LoadedDefinition) -> set[str]:
    """The names of the signals a catch of this version waits for (intermediate and boundary
    events, event-based gateway branches, subprocesses' included)."""
    names: set[str] = set()
    for spec in (definition.spec, *definition.subprocess_specs.values()):
        for task_spec in spec.task_specs.values():
            if not isinstance(task_spec, CatchingEvent):
                continue
            event = task_spec.event_definition
            found = event.event_definitions if isinstance(
                event, MultipleEventDefinition) else [event]
            names.update(d.name for d in found if isinstance(d, SignalEventDefinition))
    return names


def _check_caught(engine: Runtime, name: str) -> None:
    """Raise UnknownSignal unless some deployed map version catches `name`: one no map
    catches is a mistyped name, not a signal that happened to find nobody waiting."""
    known: set[str] = set()
    for definition_id in engine.store.select(select(DEFINITION.c.id)):
        known |= caught_signals(engine.pipeline.definitions.get(int(definition_id["id"])))
        if name in known:
            return
    raise UnknownSignal(name, known)
