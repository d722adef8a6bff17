"""Fast starts (issue 23): a definition version's first-wait state is built once and new
instances are made from it (`engine.runtime._first_wait`). Every map in processes/ and in the
corpora started both ways gives the same instance: status, waits, step events, automatic
steps counted, and the same state document once task ids and change times are set aside."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine import Engine, ManualClock, NextmoveError
from engine.runtime.queries import INSTANCE
from nextmove import open_engine
from tests.conftest import FIXTURES

REPO = Path(__file__).resolve().parents[2]
MAPS = sorted([*(REPO / "processes").rglob("*.bpmn"), *(REPO / "processes").rglob("*.yaml"),
               *(FIXTURES / "corpora" / "bpmn").rglob("*.bpmn"),
               REPO / "bench" / "maps" / "linear10.bpmn"])
MAPS = [p for p in MAPS if p.name != "catalog.yaml"]
CONTEXTS = [{"market": "US", "source": "test", "n": 3, "nested": {"a": [1, "b"]}}, {},
            {"sponsor_id": "s1", "id": "0b9a5f0e-1d2c-4e3f-8a7b-6c5d4e3f2a1b"}]
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def normalized(state: str, context_ids: set[str]) -> Any:
    """The state with task ids numbered in order of appearance and change times zeroed."""
    seen: dict[str, str] = {}

    def number(found: re.Match[str]) -> str:
        text = found.group()
        return text if text in context_ids else seen.setdefault(text, f"id{len(seen)}")

    doc = json.loads(_UUID.sub(number, state))
    for tasks in _task_maps(doc["workflow"]):
        for task in tasks.values():
            task["last_state_change"] = 0
    return doc


def _task_maps(workflow: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield workflow["tasks"]
    for sub in workflow.get("subprocesses", {}).values():
        yield from _task_maps(sub)


def snapshot(engine: Engine, instance_id: int, context_ids: set[str]) -> Any:
    with engine.store.read() as conn:
        row = conn.execute(INSTANCE.select().where(INSTANCE.c.id == instance_id)).mappings().one()
    ids: dict[str, str] = {}

    def waits(text: str | None) -> Any:
        out = json.loads(text or "[]")
        for wait in out:
            wait["task_id"] = ids.setdefault(wait["task_id"], f"t{len(ids)}")
        return out

    events = [(e.step_id, e.kind, e.actor, e.data, e.at) for e in engine.history(instance_id)]
    return {"status": row["status"], "waiting": waits(row["waiting"]),
            "next_due_at": row["next_due_at"], "context": row["context"],
            "visits": row["visits"], "events": events,
            "state": normalized(row["state"], context_ids)}


@contextmanager
def pair(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    fast = open_engine(f"sqlite:///{tmp_path / 'fast.db'}", clock=clock, recommend=False)
    normal = open_engine(f"sqlite:///{tmp_path / 'normal.db'}", clock=clock, recommend=False)
    normal.pipeline.fast_starts = False
    try:
        yield fast, normal
    finally:
        fast.store.dispose()
        normal.store.dispose()


def test_fast_starts_equal_normal_starts_on_every_map(tmp_path: Path) -> None:
    compared = 0
    with pair(tmp_path) as (fast, normal):
        for path in MAPS:
            try:
                deployed = fast.deploy([path])
                normal.deploy([path])
            except NextmoveError:
                continue  # refused by validation: it never starts
            for definition in deployed:
                for k, context in enumerate(CONTEXTS):
                    results = []
                    for engine in (fast, normal):
                        before = engine.pipeline.steps_run
                        try:
                            instance = engine.start(definition.process_id, f"p{k}", "d1",
                                                    context, new=True)
                        except NextmoveError as exc:
                            results.append((type(exc).__name__, str(exc)))
                            continue
                        ids = {v for v in context.values() if isinstance(v, str)}
                        results.append((snapshot(engine, instance.id, ids),
                                        engine.pipeline.steps_run - before))
                    assert results[0] == results[1], (path, definition.process_id, context)
                    compared += 1
        used = sum(t is not None for t in fast.pipeline.first_waits.values())
    assert compared > 100
    assert used >= 20  # the fast path was taken (44 of the definitions), not only its fallback


def test_a_map_that_routes_on_start_data_starts_the_normal_way(tmp_path: Path) -> None:
    map_ = tmp_path / "route.yaml"
    map_.write_text("""
process: route
data:
  market: [US, MX]
steps:
  - id: pick
    decide:
      - when: "market == 'US'"
        next: us_call
      - otherwise: mx_call
  - id: us_call
    next: end
  - id: mx_call
""")
    with pair(tmp_path) as (fast, normal):
        for engine in (fast, normal):
            engine.deploy([map_])
        us = fast.start("route", "p1", "d1", {"market": "US"})
        mx = fast.start("route", "p2", "d1", {"market": "MX"})
        assert us.waiting_steps == ["us_call"] and mx.waiting_steps == ["mx_call"]
        assert list(fast.pipeline.first_waits.values()) == [None]  # it read the data: no template
