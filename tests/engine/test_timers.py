"""Timers on real databases: intermediate waits, boundary timers, `tick`, leases. No sleeping:
the engine's clock is a ManualClock moved by hand, and every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select

from engine import Engine, Instance, ManualClock, StepNotWaiting
from engine.store import INSTANCE, STEP_EVENT
from nextmove import open_store
from tests.conftest import FIXTURES

EVENTS = FIXTURES / "events"
SECOND = timedelta(seconds=1)


@pytest.fixture
def deployed(engine: Engine) -> Engine:
    engine.deploy([EVENTS])
    return engine


def row(engine: Engine, instance_id: int) -> dict[str, Any]:
    """The instance row as stored (naive UTC times), state document left out."""
    with engine.store.read() as conn:
        found = conn.execute(select(INSTANCE).where(INSTANCE.c.id == instance_id)).mappings().one()
    return {k: v for k, v in found.items() if k != "state"}


def timer_events(engine: Engine) -> dict[int, int]:
    """Per instance, how many 'timer' step events the log holds."""
    with engine.store.read() as conn:
        rows = conn.execute(
            select(STEP_EVENT.c.instance_id, func.count())
            .where(STEP_EVENT.c.kind == "timer").group_by(STEP_EVENT.c.instance_id)).all()
    return {int(i): int(n) for i, n in rows}


def naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def shared_video(engine: Engine, clock: ManualClock, prospect: str = "p1") -> Instance:
    """A follow-up journey whose video was shared an hour after it started."""
    instance = engine.start("video_follow_up", prospect, "d1")
    clock.advance(timedelta(hours=1))
    return engine.complete(instance.id, "share_video", actor="d1")


# -- intermediate timers -------------------------------------------------------------------------


def test_follow_up_fires_after_two_days_and_not_before(
    deployed: Engine, clock: ManualClock
) -> None:
    instance = shared_video(deployed, clock)
    due = clock.now() + timedelta(days=2)
    waits = {w.step_id: w for w in instance.waiting}
    assert sorted(waits) == ["two_days", "video_played"]
    assert (waits["two_days"].kind, waits["two_days"].due_at) == ("timer", due)
    assert (waits["video_played"].kind, waits["video_played"].message) == (
        "message", "video_played")
    assert instance.next_due_at == due

    clock.set(due - SECOND)
    assert deployed.tick() == []
    assert deployed.get(instance.id) == instance  # not even the version moved

    clock.set(due)
    (fired,) = deployed.tick()
    assert (fired.instance_id, fired.prospect_id, fired.process_id, fired.step_id, fired.kind,
            fired.at) == (instance.id, "p1", "video_follow_up", "two_days", "timer", due)
    after = deployed.get(instance.id)
    assert after.waiting_steps == ["follow_up"]
    assert after.version == instance.version + 1
    assert after.next_due_at is None
    history = deployed.history(instance.id)
    assert [(e.step_id, e.kind, e.at) for e in history[-2:]] == [
        ("two_days", "timer", due), ("follow_up", "entered", due)]
    assert not any(e.kind == "message" for e in history)

    clock.advance(timedelta(days=30))
    assert deployed.tick() == []  # a timer fires once
    assert timer_events(deployed) == {instance.id: 1}


def test_next_due_at_is_an_indexed_column_cleared_after_firing(
    deployed: Engine, clock: ManualClock
) -> None:
    indexes = inspect(deployed.store.engine).get_indexes("instance")
    assert any(ix["column_names"] == ["next_due_at"] for ix in indexes)

    instance = deployed.start("reminder", "p1", "d1")
    due = clock.now() + timedelta(days=2)
    stored = row(deployed, instance.id)
    assert stored["next_due_at"] == naive(due)
    assert (stored["lease_owner"], stored["lease_until"]) == (None, None)

    clock.set(due)
    assert [f.instance_id for f in deployed.tick()] == [instance.id]
    stored = row(deployed, instance.id)
    assert stored["next_due_at"] is None
    assert (stored["lease_owner"], stored["lease_until"]) == (None, None)
    assert stored["version"] == 2


def test_a_late_tick_fires_once_and_records_when_it_fired(
    deployed: Engine, clock: ManualClock
) -> None:
    instance = deployed.start("reminder", "p1", "d1")
    clock.advance(timedelta(days=5, hours=3))
    (fired,) = deployed.tick()
    assert fired.at == clock.now()
    timer = [e for e in deployed.history(instance.id) if e.kind == "timer"]
    assert [(e.step_id, e.at) for e in timer] == [("two_days", clock.now())]


def test_a_time_date_timer_fires_at_its_date(deployed: Engine, clock: ManualClock) -> None:
    launch = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    early = deployed.start("launch_invite", "p1", "d1")
    clock.advance(timedelta(days=10))
    late = deployed.start("launch_invite", "p2", "d1")
    assert early.next_due_at == late.next_due_at == launch  # a date, not a delay

    clock.set(launch - SECOND)
    assert deployed.tick() == []
    clock.set(launch)
    fired = deployed.tick()
    assert sorted((f.instance_id, f.step_id, f.at) for f in fired) == [
        (early.id, "launch_day", launch), (late.id, "launch_day", launch)]
    assert deployed.get(early.id).waiting_steps == ["send_invite"]


def test_instances_not_yet_due_are_untouched(deployed: Engine, clock: ManualClock) -> None:
    started = []
    for day in range(3):  # due on days 2, 3 and 4
        started.append(deployed.start("reminder", f"p{day}", "d1"))
        clock.advance(timedelta(days=1))
    first, second, third = started
    before = {i.id: row(deployed, i.id) for i in started}

    clock.set(first.next_due_at)  # type: ignore[arg-type]
    assert [f.instance_id for f in deployed.tick()] == [first.id]
    assert row(deployed, second.id) == before[second.id]
    assert row(deployed, third.id) == before[third.id]

    clock.set(second.next_due_at)  # type: ignore[arg-type]
    assert [f.instance_id for f in deployed.tick()] == [second.id]
    assert row(deployed, third.id) == before[third.id]
    assert row(deployed, first.id)["version"] == 2  # not fired again
    assert timer_events(deployed) == {first.id: 1, second.id: 1}


def test_tick_fires_each_of_many_instances_once(
    deployed: Engine, clock: ManualClock
) -> None:
    started = [deployed.start("reminder", f"p{k}", "d1") for k in range(60)]
    clock.advance(timedelta(days=2))

    worker = Engine(deployed.store, clock=clock)  # a fresh process: nothing cached
    fired = worker.tick(batch=7)  # many batches

    assert sorted(f.instance_id for f in fired) == sorted(i.id for i in started)
    assert timer_events(deployed) == {i.id: 1 for i in started}
    assert {(i.version, tuple(i.waiting_steps)) for i in deployed.list_instances(limit=100)} == {
        (2, ("follow_up",))}
    assert worker.tick() == [] and deployed.tick() == []


# -- boundary timers on a person's step ----------------------------------------------------------


def test_interrupting_boundary_timer_cancels_the_step(
    deployed: Engine, clock: ManualClock
) -> None:
    instance = deployed.start("stuck_interrupting", "p1", "d1")
    due = clock.now() + timedelta(days=3)
    waits = {w.step_id: w for w in instance.waiting}
    assert (waits["stuck"].kind, waits["stuck"].due_at, waits["stuck"].attached_to) == (
        "timer", due, "present_offer")
    assert instance.next_due_at == due

    clock.set(due - SECOND)
    assert deployed.tick() == []
    clock.set(due)
    assert [(f.step_id, f.kind) for f in deployed.tick()] == [("stuck", "timer")]

    after = deployed.get(instance.id)
    assert after.waiting_steps == ["nudge"]
    assert after.next_due_at is None
    moves = [(e.step_id, e.kind) for e in deployed.history(instance.id) if e.at == due]
    assert sorted(moves) == [("nudge", "entered"), ("present_offer", "cancelled"),
                             ("stuck", "timer")]
    with pytest.raises(StepNotWaiting):
        deployed.complete(instance.id, "present_offer")


def test_non_interrupting_boundary_timer_keeps_the_step_waiting(
    deployed: Engine, clock: ManualClock
) -> None:
    instance = deployed.start("stuck_non_interrupting", "p1", "d1")
    due = clock.now() + timedelta(days=3)
    assert instance.next_due_at == due

    clock.set(due)
    assert [(f.step_id, f.kind) for f in deployed.tick()] == [("stuck", "timer")]
    after = deployed.get(instance.id)
    assert sorted(after.waiting_steps) == ["nudge", "present_offer"]
    assert after.next_due_at is None  # it fired; it does not fire again
    assert not any(e.kind == "cancelled" for e in deployed.history(instance.id))

    clock.advance(timedelta(days=10))
    assert deployed.tick() == []
    after = deployed.complete(instance.id, "present_offer")  # the person can still do it
    assert after.waiting_steps == ["nudge"]
    assert deployed.complete(instance.id, "nudge").status == "completed"


def test_a_cycle_timer_records_and_reports_each_fire(deployed: Engine, clock: ManualClock) -> None:
    instance = deployed.start("remind_daily", "p1", "d1")  # R3/P1D on the offer step
    start = clock.now()
    assert instance.next_due_at == start + timedelta(days=1)

    for day in (1, 2, 3):
        clock.set(start + timedelta(days=day) - SECOND)
        assert deployed.tick() == []
        clock.set(start + timedelta(days=day))
        assert [(f.step_id, f.kind, f.at) for f in deployed.tick()] == [
            ("remind", "timer", clock.now())]
        after = deployed.get(instance.id)
        assert after.waiting_steps.count("nudge") == day
        assert "present_offer" in after.waiting_steps

    clock.set(start + timedelta(days=10))
    assert deployed.tick() == []  # three times means three
    after = deployed.get(instance.id)
    assert (after.next_due_at, after.waiting_steps.count("nudge")) == (None, 3)
    timers = [(e.step_id, e.at) for e in deployed.history(instance.id) if e.kind == "timer"]
    assert timers == [("remind", start + timedelta(days=d)) for d in (1, 2, 3)]


def test_the_last_fire_of_a_cycle_timer_is_a_fire(deployed: Engine, clock: ManualClock) -> None:
    """Its last fire completes the timer as its branch starts: logged and reported as a timer
    fire like the others, not as the step completing."""
    instance = deployed.start("nag_hourly", "p1", "d1")  # R3/PT1H on `work`, branch automatic
    start = clock.now()
    for hour in (1, 2, 3):
        clock.set(start + timedelta(hours=hour))
        assert [(f.step_id, f.kind) for f in deployed.tick()] == [("nag", "timer")]
    clock.set(start + timedelta(hours=10))
    assert deployed.tick() == []
    log = [(e.step_id, e.kind) for e in deployed.history(instance.id)]
    assert [k for s, k in log if s == "nag"] == ["timer"] * 3
    assert log.count(("note_nag", "completed")) == 3


def test_next_due_at_moves_on_to_the_next_timer(deployed: Engine, clock: ManualClock) -> None:
    instance = deployed.start("stuck_then_expire", "p1", "d1")  # nudge at P3D, give up at P7D
    start = clock.now()
    assert instance.next_due_at == start + timedelta(days=3)

    clock.set(start + timedelta(days=3))
    assert [f.step_id for f in deployed.tick()] == ["stuck"]
    after = deployed.get(instance.id)
    assert sorted(after.waiting_steps) == ["expire", "nudge", "present_offer"]
    assert after.next_due_at == start + timedelta(days=7)
    assert row(deployed, instance.id)["next_due_at"] == naive(start + timedelta(days=7))

    clock.set(start + timedelta(days=7) - SECOND)
    assert deployed.tick() == []
    clock.set(start + timedelta(days=7))
    assert [f.step_id for f in deployed.tick()] == ["expire"]
    after = deployed.get(instance.id)
    assert (after.waiting_steps, after.next_due_at) == (["nudge"], None)
    assert ("present_offer", "cancelled") in [
        (e.step_id, e.kind) for e in deployed.history(instance.id)]


def test_the_earlier_of_two_gateway_timers_fires_first(tmp_path: Path, clock: ManualClock) -> None:
    engine = Engine(open_store(f"sqlite:///{tmp_path / 'gateway.db'}"), clock=clock)
    engine.deploy([EVENTS / "two_deadlines.bpmn"])  # share_video, then P3D vs P2D
    instance = engine.complete(engine.start("two_deadlines", "p1", "d1").id, "share_video")
    start = clock.now()
    clock.set(start + timedelta(days=2))
    fired = engine.tick()
    engine.store.dispose()
    assert instance.next_due_at == start + timedelta(days=2)
    assert [f.step_id for f in fired] == ["two_days"]


@pytest.mark.parametrize("process", ["stuck_interrupting", "stuck_non_interrupting"])
def test_doing_the_step_in_time_disarms_its_boundary_timer(
    deployed: Engine, clock: ManualClock, process: str
) -> None:
    instance = deployed.start(process, "p1", "d1")
    clock.advance(timedelta(days=3) - SECOND)
    done = deployed.complete(instance.id, "present_offer")
    assert (done.status, done.next_due_at) == ("completed", None)

    clock.advance(timedelta(days=10))
    assert deployed.tick() == []
    kinds = [(e.step_id, e.kind) for e in deployed.history(instance.id)]
    assert ("stuck", "timer") not in kinds
    assert ("present_offer", "completed") in kinds


# -- leases: a worker that dies holding claims -----------------------------------------------------


class Crash(Exception):
    """Stands for a worker process dying between its claim and its first step."""


def test_a_dead_workers_claims_lapse_after_the_lease_on_the_engine_clock(
    deployed: Engine, clock: ManualClock
) -> None:
    started = [deployed.start("reminder", f"p{k}", "d1") for k in range(5)]
    clock.advance(timedelta(days=2))
    lease = timedelta(minutes=10)
    doomed = Engine(deployed.store, clock=clock, lease=lease)

    def die() -> bool:
        raise Crash

    with pytest.raises(Crash):
        doomed.fire_due(3, "doomed", should_stop=die)
    leased = {i.id: row(deployed, i.id) for i in started}
    held = sorted(i for i, r in leased.items() if r["lease_owner"] == "doomed")
    assert len(held) == 3
    assert all(leased[i]["lease_until"] == naive(clock.now() + lease) for i in held)

    other = Engine(deployed.store, clock=clock, lease=lease)
    fired = other.tick(worker="other")  # only the two nobody holds
    assert sorted(f.instance_id for f in fired) == sorted(set(leased) - set(held))

    clock.advance(lease)  # lease_until == now: still held
    assert other.tick(worker="other") == []
    clock.advance(SECOND)
    assert sorted(f.instance_id for f in other.tick(worker="other")) == held
    assert timer_events(deployed) == {i.id: 1 for i in started}
    assert all(row(deployed, i)["lease_owner"] is None for i in held)
