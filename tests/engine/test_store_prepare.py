"""Opening a database: `Store` connects to nothing, `prepare` creates or upgrades the schema
(saying so, with progress) and refuses a database that is not nextmove's without writing to it,
on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text, update

from engine import ManualClock, Store, StoreError
from engine.store.tables import SCHEMA_VERSION, MetaRow
from nextmove import open_engine
from tests.conftest import PG_ADMIN_URL, REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"


def test_making_a_store_touches_nothing(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "later.db"))
    assert store.is_sqlite
    store.dispose()
    assert list(tmp_path.iterdir()) == []


def test_prepare_creates_the_schema_once(db_url: str, tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    if db_url.startswith("sqlite"):
        db_url = f"sqlite:///{tmp_path / 'new.db'}"  # the conftest's PostgreSQL is prepared
    store = Store(db_url)
    with caplog.at_level(logging.INFO, logger="nextmove.store"):
        first = store.prepare()
        again = store.prepare()
    store.dispose()
    assert again.before == again.after == SCHEMA_VERSION
    assert not again.upgraded and not again.created and again.migrated == ()
    if db_url.startswith("sqlite"):
        assert first.created and first.before is None
        assert [r.getMessage() for r in caplog.records] == [
            f"created nextmove schema {SCHEMA_VERSION} in {db_url}"]


def test_an_older_database_is_upgraded_saying_so_with_progress(
    db_url: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_engine(db_url, clock=clock, recommend=False)
    engine.deploy([LIFEVANTAGE])
    for n in range(3):
        engine.start("prospect_journey", f"p{n}", "d1", {"market": "US"})
    meta = MetaRow.__table__  # type: ignore[attr-defined]
    with engine.store.write() as conn:  # back to schema 2, as test_visits does
        conn.exec_driver_sql("DROP INDEX ix_step_event_visit")
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_step_event_visit_ms")  # SQLite's
        for table, column in (("step_event", "visit_ms"), ("step_event", "paired"),
                              ("instance", "visits")):
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute(update(meta).where(meta.c.key == "schema_version").values(value="2"))
    engine.store.dispose()

    heard: list[tuple[str, int, int]] = []
    store = Store(db_url)
    with caplog.at_level(logging.INFO, logger="nextmove.store"):
        prepared = store.prepare(progress=lambda *args: heard.append(args))
    store.dispose()
    assert (prepared.before, prepared.after, prepared.upgraded) == (2, SCHEMA_VERSION, True)
    assert prepared.migrated == ("step_event: visit_ms, paired", "instance: visits")
    assert "ix_step_event_visit" in prepared.indexes
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"from schema 2 to {SCHEMA_VERSION}" in w for w in warnings), warnings
    assert heard[0] == ("step visits of the log", 0, 1)
    assert ("step visits of the log", 1, 1) in heard
    assert heard[-1] == ("visits of active instances", 3, 3)


def test_a_newer_database_is_refused(db_url: str) -> None:
    store = Store(db_url)
    store.prepare()
    meta = MetaRow.__table__  # type: ignore[attr-defined]
    with store.write() as conn:
        conn.execute(update(meta).where(meta.c.key == "schema_version")
                     .values(value=str(SCHEMA_VERSION + 1)))
    with pytest.raises(StoreError, match=f"version {SCHEMA_VERSION + 1} is newer"):
        store.prepare()
    store.dispose()


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_foreign_sqlite_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customer (name) VALUES ('Ana')")
    conn.close()
    before = _files(tmp_path)
    store = Store(str(path))
    with pytest.raises(StoreError, match="crm.db is not a nextmove database .*customer"):
        store.prepare()
    store.dispose()
    assert _files(tmp_path) == before  # no table, no WAL switch, no -wal or -shm file
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


def test_a_file_that_is_not_a_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 200)
    before = _files(tmp_path)
    with pytest.raises(StoreError, match="notes.db is not a nextmove database"):
        Store(str(path)).prepare()
    assert _files(tmp_path) == before


@pytest.fixture
def empty_pg() -> Iterator[str]:
    """A PostgreSQL database with nothing in it (not the conftest's schema template)."""
    name = f"nextmove_empty_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _pg_tables(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        names = conn.execute(text("SELECT tablename FROM pg_tables "
                                  "WHERE schemaname = current_schema() ORDER BY 1")).scalars()
        found = list(names)
    engine.dispose()
    return found


@pytest.mark.postgres
def test_a_foreign_postgres_schema_is_refused_before_any_table(empty_pg: str) -> None:
    engine = create_engine(empty_pg)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE customer (id SERIAL PRIMARY KEY, name TEXT)"))
    engine.dispose()
    store = Store(empty_pg)
    with pytest.raises(StoreError, match="is not a nextmove database .*customer"):
        store.prepare()
    store.dispose()
    assert _pg_tables(empty_pg) == ["customer"]


@pytest.mark.postgres
def test_an_empty_postgres_database_gets_the_schema(empty_pg: str) -> None:
    store = Store(empty_pg)
    assert store.prepare().created
    store.dispose()
    assert "nextmove_meta" in _pg_tables(empty_pg)
