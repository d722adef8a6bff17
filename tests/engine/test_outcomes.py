"""What the log records about content and results: the content used against what the card
showed, a varied step's note, business outcomes, and a distributor's first sale — on SQLite
and PostgreSQL, with the LifeVantage journeys and the stored recommender."""

from __future__ import annotations

from typing import Any

import pytest

import analytics
from engine import Engine, InstanceNotFound, InvalidInput, ManualClock, NextmoveError, ProspectRef
from tests.engine._lifevantage import (
    DAY,
    HOUR,
    T0,
    US,
)


def prospect(engine: Engine, pid: str, distributor: str, first_name: str = "Ann") -> int:
    context = {**US, "prospect_first_name": first_name}
    return engine.start("prospect_journey", pid, distributor, context, actor=distributor).id


def events(engine: Engine, instance_id: int, step: str) -> dict[str, Any]:
    """kind -> the step's single event of that kind."""
    found = [e for e in engine.history(instance_id) if e.step_id == step]
    by_kind = {e.kind: e for e in found}
    assert len(by_kind) == len(found), found
    return by_kind


# -- content used against content shown -----------------------------------------------------


def test_completing_logs_the_content_used_next_to_what_the_card_showed(lv: Engine) -> None:
    ann, ben, cy, dee = (prospect(lv, p, "D") for p in ("ann", "ben", "cy", "dee"))
    cards = {c.prospect_id: c for c in lv.cards("D")}
    shown = cards["ann"].content[0].option_id
    other = next(s.option_id for s in cards["ben"].content if not s.top)
    also_shown = cards["dee"].content[0].option_id

    lv.complete(ann, "add_contact", actor="D", used=shown)
    lv.complete(ben, "add_contact", actor="D", used=other)
    lv.complete(cy, "add_contact", actor="D")  # did it without the suggested content
    lv.complete(dee, "add_contact", actor="D", used=also_shown)

    for instance_id, used in ((ann, shown), (ben, other), (cy, None), (dee, also_shown)):
        card = cards[lv.get(instance_id).prospect_id]
        logged = events(lv, instance_id, "add_contact")
        arrival, done = logged["entered"], logged["completed"]
        assert (arrival.hook, arrival.content_shown, arrival.propensity,
                arrival.policy_version, arrival.content_used) == (
            "first_contact_message", card.content[0].option_id, card.propensity,
            card.policy_version, None)
        assert 0 < arrival.propensity <= 1
        assert (done.hook, done.actor, done.content_used) == ("first_contact_message", "D", used)
        # The next hooked step got its own ranking when it was entered.
        nxt = events(lv, instance_id, "share_intro")["entered"]
        assert nxt.hook == "intro_video" and nxt.content_shown and nxt.propensity

    assert other != cards["ben"].content[0].option_id
    (first_contact,) = [c for c in analytics.content_use(lv.store)
                        if c.hook == "first_contact_message"]
    assert (first_contact.shown, first_contact.used_suggestion, first_contact.used_other,
            first_contact.skipped, first_contact.varied) == (4, 2, 1, 0, 0)


def test_varying_a_step_records_the_note_and_moves_the_journey_on(
    lv_sqlite: Engine, clock: ManualClock
) -> None:
    lv = lv_sqlite
    ann = prospect(lv, "ann", "D")
    lv.complete(ann, "add_contact", actor="D")
    clock.advance(HOUR)
    used = lv.cards("D")[0].content[-1].option_id
    lv.vary(ann, "share_intro", "showed it on my phone over coffee", actor="D", used=used)

    varied = events(lv, ann, "share_intro")["varied"]
    assert (varied.kind, varied.actor, varied.data, varied.content_used, varied.at) == (
        "varied", "D", {"note": "showed it on my phone over coffee"}, used, clock.now())
    assert set(lv.get(ann).waiting_steps) == {"Event_wait_for_video_video_played",
                                              "Event_wait_for_video_timer"}

    lv.signal("video_played", "ann")
    lv.vary(ann, "conversation", "we talked at the gym", actor="D",
            data={"interest": "customer"})
    talk = events(lv, ann, "conversation")["varied"]
    assert talk.data == {"interest": "customer", "note": "we talked at the gym"}
    assert lv.get(ann).waiting_steps == ["customer_order"]  # the decision read the data


# -- outcomes ---------------------------------------------------------------------------------


def test_a_sale_is_an_outcome_event_with_its_amount(lv: Engine, clock: ManualClock) -> None:
    ann = prospect(lv, "ann", "D")
    before = lv.get(ann)
    clock.advance(3 * HOUR)

    sale = lv.outcome(ProspectRef("ann"), "sale", amount=129.5, actor="D")
    assert (sale.instance_id, sale.step_id, sale.kind, sale.data, sale.actor, sale.at) == (
        ann, "sale", "outcome", {"amount": 129.5}, "D", clock.now())
    assert lv.history(ann)[-1] == sale
    lost = lv.outcome(ann, "lost")
    assert (lost.step_id, lost.kind, lost.data, lost.actor) == ("lost", "outcome", None, None)
    assert lv.history(ann)[-2:] == [sale, lost]

    after = lv.get(ann)  # a result is recorded, it does not move the journey
    assert (after.waiting, after.status) == (before.waiting, before.status)
    lv.complete(ann, "add_contact", actor="D")
    assert set(lv.get(ann).waiting_steps) == {"share_intro", "Event_share_intro_stuck"}


def test_an_unknown_outcome_is_refused_with_a_suggestion_and_records_nothing(
    lv_sqlite: Engine,
) -> None:
    lv = lv_sqlite
    ann = prospect(lv, "ann", "D")
    logged = len(lv.history(ann))

    with pytest.raises(NextmoveError, match=r"unknown outcome 'sales'.*did you mean 'sale'\?"):
        lv.outcome(ann, "sales", amount=10.0)
    with pytest.raises(NextmoveError) as refused:
        lv.outcome(ann, "refund")
    assert "did you mean" not in str(refused.value)
    for kind in ("customer_order", "distributor_enrolled", "sale", "lost"):
        assert kind in str(refused.value)
    assert len(lv.history(ann)) == logged
    with pytest.raises(InstanceNotFound):
        lv.outcome(ProspectRef("nobody"), "sale")
    with pytest.raises(InvalidInput, match="amount: must be zero or more, not -5"):
        lv.outcome(ann, "sale", amount=-5)  # a slip: nothing is recorded
    assert len(lv.history(ann)) == logged


def test_a_first_sale_within_14_days_of_onboarding_counts_and_a_later_one_does_not(
    lv_sqlite: Engine, clock: ManualClock
) -> None:
    lv = lv_sqlite
    for distributor in ("A", "B"):
        lv.start("distributor_onboarding", distributor, distributor, {"sponsor_id": "S"})
    clock.set(T0 + DAY)
    prospect(lv, "a1", "A")
    prospect(lv, "b1", "B")
    clock.set(T0 + 2 * DAY)
    lv.outcome(ProspectRef("b1"), "customer_order", amount=60.0)  # an order is not a sale
    clock.set(T0 + 10 * DAY)
    lv.outcome(ProspectRef("a1"), "sale", amount=80.0)
    clock.set(T0 + 15 * DAY)
    lv.outcome(ProspectRef("b1"), "sale", amount=95.0)

    judged = analytics.first_sales(lv.store, T0 + 21 * DAY)
    assert (judged.distributors, judged.within, judged.days, judged.share) == (2, 1, 14, 0.5)
    early = analytics.first_sales(lv.store, T0 + 13 * DAY)  # too soon to judge anyone
    assert (early.distributors, early.within, early.share) == (0, 0, 0.0)
