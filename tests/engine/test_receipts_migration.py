"""Schema 3 → 4: message receipts get a status and ids unique per (prospect, message).

Like the schema 2 → 3 test (test_visits.py), a database made by this nextmove is taken back
to the older schema (here: `message_receipt` as schema 3 wrote it, with its global unique key
on (message_id, instance_id)) and opened again; SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from engine import Engine, ManualClock, Store
from engine.store import MESSAGE_RECEIPT, META
from engine.store.tables import SCHEMA_VERSION
from nextmove import open_engine
from tests.conftest import FIXTURES

COLUMNS = ("id", "message_id", "message", "prospect_id", "instance_id", "data", "received_at")


def _back_to_schema_3(store: Store) -> list[dict[str, Any]]:
    """Rebuild `message_receipt` as schema 3 had it, with its rows; the rows."""
    serial = "INTEGER PRIMARY KEY" if store.is_sqlite else "SERIAL PRIMARY KEY"
    with store.write() as conn:
        rows = [dict(r) for r in conn.execute(
            select(*(MESSAGE_RECEIPT.c[c] for c in COLUMNS)).order_by(MESSAGE_RECEIPT.c.id)
        ).mappings()]
        conn.exec_driver_sql("DROP TABLE message_receipt")
        conn.exec_driver_sql(
            f"CREATE TABLE message_receipt (id {serial}, message_id VARCHAR NOT NULL, "
            "message VARCHAR NOT NULL, prospect_id VARCHAR NOT NULL, "
            "instance_id INTEGER NOT NULL, data TEXT, received_at TIMESTAMP NOT NULL, "
            "UNIQUE (message_id, instance_id))")
        conn.exec_driver_sql("CREATE INDEX ix_message_receipt_prospect "
                             "ON message_receipt (prospect_id, message)")
        for row in rows:
            conn.exec_driver_sql(
                "INSERT INTO message_receipt (id, message_id, message, prospect_id, instance_id, "
                "data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)" if store.is_sqlite else
                "INSERT INTO message_receipt (id, message_id, message, prospect_id, instance_id, "
                "data, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                tuple(row[c] if c != "received_at" else
                      row[c].isoformat(sep=" ") if store.is_sqlite else row[c] for c in COLUMNS))
        conn.execute(update(META).where(META.c.key == "schema_version").values(value="3"))
    return rows


def test_receipts_of_a_schema_3_database_keep_their_rows_and_ids_become_per_prospect(
    db_url: str, clock: ManualClock
) -> None:
    engine = open_engine(db_url, clock=clock, recommend=False)
    engine.deploy([FIXTURES / "events"])
    a = engine.start("wait_for_form", "a", "d1")
    b = engine.start("wait_for_form", "b", "d1")
    engine.signal("form_submitted", "a", message_id="evt-1", data={"page": 2})
    engine.signal("video_played", "a", message_id="evt-2")  # moved nothing: schema 3 kept it
    rows = _back_to_schema_3(engine.store)
    engine.store.dispose()

    migrated: Engine = open_engine(db_url, clock=clock, recommend=False)
    with migrated.store.read() as conn:
        assert conn.execute(select(META.c.value).where(
            META.c.key == "schema_version")).scalar() == str(SCHEMA_VERSION) == "8"
        after = [dict(r) for r in conn.execute(select(MESSAGE_RECEIPT).order_by(
            MESSAGE_RECEIPT.c.id)).mappings()]
    assert [{c: r[c] for c in COLUMNS} for r in after] == rows  # every row, with its id
    assert [(r["message_id"], r["instance_id"], r["status"], r["expires_at"]) for r in after] == [
        ("evt-1", a.id, "delivered", None), ("evt-2", 0, "unmatched", None)]

    # an id used for prospect a is no longer taken for prospect b
    assert migrated.signal("form_submitted", "b", message_id="evt-1").delivered == (b.id,)
    assert migrated.signal("form_submitted", "a", message_id="evt-1").duplicate
    assert [(e.message_id, e.status) for e in migrated.show(a.id).held] == [
        ("evt-2", "unmatched")]  # recorded before events were held: listed, not delivered
    assert migrated.signal("video_played", "a", message_id="evt-2").duplicate
    assert migrated.signal("video_played", "a", message_id="evt-3").held
    # held for b under the id a's unmatched row has: the old key (message_id, instance 0)
    # would refuse it
    assert migrated.signal("video_played", "b", message_id="evt-2").held
    migrated.store.dispose()
