"""Prospect events (`signal`) on real databases: routing by our own index, one effect per
message id, events nothing waits for held (tests/engine/test_held_events.py has the rest),
payloads on the step log. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine import Engine, Instance, ManualClock
from engine.store import MESSAGE_RECEIPT as RECEIPT
from tests.conftest import FIXTURES

EVENTS = FIXTURES / "events"


@pytest.fixture
def deployed(engine: Engine) -> Engine:
    engine.deploy([EVENTS])
    return engine


def waiting_for_video(engine: Engine, prospect: str, *, new: bool = False) -> Instance:
    instance = engine.start("video_follow_up", prospect, "d1", new=new)
    return engine.complete(instance.id, "share_video")


def receipts(engine: Engine, message_id: str) -> list[dict[str, Any]]:
    with engine.store.read() as conn:
        rows = conn.execute(select(RECEIPT).where(RECEIPT.c.message_id == message_id)
                            .order_by(RECEIPT.c.instance_id)).mappings().all()
    return [dict(r) for r in rows]


def kinds(engine: Engine, instance_id: int) -> list[tuple[str, str]]:
    return [(e.step_id, e.kind) for e in engine.history(instance_id)]


def test_video_played_moves_the_named_prospect_and_only_them(
    deployed: Engine, clock: ManualClock
) -> None:
    p1 = waiting_for_video(deployed, "p1")
    p2 = waiting_for_video(deployed, "p2")
    clock.advance(timedelta(hours=20))

    result = deployed.signal("video_played", "p1", message_id="evt-1")

    assert (result.delivered, result.duplicate, result.held, result.status) == (
        (p1.id,), False, False, "delivered")
    assert [(f.instance_id, f.step_id, f.kind, f.at) for f in result.fired] == [
        (p1.id, "video_played", "message", clock.now())]
    moved = deployed.get(p1.id)
    assert moved.waiting_steps == ["conversation"]
    assert (moved.version, moved.next_due_at) == (p1.version + 1, None)
    assert deployed.get(p2.id) == p2  # the other prospect did not move at all
    assert ("video_played", "message") not in kinds(deployed, p2.id)

    clock.advance(timedelta(days=2))  # p1's follow-up timer went with the message; p2's fires
    assert [f.instance_id for f in deployed.tick()] == [p2.id]
    assert deployed.get(p1.id).version == moved.version


def test_the_message_before_the_deadline_wins_the_race(
    deployed: Engine, clock: ManualClock
) -> None:
    instance = waiting_for_video(deployed, "p1")
    clock.advance(timedelta(days=2) - timedelta(seconds=1))
    assert deployed.signal("video_played", "p1").delivered == (instance.id,)
    clock.advance(timedelta(days=1))
    assert deployed.tick() == []
    history = kinds(deployed, instance.id)
    assert ("video_played", "message") in history
    assert not any(kind == "timer" for _, kind in history)


def test_the_same_message_id_twice_has_one_effect(deployed: Engine, clock: ManualClock) -> None:
    instance = waiting_for_video(deployed, "p1")
    first = deployed.signal("video_played", "p1", message_id="evt-1")
    moved = deployed.get(instance.id)

    clock.advance(timedelta(minutes=5))
    again = deployed.signal("video_played", "p1", message_id="evt-1")

    assert first.delivered == (instance.id,)
    assert (again.duplicate, again.delivered, again.held, again.fired, again.status) == (
        True, (), False, (), "duplicate")
    assert deployed.get(instance.id) == moved
    assert kinds(deployed, instance.id).count(("video_played", "message")) == 1
    assert [r["instance_id"] for r in receipts(deployed, "evt-1")] == [instance.id]


def test_a_message_nothing_waits_for_is_held_and_reported(
    deployed: Engine, clock: ManualClock
) -> None:
    waiting_for_video(deployed, "p1")
    clock.advance(timedelta(hours=3))

    result = deployed.signal("video_played", "nobody", message_id="evt-9",
                             data={"seconds_watched": 12})

    assert (result.held, result.delivered, result.duplicate) == (True, (), False)
    assert result.expires_at == clock.now() + timedelta(days=30)  # the default time to live
    assert result.to_dict()["status"] == "held" and result.to_dict()["held"] is True
    (receipt,) = receipts(deployed, "evt-9")
    assert (receipt["instance_id"], receipt["message"], receipt["prospect_id"],
            receipt["status"]) == (0, "video_played", "nobody", "held")
    assert json.loads(receipt["data"]) == {"seconds_watched": 12}
    assert receipt["received_at"] == clock.now().replace(tzinfo=None)
    assert receipt["expires_at"] == (clock.now() + timedelta(days=30)).replace(tzinfo=None)


def test_a_message_without_an_id_gets_one_and_is_recorded(deployed: Engine) -> None:
    result = deployed.signal("video_played", "nobody")
    assert result.held and len(result.message_id) >= 16
    assert [r["instance_id"] for r in receipts(deployed, result.message_id)] == [0]
    assert deployed.signal("video_played", "nobody").message_id != result.message_id


def test_the_payload_is_recorded_on_the_message_event(
    deployed: Engine, clock: ManualClock
) -> None:
    instance = waiting_for_video(deployed, "p1")
    clock.advance(timedelta(hours=6))
    payload = {"seconds_watched": 95, "source": "sms"}

    deployed.signal("video_played", "p1", message_id="evt-1", data=payload)

    (event,) = [e for e in deployed.history(instance.id) if e.kind == "message"]
    assert (event.step_id, event.at, event.data) == (
        "video_played", clock.now(), {"message_id": "evt-1", **payload})
    (receipt,) = receipts(deployed, "evt-1")
    assert (receipt["instance_id"], json.loads(receipt["data"])) == (instance.id, payload)
    entered = [e for e in deployed.history(instance.id) if e.step_id == "conversation"]
    assert [(e.kind, e.data) for e in entered] == [("entered", None)]  # the payload is not copied


def test_a_message_the_instance_does_not_wait_for_is_held(
    deployed: Engine, clock: ManualClock
) -> None:
    form = deployed.start("wait_for_form", "p1", "d1")
    assert [(w.step_id, w.kind, w.message) for w in form.waiting] == [
        ("form_received", "message", "form_submitted")]

    result = deployed.signal("video_played", "p1", message_id="evt-1")
    assert (result.held, result.delivered) == (True, ())
    assert deployed.get(form.id) == form
    assert [(r["instance_id"], r["status"]) for r in receipts(deployed, "evt-1")] == [
        (0, "held")]

    delivered = deployed.signal("form_submitted", "p1", message_id="form-1")
    assert delivered.delivered == (form.id,)
    assert [(f.step_id, f.kind) for f in delivered.fired] == [("form_received", "message")]
    assert deployed.get(form.id).waiting_steps == ["call_back"]


def test_every_instance_of_the_prospect_waiting_for_it_moves(deployed: Engine) -> None:
    first = waiting_for_video(deployed, "p1")
    second = waiting_for_video(deployed, "p1", new=True)
    other = waiting_for_video(deployed, "p2")
    assert first.id != second.id

    result = deployed.signal("video_played", "p1", message_id="evt-1")

    assert result.delivered == (first.id, second.id)
    assert [r["instance_id"] for r in receipts(deployed, "evt-1")] == [first.id, second.id]
    assert deployed.get(other.id) == other
