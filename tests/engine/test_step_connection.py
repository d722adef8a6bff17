"""SQLite steps are written on each thread's own connection, kept out of the pool: made with
the pool's settings (durability included), one per thread, closed by `Store.dispose`."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from nextmove import open_engine

LINEAR = Path(__file__).resolve().parents[1] / "fixtures" / "bpmn" / "linear10.bpmn"


@pytest.mark.parametrize(("durable", "synchronous"), [(True, 1), (False, 0)])
def test_the_step_connection_has_the_pools_settings(
    tmp_path: Path, durable: bool, synchronous: int,
) -> None:
    engine = open_engine(tmp_path / "n.db", recommend=False, durable=durable)
    try:
        conn = engine.store.step_connection()
        assert conn is not None
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == synchronous  # 1: NORMAL
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
        assert conn.isolation_level is None  # the writer issues BEGIN IMMEDIATE itself
        assert engine.store.step_connection() is conn  # kept for the thread
    finally:
        engine.store.dispose()


def test_steps_use_the_threads_own_connection_and_dispose_closes_it(tmp_path: Path) -> None:
    engine = open_engine(tmp_path / "n.db", recommend=False)
    engine.deploy([LINEAR])
    started = engine.start("prospect_linear", "p1", "d1")
    mine = engine.store.step_connection()
    theirs: list[sqlite3.Connection | None] = []
    worker = threading.Thread(target=lambda: theirs.append(engine.store.step_connection()))
    worker.start()
    worker.join()
    assert theirs[0] is not None and theirs[0] is not mine
    before = mine.total_changes  # type: ignore[union-attr]
    moved = engine.complete(started.id, "add_contact")
    assert mine.total_changes > before  # type: ignore[union-attr]  # the step went there
    assert moved.version == started.version + 1
    engine.store.dispose()
    for conn in (mine, theirs[0]):
        with pytest.raises(sqlite3.ProgrammingError):  # closed
            conn.execute("SELECT 1")  # type: ignore[union-attr]
    # A store used after dispose makes a new one, and the step is there.
    assert engine.store.step_connection() is not mine
    assert engine.get(started.id).version == started.version + 1
    engine.store.dispose()


def test_an_in_memory_database_has_no_step_connection() -> None:
    """Its pool hands every user the one connection that holds the data."""
    engine = open_engine("sqlite://", recommend=False)
    try:
        assert engine.store.step_connection() is None
        engine.deploy([LINEAR])
        started = engine.start("prospect_linear", "p1", "d1")
        assert engine.complete(started.id, "add_contact").version == started.version + 1
    finally:
        engine.store.dispose()


def test_a_threads_step_connection_is_closed_when_the_thread_ends(tmp_path: Path) -> None:
    """A server's thread pool lets idle threads go and makes new ones: each thread's step
    connection must go with it, not pile up open until the store is disposed."""
    engine = open_engine(tmp_path / "n.db", recommend=False)
    engine.deploy([LINEAR])
    started = [engine.start("prospect_linear", f"p{i}", "d1") for i in range(5)]
    used: list[sqlite3.Connection | None] = []

    def step(instance_id: int) -> None:
        engine.complete(instance_id, "add_contact")
        used.append(engine.store.step_connection())

    try:
        for instance in started:  # one short-lived thread per step
            worker = threading.Thread(target=step, args=(instance.id,))
            worker.start()
            worker.join()
        assert len({id(c) for c in used}) == len(started) and None not in used
        for conn in used:
            with pytest.raises(sqlite3.ProgrammingError):  # closed with its thread
                conn.execute("SELECT 1")  # type: ignore[union-attr]
        assert len(engine.store._owned) == 0
        assert all(engine.get(s.id).version == s.version + 1 for s in started)
    finally:
        engine.store.dispose()
