"""A durable commit per step by default; relaxed durability only when asked for.

The setting is read back from the store's own connections (`SHOW synchronous_commit` on
PostgreSQL, `PRAGMA synchronous` on SQLite), pooled and autocommit alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from nextmove import open_engine


@pytest.mark.postgres
@pytest.mark.parametrize(("durable", "expected"), [(True, "on"), (False, "off")])
def test_postgres_synchronous_commit(pg_url: str, durable: bool, expected: str) -> None:
    engine = open_engine(pg_url, recommend=False, durable=durable)
    try:
        with engine.store.write() as conn:
            assert conn.execute(text("SHOW synchronous_commit")).scalar() == expected
        rows = engine.store.select(text("SHOW synchronous_commit"))  # autocommit connections
        assert list(rows[0].values()) == [expected]
    finally:
        engine.store.dispose()


@pytest.mark.postgres
def test_postgres_default_is_durable_on_every_new_connection(pg_url: str) -> None:
    """A relaxed store does not leak its setting into another store's connections."""
    relaxed = open_engine(pg_url, recommend=False, durable=False)
    durable = open_engine(pg_url, recommend=False)
    try:
        with relaxed.store.read() as a, durable.store.read() as b:
            assert a.execute(text("SHOW synchronous_commit")).scalar() == "off"
            assert b.execute(text("SHOW synchronous_commit")).scalar() == "on"
    finally:
        relaxed.store.dispose()
        durable.store.dispose()


@pytest.mark.parametrize(("durable", "expected"), [(True, 1), (False, 0)])
def test_sqlite_synchronous(tmp_path: Path, durable: bool, expected: int) -> None:
    engine = open_engine(tmp_path / "n.db", recommend=False, durable=durable)
    try:
        with engine.store.read() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar() == expected  # 1: NORMAL
    finally:
        engine.store.dispose()


@pytest.mark.postgres
def test_simulate_relaxed_durability_runs_on_postgres(pg_url: str) -> None:
    """The opt-in reaches the command line: a short simulation on PostgreSQL with it."""
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["simulate", "--distributors", "3", "--days", "3",
                                      "--relaxed-durability", "--db", pg_url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["distributors"] == 3
