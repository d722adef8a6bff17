"""Prospect events that come before anything waits for them: held for the prospect, then
delivered by the step that makes a catch start waiting for them.

An event (`signal`) that no instance of its prospect waits for is stored as a `held` row of
`message_receipt` (instance 0) with an expiry: its time to live is the longest `message_ttl`
the latest deployed maps declare for that message, else `DEFAULT_TTL` (docs/messages.md).
Any step that makes an instance start waiting for a message (a person's step, a timer, another
message, a start) reads the prospect's held rows, catches the earliest one still alive for each
catch, and marks it `delivered` (to that instance) in the step's own transaction; rows past
their expiry are marked `expired` there, or by `expire` when a tick or worker passes.

An event whose delivery failed (the instance is parked in incident) keeps a receipt with status
`incident` and that instance: its id stays seen (a copy is a duplicate, not held), and the
`retry` that delivers it marks it `delivered` (`deliver_incident`).

Holding and delivering are serialized per prospect, so an event is never held while a catch
for it is already waiting: SQLite's writers queue anyway (BEGIN IMMEDIATE); on PostgreSQL
both take a transaction-scoped advisory lock on the prospect and re-read under it. A step
whose held rows changed meanwhile is redone on fresh state (`HeldChanged`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import EventBasedGateway
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition as SpiffMessage
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Connection, and_, bindparam, exists, func, insert, select, text, update

from engine.clock import as_utc
from engine.definitions import timers
from engine.durations import duration_from
from engine.limits import run_engine_steps
from engine.runtime import tokens
from engine.runtime._acts import HeldChanged
from engine.runtime.model import HeldEvent, Waiting
from engine.runtime.queries import DEFINITION, INSTANCE, RECEIPT
from engine.store.database import Store

__all__ = ["DEFAULT_TTL", "Taken", "alive_for", "catch", "deliver_incident", "expire", "hold",
           "listed", "read", "settle", "started_waiting", "take", "verify"]

DEFAULT_TTL = "P30D"
_SINCE = "nextmove_waiting_since"  # our own attribute on a workflow object, never serialized
_LOCK_SPACE = 0x6E6D  # advisory locks of held events: (this, hashtext(prospect id))
_HELD_QUERY = select(RECEIPT.c.id, RECEIPT.c.prospect_id, RECEIPT.c.message, RECEIPT.c.message_id,
                     RECEIPT.c.data, RECEIPT.c.received_at, RECEIPT.c.expires_at).where(
    RECEIPT.c.status == "held", RECEIPT.c.prospect_id.in_(bindparam("prospects", expanding=True)),
).order_by(RECEIPT.c.received_at, RECEIPT.c.id)


@dataclass(frozen=True)
class Pending:
    """A held row as a step reads it."""

    id: int
    message: str
    message_id: str
    data: dict[str, Any]
    received_at: datetime
    expires_at: datetime | None

    def alive(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass
class Taken:
    """What a step did with its prospect's held events: the rows it read (checked again under
    the lock when it writes), the ones it delivered and the ones it found expired."""

    prospect_id: str
    seen: frozenset[int]
    delivered: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    moves: list[tokens.TokenMove] = field(default_factory=list)
    move_data: dict[str, dict[str, Any]] = field(default_factory=dict)


def _db(moment: datetime) -> datetime:
    return as_utc(moment).replace(tzinfo=None)


def lock(conn: Connection, prospect_ids: Iterable[str]) -> None:
    """Serialize holding and delivering for these prospects until the transaction ends
    (PostgreSQL; SQLite's write transactions are serialized already)."""
    if conn.dialect.name == "sqlite":
        return
    for prospect in sorted(set(prospect_ids)):  # one order everywhere: no lock cycles
        conn.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(:prospect))"),
                     {"space": _LOCK_SPACE, "prospect": prospect})


def read(conn: Connection, prospect_ids: Sequence[str]) -> dict[str, list[Pending]]:
    """The held rows of these prospects, oldest first."""
    out: dict[str, list[Pending]] = {}
    for start in range(0, len(prospect_ids), 500):
        rows = conn.execute(_HELD_QUERY, {"prospects": list(prospect_ids[start:start + 500])})
        for row in rows:
            out.setdefault(row.prospect_id, []).append(Pending(
                row.id, row.message, row.message_id, json.loads(row.data) if row.data else {},
                as_utc(row.received_at), as_utc(row.expires_at) if row.expires_at else None))
    return out


def message_catches(workflow: BpmnWorkflow) -> set[str]:
    """Ids of the tasks that wait for a message now (catches and event-based gateways)."""
    out = set()
    for task in tokens.tasks_in(workflow, TaskState.WAITING):
        definition = getattr(task.task_spec, "event_definition", None)
        # an event-based gateway carries its events' definitions (Spiff moves them there)
        found = getattr(definition, "event_definitions", None) \
            if isinstance(task.task_spec, EventBasedGateway) else [definition]
        if any(isinstance(d, MessageEventDefinition) for d in found or ()):
            out.add(str(task.id))
    return out


def started_waiting(workflow: BpmnWorkflow, before: set[str], moment: datetime) -> set[str]:
    """Record that the message catches waiting now and not in `before` started waiting at
    `moment` (a timer's due time, earlier than the step's now); their ids. `take` judges the
    held events for them as of that moment, as a step on time would have."""
    new = message_catches(workflow) - before
    if new:
        since = getattr(workflow, _SINCE, None) or {}
        since.update(dict.fromkeys(new, moment))
        setattr(workflow, _SINCE, since)
    return new


def _messages_of(task: Any) -> set[str]:
    definition = getattr(task.task_spec, "event_definition", None)
    # a gateway's (or a multiple event's) members are on its definition
    members = getattr(definition, "event_definitions", None) or [definition]
    return {d.name for d in members if isinstance(d, MessageEventDefinition)}


def catch_messages(workflow: BpmnWorkflow, task_ids: Iterable[str]) -> set[str]:
    """The messages the waiting tasks `task_ids` wait for."""
    wanted = set(task_ids)
    return {m for task in tokens.tasks_in(workflow, TaskState.WAITING)
            if str(task.id) in wanted for m in _messages_of(task)}


def _as_of(
    workflow: BpmnWorkflow, message: str, now: datetime, since: dict[str, datetime],
) -> datetime:
    """When the catches for `message` started waiting: the earliest moment `since` records
    for one that waits now, else `now`."""
    moments = [since[str(task.id)] for task in tokens.tasks_in(workflow, TaskState.WAITING)
               if str(task.id) in since and message in _messages_of(task)]
    return min(moments, default=now)


def starts_waiting(workflow: BpmnWorkflow, previous: Iterable[Waiting]) -> bool:
    """Whether the step made a catch start waiting for a message."""
    before = {w.task_id for w in previous if w.kind == "message"}
    return bool(message_catches(workflow) - before)


def catch(workflow: BpmnWorkflow, message: str, payload: dict[str, Any]) -> None:
    """Deliver `message` to whatever of the workflow waits for it, and run on (within the
    current step's work limits)."""
    workflow.catch(BpmnEvent(SpiffMessage(message), payload))
    run_engine_steps(workflow)


def take(
    workflow: BpmnWorkflow, prospect_id: str, rows: Sequence[Pending], now: datetime,
    guard: Callable[[Callable[[], Any]], Any], claimed: set[int] | None = None,
) -> Taken:
    """Deliver the held rows the workflow waits for, oldest first, each at most once (also
    across the instances of one batch: `claimed`); the moves it made, with each message's data
    on its catch. A row is judged alive as of the moment its catch started waiting (a timer
    fired late records its due time: `started_waiting`), else `now`; a row past its expiry
    by then, that a catch waits for, is marked to expire (the others are left to `expire`)."""
    claimed = claimed if claimed is not None else set()
    taken = Taken(prospect_id, frozenset(r.id for r in rows))
    since: dict[str, datetime] = getattr(workflow, _SINCE, None) or {}
    with suppress(AttributeError):
        delattr(workflow, _SINCE)  # facts of this step only: the workflow may stay cached

    def alive(row: Pending) -> bool:
        return row.alive(_as_of(workflow, row.message, now, since))

    def caught_at(row: Pending) -> datetime | None:
        """When a step on time would have delivered it (its catch waiting, or its receipt,
        whichever came later); None if a timer was due by then (it fires first: the next
        step fires it)."""
        moment = min(max(_as_of(workflow, row.message, now, since), row.received_at), now)
        if moment < now and any(d <= moment for d in tokens.timer_dues(workflow)):
            return None
        return moment

    progress = True
    while progress:
        progress = False
        for row in rows:
            if row.id in claimed or not tokens.waiting_for(workflow, row.message) \
                    or not alive(row):
                continue
            moment = caught_at(row)
            if moment is None:
                continue
            before = tokens.snapshot(workflow)
            with timers.pinned(workflow, moment):  # a deadline still ahead then stays so
                guard(lambda row=row: catch(workflow, row.message, row.data))  # type: ignore[misc]
            made = tokens.moves(before, workflow, None, "completed")
            record = {"message_id": row.message_id, **row.data,
                      "held_since": row.received_at.isoformat()}
            taken.move_data.update((m.task_id, record) for m in made if m.kind == "message")
            taken.moves.extend(made)
            taken.delivered.append(row.id)
            claimed.add(row.id)
            progress = True
            break  # the catch may have led to other waits: look again from the oldest
    # The step that would have taken them: what still waits for them ended their time.
    taken.expired = [r.id for r in rows if r.id not in claimed
                     and tokens.waiting_for(workflow, r.message) and not alive(r)]
    claimed.update(taken.expired)
    return taken


def verify(conn: Connection, takens: Sequence[Taken]) -> None:
    """Under the prospects' lock, check their held rows are still the ones the step read."""
    lock(conn, (t.prospect_id for t in takens))
    now = read(conn, sorted({t.prospect_id for t in takens}))
    for taken in takens:
        if frozenset(r.id for r in now.get(taken.prospect_id, [])) != taken.seen:
            raise HeldChanged


def settle(conn: Connection, taken: Taken, instance_id: int, now: datetime) -> None:
    """Mark what the step delivered and found expired; HeldChanged if another writer did."""
    at = _db(now)
    for ids, values in ((taken.delivered, {"status": "delivered", "instance_id": instance_id}),
                        (taken.expired, {"status": "expired"})):
        if ids and conn.execute(update(RECEIPT).where(
                RECEIPT.c.id.in_(ids), RECEIPT.c.status == "held",
        ).values(**values, settled_at=at)).rowcount != len(ids):
            raise HeldChanged


def deliver_incident(conn: Connection, receipt_id: int, now: datetime) -> None:
    """Mark the receipt an incident recorded (`engine.runtime.incidents`) delivered, by the
    retry that delivers its event; HeldChanged if another writer settled it meanwhile."""
    if conn.execute(update(RECEIPT).where(
            RECEIPT.c.id == receipt_id, RECEIPT.c.status == "incident",
    ).values(status="delivered", settled_at=_db(now))).rowcount != 1:
        raise HeldChanged


def ttl_for(conn: Connection, message: str) -> str:
    """The longest `message_ttl` the latest version of each deployed map gives `message`."""
    latest = select(DEFINITION.c.process_id, func.max(DEFINITION.c.version).label("v")) \
        .group_by(DEFINITION.c.process_id).subquery()
    steps = conn.execute(select(DEFINITION.c.steps, DEFINITION.c.id).join(
        latest, (DEFINITION.c.process_id == latest.c.process_id)
        & (DEFINITION.c.version == latest.c.v))).all()
    found: list[str] = [s["message_ttl"] for doc, _ in steps for s in json.loads(doc)
             if s.get("message") == message and s.get("message_ttl")]
    if not found:
        return DEFAULT_TTL
    origin = datetime(2026, 1, 1)  # months have calendar lengths: compare from one origin
    return max(found, key=lambda ttl: duration_from(ttl, origin))


def hold(
    store: Store, receipt: dict[str, Any], needle: str, now: datetime,
) -> tuple[str, datetime | None]:
    """Hold an event nothing waits for: ("held", expiry), ("duplicate", None) when its id was
    seen, or ("waiting", None) when an instance of the prospect now waits for it."""
    prospect, message = receipt["prospect_id"], receipt["message"]

    def work(conn: Connection) -> tuple[str, datetime | None]:
        lock(conn, [prospect])
        if conn.execute(select(RECEIPT.c.id).where(
                RECEIPT.c.prospect_id == prospect, RECEIPT.c.message == message,
                RECEIPT.c.message_id == receipt["message_id"]).limit(1)).first() is not None:
            return "duplicate", None
        if conn.execute(select(INSTANCE.c.id).where(
                INSTANCE.c.prospect_id == prospect, INSTANCE.c.status == "active",
                INSTANCE.c.waiting.contains(needle, autoescape=True)).limit(1)).first():
            return "waiting", None
        expires = as_utc(now) + duration_from(ttl_for(conn, message), as_utc(now))
        conn.execute(insert(RECEIPT).values(**receipt, instance_id=0, status="held",
                                            expires_at=_db(expires)))
        return "held", expires

    return store.transaction(work)


def expire(store: Store, now: datetime) -> int:
    """Mark every held event past its expiry as expired; how many. An event is left held
    while an instance of its prospect has a timer due before the event's expiry and not yet
    fired: firing late, at its due time, it may make a catch start waiting while the event
    was alive (its step takes it, or leaves it to the `expire` after the firing)."""
    at = _db(now)
    timer_first = exists().where(
        INSTANCE.c.prospect_id == RECEIPT.c.prospect_id, INSTANCE.c.status == "active",
        INSTANCE.c.next_due_at <= at, INSTANCE.c.next_due_at < RECEIPT.c.expires_at)
    due = (RECEIPT.c.status == "held", RECEIPT.c.expires_at <= at, ~timer_first)
    if not store.select(select(RECEIPT.c.id).where(*due).limit(1)):
        return 0  # the usual case, without taking the write lock

    def work(conn: Connection) -> int:
        return int(conn.execute(update(RECEIPT).where(*due).values(
            status="expired", settled_at=at)).rowcount)

    return store.transaction(work)


def alive_for(store: Store, instance_id: int, messages: Iterable[str], moment: datetime) -> bool:
    """Whether the prospect of the instance has a held event of one of `messages` alive at
    `moment`."""
    names = sorted(set(messages))
    if not names:
        return False
    prospect = select(INSTANCE.c.prospect_id).where(INSTANCE.c.id == instance_id) \
        .scalar_subquery()
    query = select(RECEIPT.c.id).where(and_(
        RECEIPT.c.status == "held", RECEIPT.c.prospect_id == prospect,
        RECEIPT.c.message.in_(names),
        RECEIPT.c.expires_at.is_(None) | (RECEIPT.c.expires_at > _db(moment)))).limit(1)
    return bool(store.select(query))


def listed(store: Store, prospect_id: str) -> list[HeldEvent]:
    """The prospect's events that moved nothing (yet): held, expired, unmatched, or waiting
    in an incident for its retry."""
    rows = store.select(select(RECEIPT).where(
        RECEIPT.c.prospect_id == prospect_id, RECEIPT.c.status != "delivered",
    ).order_by(RECEIPT.c.received_at, RECEIPT.c.id))
    return [HeldEvent(
        r["message"], r["message_id"], r["prospect_id"], r["status"], as_utc(r["received_at"]),
        as_utc(r["expires_at"]) if r["expires_at"] else None,
        as_utc(r["settled_at"]) if r["settled_at"] else None, r["instance_id"] or None,
        json.loads(r["data"]) if r["data"] else None) for r in rows]
