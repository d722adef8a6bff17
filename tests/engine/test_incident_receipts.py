"""A prospect event whose delivery failed into an incident is received once: the incident
records its receipt (status `incident`), the same id sent again is a duplicate while the
instance is in incident and after `retry`, and the retry that delivers it marks it `delivered`.
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import Engine, InstanceIncident, ManualClock
from engine.runtime import incidents
from engine.runtime.pipeline import DuplicateReceipt
from engine.store import MESSAGE_RECEIPT as RECEIPT
from tests.conftest import FIXTURES

V1 = FIXTURES / "incidents" / "messages" / "v1"
V2 = FIXTURES / "incidents" / "messages" / "v2"


def receipts(engine: Engine, prospect: str) -> list[tuple[str, int, str]]:
    with engine.store.read() as conn:
        rows = conn.execute(select(RECEIPT.c.message_id, RECEIPT.c.instance_id,
                                   RECEIPT.c.status).where(RECEIPT.c.prospect_id == prospect)
                            .order_by(RECEIPT.c.id)).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def caught(engine: Engine, instance_id: int) -> list[object]:
    return [e.data for e in engine.history(instance_id) if e.kind == "message"]


@pytest.fixture
def failed(engine: Engine) -> int:
    """An instance in incident: its `video_played` (id v-1, no minutes) failed the decide."""
    engine.deploy([V1])
    instance = engine.start("video_check", "p1", "d1").id
    engine.forget()
    with pytest.raises(InstanceIncident):
        engine.signal("video_played", "p1", message_id="v-1")
    assert engine.get(instance).status == "incident"
    return instance


def test_the_incident_records_the_events_receipt(engine: Engine, failed: int) -> None:
    assert receipts(engine, "p1") == [("v-1", failed, "incident")]
    shown = [(h.message_id, h.status, h.instance_id) for h in engine.held_events("p1")]
    assert shown == [("v-1", "incident", failed)]


def test_the_same_id_sent_while_in_incident_is_a_duplicate_not_held(
    engine: Engine, failed: int, clock: ManualClock,
) -> None:
    clock.advance(timedelta(minutes=5))
    engine.forget()
    again = engine.signal("video_played", "p1", message_id="v-1")
    assert (again.duplicate, again.held, again.delivered) == (True, False, ())
    assert receipts(engine, "p1") == [("v-1", failed, "incident")]


def test_a_retry_delivers_it_once_and_a_later_copy_is_a_duplicate(
    engine: Engine, failed: int, clock: ManualClock,
) -> None:
    engine.signal("video_played", "p1", message_id="v-1")  # while in incident
    engine.deploy([V2])
    engine.migrate_instance(failed, 2, actor="ops")
    clock.advance(timedelta(minutes=5))
    retried = engine.retry(failed, actor="ops")
    # a short video: the map waits for the next one, which this id must not be
    assert (retried.status, retried.waiting_steps) == ("active", ["watch"])
    assert receipts(engine, "p1") == [("v-1", failed, "delivered")]
    assert engine.held_events("p1") == []

    engine.forget()
    again = engine.signal("video_played", "p1", message_id="v-1")
    assert (again.duplicate, again.delivered) == (True, ())
    assert engine.get(failed).waiting_steps == ["watch"]
    assert caught(engine, failed) == [{"message_id": "v-1"}]

    fresh = engine.signal("video_played", "p1", message_id="v-2")  # a new event still moves it
    assert fresh.delivered == (failed,)
    assert caught(engine, failed) == [{"message_id": "v-1"}, {"message_id": "v-2"}]
    assert receipts(engine, "p1") == [("v-1", failed, "delivered"),
                                      ("v-2", failed, "delivered")]


def test_a_retry_that_fails_again_keeps_the_receipt_in_incident(
    engine: Engine, failed: int,
) -> None:
    with pytest.raises(InstanceIncident):
        engine.retry(failed, actor="ops")  # still version 1: the same decide fails
    assert receipts(engine, "p1") == [("v-1", failed, "incident")]
    assert engine.signal("video_played", "p1", message_id="v-1").duplicate


def test_a_retry_of_an_incident_recorded_without_a_receipt_stores_one(
    engine: Engine, failed: int,
) -> None:
    with engine.store.write() as conn:  # as an incident from before receipts were kept
        conn.execute(RECEIPT.delete().where(RECEIPT.c.prospect_id == "p1"))
    engine.deploy([V2])
    engine.migrate_instance(failed, 2, actor="ops")
    assert engine.retry(failed, actor="ops").waiting_steps == ["watch"]
    assert receipts(engine, "p1") == [("v-1", failed, "delivered")]
    assert engine.signal("video_played", "p1", message_id="v-1").duplicate


def test_an_event_for_a_catch_that_waited_through_the_incident_is_delivered_by_the_retry(
    engine: Engine, clock: ManualClock,
) -> None:
    engine.deploy([V1])
    instance = engine.start("order_and_video", "p2", "d1").id
    with pytest.raises(InstanceIncident):
        engine.complete(instance, "take_order", actor="d1")  # no amount: the gateway fails
    assert sorted(engine.get(instance).waiting_steps) == ["take_order", "video_watched"]
    clock.advance(timedelta(minutes=1))
    engine.forget()
    # its catch waits, but a parked instance takes nothing: the event is held meanwhile
    assert engine.signal("video_played", "p2", message_id="v-9").held

    engine.deploy([V2])
    engine.migrate_instance(instance, 2, actor="ops")
    retried = engine.retry(instance, actor="ops")
    assert sorted(retried.waiting_steps) == ["talk", "thank"]
    assert caught(engine, instance) == [
        {"message_id": "v-9", "held_since": "2026-01-05T09:01:00+00:00"}]
    assert receipts(engine, "p2") == [("v-9", instance, "delivered")]


def test_a_failing_copy_of_an_event_recorded_meanwhile_is_a_duplicate_not_an_incident(
    engine: Engine, clock: ManualClock,
) -> None:
    engine.deploy([V1])
    instance = engine.start("video_check", "p3", "d1").id
    receipt = {"message_id": "v-1", "message": "video_played", "prospect_id": "p3",
               "data": None, "received_at": clock.now().replace(tzinfo=None),
               "instance_id": instance}
    with engine.store.write() as conn:  # a racing copy was recorded after our look
        conn.execute(RECEIPT.insert().values(**receipt, status="incident"))
    replay = incidents.message_replay("video_played", {}, "v-1")
    with pytest.raises(DuplicateReceipt):
        engine.pipeline.advance(instance, "video_played",
                                incidents.act_for(instance, replay, None),
                                receipt=receipt, replay=replay)
    assert engine.get(instance).status == "active"  # the failing copy wrote nothing
    assert [e.kind for e in engine.history(instance)].count("incident") == 0


def test_a_broadcast_that_failed_into_an_incident_is_delivered_by_the_retry(
    engine: Engine,
) -> None:
    """A broadcast signal whose step failed is kept like a prospect event: the incident
    records its receipt and its replay, the retry delivers the signal (marking the receipt
    delivered), and the same signal id broadcast again moves the instance no second time."""
    engine.deploy([V1])
    instance = engine.start("signal_check", "p4", "d1").id
    first = engine.broadcast("price_drop", signal_id="s-1")
    assert (first.delivered, first.failed) == ((), (instance,))
    assert receipts(engine, "p4") == [("s-1", instance, "incident")]
    (incident,) = [e for e in engine.history(instance) if e.kind == "incident"]
    assert incident.data["replay"] == {"type": "signal", "signal": "price_drop", "data": {},
                                       "signal_id": "s-1"}
    engine.deploy([V2])
    engine.migrate_instance(instance, 2, actor="ops")
    assert engine.retry(instance, actor="ops").waiting_steps == ["mail"]
    assert receipts(engine, "p4") == [("s-1", instance, "delivered")]
    engine.forget()
    assert engine.broadcast("price_drop", signal_id="s-1").delivered == ()
    signals = [e for e in engine.history(instance) if e.kind == "signal"]
    assert [e.data.get("signal_id") for e in signals] == ["s-1"]
