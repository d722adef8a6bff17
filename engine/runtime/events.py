"""Timers and prospect events: what moves an instance without a person acting.

Due timers are claimed as leases (`FOR UPDATE SKIP LOCKED` on PostgreSQL) so many workers
share them and a dead worker's claims lapse; firing is still a versioned step, so a timer
fires at most once. Messages are routed by our own index (prospect + message name in the
waiting column) and deduplicated by message id inside the step's own transaction.

Events take effect in the order they happened: timers fire at their own due times in time
order (`fire_timers`), and before a message is delivered the timers due by then fire first,
so an event-based gateway takes exactly one branch, that of its earliest event. A claimed
instance with nothing due any more (a person did the step meanwhile) is released unwritten.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any, Protocol

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from sqlalchemy import or_, select, update

from engine.clock import Clock, as_utc
from engine.definitions import timers
from engine.errors import InstanceIncident, UnknownMessage, VersionConflict
from engine.limits import run_engine_steps
from engine.runtime import held, incidents, tokens
from engine.runtime.model import Fired, Incident, SignalResult, TickReport
from engine.runtime.pipeline import Act, Acted, DuplicateReceipt, NotWaiting, StepPipeline
from engine.runtime.queries import DEFINITION, INSTANCE, RECEIPT
from engine.runtime.versions import LoadedDefinition
from engine.store import Store


class Runtime(Protocol):
    """What timers and prospect events need of the engine (`engine.runtime.engine.Engine`)."""

    store: Store
    clock: Clock
    @property
    def pipeline(self) -> StepPipeline: ...  # built on first use: read-only
    lease: timedelta

log = logging.getLogger("nextmove.worker")

GROUP = 50  # due instances fired per transaction (one commit for them all)


def _db_now(engine: Runtime) -> datetime:
    return as_utc(engine.clock.now()).replace(tzinfo=None)


def _due_instances(now: datetime) -> Any:
    return select(INSTANCE.c.id).where(
        INSTANCE.c.status == "active", INSTANCE.c.next_due_at <= now,
        or_(INSTANCE.c.lease_until.is_(None), INSTANCE.c.lease_until < now))


def fire_due(
    engine: Runtime, limit: int = 100, worker: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TickReport:
    """Claim up to `limit` instances with a due timer, fire them, report what fired (and
    the steps run, and the incidents: a failing instance is parked, the others go on)."""
    owner = worker or f"worker-{uuid.uuid4().hex[:8]}"
    fired = TickReport()
    steps_before = engine.pipeline.steps_run
    claimed = claim(engine, limit, owner)
    for start in range(0, len(claimed), GROUP):
        if should_stop is not None and should_stop():
            release(engine, claimed[start:], owner)  # let other workers have them now
            break
        group = claimed[start:start + GROUP]
        # One transaction (one commit) for the group; an instance that conflicts is redone
        # alone and the others commit (`engine.runtime._group`).
        results = engine.pipeline.advance_many(
            [(instance_id, None, _fire_act(engine, instance_id)) for instance_id in group],
            moved=fired)
        for instance_id in group:
            outcome = results[instance_id]
            if isinstance(outcome, NotWaiting):
                # Done meanwhile (a person did the step, or it finished): nothing to write,
                # so no version bump that a person's next step would run into.
                release(engine, [instance_id], owner)
            elif isinstance(outcome, InstanceIncident):
                log.warning("%s", outcome)
                fired.incidents.append(Incident(instance_id, outcome.step
                                                or _failed_at(outcome), str(outcome),
                                                outcome.limit))
            elif isinstance(outcome, Exception):
                log.warning("instance %s: %s", instance_id, outcome)
    fired.steps = engine.pipeline.steps_run - steps_before
    # Held events that no late timer could take any more (`held.expire` left them for it).
    held.expire(engine.store, engine.clock.now())
    return fired


def _failed_at(exc: InstanceIncident) -> str | None:
    return incidents.failed_element(exc.cause, None)


def fire_instance(engine: Runtime, instance_id: int, fired: list[Fired]) -> None:
    """Fire the instance's due timers, as one step or more (a step ends at a due time where
    a catch started waiting for a held event: `fire_timers`); `NotWaiting` when none is due."""
    for step in range(_MAX_FIRES):
        try:
            engine.pipeline.advance(instance_id, None, _fire_act(engine, instance_id),
                                    moved=fired)
        except NotWaiting:
            if step == 0:
                raise  # nothing was due
            return


def _fire_act(engine: Runtime, instance_id: int | None = None) -> Act:
    def held_alive(messages: set[str], due: datetime) -> bool:
        return instance_id is not None and held.alive_for(
            engine.store, instance_id, messages, due)

    def act(workflow: BpmnWorkflow, _definition: LoadedDefinition) -> Acted:
        if not fire_timers(workflow, engine.clock.now(), held_alive):
            raise NotWaiting
        return Acted()

    return act


_MAX_FIRES = 1000  # one step fires at most this many due times (the work limits bound more)


def fire_timers(
    workflow: BpmnWorkflow, now: datetime,
    held_alive: Callable[[set[str], datetime], bool] | None = None,
) -> bool:
    """Fire the timers due at or before `now`, one due time after another in time order, each
    at its own due time; whether any fired.

    Firing at the due time (not at `now`) is what makes a late tick end where ticks on time
    would have: of two timers after an event-based gateway only the earlier fires (it cancels
    the other), and a timer armed by what fired counts from the due time. A message catch that
    starts waiting at a due time is recorded as waiting since then (`held.started_waiting`),
    so the step judges the held events it takes as of that moment; and when `held_alive` says
    a held event for it was alive then, firing stops there: the step takes the event before
    the later timers fire (the next step fires them), as a tick on time would have. The
    automatic steps run within the engine's work limits (`engine.limits`)."""
    fired = False
    for _ in range(_MAX_FIRES):
        due = min((d for d in tokens.timer_dues(workflow) if d <= now), default=None)
        if due is None:
            break
        before = tokens.snapshot(workflow)
        catches = held.message_catches(workflow)
        with timers.pinned(workflow, due):
            workflow.refresh_timers()
            run_engine_steps(workflow)
        if tokens.snapshot(workflow) == before:
            break  # nothing moved: do not spin on a timer that will not fire
        fired = True
        new = held.started_waiting(workflow, catches, due)
        if new and held_alive is not None and due < now \
                and held_alive(held.catch_messages(workflow, new), due):
            break
    return fired


def claim(engine: Runtime, limit: int, owner: str) -> list[int]:
    now = _db_now(engine)
    due = _due_instances(now).order_by(INSTANCE.c.next_due_at).limit(limit)
    if not engine.store.is_sqlite:  # SQLite serializes writers; PostgreSQL needs SKIP LOCKED
        due = due.with_for_update(skip_locked=True)
    statement = (
        update(INSTANCE)
        .where(INSTANCE.c.id.in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_until=now + engine.lease)
        .returning(INSTANCE.c.id)
    )
    return sorted(engine.store.transaction(lambda conn: conn.execute(statement).scalars().all()))


def release(engine: Runtime, instance_ids: list[int], owner: str) -> None:
    with engine.store.write() as conn:
        conn.execute(update(INSTANCE).where(
            INSTANCE.c.id.in_(instance_ids), INSTANCE.c.lease_owner == owner,
        ).values(lease_owner=None, lease_until=None))


def has_due(engine: Runtime) -> bool:
    query = _due_instances(_db_now(engine)).limit(1)
    return engine.store.transaction(
        lambda conn: conn.execute(query).first() is not None, write=False)


def tick(engine: Runtime, batch: int = 100, worker: str | None = None) -> TickReport:
    """Fire everything due now, batch after batch, until nothing unclaimed is due."""
    fired = TickReport()
    while True:
        batch_fired = fire_due(engine, batch, worker)
        fired.merge(batch_fired)
        if not has_due(engine) or not (batch_fired or batch_fired.incidents):
            return fired  # done, or what is left is leased by other workers


def _check_caught(store: Store, message: str) -> None:
    """Raise UnknownMessage unless a deployed map version has a catch for `message` (a held
    event no map catches would wait for nothing, then expire)."""
    needle = json.dumps({"message": message})[1:-1]  # as the steps column writes it
    if store.select(select(DEFINITION.c.id).where(
            DEFINITION.c.steps.contains(needle, autoescape=True)).limit(1)):
        return
    known = {step["message"] for doc in store.select(select(DEFINITION.c.steps))
             for step in json.loads(doc["steps"]) if step.get("message")}
    raise UnknownMessage(message, known)


def signal(
    engine: Runtime, message: str, prospect_id: str, *, message_id: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> SignalResult:
    """Deliver a prospect event (e.g. `video_played`) to the instances waiting for it, or hold
    it for the prospect until a catch starts waiting for it (`engine.runtime.held`). An id is
    unique per (prospect, message): sending it again is a duplicate, also of a held event."""
    message_id = message_id or uuid.uuid4().hex
    payload = dict(data or {})
    needle = json.dumps({"message": message})[1:-1]  # as the waiting column writes it
    seen = select(RECEIPT.c.id).where(
        RECEIPT.c.prospect_id == prospect_id, RECEIPT.c.message == message,
        RECEIPT.c.message_id == message_id).limit(1)
    if engine.store.select(seen):
        return SignalResult(message, prospect_id, message_id, duplicate=True)
    receipt = {"message_id": message_id, "message": message, "prospect_id": prospect_id,
               "data": json.dumps(payload) if payload else None,
               "received_at": _db_now(engine)}

    def act(workflow: BpmnWorkflow, _definition: LoadedDefinition) -> Acted:
        if not tokens.waiting_for(workflow, message):
            raise NotWaiting
        workflow.catch(BpmnEvent(MessageEventDefinition(message), payload))
        run_engine_steps(workflow)
        return Acted(data={"message_id": message_id, **payload}, data_kinds=("message",))

    delivered: list[int] = []
    fired: list[Fired] = []
    for _round in range(5):  # an instance may start waiting for it while we look
        candidates = engine.store.select(select(INSTANCE.c.id).where(
            INSTANCE.c.prospect_id == prospect_id, INSTANCE.c.status == "active",
            INSTANCE.c.waiting.contains(needle, autoescape=True),
        ).order_by(INSTANCE.c.id))
        for instance_id in (row["id"] for row in candidates):
            for _attempt in range(3):  # a racing step moved it: look again at the fresh state
                try:
                    # Timers due by now happened before this event: they fire first, at their
                    # own due times, and may take the gateway the message was hoping for.
                    with suppress(NotWaiting):
                        fire_instance(engine, instance_id, fired)
                    engine.pipeline.advance(
                        instance_id, message, act, moved=fired,
                        receipt={**receipt, "instance_id": instance_id},
                        replay=incidents.message_replay(message, payload, message_id),
                        in_order=True)
                except VersionConflict:
                    continue
                except (NotWaiting, DuplicateReceipt):
                    break
                delivered.append(instance_id)
                break
        if delivered:
            return SignalResult(message, prospect_id, message_id, tuple(delivered),
                                fired=tuple(fired))
        if _round == 0:
            _check_caught(engine.store, message)
        # Nothing took it: hold it, unless its id was seen (a racing duplicate delivered it)
        # or something started waiting for it meanwhile (then deliver it there).
        outcome, expires = held.hold(engine.store, receipt, needle, engine.clock.now())
        if outcome == "duplicate":
            return SignalResult(message, prospect_id, message_id, duplicate=True,
                                fired=tuple(fired))
        if outcome == "held":
            return SignalResult(message, prospect_id, message_id, held=True, fired=tuple(fired),
                                expires_at=expires)
    raise VersionConflict(0, -1)  # other writers kept moving the prospect's instances
