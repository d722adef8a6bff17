"""The tamper-evident trail: each instance's step events form a hash chain, and so does the
policy log (every policy version saved, activated or rolled back to).

Every event's `chain` is sha256(previous chain + the event's canonical content) and the
instance row keeps the chain's head, all written in the step's own transaction. Editing,
deleting or reordering any event — or cutting the tail — breaks the chain where it happened.

The policy log is one chain for all hooks: each record also commits to the sha256 of the
policy document it names (`policy_hash`), so editing a stored policy version shows too, and
the one-row `policy_trail_head` keeps the head. `PolicyTrail` appends inside the caller's
write transaction after locking that row (PostgreSQL: FOR UPDATE; SQLite: the writer's BEGIN
IMMEDIATE), so concurrent policy changes queue instead of forking the chain.

The chains are unkeyed: someone who can write to the database and recompute every hash after
an edit leaves a consistent chain. What a reviewer keeps outside the database closes that gap:
the policy head and record count from a verification (see `compliance.policy_chain`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring_ascii as _quote  # what the encoder uses
from typing import Any

from sqlalchemy import Connection, insert, select, update

from engine.store.database import Store
from engine.store.schema import INSTANCE, STEP_EVENT
from engine.store.schema import POLICY_ACTIVATION as POLICY_LOG
from engine.store.schema import POLICY_TRAIL_HEAD as POLICY_HEAD

GENESIS = "0" * 64
_FIELDS = ("instance_id", "step_id", "kind", "actor", "data", "hook", "content_shown",
           "content_used", "propensity", "policy_version", "at")
_POLICY_FIELDS = ("hook", "version", "action", "reason", "policy_hash", "at")


# One encoder, made once (json.dumps with options makes a new one per call).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
# Each field's `"name":` in sorted order, for the direct path below.
_KEYS: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {
    fields: tuple((name, f"{_quote(name)}:") for name in sorted(fields))
    for fields in (_FIELDS, _POLICY_FIELDS)}


def _canonical(row: Mapping[Any, Any], fields: tuple[str, ...] = _FIELDS) -> str:
    """The row's fields as sorted, compact JSON (datetimes as naive ISO text, floats as their
    repr in a string). Written directly for the value types a row holds (a step writes two
    rows, and the encoder costs ~8 µs a row); anything else goes through the encoder, which
    writes the same text."""
    keys = _KEYS.get(fields)
    if keys is None:
        return _encoded(row, fields)
    parts = []
    for name, key in keys:
        value: Any = row.get(name)
        kind = type(value)
        if kind is str:
            parts.append(key + _quote(value))
        elif value is None:
            parts.append(key + "null")
        elif kind is int:
            parts.append(key + int.__repr__(value))
        elif kind is datetime:
            naive = value.replace(tzinfo=None)
            parts.append(f'{key}"{naive.isoformat(timespec="microseconds")}"')
        elif kind is float:
            parts.append(key + _quote(repr(value)))
        else:
            return _encoded(row, fields)
    return "{" + ",".join(parts) + "}"


def _encoded(row: Mapping[Any, Any], fields: tuple[str, ...]) -> str:
    values = {}
    for name in fields:
        value = row.get(name)
        if isinstance(value, datetime):
            value = value.replace(tzinfo=None).isoformat(timespec="microseconds")
        elif isinstance(value, float):
            value = repr(value)
        values[name] = value
    return _CANONICAL.encode(values)


def link(previous: str, row: Mapping[Any, Any]) -> str:
    return hashlib.sha256((previous + _canonical(row)).encode("utf-8")).hexdigest()


def policy_link(previous: str, row: Mapping[Any, Any]) -> str:
    """The chain of a policy log record that follows `previous`."""
    text = previous + _canonical(row, _POLICY_FIELDS)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def policy_hash(document: str) -> str:
    """The content hash a policy log record commits to: sha256 of the stored document."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


class PolicyTrail:
    """Appends to the policy log inside the caller's write transaction.

    Create it first thing in the transaction: it takes the head row's lock, so every policy
    writer queues in the same order (no deadlock with the hook rows locked later)."""

    def __init__(self, conn: Connection) -> None:
        # Imported here: the PostgreSQL dialect costs ~0.1 s of start-up on SQLite.
        from sqlalchemy.dialects import postgresql, sqlite

        self.conn = conn
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(POLICY_HEAD).values(id=1, head=GENESIS, records=0)
                     .on_conflict_do_nothing())
        self.head, self.records = conn.execute(
            select(POLICY_HEAD.c.head, POLICY_HEAD.c.records).where(POLICY_HEAD.c.id == 1)
            .with_for_update()).one()

    def append(self, *, hook: str, version: int, action: str, reason: str | None,
               document: str, at: datetime) -> str:
        """Record one policy change for the version whose stored document is `document`."""
        row: dict[str, Any] = {"hook": hook, "version": version, "action": action,
                               "reason": reason, "policy_hash": policy_hash(document), "at": at}
        row["chain"] = self.head = policy_link(self.head, row)
        self.records += 1
        self.conn.execute(insert(POLICY_LOG).values(**row))
        self.conn.execute(update(POLICY_HEAD).where(POLICY_HEAD.c.id == 1)
                          .values(head=self.head, records=self.records))
        return str(self.head)


def chain_rows(previous: str, rows: Iterable[dict[str, Any]]) -> str:
    """Set each row's `chain` in order; return the new head."""
    head = previous
    for row in rows:
        head = row["chain"] = link(head, row)
    return head


@dataclass(frozen=True)
class Break:
    """Where an instance's trail stops matching its chain."""

    instance_id: int
    event_id: int | None  # None: the events are intact but the head does not match (cut tail)
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"instance": self.instance_id, "event": self.event_id, "reason": self.reason}


def verify(store: Store, instance_ids: Iterable[int] | None = None) -> tuple[int, list[Break]]:
    """Recompute every chain; return (events checked, breaks found)."""
    heads_query = select(INSTANCE.c.id, INSTANCE.c.chain_head).order_by(INSTANCE.c.id)
    events_query = select(STEP_EVENT).order_by(STEP_EVENT.c.instance_id, STEP_EVENT.c.id)
    if instance_ids is not None:
        wanted = list(instance_ids)
        heads_query = heads_query.where(INSTANCE.c.id.in_(wanted))
        events_query = events_query.where(STEP_EVENT.c.instance_id.in_(wanted))
    breaks: list[Break] = []
    checked = 0
    with store.read() as conn:
        heads: dict[int, str | None] = {int(i): h for i, h in conn.execute(heads_query)}
        walked: dict[int, tuple[str, bool]] = {}  # instance -> (recomputed head, broken)
        for row in conn.execute(events_query).mappings():
            head, broken = walked.get(row["instance_id"], (GENESIS, False))
            checked += 1
            expected = link(head, row)
            if not broken and expected != row["chain"]:
                breaks.append(Break(row["instance_id"], row["id"],
                                    "event edited, or an event before it removed or moved"))
                broken = True
            walked[row["instance_id"]] = (row["chain"] or expected, broken)
    for instance_id, stored in heads.items():
        head, broken = walked.get(instance_id, (GENESIS, False))
        if not broken and (stored or GENESIS) != head:
            breaks.append(Break(instance_id, None, "events at the end were removed "
                                "(the chain head recorded with the instance differs)"))
    return checked, breaks
