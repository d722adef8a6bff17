"""Bounded work (issue 16): every map that used to run without end, or stop silently, now
ends in an incident with the limit it exceeded, or is refused at validate time. On SQLite
and PostgreSQL; no wall-clock assertion: the incident, the limit and the count of steps."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine import Engine, InstanceIncident, Limits, ManualClock, load
from nextmove import open_engine
from tests.conftest import FIXTURES

LIMITS = FIXTURES / "limits"
REFUSED = FIXTURES / "limits_refused"
CALLS = FIXTURES / "bpmn" / "call_activity"


@pytest.mark.parametrize(("name", "code", "element"), [
    ("self_call.bpmn", "limit-recursion", "again"),
    ("big_cardinality.bpmn", "limit-cardinality", "call_each"),
    ("zero_cycle.bpmn", "limit-cycle", "remind"),
])
def test_what_a_map_visibly_asks_for_is_refused_at_validate(
    name: str, code: str, element: str,
) -> None:
    report = load([REFUSED / name])
    (problem,) = report.errors
    assert (problem.code, problem.element, Path(problem.file or "").name) == (
        code, element, name)
    assert problem.line is not None


def incident_of(engine: Engine, instance_id: int) -> dict[str, object]:
    last = engine.history(instance_id)[-1]
    assert last.kind == "incident" and last.data is not None
    return last.data


def test_a_cardinality_read_from_data_past_the_limit_is_an_incident(engine: Engine) -> None:
    engine.deploy([LIMITS])
    with pytest.raises(InstanceIncident) as raised:
        engine.start("data_cardinality", "p1", "d1", {"calls": 10**6})
    assert raised.value.limit == "cardinality"
    instance = engine.get(raised.value.instance_id)
    assert (instance.status, instance.waiting) == ("incident", ())
    data = incident_of(engine, instance.id)
    assert (data["limit"], data["failed_at"]) == ("cardinality", "log_call")
    # Within the limit the same map runs: three calls logged, then the person's step.
    ok = engine.start("data_cardinality", "p2", "d1", {"calls": 3})
    assert ok.waiting_steps == ["follow_up"]
    # the activity and its three instances
    assert [e.step_id for e in engine.history(ok.id)].count("log_call") == 4


def test_an_automatic_loop_is_an_incident_after_its_passes_not_a_silent_stop(
    engine: Engine,
) -> None:
    engine.deploy([LIMITS])
    with pytest.raises(InstanceIncident) as raised:
        engine.start("auto_loop", "p1", "d1")
    assert raised.value.limit == "loop_passes"
    data = incident_of(engine, raised.value.instance_id)
    assert data["limit"] == "loop_passes" and "loop_passes=100" in str(data["error"])
    assert engine.get(raised.value.instance_id).status == "incident"
    # nothing of the runaway step is kept: no 'spin' event was written
    assert [e.step_id for e in engine.history(raised.value.instance_id)] == ["join"]


def test_call_activity_depth_is_bounded(db_url: str, clock: ManualClock) -> None:
    shallow = open_engine(db_url, clock=clock, recommend=False, limits=Limits(call_depth=0))
    try:
        shallow.deploy([CALLS])
        started = shallow.start("recruit", "p1", "d1")
        with pytest.raises(InstanceIncident) as raised:
            shallow.complete(started.id, "sign_up")
        assert raised.value.limit == "call_depth"
        assert shallow.get(started.id).waiting_steps == ["sign_up"]
    finally:
        shallow.store.dispose()


def test_engine_steps_per_command_are_bounded(db_url: str, clock: ManualClock) -> None:
    tight = open_engine(db_url, clock=clock, recommend=False,
                        limits=Limits(engine_steps=5, loop_passes=1000))
    try:
        tight.deploy([LIMITS])
        with pytest.raises(InstanceIncident) as raised:
            tight.start("auto_loop", "p1", "d1")
        assert raised.value.limit == "engine_steps"
        assert "engine_steps=5 exceeded (6)" in str(raised.value)
    finally:
        tight.store.dispose()


def test_a_late_minute_cycle_fires_once_and_moves_on(engine: Engine, clock: ManualClock) -> None:
    """One day late, a one-minute cycle used to complete 1,440 times in one tick while
    reporting '1 fired'; it fires once, reschedules after now, and the tick says so."""
    engine.deploy([LIMITS])
    instance = engine.start("minute_cycle", "p1", "d1")
    clock.advance(timedelta(days=1))
    report = engine.tick()
    assert [(f.step_id, f.kind) for f in report] == [("remind", "timer")]
    assert report.steps == 1 and report.incidents == []  # end2: the one automatic step
    kinds = [(e.step_id, e.kind) for e in engine.history(instance.id)]
    assert kinds.count(("remind", "timer")) == 1
    (timer,) = [w for w in engine.get(instance.id).waiting if w.step_id == "remind"]
    assert timer.due_at is not None and clock.now() < timer.due_at <= clock.now() + \
        timedelta(minutes=1)
    assert list(engine.tick()) == []  # nothing more is due


def test_a_catch_up_cycle_fires_each_missed_time_up_to_the_limit(
    engine: Engine, clock: ManualClock,
) -> None:
    engine.deploy([LIMITS])
    late = engine.start("minute_cycle_catch_up", "p1", "d1")
    clock.advance(timedelta(days=1) - timedelta(minutes=3))
    three = engine.start("minute_cycle_catch_up", "p2", "d1")
    clock.advance(timedelta(minutes=3))  # `three` missed 3 times, `late` 1,440 (limit 100)
    report = engine.tick()
    assert [f.instance_id for f in report] == [three.id] * 3
    assert report.steps == 3  # end2, once per firing
    assert [(i.instance_id, i.limit) for i in report.incidents] == [(late.id, "catch_up")]
    assert engine.get(late.id).status == "incident"
    assert engine.get(three.id).status == "active"  # the tick went on with the others


def test_an_automatic_loop_after_a_broadcast_signal_is_an_incident(engine: Engine) -> None:
    """The steps a caught broadcast sets off count against the same limits as any other
    step's: the loop behind the signal parks its instance; the broadcast reports it failed."""
    engine.deploy([LIMITS])
    started = engine.start("signal_loop", "p1", "d1")
    assert engine.get(started.id).waiting_steps == ["wait_go"]
    result = engine.broadcast("go", signal_id="s-1")
    assert result.failed == (started.id,) and result.delivered == ()
    assert engine.get(started.id).status == "incident"
    assert incident_of(engine, started.id)["limit"] == "loop_passes"
