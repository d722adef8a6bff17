"""Starts on SQLite go to sqlite3 directly (`engine.runtime._start.insert_started`): the rows
they store are, value for value and type for type, what SQLAlchemy's own insert of the same
values stores, with the ids SQLite would have given."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from engine import ManualClock
from engine.runtime import NewProspect
from engine.runtime._first_wait import uuid4_texts
from engine.store import DEFINITION, INSTANCE, STEP_EVENT, trail
from nextmove import open_engine, open_store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# linear10 starts from its cached first wait; all_kinds (a timer, a call) the normal way.
MAPS = [[FIXTURES / "bpmn" / "linear10.bpmn"],
        [FIXTURES / "yaml" / "all_kinds.yaml", FIXTURES / "yaml" / "helper_process.yaml"]]


def raw_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        picked = ", ".join(f"{c}, typeof({c})" for c in columns)
        return conn.execute(f"SELECT {picked} FROM {table} ORDER BY id").fetchall()
    finally:
        conn.close()


def test_started_rows_are_what_sqlalchemy_stores(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    engine = open_engine(f"sqlite:///{tmp_path / 'a.db'}", clock=clock, recommend=False)
    copy = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        for paths in MAPS:
            process = engine.deploy(paths)[0].process_id  # the first file's
            engine.start_many(process, [NewProspect(f"{process}-{i}", "d1",
                                                    {"n": i, "x": {"y": [i]}})
                                        for i in range(3)])
            engine.start(process, f"{process}-one", "d2", {})
        with engine.store.read() as source, copy.write() as target:
            for table in (DEFINITION, INSTANCE, STEP_EVENT):  # typed values, re-inserted
                rows = [dict(r) for r in source.execute(select(table)).mappings()]
                target.execute(insert(table), rows)
        _, breaks = trail.verify(engine.store)
        assert breaks == []
    finally:
        engine.store.dispose()
        copy.dispose()
    for table in ("instance", "step_event"):
        ours = raw_rows(tmp_path / "a.db", table)
        assert len(ours) >= 8
        assert ours == raw_rows(tmp_path / "b.db", table)
    ids = [row[0] for row in raw_rows(tmp_path / "a.db", "instance")]
    assert ids == list(range(1, len(ids) + 1))  # as SQLite numbers them


def test_new_task_ids_are_version_4_uuids_as_str_writes_them() -> None:
    texts = uuid4_texts(200)
    assert len(set(texts)) == 200
    for text in texts:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
