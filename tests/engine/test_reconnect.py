"""Connections are not pinged before use: work on a connection the server dropped is redone
once on a fresh one (PostgreSQL; a restart or an idle timeout does this in production)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from engine import Engine, ManualClock
from engine.store import trail
from nextmove import open_store
from tests.conftest import PG_ADMIN_URL

LINEAR = Path(__file__).resolve().parents[1] / "fixtures" / "bpmn" / "linear10.bpmn"

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_engine(pg_url: str, clock: ManualClock) -> Iterator[Engine]:
    engine = Engine(open_store(pg_url), clock=clock)
    yield engine
    engine.store.dispose()


def drop_connections(url: str) -> int:
    """What a server restart does to the engine's pooled connections."""
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name}).all())
    finally:
        admin.dispose()


def test_a_step_after_the_server_dropped_the_connections(pg_engine: Engine) -> None:
    pg_engine.deploy([LINEAR])
    instance = pg_engine.start("prospect_linear", "p1", "d1")
    instance = pg_engine.complete(instance.id, "add_contact")  # the step's own connection
    assert drop_connections(pg_engine.store.url) >= 1

    moved = pg_engine.complete(instance.id, "send_invite")  # a hot instance: the step write

    assert (moved.version, moved.waiting_steps) == (3, ["share_video"])
    assert drop_connections(pg_engine.store.url) >= 1
    pg_engine.forget()  # cold: the step first reads the state
    assert pg_engine.complete(instance.id, "share_video").version == 4
    assert drop_connections(pg_engine.store.url) >= 1
    done = [e.step_id for e in pg_engine.history(instance.id) if e.kind == "completed"]
    assert done[-3:] == ["add_contact", "send_invite", "share_video"]
    assert trail.verify(pg_engine.store)[1] == []


def test_reads_and_starts_after_the_server_dropped_the_connections(pg_engine: Engine) -> None:
    pg_engine.deploy([LINEAR])
    instance = pg_engine.start("prospect_linear", "p1", "d1")
    assert drop_connections(pg_engine.store.url) >= 1
    assert pg_engine.get(instance.id).version == 1
    assert drop_connections(pg_engine.store.url) >= 1
    assert [c.prospect_id for c in pg_engine.cards("d1")] == ["p1"]
    assert drop_connections(pg_engine.store.url) >= 1
    assert pg_engine.start("prospect_linear", "p2", "d1").version == 1
    assert drop_connections(pg_engine.store.url) >= 1
    assert pg_engine.tick() == []


def test_single_steps_reuse_the_pooled_connections_cursor(pg_engine: Engine) -> None:
    """psycopg keeps a cursor's adaptation context while one statement is executed on it
    again (cheaper parameter dumping); a dropped connection's cursor is not reused."""
    pg_engine.deploy([LINEAR])
    instance = pg_engine.start("prospect_linear", "p1", "d1")
    pg_engine.complete(instance.id, "add_contact")
    with pg_engine.store.autocommit_engine.connect() as conn:
        kept = conn.connection.info["nextmove_step_cursor"]
    pg_engine.complete(instance.id, "send_invite")
    with pg_engine.store.autocommit_engine.connect() as conn:
        assert conn.connection.info["nextmove_step_cursor"] is kept
    assert drop_connections(pg_engine.store.url) >= 1
    assert pg_engine.complete(instance.id, "share_video").version == 4
    with pg_engine.store.autocommit_engine.connect() as conn:
        assert conn.connection.info["nextmove_step_cursor"] is not kept


def test_a_step_hands_its_connection_back_out_of_autocommit(pg_engine: Engine) -> None:
    """The step statement runs in autocommit mode on the pool's own connection; after it,
    written or refused, the connection is back to transactions: work that fails in a
    transaction on it is rolled back whole."""
    from engine import NextmoveError

    def back_to_transactions() -> None:
        raw = pg_engine.store.engine.raw_connection()
        try:
            assert raw.driver_connection.autocommit is False
        finally:
            raw.close()

        def half(conn: Any) -> None:
            conn.execute(text("UPDATE instance SET status = 'broken' WHERE id = :id"),
                         {"id": instance.id})
            raise RuntimeError("after the first statement")

        with pytest.raises(RuntimeError):
            pg_engine.store.transaction(half)
        assert pg_engine.get(instance.id).status == "active"

    pg_engine.deploy([LINEAR])
    instance = pg_engine.start("prospect_linear", "p1", "d1")
    pg_engine.complete(instance.id, "add_contact")
    back_to_transactions()
    stale = pg_engine.pipeline._hot.pop(instance.id)  # waits at send_invite
    pg_engine.complete(instance.id, "send_invite")
    pg_engine.pipeline.remember(instance.id, stale)
    # written from the stale copy: the version check refuses it, then the fresh state has
    # moved past the step
    with pytest.raises(NextmoveError):
        pg_engine.complete(instance.id, "send_invite")
    back_to_transactions()
    assert pg_engine.get(instance.id).version == 3
