"""BPMN signals and start events with several messages, on SQLite and PostgreSQL, with a
reload (a fresh process's caches) between calls as the CLI does.

* `broadcast` reaches intermediate signal catches and boundary signal events of every instance
  waiting on the signal, whatever the prospect; one step each; a repeated id moves nobody twice.
* a signal thrown inside an instance is caught inside that instance (and nowhere else).
* a start event with several messages, and several message start events, wait for each
  message and start on whichever comes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import Engine, ManualClock, UnknownMessage, UnknownSignal
from engine.store import MESSAGE_RECEIPT as RECEIPT
from tests.conftest import FIXTURES

SIGNALS = FIXTURES / "bpmn" / "signals"


@pytest.fixture
def deployed(engine: Engine) -> Engine:
    engine.deploy([SIGNALS])
    engine.forget()
    return engine


def kinds(engine: Engine, instance_id: int) -> list[tuple[str, str]]:
    return [(e.step_id, e.kind) for e in engine.history(instance_id)]


def offered(engine: Engine, prospect: str) -> int:
    instance = engine.start("price_watch", prospect, "d1")
    engine.forget()
    return engine.complete(instance.id, "share_offer").id


def test_a_signal_catch_waits_and_a_broadcast_moves_every_instance_waiting(
    deployed: Engine
) -> None:
    ann, bob = offered(deployed, "ann"), offered(deployed, "bob")
    not_yet = deployed.start("price_watch", "cy", "d1").id  # still at its person's step
    waits = deployed.get(ann).waiting
    assert [(w.step_id, w.kind, w.signal) for w in waits] == [
        ("price_changed", "signal", "price_change")]
    deployed.forget()

    result = deployed.broadcast("price_change", signal_id="s-1", data={"new_price": 42})

    assert (result.delivered, result.already, result.failed) == ((ann, bob), (), ())
    assert [(f.instance_id, f.step_id, f.kind) for f in result.fired] == [
        (ann, "price_changed", "signal"), (bob, "price_changed", "signal")]
    for moved in (ann, bob):
        assert deployed.get(moved).waiting_steps == ["tell_new_price"]
        (caught,) = [e for e in deployed.history(moved) if e.kind == "signal"]
        assert caught.data == {"signal_id": "s-1", "new_price": 42}
    assert deployed.get(not_yet).waiting_steps == ["share_offer"]
    with deployed.store.read() as conn:
        receipts = conn.execute(select(RECEIPT.c.instance_id, RECEIPT.c.prospect_id).where(
            RECEIPT.c.message_id == "s-1").order_by(RECEIPT.c.instance_id)).all()
    assert [tuple(r) for r in receipts] == [(ann, "ann"), (bob, "bob")]


def test_the_same_signal_id_moves_an_instance_once_and_a_later_id_moves_new_waiters(
    deployed: Engine
) -> None:
    ann = offered(deployed, "ann")
    assert deployed.broadcast("price_change", signal_id="s-1").delivered == (ann,)
    bob = offered(deployed, "bob")
    deployed.forget()

    again = deployed.broadcast("price_change", signal_id="s-1")
    assert again.delivered == (bob,)  # ann no longer waits; bob never had s-1
    assert deployed.broadcast("price_change", signal_id="s-2").delivered == ()
    assert kinds(deployed, ann).count(("price_changed", "signal")) == 1


def test_a_broadcast_nobody_waits_for_is_lost_and_recorded_nowhere(deployed: Engine) -> None:
    result = deployed.broadcast("price_change", signal_id="lost")

    assert (result.delivered, result.fired) == ((), ())
    with deployed.store.read() as conn:
        assert conn.execute(select(RECEIPT).where(RECEIPT.c.message_id == "lost")).first() \
            is None


def test_a_broadcast_of_a_signal_no_map_catches_is_refused_by_name(deployed: Engine) -> None:
    # nobody waits for either: one is a signal the maps catch (lost, as BPMN says), the other
    # a name no map catches (a typo), which is refused with the nearest caught name
    assert deployed.broadcast("offer_withdrawn").delivered == ()  # a boundary event's
    deployed.forget()
    with pytest.raises(UnknownSignal) as refused:
        deployed.broadcast("price_chnage", signal_id="typo")
    assert refused.value.suggestion == "price_change"
    assert {"price_change", "offer_withdrawn", "pack_ready"} <= set(refused.value.known)
    assert "nothing was delivered or recorded" in str(refused.value)
    with deployed.store.read() as conn:
        assert conn.execute(select(RECEIPT).where(RECEIPT.c.message_id == "typo")).first() \
            is None


def test_a_boundary_signal_interrupts_the_step_it_watches(deployed: Engine) -> None:
    cy = deployed.start("offer_window", "cy", "d1").id
    assert [(w.step_id, w.kind) for w in deployed.get(cy).waiting] == [
        ("present_offer", "user"), ("withdrawn", "signal")]
    deployed.forget()

    assert deployed.broadcast("offer_withdrawn").delivered == (cy,)

    assert deployed.get(cy).waiting_steps == ["apologize"]
    assert kinds(deployed, cy)[-3:] == [
        ("present_offer", "cancelled"), ("withdrawn", "signal"), ("apologize", "entered")]


def test_a_message_is_not_a_signal(deployed: Engine) -> None:
    ann = offered(deployed, "ann")

    # a prospect event of that name is no signal: no map catches a message of that name, so
    # nothing ever could take it, and it is refused (it used to be held for ann)
    with pytest.raises(UnknownMessage):
        deployed.signal("price_change", "ann")
    assert deployed.get(ann).waiting_steps == ["price_changed"]
    assert deployed.show(ann).held == ()


def test_a_signal_thrown_inside_an_instance_is_caught_there_and_only_there(
    deployed: Engine
) -> None:
    first = deployed.start("handoff", "ann", "d1").id
    second = deployed.start("handoff", "bob", "d1").id
    assert sorted(deployed.get(first).waiting_steps) == ["pack_is_ready", "prepare_pack"]
    deployed.forget()

    moved = deployed.complete(first, "prepare_pack")

    assert moved.waiting_steps == ["call_prospect"]
    assert ("pack_is_ready", "signal") in kinds(deployed, first)
    assert sorted(deployed.get(second).waiting_steps) == ["pack_is_ready", "prepare_pack"]


@pytest.mark.parametrize("message", ["video_played", "webinar_joined"])
def test_a_start_event_with_several_messages_starts_on_whichever_comes(
    deployed: Engine, message: str
) -> None:
    instance = deployed.start("two_doors", "ann", "d1")
    assert sorted((w.step_id, w.kind, w.message) for w in instance.waiting) == [
        ("interest_shown", "message", "video_played"),
        ("interest_shown", "message", "webinar_joined")]
    deployed.forget()

    result = deployed.signal(message, "ann")

    assert result.delivered == (instance.id,)
    assert [(f.step_id, f.kind) for f in result.fired] == [("interest_shown", "message")]
    assert deployed.get(instance.id).waiting_steps == ["follow_up"]


def test_several_message_start_events_take_the_path_of_the_message_that_came(
    deployed: Engine
) -> None:
    instance = deployed.start("many_doors", "ann", "d1")
    assert sorted((w.step_id, w.message) for w in instance.waiting) == [
        ("start_video", "video_played"), ("start_webinar", "webinar_joined")]
    deployed.forget()

    assert deployed.signal("webinar_joined", "ann").delivered == (instance.id,)

    assert deployed.get(instance.id).waiting_steps == ["talk_webinar"]
    assert kinds(deployed, instance.id)[-3:] == [
        ("start_video", "cancelled"), ("start_webinar", "message"), ("talk_webinar", "entered")]


def test_a_broadcast_after_the_deadline_leaves_the_gateway_to_the_timer(
    deployed: Engine, clock: ManualClock
) -> None:
    """Timers due by now happened before the signal: an event-based gateway takes exactly one
    branch, the deadline's, and the late signal finds nothing to move (BPMN 2.0 §13.3.4)."""
    instance = deployed.start("signal_or_deadline", "ann", "d1")
    deployed.complete(instance.id, "share")
    on_time = deployed.start("signal_or_deadline", "bob", "d1")
    clock.advance(timedelta(days=1, hours=2))
    deployed.complete(on_time.id, "share")  # its deadline is a day away
    deployed.forget()

    result = deployed.broadcast("sale_over", signal_id="s-late")

    assert result.delivered == (on_time.id,)
    assert deployed.get(instance.id).waiting_steps == ["nudge"]
    assert [s for s, k in kinds(deployed, instance.id) if k in ("timer", "signal")] == ["late"]
    assert deployed.get(on_time.id).waiting_steps == ["bye"]
