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
from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from engine.clock import Clock, as_utc
from engine.definitions import timers
from engine.errors import ExecutionError, VersionConflict
from engine.runtime import tokens
from engine.runtime.model import Fired, SignalResult
from engine.runtime.pipeline import Acted, DuplicateReceipt, NotWaiting, StepPipeline
from engine.runtime.queries import INSTANCE, RECEIPT
from engine.runtime.versions import LoadedDefinition
from engine.store import Store


class Engine(Protocol):
    """What timers and prospect events need of the engine (`engine.runtime.engine.Engine`)."""

    store: Store
    clock: Clock
    pipeline: StepPipeline
    lease: timedelta

log = logging.getLogger("nextmove.worker")


def _db_now(engine: Engine) -> datetime:
    return as_utc(engine.clock.now()).replace(tzinfo=None)


def _due_instances(now: datetime) -> Any:
    return select(INSTANCE.c.id).where(
        INSTANCE.c.status == "active", INSTANCE.c.next_due_at <= now,
        or_(INSTANCE.c.lease_until.is_(None), INSTANCE.c.lease_until < now))


def fire_due(
    engine: Engine, limit: int = 100, worker: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Fired]:
    """Claim up to `limit` instances with a due timer, fire them, report what fired."""
    owner = worker or f"worker-{uuid.uuid4().hex[:8]}"
    fired: list[Fired] = []
    claimed = claim(engine, limit, owner)
    for done, instance_id in enumerate(claimed):
        if should_stop is not None and should_stop():
            release(engine, claimed[done:], owner)  # let other workers have them now
            break
        try:
            fire_instance(engine, instance_id, fired)
        except NotWaiting:
            # Done meanwhile (a person did the step, or it finished): nothing to write, so
            # no version bump that a person's next step would run into.
            release(engine, [instance_id], owner)
        except (VersionConflict, ExecutionError) as exc:
            log.warning("instance %s: %s", instance_id, exc)
    return fired


def fire_instance(engine: Engine, instance_id: int, fired: list[Fired]) -> None:
    """Fire the instance's due timers as one step; `NotWaiting` when none is due."""

    def act(workflow: BpmnWorkflow, _definition: LoadedDefinition) -> Acted:
        if not fire_timers(workflow, engine.clock.now()):
            raise NotWaiting
        return Acted()

    engine.pipeline.advance(instance_id, None, act, moved=fired)


_MAX_FIRES = 1000  # one step fires at most this many due times (a cycle timer far behind)


def fire_timers(workflow: BpmnWorkflow, now: datetime) -> bool:
    """Fire the timers due at or before `now`, one due time after another in time order, each
    at its own due time; whether any fired.

    Firing at the due time (not at `now`) is what makes a late tick end where ticks on time
    would have: of two timers after an event-based gateway only the earlier fires (it cancels
    the other), and a timer armed by what fired counts from the due time."""
    fired = False
    for _ in range(_MAX_FIRES):
        due = min((d for d in tokens.timer_dues(workflow) if d <= now), default=None)
        if due is None:
            break
        before = tokens.snapshot(workflow)
        with timers.pinned(workflow, due):
            workflow.refresh_timers()
            workflow.do_engine_steps()
        if tokens.snapshot(workflow) == before:
            break  # nothing moved: do not spin on a timer that will not fire
        fired = True
    return fired


def claim(engine: Engine, limit: int, owner: str) -> list[int]:
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


def release(engine: Engine, instance_ids: list[int], owner: str) -> None:
    with engine.store.write() as conn:
        conn.execute(update(INSTANCE).where(
            INSTANCE.c.id.in_(instance_ids), INSTANCE.c.lease_owner == owner,
        ).values(lease_owner=None, lease_until=None))


def has_due(engine: Engine) -> bool:
    query = _due_instances(_db_now(engine)).limit(1)
    return engine.store.transaction(
        lambda conn: conn.execute(query).first() is not None, write=False)


def tick(engine: Engine, batch: int = 100, worker: str | None = None) -> list[Fired]:
    """Fire everything due now, batch after batch, until nothing unclaimed is due."""
    fired: list[Fired] = []
    while True:
        batch_fired = fire_due(engine, batch, worker)
        fired.extend(batch_fired)
        if not has_due(engine) or not batch_fired:
            return fired  # done, or what is left is leased by other workers


def signal(
    engine: Engine, message: str, prospect_id: str, *, message_id: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> SignalResult:
    """Deliver a prospect event (e.g. `video_played`) to the instances waiting for it."""
    message_id = message_id or uuid.uuid4().hex
    payload = dict(data or {})
    needle = json.dumps({"message": message})[1:-1]  # as the waiting column writes it
    with engine.store.read() as conn:
        if conn.execute(select(RECEIPT.c.id).where(
                RECEIPT.c.message_id == message_id).limit(1)).first() is not None:
            return SignalResult(message, prospect_id, message_id, duplicate=True)
        candidates = conn.execute(select(INSTANCE.c.id).where(
            INSTANCE.c.prospect_id == prospect_id, INSTANCE.c.status == "active",
            INSTANCE.c.waiting.contains(needle, autoescape=True),
        ).order_by(INSTANCE.c.id)).scalars().all()
    receipt = {"message_id": message_id, "message": message, "prospect_id": prospect_id,
               "data": json.dumps(payload) if payload else None,
               "received_at": _db_now(engine)}

    def act(workflow: BpmnWorkflow, _definition: LoadedDefinition) -> Acted:
        if not tokens.waiting_for(workflow, message):
            raise NotWaiting
        workflow.catch(BpmnEvent(MessageEventDefinition(message), payload))
        workflow.do_engine_steps()
        return Acted(data={"message_id": message_id, **payload}, data_kinds=("message",))

    delivered: list[int] = []
    fired: list[Fired] = []
    for instance_id in candidates:
        for _attempt in range(3):  # a racing step moved it: look again at the fresh state
            try:
                # Timers due by now happened before this event: they fire first, at their
                # own due times, and may take the gateway the message was hoping for.
                with suppress(NotWaiting):
                    fire_instance(engine, instance_id, fired)
                engine.pipeline.advance(instance_id, message, act, moved=fired,
                                receipt={**receipt, "instance_id": instance_id})
            except VersionConflict:
                continue
            except (NotWaiting, DuplicateReceipt):
                break
            delivered.append(instance_id)
            break
    if not delivered:
        try:
            with engine.store.write() as conn:
                conn.execute(insert(RECEIPT).values(**receipt, instance_id=0))
        except IntegrityError:
            return SignalResult(message, prospect_id, message_id, duplicate=True)
    return SignalResult(message, prospect_id, message_id, tuple(delivered), fired=tuple(fired))
