"""Step visits recorded at write time: the rule itself, the engine writing what a replay of
its own log gives (on a simulated field force, every kind of move), and the schema migration
filling an older database with the same values, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from engine import Store
from engine.store import INSTANCE, META, STEP_EVENT
from engine.store.tables import SCHEMA_VERSION
from engine.store.visits import Visits
from nextmove import open_store
from simulator import SimulationConfig, simulate

T = datetime(2026, 1, 5, 9, 0)
H = timedelta(hours=1)


def test_a_visit_runs_from_its_arrival_else_from_the_previous_event() -> None:
    visits = Visits()
    assert visits.record("start", "completed", T) == (0, False)  # the first event: no time
    assert visits.record("add", "entered", T) == (None, None)
    assert visits.record("sale", "outcome", T + H) == (None, None)  # not a step
    assert visits.record("add", "completed", T + 2 * H) == (2 * 3_600_000, True)
    assert visits.record("gw_timer", "timer", T + 5 * H) == (3 * 3_600_000, False)
    # entered again (a loop): the new arrival opens the next visit
    visits.record("add", "entered", T + 6 * H)
    visits.record("add", "entered", T + 7 * H)
    assert visits.record("add", "skipped", T + 8 * H) == (3_600_000, True)
    assert visits.record("add", "completed", T + 9 * H) == (3_600_000, False)
    again = Visits.load(visits.dump())
    assert again == visits and Visits.load("{}") == Visits()


def _log(store: Store) -> dict[int, list[tuple[str, str, datetime, int | None, bool | None]]]:
    e = STEP_EVENT.c
    with store.read() as conn:
        rows = conn.execute(select(e.instance_id, e.step_id, e.kind, e.at, e.visit_ms, e.paired)
                            .order_by(e.instance_id, e.id)).all()
    out: dict[int, list[tuple[str, str, datetime, int | None, bool | None]]] = {}
    for iid, step, kind, at, ms, paired in rows:
        out.setdefault(iid, []).append(
            (step, kind, at, ms, None if paired is None else bool(paired)))
    return out


def _states(store: Store) -> dict[int, Visits]:
    with store.read() as conn:
        return {iid: Visits.load(doc) for iid, doc in conn.execute(
            select(INSTANCE.c.id, INSTANCE.c.visits).where(INSTANCE.c.status == "active"))}


@pytest.fixture
def field_force(db_url: str) -> Store:
    """A small simulated field force on the real engine: person's steps, skips and
    variations, timers, boundary timers, prospect events, outcomes, finished journeys."""
    store = open_store(db_url)
    simulate(store, SimulationConfig(distributors=4, days=14, seed=5))
    return store


def test_the_engine_writes_what_a_replay_of_its_log_gives(field_force: Store) -> None:
    log, states = _log(field_force), _states(field_force)
    kinds = {row[1] for rows in log.values() for row in rows}
    assert {"entered", "completed", "skipped", "timer", "message", "outcome"} <= kinds
    paired = unpaired = 0
    for iid, rows in log.items():
        replay = Visits()
        for step, kind, at, ms, is_paired in rows:
            assert replay.record(step, kind, at) == (ms, is_paired), (iid, step, kind)
            paired += bool(is_paired)
            unpaired += is_paired is False
        if iid in states:  # what the next step starts from
            assert states[iid] == replay, iid
    assert paired > 50 and unpaired > 50
    field_force.dispose()


def test_an_older_database_gets_visits_filled_in_as_the_engine_writes_them(
    field_force: Store, db_url: str
) -> None:
    before, states = _log(field_force), _states(field_force)
    meta = META
    with field_force.write() as conn:  # back to schema 2: no visit columns, the old index
        conn.exec_driver_sql("DROP INDEX ix_step_event_visit")
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_step_event_visit_ms")  # SQLite's
        for table, column in (("step_event", "visit_ms"), ("step_event", "paired"),
                              ("instance", "visits")):
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.exec_driver_sql("CREATE INDEX ix_step_event_instance_step ON step_event "
                             "(instance_id, step_id, id, kind, at)")
        conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="2"))
    field_force.dispose()
    migrated = open_store(db_url)
    assert _log(migrated) == before
    assert _states(migrated) == states
    with migrated.read() as conn:
        assert conn.execute(select(meta.c.value).where(
            meta.c.key == "schema_version")).scalar() == str(SCHEMA_VERSION)
        names = {r[0] for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index'" if migrated.is_sqlite else
            "SELECT indexname FROM pg_indexes WHERE tablename = 'step_event'")}
    assert "ix_step_event_visit" in names and "ix_step_event_instance_step" not in names
    migrated.dispose()


def test_a_kept_instance_hands_each_step_a_copy_of_its_parsed_visits() -> None:
    """A hot instance keeps the visit state its last write stored, parsed; a step records
    into a copy, so a step that is not written leaves the kept state as the row has it."""
    from engine.runtime._hot import Hot

    stored = Visits({"add": T}, T)
    header = {"visits": stored.dump()}
    kept = Hot(header, lambda: None, [], {}, visits=Visits.load(header["visits"]))  # type: ignore[arg-type, return-value]
    mine = kept.visits()
    assert mine == stored == Visits.load(header["visits"])
    mine.record("add", "completed", T + H)  # a step that then fails to write
    assert kept.visits() == stored
    assert Hot(header, lambda: None, [], {}).visits() == stored  # type: ignore[arg-type, return-value]
