"""Cards are paged in the order they came due (`instance.card_due_at`), a step flagged stuck
included after its timer fired; a schema-7 database gets the column filled from the waiting
index when it is opened. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from engine import ManualClock, ProspectRef, Store
from engine.store.schema import INSTANCE
from engine.store.tables import SCHEMA_VERSION, MetaRow
from nextmove import open_engine
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"


def test_a_schema_7_database_gets_each_active_instances_card_due_time(
        db_url: str, clock: ManualClock) -> None:
    engine = open_engine(db_url, clock=clock, recommend=False)
    engine.deploy([LIFEVANTAGE])
    t0 = clock.now()
    engine.start("prospect_journey", "ann", "D")  # no timer: no due time
    ben = engine.start("prospect_journey", "ben", "D").id
    engine.complete(ben, "add_contact")  # share_intro, stuck after five days
    clock.set(t0 + timedelta(days=5, hours=1))
    assert [f.prospect_id for f in engine.tick()] == ["ben"]  # flagged stuck, timer gone
    stuck_since = clock.now()
    with engine.store.read() as conn:
        before = dict(conn.execute(select(INSTANCE.c.prospect_id, INSTANCE.c.card_due_at)).all())
    assert before == {"ann": None, "ben": stuck_since.replace(tzinfo=None)}
    meta = MetaRow.__table__  # type: ignore[attr-defined]
    with engine.store.write() as conn:  # back to schema 7
        conn.exec_driver_sql("ALTER TABLE instance DROP COLUMN card_due_at")
        conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="7"))
    engine.store.dispose()

    store = Store(db_url)
    prepared = store.prepare()
    assert (prepared.before, prepared.after) == (7, SCHEMA_VERSION) == (7, 8)
    assert prepared.migrated == ("instance: card_due_at",)
    with store.read() as conn:
        after = dict(conn.execute(select(INSTANCE.c.prospect_id, INSTANCE.c.card_due_at)).all())
    store.dispose()
    assert after == before
    again = open_engine(db_url, clock=clock, recommend=False)
    page, _ = again.cards_page("D", size=1)
    assert [c.prospect_id for c in page] == ["ben"]
    again.complete(ProspectRef("ben"), "share_intro")  # moved on: the flag goes with it
    with again.store.read() as conn:
        ben_due = conn.execute(select(INSTANCE.c.card_due_at).where(
            INSTANCE.c.prospect_id == "ben")).scalar()
    assert ben_due is None or ben_due > stuck_since.replace(tzinfo=None)
    again.store.dispose()
