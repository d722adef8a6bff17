"""The analytics over the step log on a small journey driven by hand, where every count and
every waiting time is known: funnel, waits, content use and first sales, on SQLite and
PostgreSQL."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

import analytics
from analytics import ContentUse, FirstSales, StepWait
from engine import DefinitionNotFound, Engine, ManualClock, ProspectRef, Store
from nextmove import open_engine, open_store
from tests.conftest import PG_ADMIN_URL, REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # the conftest clock's start
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
MINUTE = timedelta(minutes=1)
US = {"market": "US", "locale": "en-US"}


def recommending_engine(store: Store, clock: ManualClock) -> Engine:
    return open_engine(store, clock=clock, rng=random.Random(1))


@contextmanager
def pg_database(template: str) -> Iterator[str]:
    """A PostgreSQL database made from the conftest's schema template, dropped afterwards."""
    name = f"nextmove_log_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def deployed(url: str, clock: ManualClock) -> Iterator[Engine]:
    store = open_store(url)
    try:
        engine = recommending_engine(store, clock)
        engine.deploy([LIFEVANTAGE])
        yield engine
    finally:
        store.dispose()


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Store]:
    """The three prospects' log, written once per backend; the tests only read it."""
    clock = ManualClock(T0)
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("log") / "log.db"
        with deployed(f"sqlite:///{path}", clock) as engine:
            three_prospects(engine, clock)
            yield engine.store
        return
    with pg_database(request.getfixturevalue("pg_template")) as url, \
            deployed(url, clock) as engine:
        three_prospects(engine, clock)
        yield engine.store


@pytest.fixture
def lv(db_url: str, clock: ManualClock) -> Iterator[Engine]:
    with deployed(db_url, clock) as engine:
        yield engine


def prospect(engine: Engine, pid: str, distributor: str = "D") -> int:
    context = {**US, "prospect_first_name": pid.title()}
    return engine.start("prospect_journey", pid, distributor, context, actor=distributor).id


def shown(engine: Engine, instance_id: int, step: str) -> str:
    (event,) = [e for e in engine.history(instance_id) if (e.step_id, e.kind) == (step, "entered")]
    assert event.content_shown
    return event.content_shown


def another(engine: Engine, instance_id: int, step: str) -> str:
    """An option the card offered besides the one it led with."""
    (card,) = [c for c in engine.cards("D") if (c.instance_id, c.step_id) == (instance_id, step)]
    return next(s.option_id for s in card.content if not s.top)


def three_prospects(lv: Engine, clock: ManualClock) -> None:
    """The log the tests read, hour by hour (t0 = 09:00):

    prospect  add_contact                        share_intro
    p1        t0 → t0+2h   done, suggestion      t0+2h → t0+5h   done, another option
    p2        t0+1h → t0+7h done, suggestion     t0+7h → (still waiting)
    p3        t0+1h → t0+1.5h skipped            t0+1.5h → t0+11.5h varied, suggestion

    and D's own onboarding, started at t0, whose welcome step is still waiting.
    """
    p1 = prospect(lv, "p1")
    lv.start("distributor_onboarding", "D", "D", US)
    clock.set(T0 + HOUR)
    p2, p3 = prospect(lv, "p2"), prospect(lv, "p3")
    clock.set(T0 + 90 * MINUTE)
    lv.skip(p3, "add_contact", "met in person")
    clock.set(T0 + 2 * HOUR)
    lv.complete(p1, "add_contact", used=shown(lv, p1, "add_contact"))
    clock.set(T0 + 5 * HOUR)
    lv.complete(p1, "share_intro", used=another(lv, p1, "share_intro"))
    clock.set(T0 + 7 * HOUR)
    lv.complete(p2, "add_contact", used=shown(lv, p2, "add_contact"))
    clock.set(T0 + 11 * HOUR + 30 * MINUTE)
    lv.vary(p3, "share_intro", "showed it in person", used=shown(lv, p3, "share_intro"))


def test_funnel_counts_arrivals_and_what_people_did_in_order_of_first_arrival(
    log: Store,
) -> None:
    found = analytics.funnel(log, "prospect_journey")
    assert [s.step_id for s in found] == ["Event_start", "add_contact", "share_intro"]
    add, share = found.step("add_contact"), found.step("share_intro")
    assert (add.entered, add.completed, add.skipped, add.varied, add.instances) == (3, 2, 1, 0, 3)
    assert (share.entered, share.completed, share.skipped, share.varied) == (3, 1, 0, 1)
    # p1 and p3 moved on from share_intro (to the video wait); p2 still waits there
    assert (share.moved_on, share.waiting, share.dropped) == (2, 1, 0)
    # 2h, 6h and half an hour at add_contact; 3h and 10h at share_intro
    assert (add.median_hours, add.p90_hours) == (2.0, 5.2)
    assert (share.median_hours, share.p90_hours) == (6.5, 9.3)
    assert [s.step_id for s in analytics.funnel(log, "distributor_onboarding")] == [
        "Event_start", "welcome"]
    with pytest.raises(DefinitionNotFound, match="no deployed process named 'no_such_process'"):
        analytics.funnel(log, "no_such_process")  # not an empty funnel
    assert add.to_dict()["skipped"] == 1


def test_waits_pair_each_arrival_with_what_happened_next_longest_median_first(
    log: Store,
) -> None:
    assert analytics.waits(log, "prospect_journey") == [
        # 3h and 10h; p2 still waits there
        StepWait("share_intro", "Share the intro video", count=2, waiting_now=1,
                 median_hours=6.5, p90_hours=10.0),
        # 2h, 6h and half an hour
        StepWait("add_contact", "Add a prospect", count=3, waiting_now=0,
                 median_hours=2.0, p90_hours=6.0),
    ]
    assert analytics.waits(log, "distributor_onboarding") == [
        StepWait("welcome", "Welcome aboard", 0, 1, 0.0, 0.0)]


def test_content_use_compares_what_was_used_with_what_was_shown(log: Store) -> None:
    assert analytics.content_use(log, "prospect_journey") == [
        ContentUse("first_contact_message", shown=3, used_suggestion=2, used_other=0,
                   skipped=1, varied=0),
        ContentUse("intro_video", shown=3, used_suggestion=1, used_other=1, skipped=0,
                   varied=1),
    ]
    assert [c.hook for c in analytics.content_use(log)] == [
        "first_contact_message", "intro_video", "welcome_training"]


def test_first_sales_judge_distributors_onboarded_long_enough_ago(
    lv: Engine, clock: ManualClock
) -> None:
    # onboarding start -> their prospects' sales (days after T0)
    plan = {"A": (0, [9, 12]), "B": (0, [14]), "C": (0, [15]), "E": (0, []),
            "F": (3, [4]), "G": (8, [9])}
    for distributor, (start, _) in plan.items():
        clock.set(T0 + start * DAY)
        lv.start("distributor_onboarding", distributor, distributor, US)
        prospect(lv, f"{distributor.lower()}1", distributor)
    clock.set(T0 + DAY)
    lv.outcome(ProspectRef("e1"), "customer_order", amount=50.0)  # orders are not sales
    for day in range(16):
        clock.set(T0 + day * DAY)
        for distributor, (_, sales) in plan.items():
            if day in sales:
                lv.outcome(ProspectRef(f"{distributor.lower()}1"), "sale", amount=100.0)

    # Judged at day 18: G (day 8) is too new; a sale at exactly 14 days (B) still counts.
    found = analytics.first_sales(lv.store, T0 + 18 * DAY)
    assert found == FirstSales(distributors=5, within=3, days=14)  # A, B, F of A B C E F
    assert found.to_dict() == {"distributors": 5, "within": 3, "days": 14, "share": 0.6}
    # Onboarded exactly 14 days before (F at day 3, judged at day 17) is judged.
    assert analytics.first_sales(lv.store, T0 + 17 * DAY) == FirstSales(5, 3, 14)
    assert analytics.first_sales(lv.store, T0 + 17 * DAY - MINUTE) == FirstSales(4, 2, 14)
    assert analytics.first_sales(lv.store, T0 + 18 * DAY, days=7) == FirstSales(6, 2, 7)
    assert analytics.first_sales(lv.store, T0 + 13 * DAY) == FirstSales(0, 0, 14)
    assert analytics.first_sales(lv.store, T0 + 13 * DAY).share == 0.0
