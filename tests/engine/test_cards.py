"""Action cards over the LifeVantage journeys, with the stored recommender, on SQLite and
PostgreSQL: who sees which card, what it offers, in which order, and that building cards never
reads or deserializes a workflow's state."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
import yaml
from sqlalchemy import event

from content_catalog import StoredRecommender
from engine import Engine, ManualClock, ProspectRef, StepRequired, Store
from engine.runtime.cards import ActionCard
from tests.engine._lifevantage import (
    DAY,
    HOUR,
    LIFEVANTAGE,
    US,
    recommending_engine,
)

JOURNEY = yaml.safe_load((LIFEVANTAGE / "prospect_journey.yaml").read_text(encoding="utf-8"))
GUIDANCE = {s["id"]: s["card"].strip() for s in JOURNEY["steps"] if "card" in s}
MX = {"market": "MX", "locale": "es-MX"}
CARD_KEYS = {
    "instance_id", "process_id", "prospect_id", "distributor_id", "role", "step_id",
    "step_name", "control", "guidance", "basis", "hook", "asks", "since", "follow_up_at",
    "overdue", "waiting_for", "content", "suggested_message", "policy_version", "propensity",
    "no_content",
}
SUGGESTION_KEYS = {"option_id", "score", "probability", "top", "kind", "title", "url"}
# A statement reading the serialized workflow (the state document) or the BPMN documents.
STATE_READ = re.compile(r"\binstance\.state\b|\bdefinition\.documents\b", re.IGNORECASE)


def prospect(engine: Engine, pid: str, distributor: str, first_name: str,
             market: dict[str, str] = US) -> int:
    context = {**market, "prospect_first_name": first_name}
    return engine.start("prospect_journey", pid, distributor, context, actor=distributor).id


def entered(engine: Engine, instance_id: int, step: str) -> Any:
    (found,) = [e for e in engine.history(instance_id)
                if (e.step_id, e.kind) == (step, "entered")]
    return found


def by_prospect(cards: list[ActionCard]) -> dict[str, ActionCard]:
    found = {c.prospect_id: c for c in cards}
    assert len(found) == len(cards), "one waiting step per prospect here"
    return found


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """Every SQL statement sent to the database inside the block."""
    seen: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)


# -- what a card says ----------------------------------------------------------------------


def test_cards_list_exactly_the_distributors_waiting_steps_with_content_and_message(
    lv: Engine, clock: ManualClock
) -> None:
    ann = prospect(lv, "ann", "D", "Ann")
    clock.advance(HOUR)
    ben = prospect(lv, "ben", "D", "Ben")
    lv.complete(ben, "add_contact", actor="D")
    clock.advance(HOUR)
    lupe = prospect(lv, "lupe", "D", "Lupe", MX)
    other = prospect(lv, "otto", "E", "Otto")

    cards = lv.cards("D")
    assert {(c.prospect_id, c.step_id) for c in cards} == {
        ("ann", "add_contact"), ("ben", "share_intro"), ("lupe", "add_contact")}
    assert [(c.prospect_id, c.step_id) for c in lv.cards("E")] == [("otto", "add_contact")]
    assert lv.cards("nobody") == []
    assert {c.instance_id for c in cards} == {ann, ben, lupe}
    assert other not in {c.instance_id for c in cards}

    recommender = StoredRecommender(lv.store)
    contexts = {"ann": {**US, "prospect_first_name": "Ann"},
                "ben": {**US, "prospect_first_name": "Ben"},
                "lupe": {**MX, "prospect_first_name": "Lupe"}}
    for card in cards:
        assert (card.process_id, card.distributor_id, card.role, card.control) == (
            "prospect_journey", "D", "distributor", "guidance")
        assert card.guidance == GUIDANCE[card.step_id]
        assert card.basis is None

        # The card leads with what was logged as shown when the step was entered.
        logged = entered(lv, card.instance_id, card.step_id)
        top = card.content[0]
        assert top.top and not any(s.top for s in card.content[1:])
        assert (logged.hook, logged.content_shown, logged.propensity, logged.policy_version) == (
            card.hook, top.option_id, card.propensity, card.policy_version)
        assert card.propensity == top.probability
        assert 0 < top.probability <= 1

        # The probabilities are the active policy's ranking for this prospect's context.
        ranked = recommender.recommend(card.hook or "", contexts[card.prospect_id],
                                       random.Random(0))
        assert ranked is not None and ranked.policy_version == card.policy_version
        assert {s.option_id: s.probability for s in card.content} == {
            r.option_id: r.probability for r in ranked.ranked}
        assert math.isclose(sum(s.probability for s in card.content), 1.0)
        assert all(s.title for s in card.content)

    by = by_prospect(cards)
    assert (by["ann"].hook, by["ben"].hook) == ("first_contact_message", "intro_video")
    # The message is a template from the ranking, filled in with the prospect's name.
    assert by["ann"].suggested_message and "Ann" in by["ann"].suggested_message
    assert "{prospect_first_name}" not in by["ann"].suggested_message
    assert by["ben"].suggested_message is None  # intro videos are no message templates
    assert by["ben"].content[0].url and by["ben"].content[0].kind == "video"
    # A Mexican prospect is offered the Spanish content only, greeted by name.
    assert {s.option_id for s in by["lupe"].content} <= {
        "first_contact_es_corto", "first_contact_es_historia"}
    assert by["lupe"].suggested_message and by["lupe"].suggested_message.startswith(
        "¡Hola Lupe")

    shape = json.loads(json.dumps(by["ann"].to_dict()))
    assert set(shape) == CARD_KEYS
    assert {frozenset(s) for s in shape["content"]} == {frozenset(SUGGESTION_KEYS)}
    assert shape["since"] == by["ann"].since.isoformat()
    assert (shape["follow_up_at"], shape["waiting_for"], shape["overdue"]) == (None, [], False)
    assert json.loads(json.dumps(by["ben"].to_dict()))["follow_up_at"] == (
        clock.now() - HOUR + 5 * DAY).isoformat()


def test_a_card_leads_with_what_was_shown_even_when_the_policy_explored(
    lv_sqlite: Engine,
) -> None:
    lv = lv_sqlite
    for n in range(24):
        prospect(lv, f"p{n}", "D", f"P{n}")
    explored = 0
    for card in lv.cards("D"):
        best = max(card.content, key=lambda s: s.probability)
        logged = entered(lv, card.instance_id, card.step_id)
        assert card.content[0].top and card.content[0].option_id == logged.content_shown
        assert card.propensity == card.content[0].probability == logged.propensity
        explored += card.content[0].option_id != best.option_id
    assert explored  # with this seed the policy showed a lower-ranked option at least once


def test_the_ranking_is_kept_not_redrawn_when_cards_are_read_again(
    lv_sqlite: Engine, clock: ManualClock
) -> None:
    lv = lv_sqlite
    for n in range(6):
        prospect(lv, f"p{n}", "D", f"P{n}")
    first = [c.to_dict() for c in lv.cards("D")]
    lv.rng.seed(12345)  # any new draw would now differ
    fresh = recommending_engine(lv.store, clock, seed=99)
    assert [c.to_dict() for c in lv.cards("D")] == first
    assert [c.to_dict() for c in fresh.cards("D")] == first


# -- order -----------------------------------------------------------------------------------


def ordering_scenario(lv: Engine, clock: ManualClock) -> datetime:
    """Five of D's prospects at different steps, and one of E's; returns the start time."""
    t0 = clock.now()
    prospect(lv, "ann", "D", "Ann")  # oldest card, no timer on it
    otto = prospect(lv, "otto", "E", "Otto")  # someone else's, overdue soonest of all
    lv.complete(otto, "add_contact")
    clock.set(t0 + HOUR)
    ben = prospect(lv, "ben", "D", "Ben")
    lv.complete(ben, "add_contact")  # share_intro: stuck timer due t0 + 1h + 5d
    clock.set(t0 + 2 * HOUR)
    cy = prospect(lv, "cy", "D", "Cy")
    lv.complete(cy, "add_contact")
    lv.complete(cy, "share_intro")
    lv.signal("video_played", "cy")  # conversation: stuck timer due t0 + 2h + 7d
    clock.set(t0 + DAY)
    dee = prospect(lv, "dee", "D", "Dee")
    lv.complete(dee, "add_contact")  # share_intro: due t0 + 6d
    clock.set(t0 + 2 * DAY)
    prospect(lv, "eve", "D", "Eve")
    return t0


def test_overdue_cards_come_first_then_by_follow_up_time_then_oldest(
    lv: Engine, clock: ManualClock
) -> None:
    t0 = ordering_scenario(lv, clock)

    clock.set(t0 + HOUR + 5 * DAY - timedelta(seconds=1))
    assert [c.overdue for c in lv.cards("D")] == [False] * 5
    clock.set(t0 + HOUR + 5 * DAY)  # due is overdue
    assert [(c.prospect_id, c.overdue) for c in lv.cards("D")][:2] == [("ben", True),
                                                                      ("dee", False)]
    clock.set(t0 + 5 * DAY + 2 * HOUR)  # past Ben's stuck timer, before Dee's
    cards = lv.cards("D")
    assert [(c.prospect_id, c.step_id, c.overdue, c.follow_up_at) for c in cards] == [
        ("ben", "share_intro", True, t0 + HOUR + 5 * DAY),
        ("dee", "share_intro", False, t0 + 6 * DAY),
        ("cy", "conversation", False, t0 + 2 * HOUR + 7 * DAY),
        ("ann", "add_contact", False, None),
        ("eve", "add_contact", False, None),
    ]
    # Dee's card is younger than Cy's but is due sooner; Ann's is oldest but has no follow-up.
    assert by_prospect(cards)["cy"].since < by_prospect(cards)["dee"].since
    assert by_prospect(cards)["ann"].since == min(c.since for c in cards)

    clock.set(t0 + 6 * DAY + HOUR)  # Dee is overdue now too: most overdue first
    assert [(c.prospect_id, c.overdue) for c in lv.cards("D")] == [
        ("ben", True), ("dee", True), ("cy", False), ("ann", False), ("eve", False)]
    assert [c.prospect_id for c in lv.cards("E")] == ["otto"]


def test_past_the_limit_the_least_urgent_cards_are_left_out(
    lv: Engine, clock: ManualClock
) -> None:
    t0 = ordering_scenario(lv, clock)
    clock.set(t0 + 5 * DAY + 2 * HOUR)
    everything = [c.prospect_id for c in lv.cards("D")]
    assert everything == ["ben", "dee", "cy", "ann", "eve"]
    # Ann's instance is the oldest row, yet the three soonest follow-ups are the ones kept.
    assert [c.prospect_id for c in lv.cards("D", limit=3)] == everything[:3]


def test_a_stuck_card_stays_overdue_after_the_worker_fires_its_timer(
    lv_sqlite: Engine, clock: ManualClock
) -> None:
    lv = lv_sqlite
    t0 = clock.now()
    prospect(lv, "ann", "D", "Ann")
    clock.set(t0 + HOUR)
    lv.complete(prospect(lv, "ben", "D", "Ben"), "add_contact")
    clock.set(t0 + 5 * DAY + 2 * HOUR)
    assert [(c.prospect_id, c.overdue) for c in lv.cards("D")] == [("ben", True),
                                                                   ("ann", False)]
    assert [f.step_id for f in lv.tick()] == ["Event_share_intro_stuck"]
    assert [(c.prospect_id, c.overdue) for c in lv.cards("D")] == [("ben", True),
                                                                   ("ann", False)]
    # its timer is gone, yet a page (the API's, the card page's) still leads with it
    page, _ = lv.cards_page("D", size=1)
    assert [c.prospect_id for c in page] == ["ben"]
    assert [c.prospect_id for c in lv.cards("D", limit=1)] == ["ben"]


# -- required steps and guidance -------------------------------------------------------------


def test_the_enrollment_card_is_required_with_its_basis_and_cannot_be_skipped(
    lv_sqlite: Engine,
) -> None:
    lv = lv_sqlite
    ivy = prospect(lv, "ivy", "D", "Ivy")
    lv.complete(ivy, "add_contact")
    lv.complete(ivy, "share_intro")
    lv.signal("video_played", "ivy")
    lv.complete(ivy, "conversation", {"interest": "distributor"})
    (card,) = lv.cards("D")
    assert (card.step_id, card.control, card.hook) == ("enroll", "required", "enroll_invitation")
    assert card.basis and "Income Disclosure Statement" in card.basis
    assert card.guidance == GUIDANCE["enroll"]
    assert card.content and card.content[0].top
    assert card.suggested_message and "Ivy" in card.suggested_message

    before = lv.get(ivy)
    with pytest.raises(StepRequired) as refused:
        lv.skip(ivy, "enroll", "wants to think", actor="D")
    assert (refused.value.instance_id, refused.value.step) == (ivy, "enroll")
    assert refused.value.basis == card.basis
    after = lv.get(ivy)
    assert (after.version, after.waiting_steps) == (before.version, ["enroll"])
    assert [c.step_id for c in lv.cards("D")] == ["enroll"]

    # Guidance steps are the distributor's call: skip one, do another differently.
    gus = prospect(lv, "gus", "D", "Gus")
    lv.skip(gus, "add_contact", "met in person", actor="D")
    lv.vary(gus, "share_intro", "showed it on my phone", actor="D")
    kinds = [(e.step_id, e.kind) for e in lv.history(gus) if e.kind in ("skipped", "varied")]
    assert kinds == [("add_contact", "skipped"), ("share_intro", "varied")]
    assert [c.prospect_id for c in lv.cards("D")] == ["ivy"]  # Gus now waits for the video
    lv.complete(ivy, "enroll", actor="D")
    assert lv.get(ivy).status == "completed"
    assert lv.cards("D") == []


# -- sponsors --------------------------------------------------------------------------------


def test_the_sponsor_check_in_goes_to_the_sponsor_not_the_new_distributor(
    lv_sqlite: Engine, clock: ManualClock
) -> None:
    lv = lv_sqlite
    onboarding = lv.start("distributor_onboarding", "D", "D", {**US, "sponsor_id": "S"},
                          actor="D").id
    prospect(lv, "sam", "S", "Sam")  # the sponsor's own prospect
    assert [c.step_id for c in lv.cards("D")] == ["welcome"]
    assert [c.prospect_id for c in lv.cards("S")] == ["sam"]
    lv.complete(onboarding, "welcome", actor="D")
    lv.complete(onboarding, "add_first_prospects", actor="D")
    lv.skip(onboarding, "product_training", actor="D")

    clock.advance(10 * DAY - timedelta(seconds=1))
    lv.tick()
    assert [c.prospect_id for c in lv.cards("S")] == ["sam"]  # not before ten days
    clock.advance(timedelta(seconds=1))
    assert [f.step_id for f in lv.tick()] == ["Event_first_sale_stuck"]

    sponsor = [c for c in lv.cards("S") if c.instance_id == onboarding]
    assert [(c.step_id, c.role, c.prospect_id, c.distributor_id, c.since) for c in sponsor] == [
        ("sponsor_check_in", "sponsor", "D", "D", clock.now())]
    (check_in,) = sponsor
    assert check_in.hook == "sponsor_alert_message" and check_in.content
    assert check_in.guidance and "first sale" in check_in.guidance
    assert entered(lv, onboarding, "sponsor_check_in").content_shown == (
        check_in.content[0].option_id)
    assert [(c.step_id, c.role) for c in lv.cards("D")] == [("first_sale", "distributor")]
    lv.complete(onboarding, "sponsor_check_in", actor="S")
    assert [c.prospect_id for c in lv.cards("S")] == ["sam"]


# -- no workflow is deserialized to build cards ----------------------------------------------


def test_cards_read_no_workflow_state_even_from_a_cold_engine(
    lv: Engine, clock: ManualClock
) -> None:
    t0 = ordering_scenario(lv, clock)
    onboarding = lv.start("distributor_onboarding", "D", "D", {"sponsor_id": "S"}).id
    clock.set(t0 + 5 * DAY + 2 * HOUR)
    warm = [c.to_dict() for c in lv.cards("D")]
    assert len(warm) == 6

    lv.forget()  # no cached workflows or parsed specs left
    with statements(lv.store) as sql:
        after_forget = [c.to_dict() for c in lv.cards("D")]
    assert after_forget == warm
    assert sql and not [s for s in sql if STATE_READ.search(s)]

    cold = recommending_engine(lv.store, clock, seed=7, hot_instances=0)
    with statements(lv.store) as sql:
        assert [c.to_dict() for c in cold.cards("D")] == warm
    assert sql and not [s for s in sql if STATE_READ.search(s)]

    # The check would notice a state read: acting on a step does load the workflow.
    with statements(lv.store) as sql:
        cold.complete(onboarding, "welcome", actor="D")
    assert [s for s in sql if STATE_READ.search(s)]
    steps = {c.step_id for c in cold.cards("D") if c.instance_id == onboarding}
    assert steps == {"add_first_prospects", "product_training"}
    assert cold.cards("D") == lv.cards("D")
    assert cold.get(ProspectRef("D")).waiting_steps  # the instance moved on, cold or not


def test_a_card_without_content_says_why(lv: Engine, clock: ManualClock) -> None:
    """An empty card is not taken for a fault, and a mistyped market shows."""
    prospect(lv, "ann", "D", "Ann")
    prospect(lv, "cam", "D", "Cam", {"market": "CA", "locale": "en-CA"})
    prospect(lv, "uma", "D", "Uma", {"market": "USA", "locale": "en-US"})  # a typo for US
    cards = by_prospect(lv.cards("D"))
    assert cards["ann"].content and cards["ann"].no_content is None
    for who, market, locale in (("cam", "CA", "en-CA"), ("uma", "USA", "en-US")):
        card = cards[who]
        assert card.content == () and card.suggested_message is None
        assert card.no_content == (
            "catalog 'lifevantage-us' has no content for hook 'first_contact_message' in "
            f"market {market} with locale {locale}; it has some for markets MX, US and "
            "locales en-US, es-MX")


def test_a_card_entered_before_any_catalog_says_so(db_url: str, clock: ManualClock) -> None:
    from nextmove import open_store
    store = open_store(db_url)
    try:
        engine = recommending_engine(store, clock)
        engine.deploy([LIFEVANTAGE / "prospect_journey.yaml"])  # the map, no catalog yet
        prospect(engine, "ann", "D", "Ann")
        (card,) = engine.cards("D")
        assert card.content == () and card.no_content is not None
        assert card.no_content.startswith("no content catalog is in use")
        engine.deploy([LIFEVANTAGE])
        engine.recommender.refresh()  # type: ignore[union-attr]
        (card,) = engine.cards("D")
        assert card.content == () and card.no_content is not None
        assert card.no_content.startswith(
            "nothing was ranked for hook 'first_contact_message' when the step was entered")
        engine.complete(card.instance_id, card.step_id, actor="D")
        (card,) = engine.cards("D")
        assert card.content and card.no_content is None
    finally:
        store.dispose()
