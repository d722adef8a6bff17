"""Event-based gateways take exactly one branch, that of the event that happened first, and a
timer worker whose step was done meanwhile writes nothing. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from engine import Engine, ManualClock
from engine.store import INSTANCE, STEP_EVENT
from nextmove import open_engine
from tests.conftest import FIXTURES

EVENTS = FIXTURES / "events"
GATEWAYS = FIXTURES / "gateways"
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def kinds(engine: Engine, instance_id: int) -> list[tuple[str, str]]:
    return [(e.step_id, e.kind) for e in engine.history(instance_id)]


def branch_moves(engine: Engine, instance_id: int) -> list[str]:
    """The events that took a gateway branch: timers and messages."""
    return [e.step_id for e in engine.history(instance_id) if e.kind in ("timer", "message")]


def test_a_message_processed_after_the_timer_was_due_finds_the_timer_branch_taken(
    engine: Engine, clock: ManualClock
) -> None:
    engine.deploy([EVENTS / "follow_up.bpmn"])  # share_video, then video_played vs P2D
    instance = engine.complete(engine.start("video_follow_up", "p1", "d1").id, "share_video")
    clock.advance(3 * DAY)  # the timer was due a day ago; no tick ran since

    result = engine.signal("video_played", "p1", message_id="v1")

    assert result.delivered == ()
    assert [(f.step_id, f.kind) for f in result.fired] == [("two_days", "timer")]
    after = engine.get(instance.id)
    assert (after.status, after.waiting_steps) == ("active", ["follow_up"])
    assert branch_moves(engine, instance.id) == ["two_days"]
    assert ("video_played", "message") not in kinds(engine, instance.id)
    assert engine.complete(instance.id, "follow_up").status == "completed"


def test_a_message_before_the_due_time_wins_and_the_timer_never_fires(
    engine: Engine, clock: ManualClock
) -> None:
    engine.deploy([EVENTS / "follow_up.bpmn"])
    instance = engine.complete(engine.start("video_follow_up", "p1", "d1").id, "share_video")
    clock.advance(2 * DAY - HOUR)

    assert engine.signal("video_played", "p1", message_id="v1").delivered == (instance.id,)
    after = engine.get(instance.id)
    assert (after.waiting_steps, after.next_due_at) == (["conversation"], None)
    clock.advance(10 * DAY)
    assert engine.tick() == []
    assert branch_moves(engine, instance.id) == ["video_played"]


def test_a_timer_due_exactly_when_the_message_arrives_came_first(
    engine: Engine, clock: ManualClock
) -> None:
    engine.deploy([EVENTS / "follow_up.bpmn"])
    instance = engine.complete(engine.start("video_follow_up", "p1", "d1").id, "share_video")
    clock.advance(2 * DAY)
    assert engine.signal("video_played", "p1").delivered == ()
    assert engine.get(instance.id).waiting_steps == ["follow_up"]


def test_a_late_tick_fires_only_the_earlier_of_two_gateway_timers(
    engine: Engine, clock: ManualClock
) -> None:
    engine.deploy([EVENTS / "two_deadlines.bpmn"])  # P3D vs P2D
    instance = engine.complete(engine.start("two_deadlines", "p1", "d1").id, "share_video")
    start = clock.now()
    due = {w.step_id: w.due_at for w in instance.waiting}
    assert due == {"three_days": start + 3 * DAY, "two_days": start + 2 * DAY}

    clock.advance(10 * DAY)  # both are long due: the earlier one happened first
    assert [f.step_id for f in engine.tick()] == ["two_days"]
    after = engine.get(instance.id)
    assert (after.waiting_steps, after.next_due_at) == (["follow_up"], None)
    assert branch_moves(engine, instance.id) == ["two_days"]


def test_on_each_visit_of_a_looping_gateway_its_earliest_timer_fires(
    engine: Engine, clock: ManualClock
) -> None:
    """The gateway loops (follow up, then wait again) between a two-day nudge and a fixed
    deadline: on the second visit the deadline comes first, and a late tick knows it."""
    engine.deploy([GATEWAYS])
    clock.set(clock.now().replace(day=6))  # Jan 6, 09:00; the offer ends Jan 12, 09:00
    instance = engine.complete(engine.start("deadline_or_video", "p1", "d1").id, "share_video")
    clock.advance(3 * DAY)
    assert [f.step_id for f in engine.tick()] == ["two_days"]  # due Jan 8, fired Jan 9
    clock.advance(DAY + HOUR)  # Jan 10, 10:00: the next nudge would be Jan 12, 10:00
    again = engine.complete(instance.id, "follow_up")
    start = clock.now()
    assert {w.step_id: w.due_at for w in again.waiting}["two_days"] == start + 2 * DAY

    clock.advance(20 * DAY)
    assert [f.step_id for f in engine.tick()] == ["offer_ends"]  # Jan 12, 09:00 came first
    assert engine.get(instance.id).waiting_steps == ["last_call"]
    assert branch_moves(engine, instance.id) == ["two_days", "offer_ends"]


def test_a_gateway_stored_with_one_shared_timer_slot_still_fires_in_time_order(
    tmp_path: Path, clock: ManualClock
) -> None:
    """A state written before release 2 (tests/fixtures/state/format1_two_timer_gateway.json:
    share_video done 2026-03-01 09:00, both timers reading the P3D due time) is moved to one
    slot per timer on first read: P2D is due 03-03, P3D 03-04."""
    engine = open_engine(f"sqlite:///{tmp_path / 'old.db'}", clock=clock, recommend=False)
    engine.deploy([EVENTS / "two_deadlines.bpmn"])
    clock.set(clock.now().replace(month=3, day=1))
    instance = engine.complete(engine.start("two_deadlines", "p1", "d1").id, "share_video")
    old = (FIXTURES / "state" / "format1_two_timer_gateway.json").read_text()
    with engine.store.write() as conn:
        conn.execute(INSTANCE.update().where(INSTANCE.c.id == instance.id).values(state=old))
    engine.forget()

    clock.set(clock.now() + 2 * DAY)
    assert [f.step_id for f in engine.tick()] == ["two_days"]
    assert engine.get(instance.id).waiting_steps == ["follow_up"]
    engine.store.dispose()


def share_intro_waiting(engine: Engine) -> int:
    """A LifeVantage prospect at `share_intro`, whose stuck timer (P5D) watches it."""
    instance = engine.start("prospect_journey", "p1", "d1")
    return engine.complete(instance.id, "add_contact").id


def test_a_claimed_timer_whose_step_was_done_meanwhile_writes_nothing(
    lv: Engine, clock: ManualClock
) -> None:
    """The worker claims a due stuck timer; the person does the step before the worker gets
    to it. The worker releases its claim: no version bump, no step event, and the person's
    next step goes through first time."""
    person = lv
    worker = open_engine(lv.store, clock=clock, recommend=False)
    instance_id = share_intro_waiting(person)
    clock.advance(5 * DAY + HOUR)

    done: list[int] = []

    def person_acts_after_the_claim() -> bool:
        if not done:
            with worker.store.read() as conn:
                assert conn.execute(select(INSTANCE.c.lease_owner)).scalar_one() == "w1"
            done.append(person.complete(instance_id, "share_intro").version)
        return False

    fired = worker.fire_due(10, "w1", should_stop=person_acts_after_the_claim)

    assert fired == []
    with worker.store.read() as conn:
        stored = conn.execute(select(INSTANCE.c.version, INSTANCE.c.status,
                                     INSTANCE.c.lease_owner, INSTANCE.c.lease_until)).one()
        events = conn.execute(select(func.count()).select_from(STEP_EVENT)).scalar_one()
    assert tuple(stored) == (done[0], "active", None, None)
    assert events == len(person.history(instance_id))
    # the person's step saw the due timer first and fired it: once, in their own step
    assert kinds(person, instance_id).count(("Event_share_intro_stuck", "timer")) == 1
    signalled = person.signal("video_played", "p1")  # no conflict, nothing to retry
    assert signalled.delivered == (instance_id,)
    assert person.get(instance_id).version == done[0] + 1


def test_a_stale_worker_finds_nothing_due_and_writes_nothing(
    lv: Engine, clock: ManualClock
) -> None:
    """A worker whose cached copy still has the timer armed: its fire conflicts, the fresh
    state has nothing due, and it lets go without a step."""
    instance_id = share_intro_waiting(lv)
    stale = open_engine(lv.store, clock=clock, recommend=False)
    stale.pipeline.workflow(instance_id)  # cached with the stuck timer armed
    clock.advance(5 * DAY)
    person = lv.complete(instance_id, "share_intro")

    assert stale.tick() == [] and lv.tick() == []
    row = lv.store.select(select(INSTANCE.c.version, INSTANCE.c.lease_owner))[0]
    assert (row["version"], row["lease_owner"]) == (person.version, None)
    assert [e.step_id for e in lv.history(instance_id) if e.kind == "timer"] == [
        "Event_share_intro_stuck"]
