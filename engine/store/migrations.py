"""Bring a database made by an earlier nextmove up to this schema, in one transaction.

Each migration checks for what it adds, so running them on a current database does nothing.

* Schema 3: step visits recorded at write time (`engine.store.visits`). Adds
  `step_event.visit_ms` and `paired` and fills them in one UPDATE (window functions over each
  instance's events), adds `instance.visits` and fills it for active instances by replaying
  their events, and drops the index the analytics used before (`ix_step_event_visit`, which
  covers the new columns, is created by `Store` like any other index new in a release).
  At a million instances and nine million events this takes about two minutes on SQLite.
* Schema 4: held prospect events (`engine.runtime.held`). `message_receipt` gets `status`,
  `expires_at` and `settled_at`; its unique key becomes (prospect, message, message id,
  instance), so an id is unique per prospect and message instead of globally. Rows that
  moved nothing (instance 0) become `unmatched`: they were recorded before events were held
  and are not delivered now. SQLite cannot drop a unique constraint, so there the table is
  rebuilt (copying every row with its id); PostgreSQL swaps the constraint in place.
* Schema 5: reviewers' sign-offs of audit findings (`compliance.signoff`). A new table,
  `signoff`, which `Store` creates like any new table; no existing data changes.
* Schema 6: a catalog's older text deployed again is stored as a new version, the one
  served from then on (it was a no-op that left the newer version served), so `catalog` loses
  its unique key on (name, content_hash). SQLite rebuilds the table (copying every row with
  its id); PostgreSQL drops the constraint.
* Schema 7: retired processes (`Engine.retire`). A new table, `retirement`, which `Store`
  creates like any new table; no existing data changes.
* Schema 8: cards paged most urgent first, stuck steps included. `instance.card_due_at` (when
  the instance's cards came or come due) is added and filled for active instances from their
  waiting index, a chunk at a time; finished instances have no cards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, inspect, select, update

from engine.store.kinds import CLOSING_KINDS, VISIT_KINDS
from engine.store.schema import CATALOG, INSTANCE, MESSAGE_RECEIPT, STEP_EVENT
from engine.store.visits import Visits

# Indexes a later release replaced: dropped whenever a database is opened (`Store.prepare`,
# which reports them in `Prepared.dropped`), upgraded or not.
OBSOLETE_INDEXES = {"step_event": ("ix_step_event_instance_step",),
                    "instance": ("ix_instance_process_status",)}
_CHUNK = 10_000
_EVENT_VISITS = "step visits of the log"
_INSTANCE_VISITS = "visits of active instances"
_CARD_DUE = "when active instances' cards are due"

log = logging.getLogger("nextmove.store")
Progress = Callable[[str, int, int], None]  # (what, done, total)


def migrate(conn: Connection, progress: Progress | None = None) -> list[str]:
    """Apply what the database lacks; what was done, one line each. `progress` hears of each
    long step as it goes (the instances' visits a chunk at a time)."""
    report = progress or _quiet
    done: list[str] = []
    found = inspect(conn)
    events = {c["name"] for c in found.get_columns("step_event")}
    if "visit_ms" not in events:
        log.warning("adding step visits to the step log (once; large logs take minutes)")
        conn.exec_driver_sql("ALTER TABLE step_event ADD COLUMN visit_ms BIGINT")
        conn.exec_driver_sql("ALTER TABLE step_event ADD COLUMN paired BOOLEAN")
        report(_EVENT_VISITS, 0, 1)
        conn.exec_driver_sql(_backfill_events(conn.dialect.name))
        report(_EVENT_VISITS, 1, 1)
        done.append("step_event: visit_ms, paired")
    instance = {c["name"] for c in found.get_columns("instance")}
    if "visits" not in instance:
        conn.exec_driver_sql("ALTER TABLE instance ADD COLUMN visits TEXT NOT NULL DEFAULT '{}'")
        _backfill_instances(conn, report)
        done.append("instance: visits")
    if "card_due_at" not in instance:
        kind = "DATETIME" if conn.dialect.name == "sqlite" else "TIMESTAMP WITHOUT TIME ZONE"
        conn.exec_driver_sql(f"ALTER TABLE instance ADD COLUMN card_due_at {kind}")
        _backfill_card_due(conn, report)
        done.append("instance: card_due_at")
    if "status" not in {c["name"] for c in found.get_columns("message_receipt")}:
        _receipts_per_prospect(conn)
        done.append("message_receipt: status, expires_at, settled_at; ids per prospect")
    if _drop_catalog_text_key(conn):
        done.append("catalog: an older text may be stored again as a new version")
    return done


_CATALOG_COLUMNS = "id, name, version, content_hash, source_file, source, deployed_at"


def _drop_catalog_text_key(conn: Connection) -> bool:
    """Drop the schema-5 unique key on catalog (name, content_hash), if it is there."""
    keys = [u for u in inspect(conn).get_unique_constraints("catalog")
            if sorted(u["column_names"]) == ["content_hash", "name"]]
    if not keys:
        return False
    if conn.dialect.name != "sqlite":
        for key in keys:
            conn.exec_driver_sql(f'ALTER TABLE catalog DROP CONSTRAINT "{key["name"]}"')
        return True
    # SQLite cannot drop a constraint: the table is made again (no other table refers to it)
    conn.exec_driver_sql("ALTER TABLE catalog RENAME TO catalog_v5")
    for index in inspect(conn).get_indexes("catalog_v5"):
        conn.exec_driver_sql(f"DROP INDEX {index['name']}")  # their names are taken again
    CATALOG.create(conn)
    conn.exec_driver_sql(f"INSERT INTO catalog ({_CATALOG_COLUMNS}) "
                         f"SELECT {_CATALOG_COLUMNS} FROM catalog_v5 ORDER BY id")
    conn.exec_driver_sql("DROP TABLE catalog_v5")
    return True


_RECEIPT_V3 = "message_id, message, prospect_id, instance_id, data, received_at"


def _receipts_per_prospect(conn: Connection) -> None:
    status = "CASE WHEN instance_id = 0 THEN 'unmatched' ELSE 'delivered' END"
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("ALTER TABLE message_receipt RENAME TO message_receipt_v3")
        for index in inspect(conn).get_indexes("message_receipt_v3"):
            conn.exec_driver_sql(f"DROP INDEX {index['name']}")  # their names are taken again
        MESSAGE_RECEIPT.create(conn)
        conn.exec_driver_sql(
            f"INSERT INTO message_receipt (id, {_RECEIPT_V3}, status) "
            f"SELECT id, {_RECEIPT_V3}, {status} FROM message_receipt_v3 ORDER BY id")
        conn.exec_driver_sql("DROP TABLE message_receipt_v3")
        return
    for unique in inspect(conn).get_unique_constraints("message_receipt"):
        conn.exec_driver_sql(f'ALTER TABLE message_receipt DROP CONSTRAINT "{unique["name"]}"')
    conn.exec_driver_sql("ALTER TABLE message_receipt "
                         "ADD COLUMN status TEXT NOT NULL DEFAULT 'delivered'")
    conn.exec_driver_sql("ALTER TABLE message_receipt ADD COLUMN expires_at TIMESTAMP")
    conn.exec_driver_sql("ALTER TABLE message_receipt ADD COLUMN settled_at TIMESTAMP")
    conn.exec_driver_sql(f"UPDATE message_receipt SET status = {status}")
    conn.exec_driver_sql("ALTER TABLE message_receipt ADD CONSTRAINT uq_message_receipt_event "
                         "UNIQUE (prospect_id, message, message_id, instance_id)")


def _backfill_events(dialect: str) -> str:
    """One UPDATE giving every closing event its visit, the rule of `Visits.record`: paired
    when the event before it at its step was `entered`; the time from that event, else from
    the instance's previous event, else 0."""
    kinds, closing = _sql_list(VISIT_KINDS), _sql_list(CLOSING_KINDS)
    began = "coalesce(CASE WHEN pk = 'entered' THEN pat END, before, at)"
    if dialect == "sqlite":
        ms = f"CAST(round((julianday(at) - julianday({began})) * 86400000.0) AS INTEGER)"
        paired = "coalesce(pk = 'entered', 0)"
    else:
        ms = f"CAST(round(extract(epoch FROM at - {began}) * 1000) AS BIGINT)"
        paired = "coalesce(pk = 'entered', false)"
    return (
        f"UPDATE step_event SET visit_ms = v.ms, paired = v.paired FROM ("
        f"SELECT id, {ms} AS ms, {paired} AS paired FROM ("
        "SELECT id, kind, at, "
        "lag(kind) OVER (PARTITION BY instance_id, step_id ORDER BY id) AS pk, "
        "lag(at) OVER (PARTITION BY instance_id, step_id ORDER BY id) AS pat, "
        "lag(at) OVER (PARTITION BY instance_id ORDER BY id) AS before "
        f"FROM step_event WHERE kind IN {kinds}) AS x WHERE kind IN {closing}) AS v "
        "WHERE step_event.id = v.id"
    )


def _backfill_instances(conn: Connection, report: Progress) -> None:
    """Active instances get their visit state by replaying their events (finished ones
    take no more steps)."""
    def visits_of(ids: list[int]) -> dict[int, Any]:
        states: dict[int, Visits] = {iid: Visits() for iid in ids}
        events = (select(STEP_EVENT.c.instance_id, STEP_EVENT.c.step_id, STEP_EVENT.c.kind,
                         STEP_EVENT.c.at)
                  .where(STEP_EVENT.c.instance_id.in_(ids), STEP_EVENT.c.kind.in_(VISIT_KINDS))
                  .order_by(STEP_EVENT.c.instance_id, STEP_EVENT.c.id))
        for iid, step_id, kind, at in conn.execute(events):
            states[iid].record(step_id, kind, at.replace(tzinfo=None))
        return {iid: v.dump() for iid, v in states.items()}

    _fill_active(conn, report, _INSTANCE_VISITS, "visits", visits_of)


def _backfill_card_due(conn: Connection, report: Progress) -> None:
    """Active instances get `card_due_at` from their waiting index."""
    def due_of(ids: list[int]) -> dict[int, Any]:
        rows = conn.execute(select(INSTANCE.c.id, INSTANCE.c.waiting)
                            .where(INSTANCE.c.id.in_(ids)))
        return {iid: _card_due(waiting) for iid, waiting in rows}

    _fill_active(conn, report, _CARD_DUE, "card_due_at", due_of)


def _fill_active(conn: Connection, report: Progress, what: str, column: str,
                 values_of: Callable[[list[int]], dict[int, Any]]) -> None:
    """Set `column` of every active instance to `values_of(ids)[id]`, a chunk of ids at a
    time (finished instances take no more steps), reporting progress as `what`."""
    active = conn.execute(select(INSTANCE.c.id).where(INSTANCE.c.status == "active")
                          .order_by(INSTANCE.c.id)).scalars().all()
    write = (update(INSTANCE).where(INSTANCE.c.id == bindparam("iid"))
             .values({column: bindparam("value")}))
    report(what, 0, len(active))
    for start in range(0, len(active), _CHUNK):
        ids = list(active[start:start + _CHUNK])
        conn.execute(write, [{"iid": iid, "value": value}
                             for iid, value in values_of(ids).items()])
        report(what, start + len(ids), len(active))


def _card_due(waiting: str) -> datetime | None:
    """The rule of `engine.runtime._step_rows.card_due_at`, on the stored waiting index: the
    earliest timer due or person's step flagged stuck (naive UTC)."""
    moments = [datetime.fromisoformat(w[key]) for w in json.loads(waiting)
               for key in ("due_at", "stuck_since")
               if w.get(key) and (key == "due_at" or w.get("kind") == "user")]
    aware = [m if m.tzinfo else m.replace(tzinfo=UTC) for m in moments]
    return min(aware).astimezone(UTC).replace(tzinfo=None) if aware else None


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _quiet(what: str, done: int, total: int) -> None:
    pass
