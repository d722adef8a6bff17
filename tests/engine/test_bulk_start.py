"""`Engine.start_many`: a batch of starts in one transaction, with exactly what `start` writes."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from content_catalog.recommend import Ranked, Recommendation
from engine import Engine, ExecutionError, ManualClock, Store
from engine.runtime import NewProspect, Waiting
from engine.store import INSTANCE, STEP_EVENT, trail
from nextmove import open_store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LINEAR = FIXTURES / "bpmn" / "linear10.bpmn"
ALL_KINDS = FIXTURES / "yaml" / "all_kinds.yaml"
HELPER = FIXTURES / "yaml" / "helper_process.yaml"

# A gateway right after the start that reads `score`: a prospect without it cannot start.
NEEDS_SCORE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="t">
  <bpmn:process id="needs_score" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:exclusiveGateway id="gw" default="f_low">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f_high</bpmn:outgoing>
      <bpmn:outgoing>f_low</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="gw" />
    <bpmn:sequenceFlow id="f_high" sourceRef="gw" targetRef="call">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression"
        >score &gt;= 50</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_low" sourceRef="gw" targetRef="nurture" />
    <bpmn:userTask id="call"><bpmn:incoming>f_high</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="nurture"><bpmn:incoming>f_low</bpmn:incoming>
      <bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="end" />
    <bpmn:sequenceFlow id="f3" sourceRef="nurture" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming><bpmn:incoming>f3</bpmn:incoming>
    </bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""

TIMED_START = """\
process: timed_start
name: Timed start
steps:
  - id: cool_off
    wait:
      - after: P2D
        next: call
      - message: video_played
        next: call
  - id: call
    hook: call_script
    role: sponsor
"""

# Columns whose values must match between `start` and `start_many` for the same prospect.
_COMPARED = ("process_id", "prospect_id", "distributor_id", "sponsor_id", "active_key", "status",
             "context", "next_due_at", "version", "created_at", "updated_at")


def _rows(store: Store) -> list[dict[str, Any]]:
    with store.read() as conn:
        return [dict(r) for r in conn.execute(
            select(INSTANCE).order_by(INSTANCE.c.id)).mappings()]


def _events(store: Store, instance_id: int) -> list[tuple[str, str, str | None]]:
    with store.read() as conn:
        return [(r.step_id, r.kind, r.actor) for r in conn.execute(
            select(STEP_EVENT).where(STEP_EVENT.c.instance_id == instance_id)
            .order_by(STEP_EVENT.c.id))]


def _untasked(waits: Iterable[Waiting]) -> list[Waiting]:
    """Waits without their Spiff task ids (random per workflow)."""
    return [replace(w, task_id="") for w in waits]


def _count(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(INSTANCE)).scalar_one())


@pytest.mark.parametrize("process", ["all_kinds", "timed_start"])
def test_a_batch_writes_what_one_start_at_a_time_writes(
    db_url: str, clock: ManualClock, tmp_path: Path, process: str,
) -> None:
    """Same rows (waiting column, due timer, sponsor), same events, chains that verify."""
    timed = tmp_path / "timed.yaml"
    timed.write_text(TIMED_START, encoding="utf-8")
    one = Engine(open_store(f"sqlite:///{tmp_path / 'one.db'}"), clock=clock)
    bulk = Engine(open_store(db_url), clock=clock)
    prospects = [NewProspect(f"p{i}", f"d{i % 3}", {"sponsor_id": "s1", "source": "csv", "n": i})
                 for i in range(7)]
    try:
        for engine in (one, bulk):
            engine.deploy([ALL_KINDS, HELPER, timed])
        singles = [one.start(process, p.prospect_id, p.distributor_id, p.context,
                             actor="importer") for p in prospects]
        started = bulk.start_many(process, prospects, actor="importer")

        assert [s.created for s in started] == [True] * 7
        assert [s.instance.prospect_id for s in started] == [p.prospect_id for p in prospects]
        for single, batch in zip(singles, started, strict=True):
            assert _untasked(batch.instance.waiting) == _untasked(single.waiting)
            assert batch.instance.next_due_at == single.next_due_at
            assert batch.instance.context == single.context
        for a, b in zip(_rows(one.store), _rows(bulk.store), strict=True):
            assert {k: a[k] for k in _COMPARED} == {k: b[k] for k in _COMPARED}
            assert _untasked(Waiting.from_dict(w) for w in json.loads(b["waiting"])) == \
                _untasked(Waiting.from_dict(w) for w in json.loads(a["waiting"]))
            assert b["chain_head"] is not None
            assert _events(one.store, a["id"]) == _events(bulk.store, b["id"])
        assert trail.verify(bulk.store) == (sum(len(_events(bulk.store, s.instance.id))
                                                for s in started), [])
        if process == "timed_start":  # the timer is due in two days, for every instance
            assert {s.instance.next_due_at for s in started} == {clock.now() + timedelta(days=2)}
            clock.advance(timedelta(days=2, seconds=1))
            assert len(bulk.tick()) == 7
            assert {c.prospect_id for c in bulk.cards("s1")} == {p.prospect_id for p in prospects}
        else:  # ordinary instances: cards show them, steps move them
            assert {c.instance_id for c in bulk.cards("d0")} == {
                s.instance.id for s in started if s.instance.distributor_id == "d0"}
            moved = bulk.complete(started[0].instance.id, "greet")
            assert moved.version == 2 and "greet" not in moved.waiting_steps
        assert trail.verify(bulk.store)[1] == []
    finally:
        one.store.dispose()
        bulk.store.dispose()


def test_active_prospects_get_their_instance_back(engine: Engine) -> None:
    engine.deploy([LINEAR])
    earlier = engine.start("prospect_linear", "p1", "d1")
    started = engine.start_many("prospect_linear", [
        NewProspect("p1", "d9"), NewProspect("p2", "d1"), NewProspect("p2", "d2"),
        NewProspect("p3", "d1")])

    assert [(s.instance.prospect_id, s.created) for s in started] == [
        ("p1", False), ("p2", True), ("p2", False), ("p3", True)]
    assert started[0].instance.id == earlier.id
    assert started[2].instance.id == started[1].instance.id
    assert started[2].instance.distributor_id == "d1"  # the first row of the batch won
    assert _count(engine.store) == 3
    assert len(engine.start_many("prospect_linear", [NewProspect("p2", "d1")], new=True)) == 1
    assert _count(engine.store) == 4


def test_new_starts_another_instance_for_every_row(engine: Engine) -> None:
    engine.deploy([LINEAR])
    started = engine.start_many("prospect_linear", [NewProspect("p1", "d1")] * 3, new=True)

    assert [s.created for s in started] == [True, True, True]
    assert len({s.instance.id for s in started}) == 3


def test_a_prospect_that_cannot_start_stores_none_of_the_batch(
    engine: Engine, tmp_path: Path,
) -> None:
    path = tmp_path / "needs_score.bpmn"
    path.write_text(NEEDS_SCORE, encoding="utf-8")
    engine.deploy([path])

    with pytest.raises(ExecutionError):
        engine.start_many("needs_score", [NewProspect("p1", "d1", {"score": 80}),
                                          NewProspect("p2", "d1")])
    assert _count(engine.store) == 0
    started = engine.start_many("needs_score", [NewProspect("p1", "d1", {"score": 80}),
                                                NewProspect("p2", "d1", {"score": 10})])
    assert [s.instance.waiting_steps for s in started] == [["call"], ["nurture"]]


class _RacingRecommender:
    """Starts prospect p2 through another engine while the batch is being prepared, as a
    second process would between the batch's look-up and its insert."""

    def __init__(self, other: Engine) -> None:
        self.other = other
        self.raced: int | None = None

    def recommend(self, hook: str, context: Mapping[str, Any],
                  rng: random.Random) -> Recommendation | None:
        if self.raced is None:
            self.raced = self.other.start("prospect_linear", "p2", "other").id
        return Recommendation(hook, 1, (Ranked("opt", 1.0, 1.0),), "opt", 1.0)


def test_a_prospect_started_elsewhere_meanwhile_is_not_started_twice(
    db_url: str, clock: ManualClock,
) -> None:
    other = Engine(open_store(db_url), clock=clock)
    racing = _RacingRecommender(other)
    engine = Engine(open_store(db_url), clock=clock, recommender=racing)
    try:
        engine.deploy([LINEAR])
        started = engine.start_many("prospect_linear",
                                    [NewProspect("p1", "d1"), NewProspect("p2", "d1")])

        assert racing.raced is not None
        assert [(s.instance.prospect_id, s.created) for s in started] == [
            ("p1", True), ("p2", False)]
        assert started[1].instance.id == racing.raced
        assert started[1].instance.distributor_id == "other"
        assert _count(engine.store) == 2
        assert trail.verify(engine.store)[1] == []
    finally:
        engine.store.dispose()
        other.store.dispose()


def test_an_empty_batch_does_nothing(engine: Engine) -> None:
    engine.deploy([LINEAR])
    assert engine.start_many("prospect_linear", []) == []
    assert _count(engine.store) == 0
