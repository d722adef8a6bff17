"""The funnel on the engine's own events (every count and time known) and on the imported
real logs (their known case, event and activity counts), on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import analytics
from engine import Engine, ManualClock, NotInData, ProspectRef
from learner import import_log, variants
from nextmove import open_engine, open_store
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
US = {"market": "US", "locale": "en-US"}
MX = {"market": "MX", "locale": "es-MX"}


@pytest.fixture
def lv(db_url: str, clock: ManualClock) -> Iterator[Engine]:
    store = open_store(db_url)
    engine = open_engine(store, clock=clock, rng=random.Random(3))
    engine.deploy([LIFEVANTAGE])
    yield engine
    store.dispose()


def four_prospects(lv: Engine, clock: ManualClock) -> None:
    """a (D, US): add 2h, share 4h, plays the video 1h later, talks 10h later -> customer,
    order 1h later, sale. b (D, US): add 6h, share 20h, no video: the 2-day timer, follow-up
    5h later, then waits in the conversation. c (E, MX): skips add after 1h, waits at share.
    d (E, US): still waits at add_contact. Started at T0 (a, b, c) and T0+1d (d)."""
    a = lv.start("prospect_journey", "a", "D", US, actor="D").id
    b = lv.start("prospect_journey", "b", "D", US, actor="D").id
    c = lv.start("prospect_journey", "c", "E", MX, actor="E").id
    clock.set(T0 + HOUR)
    lv.skip(c, "add_contact", "met at the gym")
    clock.set(T0 + 2 * HOUR)
    lv.complete(a, "add_contact")
    clock.set(T0 + 6 * HOUR)
    lv.complete(a, "share_intro")
    lv.complete(b, "add_contact")
    clock.set(T0 + 7 * HOUR)
    lv.signal("video_played", "a")
    clock.set(T0 + 17 * HOUR)
    lv.complete(a, "conversation", {"interest": "customer"})
    clock.set(T0 + 18 * HOUR)
    lv.complete(a, "customer_order")
    lv.outcome(ProspectRef("a"), "customer_order", amount=80.0)
    lv.outcome(ProspectRef("a"), "sale", amount=80.0)
    clock.set(T0 + DAY)
    lv.start("prospect_journey", "d", "E", US, actor="E")
    clock.set(T0 + 26 * HOUR)
    lv.complete(b, "share_intro")
    clock.set(T0 + 74 * HOUR)
    lv.tick()
    clock.set(T0 + 79 * HOUR)
    lv.complete(b, "follow_up")


def test_funnel_counts_times_and_conversion_on_engine_events(
    lv: Engine, clock: ManualClock
) -> None:
    four_prospects(lv, clock)
    found = analytics.funnel(lv.store, "prospect_journey")
    # converted: the outcomes the map declares as converting (an order or an enrollment)
    assert (found.instances, found.converted, found.outcome) == (
        4, 1, "customer_order+distributor_enrolled")
    assert analytics.funnel(lv.store, "prospect_journey", outcome="sale").converted == 1
    # in map order: a topological order of the map's flows
    assert [s.step_id for s in found] == [
        "Event_start", "add_contact", "share_intro", "Event_wait_for_video_video_played",
        "Event_wait_for_video_timer", "follow_up", "conversation", "customer_order",
        "Event_end"]
    # by default for people: their steps and the journey's ends
    assert [s.step_id for s in found.people()] == [
        "add_contact", "share_intro", "follow_up", "conversation", "customer_order",
        "Event_end"]
    assert found.people().step("conversation").conversion == 0.5  # a of a and b
    add = found.step("add_contact")
    assert (add.instances, add.entered, add.completed, add.skipped, add.varied) == (4, 4, 2, 1, 0)
    assert (add.moved_on, add.waiting, add.dropped, add.converted) == (3, 1, 0, 1)
    # a 2h, b 6h, c 1h: percentile_cont over [1, 2, 6]
    assert (add.median_hours, add.p90_hours) == (2.0, pytest.approx(5.2))
    share = found.step("share_intro")
    assert (share.entered, share.completed, share.moved_on, share.waiting) == (3, 2, 2, 1)
    assert (share.median_hours, share.p90_hours) == (12.0, pytest.approx(18.4))  # 4h, 20h
    assert share.conversion == pytest.approx(1 / 3)
    video = found.step("Event_wait_for_video_video_played")
    assert (video.entered, video.median_hours) == (1, 1.0)  # an hour after sharing
    timer = found.step("Event_wait_for_video_timer")
    assert (timer.entered, timer.median_hours) == (1, 48.0)  # fired by the tick at +74h
    end = found.step("Event_end")
    assert (end.entered, end.dropped, end.converted, end.conversion) == (1, 0, 1, 1.0)
    conversation = found.step("conversation")
    assert (conversation.entered, conversation.completed, conversation.waiting) == (2, 1, 1)
    assert found.to_dict()["steps"][1]["conversion"] == 0.25


def test_funnel_filters_by_start_distributor_and_market(lv: Engine, clock: ManualClock) -> None:
    four_prospects(lv, clock)
    assert analytics.funnel(lv.store, "prospect_journey", distributor="E").instances == 2
    assert analytics.funnel(lv.store, "prospect_journey", market="MX").step(
        "add_contact").skipped == 1
    late = analytics.funnel(lv.store, "prospect_journey", since=T0 + HOUR)
    assert (late.instances, [s.step_id for s in late]) == (1, ["Event_start", "add_contact"])
    assert late.step("add_contact").waiting == 1
    # a market (or distributor) no instance has is refused, not read as one with no data
    with pytest.raises(NotInData, match="no instance has market 'CA'; markets with instances: "
                                        "MX, US"):
        analytics.funnel(lv.store, "prospect_journey", market="CA")
    with pytest.raises(NotInData, match="did you mean 'E'"):
        analytics.funnel(lv.store, "prospect_journey", distributor="EE")
    order = analytics.funnel(lv.store, "prospect_journey", outcome="customer_order")
    assert order.converted == 1  # the step and the outcome event of that name, once
    with pytest.raises(analytics.UnknownOutcome, match="did you mean 'customer_order'"):
        analytics.funnel(lv.store, "prospect_journey", outcome="customer_ordr")


@pytest.mark.parametrize(("name", "cases", "events", "activities"), [
    ("running-example.xes", 6, 42, 8),
    ("receipt.csv", 1434, 8577, 27),
])
def test_funnel_on_imported_real_logs_counts_every_event(
    db_url: str, corpus_logs: Path, name: str, cases: int, events: int, activities: int
) -> None:
    store = open_store(db_url)
    import_log(store, corpus_logs / name, "history")
    found = analytics.funnel(store, "history", outcome="decide"
                             if name.startswith("running") else "T10 Determine necessity "
                             "to stop indication")
    assert found.instances == cases and len(found) == activities
    assert sum(s.entered for s in found) == events
    assert sum(s.completed for s in found) == events
    assert all(s.waiting == 0 for s in found)  # imported cases are over
    # each case ends exactly once: at its last event, moved on from every other one
    ended = sum(s.entered - s.moved_on for s in found)
    assert ended == cases
    if name.startswith("running"):
        register = found.step("register request")
        assert (register.instances, register.median_hours) == (6, 0.0)  # first event
        decide = found.step("decide")
        assert (decide.converted, found.converted) == (6, 6)
        # the most common path per variants() starts the same way
        assert len(variants(store, "history")) == 6
    store.dispose()


def test_funnel_pairs_across_an_outcome_event_named_like_the_open_step(
    lv: Engine, clock: ManualClock
) -> None:
    """An outcome event recorded at the step id of an open step (the order placed before the
    person ticks "Send the order link") is not a step event: the visit still runs from its
    arrival to its completion, and the instance counts as converted there."""
    lv.start("prospect_journey", "a", "D", US, actor="D")
    clock.set(T0 + HOUR)
    lv.complete(ProspectRef("a"), "add_contact")
    lv.complete(ProspectRef("a"), "share_intro")
    lv.signal("video_played", "a")
    lv.complete(ProspectRef("a"), "conversation", {"interest": "customer"})
    clock.set(T0 + 2 * HOUR)
    lv.outcome(ProspectRef("a"), "customer_order", amount=80.0)
    clock.set(T0 + 4 * HOUR)
    lv.complete(ProspectRef("a"), "customer_order")
    found = analytics.funnel(lv.store, "prospect_journey", outcome="customer_order")
    order = found.step("customer_order")
    assert (order.entered, order.completed, order.waiting, order.dropped) == (1, 1, 0, 0)
    assert (order.median_hours, order.p90_hours, order.converted) == (3.0, 3.0, 1)
    assert found.step("add_contact").median_hours == 1.0
    assert (found.instances, found.converted) == (1, 1)
