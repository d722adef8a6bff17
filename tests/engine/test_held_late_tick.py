"""A late tick (a stopped worker) ends where ticks on time would have, held events included:
a timer fires at its own due time, and the catch that starts waiting then takes the held
events alive at that moment, before later timers fire. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import Engine, ManualClock
from engine.store import MESSAGE_RECEIPT as RECEIPT

HELD = """
process: held
messages:
  form_submitted: {ttl: P7D}
steps:
  - id: call
    hook: first_call
  - id: pause
    wait: {after: P3D}
  - id: wait_form
    wait: [{message: form_submitted, next: got}, {after: P10D, next: missed}]
  - id: got
    hook: thank_you
    next: end
  - id: missed
    hook: remind
"""


# What a tick on time gives: the pause fires, the form's catch takes the held event.
GOT = ["pause:entered", "pause:timer", "Event_wait_form_form_submitted:message", "got:entered"]


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


@pytest.fixture
def held_map(engine: Engine, clock: ManualClock, tmp_path: Path) -> Engine:
    path = tmp_path / "held.yaml"
    path.write_text(HELD)
    engine.deploy([path])
    return engine


def started(engine: Engine, clock: ManualClock, signals: list[tuple[str, datetime]]) -> int:
    """Start at 01-01 09:00, call done at 10:00 (pause due 01-04 10:00), the forms sent."""
    clock.set(at(1, 9))
    instance = engine.start("held", "p1", "d1").id
    clock.set(at(1, 10))
    engine.complete(instance, "call")
    for message_id, moment in signals:
        clock.set(moment)
        assert engine.signal("form_submitted", "p1", message_id=message_id).held
    return instance


def statuses(engine: Engine) -> dict[str, tuple[str, int]]:
    with engine.store.read() as conn:
        rows = conn.execute(select(RECEIPT.c.message_id, RECEIPT.c.status,
                                   RECEIPT.c.instance_id)).all()
    return {r.message_id: (r.status, r.instance_id) for r in rows}


def after_ticks(
    engine: Engine, clock: ManualClock, instance: int, moments: list[datetime],
) -> list[str]:
    """Tick at these moments; the steps the instance took, from the pause on."""
    for moment in moments:
        clock.set(moment)
        engine.tick()
    steps = [f"{e.step_id}:{e.kind}" for e in engine.history(instance)]
    return steps[steps.index("pause:entered"):]


def test_a_late_tick_delivers_the_event_alive_when_the_catch_started_waiting(
    held_map: Engine, clock: ManualClock
) -> None:
    instance = started(held_map, clock, [("e1", at(1, 11))])  # alive until 01-08 11:00
    assert after_ticks(held_map, clock, instance, [at(10)]) == GOT
    assert held_map.get(instance).waiting_steps == ["got"]
    assert statuses(held_map) == {"e1": ("delivered", instance)}


def test_the_catch_takes_it_before_its_own_deadline_fires_in_the_same_late_tick(
    held_map: Engine, clock: ManualClock
) -> None:
    instance = started(held_map, clock, [("e1", at(1, 11))])
    # pause due 01-04, the form's P10D deadline 01-14: both passed
    assert after_ticks(held_map, clock, instance, [at(20)]) == GOT
    assert held_map.get(instance).waiting_steps == ["got"]
    assert statuses(held_map) == {"e1": ("delivered", instance)}


def test_an_event_dead_by_the_due_time_still_expires(
    held_map: Engine, clock: ManualClock
) -> None:
    # sent 12-27: alive until 01-03 11:00, before the pause's due time 01-04 10:00
    clock.set(at(1, 9))
    instance = held_map.start("held", "p1", "d1").id
    with held_map.store.write() as conn:  # received before the start, as a stopped clock
        conn.execute(RECEIPT.insert().values(
            message_id="old", message="form_submitted", prospect_id="p1", instance_id=0,
            status="held", received_at=datetime(2025, 12, 27, 11),
            expires_at=datetime(2026, 1, 3, 11)))
    clock.set(at(1, 10))
    held_map.complete(instance, "call")
    assert after_ticks(held_map, clock, instance, [at(10)]) == ["pause:entered", "pause:timer"]
    assert held_map.get(instance).waiting_steps == ["Event_wait_form_form_submitted",
                                                    "Event_wait_form_timer"]
    assert statuses(held_map) == {"old": ("expired", 0)}


def test_an_event_received_after_the_due_time_is_still_delivered(
    held_map: Engine, clock: ManualClock
) -> None:
    # received 01-05, after the catch (virtually) started waiting at 01-04 10:00
    instance = started(held_map, clock, [("e2", at(5, 12))])
    assert after_ticks(held_map, clock, instance, [at(10)]) == GOT
    assert statuses(held_map) == {"e2": ("delivered", instance)}


def test_late_and_on_time_ticks_end_alike(
    held_map: Engine, clock: ManualClock
) -> None:
    instance = started(held_map, clock, [("e1", at(1, 11))])
    assert after_ticks(held_map, clock, instance, [at(4, 10), at(10)]) == GOT
    assert statuses(held_map) == {"e1": ("delivered", instance)}


def test_an_event_received_after_the_catch_s_deadline_waits_for_the_next_catch(
    held_map: Engine, clock: ManualClock
) -> None:
    # received 01-15: the catch that started waiting 01-04 had missed it at 01-14
    instance = started(held_map, clock, [("e3", at(15))])
    assert after_ticks(held_map, clock, instance, [at(20)]) == [
        "pause:entered", "pause:timer", "Event_wait_form_timer:timer", "missed:entered"]
    assert statuses(held_map) == {"e3": ("held", 0)}
