"""Going back to an older catalog by deploying its file again: the older text is stored as a new
version and served from then on (it was a no-op that reported the old version "unchanged"
while the newer one stayed served). The text of the newest version again stays a no-op. And
schema 5 → 6: a database whose `catalog` table is unique per (name, content_hash) loses that
key, with every row and id kept; SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import inspect, select, update

from content_catalog import load_stored_catalog, store_catalog, stored_catalogs
from engine import ManualClock, Store
from engine.store import CATALOG, META
from engine.store.tables import SCHEMA_VERSION
from nextmove import open_engine, open_store
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
TEXT = (LIFEVANTAGE / "catalog.yaml").read_text(encoding="utf-8")
NEWER = TEXT.replace('version: "2024.1"', 'version: "2024.2"')
COLUMNS = ("id", "name", "version", "content_hash", "source_file", "source", "deployed_at")


def served(store: Store) -> str:
    return load_stored_catalog(store).version


def test_an_older_text_deployed_again_is_a_new_version_and_is_served(
        db_url: str, clock: ManualClock) -> None:
    store = open_store(db_url)
    try:
        first = store_catalog(store, TEXT, "catalog.yaml", clock=clock)
        second = store_catalog(store, NEWER, "catalog.yaml", clock=clock)
        assert (first.version, second.version, served(store)) == (1, 2, "2024.2")
        again = store_catalog(store, TEXT, "catalog.yaml", clock=clock)
        assert (again.version, again.created, served(store)) == (3, True, "2024.1")
        same = store_catalog(store, TEXT, "catalog.yaml", clock=clock)  # the newest: no-op
        assert (same.version, same.created) == (3, False)
        assert [c.content_hash for c in stored_catalogs(store)] == [
            first.content_hash, second.content_hash, first.content_hash]
    finally:
        store.dispose()


def test_deploy_reports_the_version_it_went_back_to(tmp_path: Path, clock: ManualClock) -> None:
    (tmp_path / "newer").mkdir()
    (tmp_path / "newer" / "catalog.yaml").write_text(NEWER, encoding="utf-8")
    engine = open_engine(tmp_path / "back.db", clock=clock)
    try:
        engine.deploy([LIFEVANTAGE])
        engine.deploy([tmp_path / "newer" / "catalog.yaml"])
        (back,) = engine.deploy([LIFEVANTAGE / "catalog.yaml"]).catalogs
        assert (back.version, back.created, served(engine.store)) == (3, True, "2024.1")
    finally:
        engine.store.dispose()


def _back_to_schema_5(store: Store) -> list[dict[str, Any]]:
    """Rebuild `catalog` as schema 5 had it (unique per name and text), with its rows."""
    serial = "INTEGER PRIMARY KEY" if store.is_sqlite else "SERIAL PRIMARY KEY"
    with store.write() as conn:
        rows = [dict(r) for r in conn.execute(
            select(*(CATALOG.c[c] for c in COLUMNS)).order_by(CATALOG.c.id)).mappings()]
        conn.exec_driver_sql("DROP TABLE catalog")
        conn.exec_driver_sql(
            f"CREATE TABLE catalog (id {serial}, name VARCHAR NOT NULL, "
            "version INTEGER NOT NULL, content_hash VARCHAR NOT NULL, source_file VARCHAR, "
            "source TEXT NOT NULL, deployed_at TIMESTAMP NOT NULL, "
            "UNIQUE (name, content_hash), UNIQUE (name, version))")
        conn.exec_driver_sql("CREATE INDEX ix_catalog_name ON catalog (name)")
        conn.execute(CATALOG.insert(), rows)
        if not store.is_sqlite:  # the ids were given: move the sequence past them
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('catalog', 'id'), "
                                 "(SELECT max(id) FROM catalog))")
        conn.execute(update(META).where(META.c.key == "schema_version").values(value="5"))
    return rows


def test_a_schema_5_catalog_table_loses_its_unique_text_key_and_keeps_its_rows(
        db_url: str, clock: ManualClock) -> None:
    store = open_store(db_url)
    store_catalog(store, TEXT, "catalog.yaml", clock=clock)
    store_catalog(store, NEWER, "catalog.yaml", clock=clock)
    rows = _back_to_schema_5(store)
    store.dispose()

    migrated = Store(db_url)
    try:
        prepared = migrated.prepare()
        assert (prepared.before, prepared.after) == (5, SCHEMA_VERSION) == (5, 8)
        assert prepared.migrated == (
            "catalog: an older text may be stored again as a new version",)
        with migrated.read() as conn:
            after = [dict(r) for r in conn.execute(
                select(*(CATALOG.c[c] for c in COLUMNS)).order_by(CATALOG.c.id)).mappings()]
            keys = [sorted(u["column_names"])
                    for u in inspect(conn).get_unique_constraints("catalog")]
            indexes = {ix["name"] for ix in inspect(conn).get_indexes("catalog")}
        assert after == rows  # every row, with its id
        assert keys == [["name", "version"]]
        assert "ix_catalog_name" in indexes
        back = store_catalog(migrated, TEXT, "catalog.yaml", clock=clock)
        assert (back.version, served(migrated)) == (3, "2024.1")
        again = Store(db_url)
        assert again.prepare().migrated == ()  # nothing left to do
        again.dispose()
    finally:
        migrated.dispose()
