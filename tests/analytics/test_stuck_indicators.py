"""Stuck instances, leading indicators and cohorts on the engine's own events, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

import analytics
from analytics import Indicator
from analytics._read_stuck import open_rows
from analytics._sql import Filters, naive
from engine import Engine, ManualClock, ProspectRef
from nextmove import open_engine
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
US = {"market": "US"}


@pytest.fixture
def lv(db_url: str, clock: ManualClock) -> Iterator[Engine]:
    engine = open_engine(db_url, clock=clock, recommend=False)
    engine.deploy([LIFEVANTAGE])
    yield engine
    engine.store.dispose()


def test_stuck_against_each_steps_p90_and_against_a_threshold(
    lv: Engine, clock: ManualClock
) -> None:
    # five prospects of D finish add_contact after 1, 2, 3, 4 and 5 hours: p90 = 4.6h
    for n in range(5):
        lv.start("prospect_journey", f"p{n}", "D", US)
    for n in range(5):
        clock.set(T0 + (n + 1) * HOUR)
        lv.complete(ProspectRef(f"p{n}"), "add_contact")
    clock.set(T0 + 6 * HOUR)
    lv.start("prospect_journey", "q1", "E", US)  # arrives at 15:00
    lv.start("prospect_journey", "q2", "F", US)
    clock.set(T0 + 10 * HOUR)
    lv.start("prospect_journey", "q3", "E", US)  # arrives at 19:00
    now = T0 + 12 * HOUR
    found = analytics.stuck(lv.store, "prospect_journey", now)
    assert found.limits["add_contact"] == pytest.approx(4.6)
    # q1, q2 waited 6h (> 4.6h); q3 only 2h. share_intro has no ended arrival: no usual time
    assert [(g.step_id, g.distributor_id, g.instances) for g in found.groups] == [
        ("add_contact", "E", 1), ("add_contact", "F", 1)]
    assert found.groups[0].oldest_since == T0 + 6 * HOUR
    assert found.groups[0].waited_hours(now) == 6.0
    assert found.by_step() == {"add_contact": 2}
    limit = analytics.stuck(lv.store, "prospect_journey", now, older_than=timedelta(hours=1))
    assert {(g.step_id, g.distributor_id): g.instances for g in limit.groups} == {
        ("add_contact", "E"): 2, ("add_contact", "F"): 1, ("share_intro", "D"): 5}
    assert limit.to_dict()["instances"] == 8
    mine = analytics.stuck(lv.store, "prospect_journey", now, older_than=timedelta(hours=1),
                           distributor="E")
    assert mine.instances == 2
    assert analytics.stuck(lv.store, "prospect_journey", T0).groups == ()


def test_arrivals_after_now_are_neither_stuck_nor_waiting(lv: Engine, clock: ManualClock) -> None:
    lv.start("prospect_journey", "p0", "D", US)  # arrives at T0
    clock.set(T0 + 10 * HOUR)
    lv.start("prospect_journey", "p1", "E", US)  # after the `now` asked about below
    now = T0 + 5 * HOUR
    # add_contact asked for as a deliberate wait: every open arrival there is listed, but
    # only those that existed at `now` (none with a negative wait)
    found = open_rows(lv.store, Filters("prospect_journey"), now, {}, {"add_contact"})
    assert [(r[0], r[2], r[3]) for r in found.waiting] == [("add_contact", 1, naive(T0))]
    before = analytics.stuck(lv.store, "prospect_journey", T0 - DAY, older_than=-HOUR)
    assert before.groups == () and before.waits == ()


def test_indicators_and_cohorts_follow_the_configured_steps(
    lv: Engine, clock: ManualClock
) -> None:
    # A enrolls at T0, adds 3 prospects, shares with 2, talks with 1 who orders on day 3;
    # B enrolls a week later, adds one prospect, no sale.
    lv.start("distributor_onboarding", "A", "A", US)
    for n in range(3):
        lv.start("prospect_journey", f"a{n}", "A", US, actor="A")
    clock.set(T0 + HOUR)
    for n in range(2):
        lv.complete(ProspectRef(f"a{n}"), "add_contact")
        lv.complete(ProspectRef(f"a{n}"), "share_intro")
    lv.signal("video_played", "a0")
    clock.set(T0 + 3 * DAY)
    lv.complete(ProspectRef("a0"), "conversation", {"interest": "customer"})
    lv.outcome(ProspectRef("a0"), "sale", amount=50.0)
    clock.set(T0 + 7 * DAY)
    lv.start("distributor_onboarding", "B", "B", US)
    lv.start("prospect_journey", "b0", "B", US)
    as_of = T0 + 21 * DAY
    found = analytics.indicators(lv.store, as_of=as_of)
    a, b = found.distributors
    assert (a.distributor_id, a.enrolled_at, a.weeks) == ("A", T0, 3.0)
    assert a.counts == {"contacts_added": 3, "content_shared": 4, "meetings_calls": 1}
    assert a.per_week("contacts_added") == 1.0
    assert (a.days_to_first_sale, a.first_sale_within) == (3.0, True)
    assert (b.weeks, b.counts["contacts_added"], b.days_to_first_sale) == (2.0, 1, None)
    assert b.first_sale_within is False
    assert (found.observed, found.first_sale_share) == (2, 0.5)
    # judged at day 20, B (enrolled day 7) has not been watched for 14 days yet
    early = analytics.indicators(lv.store, as_of=T0 + 20 * DAY)
    assert early.distributors[1].first_sale_within is None and early.observed == 1
    # the mapping is data: content shared = intro videos only
    only_video = analytics.with_overrides(
        [analytics.parse_indicator("content_shared=hook:intro_video")])
    assert analytics.indicators(lv.store, definitions=only_video, as_of=as_of
                                ).distributors[0].counts["content_shared"] == 2
    weeks = analytics.cohorts(lv.store, as_of=as_of).weeks
    assert [(w.week, w.distributors, w.observed, w.first_sale_within) for w in weeks] == [
        (date(2026, 1, 5), 1, 1, 1), (date(2026, 1, 12), 1, 1, 0)]
    assert weeks[0].per_week["content_shared"] == pytest.approx(4 / 3)
    assert (weeks[0].median_days_to_first_sale, weeks[1].median_days_to_first_sale) == (3.0,
                                                                                        None)


def test_parse_indicator_reads_steps_hooks_and_kinds() -> None:
    assert analytics.parse_indicator("contacts_added=add_contact@entered") == Indicator(
        "contacts_added", ("add_contact",), (), ("entered",))
    assert analytics.parse_indicator("calls = check_in, hook:presentation @completed+varied"
                                     ) == Indicator("calls", ("check_in",), ("presentation",),
                                                    ("completed", "varied"))
    for bad in ("no equals sign", "x=", "x=a@played"):
        with pytest.raises(analytics.IndicatorSpecError):
            analytics.parse_indicator(bad)


def test_a_process_filter_picks_distributors_and_keeps_their_sales(
    lv: Engine, clock: ManualClock
) -> None:
    # A enrolls (onboarding) and sells on a prospect's journey; C never enrolled, only prospects
    lv.start("distributor_onboarding", "A", "A", US)
    lv.start("prospect_journey", "a0", "A", US, actor="A")
    lv.start("prospect_journey", "c0", "C", US, actor="C")
    clock.set(T0 + 2 * DAY)
    lv.outcome(ProspectRef("a0"), "sale", amount=50.0)
    as_of = T0 + 21 * DAY
    onboarding = analytics.indicators(lv.store, as_of=as_of, process_id="distributor_onboarding")
    [a] = onboarding.distributors
    assert (a.distributor_id, a.days_to_first_sale, a.first_sale_within) == ("A", 2.0, True)
    assert a.counts["contacts_added"] == 0  # counted on the onboarding process only
    journey = analytics.indicators(lv.store, as_of=as_of, process_id="prospect_journey")
    assert [(d.distributor_id, d.counts["contacts_added"]) for d in journey.distributors] == [
        ("A", 1), ("C", 1)]
    weeks = analytics.cohorts(lv.store, as_of=as_of, process_id="distributor_onboarding").weeks
    assert [(w.distributors, w.first_sale_within) for w in weeks] == [(1, 1)]
