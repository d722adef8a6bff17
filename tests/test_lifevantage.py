"""The LifeVantage journeys in processes/lifevantage, end to end on SQLite and PostgreSQL.

Time only moves when a test moves the clock; every timer is checked one second before it is
due (nothing fires) and at its due time (it fires once).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta

import pytest

from engine import Engine, ManualClock, ProspectRef, StepRequired
from engine.runtime.cards import ActionCard
from nextmove import load
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
# Distributors are independent: guidance suggests, it never commands.
COMMANDING = re.compile(r"\b(must|always|required to)\b", re.IGNORECASE)

Event = tuple[str, str]


@pytest.fixture
def lv(engine: Engine) -> Engine:
    deployed = engine.deploy([LIFEVANTAGE])
    assert sorted((d.process_id, d.version, d.created) for d in deployed) == [
        ("distributor_onboarding", 1, True), ("prospect_journey", 1, True)]
    assert [(c.name, c.created) for c in deployed.catalogs] == [("lifevantage-us", True)]
    return engine


class Journey:
    """One instance, looked at the way a test wants: what happened since the last look."""

    def __init__(self, engine: Engine, clock: ManualClock, process: str, prospect: str,
                 distributor: str, context: dict[str, str] | None = None) -> None:
        self.engine, self.clock, self.distributor = engine, clock, distributor
        self.ref = ProspectRef(prospect)
        self.id = engine.start(process, prospect, distributor, context, actor=distributor).id
        self.seen = 0
        self.cards_seen: list[ActionCard] = []

    def new_events(self) -> Counter[Event]:
        """Step events since the last call. Order within one step is Spiff's; across steps,
        the calls themselves give it."""
        history = self.engine.history(self.id)
        fresh = history[self.seen:]
        self.seen = len(history)
        return Counter((e.step_id, e.kind) for e in fresh)

    def waiting(self) -> dict[str, tuple[str, datetime | None]]:
        """step id -> (kind, due time)."""
        return {w.step_id: (w.kind, w.due_at) for w in self.engine.get(self.ref).waiting}

    def do(self, step: str, data: dict[str, str] | None = None) -> None:
        self.engine.complete(self.ref, step, data, actor=self.distributor)

    def cards(self, owner: str) -> dict[str, ActionCard]:
        cards = [c for c in self.engine.cards(owner) if c.instance_id == self.id]
        self.cards_seen += cards
        return {c.step_id: c for c in cards}

    def timer_fires_at(self, step: str, due: datetime) -> None:
        """`step` is a timer due at `due`: nothing fires a second before, it fires at `due`."""
        assert self.waiting()[step] == ("timer", due)
        self.clock.set(due - SECOND)
        assert self.engine.tick() == []
        assert step in self.waiting()
        self.clock.set(due)
        fired = self.engine.tick()
        assert [(f.instance_id, f.step_id, f.kind, f.at) for f in fired] == [
            (self.id, step, "timer", due)]
        assert step not in self.waiting()


def events(*pairs: Event) -> Counter[Event]:
    return Counter(pairs)


def to_share_intro(j: Journey) -> None:
    assert j.new_events() == events(("Event_start", "completed"), ("add_contact", "entered"))
    assert j.waiting() == {"add_contact": ("user", None)}
    j.do("add_contact")
    # a boundary timer watches its step: only its firing is an event, never its arming
    assert j.new_events() == events(("add_contact", "completed"), ("share_intro", "entered"))


def to_wait_for_video(j: Journey) -> datetime:
    """Share the intro video now; returns when the two-day follow-up is due."""
    to_share_intro(j)
    j.do("share_intro")
    assert j.new_events() == events(("share_intro", "completed"))
    due = j.clock.now() + 2 * DAY
    assert j.waiting() == {"Event_wait_for_video_video_played": ("message", None),
                           "Event_wait_for_video_timer": ("timer", due)}
    return due


def assert_guidance_suggests(cards: list[ActionCard]) -> None:
    guidance = [c for c in cards if c.control == "guidance"]
    assert guidance, "no guidance card was looked at"
    for card in guidance:
        assert card.guidance, f"{card.step_id} has no card text"
        assert not COMMANDING.search(card.guidance), (card.step_id, card.guidance)


# -- the prospect journey ----------------------------------------------------------------------


def test_video_played_leads_to_a_conversation_and_a_customer_order(
    lv: Engine, clock: ManualClock
) -> None:
    j = Journey(lv, clock, "prospect_journey", "ann", "d1")
    assert set(j.cards("d1")) == {"add_contact"}
    follow_up_due = to_wait_for_video(j)

    clock.advance(timedelta(hours=5))
    result = lv.signal("video_played", "ann", message_id="yt-1", data={"seconds": 88})
    assert result.delivered == (j.id,)
    assert [(f.step_id, f.kind) for f in result.fired] == [
        ("Event_wait_for_video_video_played", "message")]
    assert j.new_events() == events(("Event_wait_for_video_video_played", "message"),
                                    ("conversation", "entered"))
    assert j.waiting() == {"conversation": ("user", None),
                           "Event_conversation_stuck": ("timer", clock.now() + 7 * DAY)}
    card = j.cards("d1")["conversation"]
    assert (card.hook, card.control, card.follow_up_at) == (
        "presentation", "guidance", clock.now() + 7 * DAY)
    assert card.asks == {"interest": ["customer", "distributor", "not_now"]}

    j.do("conversation", {"interest": "customer"})
    assert j.new_events() == events(("conversation", "completed"),
                                    ("customer_order", "entered"))
    assert set(j.cards("d1")) == {"customer_order"}
    j.do("customer_order")
    assert j.new_events() == events(("customer_order", "completed"), ("Event_end", "completed"))

    done = lv.get(j.ref)
    assert (done.status, done.waiting, done.next_due_at) == ("completed", (), None)
    clock.set(follow_up_due + 30 * DAY)
    assert lv.tick() == []  # the follow-up timer went with the video event
    history = lv.history(j.id)
    assert {e.kind for e in history} == {"entered", "completed", "message"}
    (message,) = [e for e in history if e.kind == "message"]
    assert message.data == {"message_id": "yt-1", "seconds": 88}
    (talk,) = [e for e in history if (e.step_id, e.kind) == ("conversation", "completed")]
    assert (talk.data, talk.actor) == ({"interest": "customer"}, "d1")
    assert lv.cards("d1") == []
    assert_guidance_suggests(j.cards_seen)


def test_no_video_in_two_days_brings_a_follow_up_then_a_required_enrollment(
    lv: Engine, clock: ManualClock
) -> None:
    j = Journey(lv, clock, "prospect_journey", "bob", "d1")
    clock.advance(timedelta(hours=1))  # shared an hour after the contact was added
    due = to_wait_for_video(j)

    j.timer_fires_at("Event_wait_for_video_timer", due)
    assert j.new_events() == events(("Event_wait_for_video_timer", "timer"),
                                    ("follow_up", "entered"))
    assert j.waiting() == {"follow_up": ("user", None)}
    card = j.cards("d1")["follow_up"]
    assert (card.hook, card.since, card.follow_up_at) == ("follow_up_message", due, None)
    assert lv.signal("video_played", "bob").held  # too late: the follow-up took over

    j.do("follow_up")
    j.do("conversation", {"interest": "distributor"})
    assert j.new_events() == events(
        ("follow_up", "completed"), ("conversation", "entered"), ("conversation", "completed"),
        ("enroll", "entered"))
    card = j.cards("d1")["enroll"]
    assert (card.control, card.hook) == ("required", "enroll_invitation")
    assert card.basis and "Income Disclosure Statement" in card.basis

    version = lv.get(j.ref).version
    with pytest.raises(StepRequired) as refused:
        lv.skip(j.ref, "enroll", "prospect wants to think", actor="d1")
    assert (refused.value.step, refused.value.instance_id) == ("enroll", j.id)
    assert "Income Disclosure Statement" in (refused.value.basis or "")
    after = lv.get(j.ref)
    assert (after.version, after.waiting_steps) == (version, ["enroll"])
    assert j.new_events() == events()  # the refusal changed nothing

    j.do("enroll")
    assert j.new_events() == events(("enroll", "completed"), ("Event_end", "completed"))
    assert lv.get(j.ref).status == "completed"
    assert "skipped" not in {e.kind for e in lv.history(j.id)}
    assert_guidance_suggests(j.cards_seen)


def test_not_now_rests_thirty_days_then_checks_in(lv: Engine, clock: ManualClock) -> None:
    j = Journey(lv, clock, "prospect_journey", "cy", "d1")
    to_wait_for_video(j)
    lv.signal("video_played", "cy")
    j.do("conversation", {"interest": "not_now"})
    clock.advance(3 * DAY)
    j.do("nurture")
    j.new_events()

    j.timer_fires_at("nurture_pause", clock.now() + 30 * DAY)
    assert j.new_events() == events(("nurture_pause", "timer"), ("check_in", "entered"))
    card = j.cards("d1")["check_in"]
    assert (card.hook, card.step_name) == ("nurture_message", "Check in again")

    j.do("check_in", {"interest": "not_now"})
    assert j.new_events() == events(("check_in", "completed"), ("not_now", "completed"))
    assert lv.get(j.ref).status == "completed"
    steps = {e.step_id for e in lv.history(j.id) if e.kind == "entered"}
    assert steps == {"add_contact", "share_intro", "conversation", "nurture", "nurture_pause",
                     "check_in"}
    assert "enroll" not in steps and "customer_order" not in steps
    assert_guidance_suggests(j.cards_seen)


def test_stuck_timers_flag_the_step_and_leave_it_waiting(lv: Engine, clock: ManualClock) -> None:
    j = Journey(lv, clock, "prospect_journey", "dee", "d1")
    to_share_intro(j)

    j.timer_fires_at("Event_share_intro_stuck", clock.now() + 5 * DAY)
    assert j.new_events() == events(("Event_share_intro_stuck", "timer"),
                                    ("Event_share_intro_stuck_end", "completed"))
    assert j.waiting() == {"share_intro": ("user", None)}
    assert set(j.cards("d1")) == {"share_intro"}
    clock.advance(20 * DAY)
    assert lv.tick() == []  # flagged once, not again

    j.do("share_intro")
    lv.signal("video_played", "dee")
    j.new_events()
    j.timer_fires_at("Event_conversation_stuck", clock.now() + 7 * DAY)
    assert j.new_events() == events(("Event_conversation_stuck", "timer"),
                                    ("Event_conversation_stuck_end", "completed"))
    assert j.waiting() == {"conversation": ("user", None)}
    j.do("conversation", {"interest": "customer"})
    j.do("customer_order")
    assert lv.get(j.ref).status == "completed"
    assert_guidance_suggests(j.cards_seen)


# -- distributor onboarding --------------------------------------------------------------------


def test_onboarding_day_one_training_optional_and_the_sponsor_hears_after_ten_days(
    lv: Engine, clock: ManualClock
) -> None:
    j = Journey(lv, clock, "distributor_onboarding", "dist-42", "dist-42", {"sponsor_id": "S1"})
    assert set(j.cards("dist-42")) == {"welcome"}
    assert j.cards("S1") == {}
    j.do("welcome")
    day_one = j.cards("dist-42")
    assert {s: (c.hook, c.role, c.control) for s, c in day_one.items()} == {
        "add_first_prospects": ("first_ten_contacts", "distributor", "guidance"),
        "product_training": ("product_training", "distributor", "guidance"),
    }

    lv.skip(j.ref, "product_training", "knows the range", actor="dist-42")
    clock.advance(DAY)
    j.do("add_first_prospects")
    assert j.new_events() == events(
        ("Event_start", "completed"), ("welcome", "entered"), ("welcome", "completed"),
        ("add_first_prospects", "entered"), ("product_training", "entered"),
        ("product_training", "skipped"), ("add_first_prospects", "completed"),
        ("first_sale", "entered"))
    (skipped,) = [e for e in lv.history(j.id) if e.kind == "skipped"]
    assert (skipped.step_id, skipped.data, skipped.actor) == (
        "product_training", {"reason": "knows the range"}, "dist-42")

    due = clock.now() + 10 * DAY
    clock.set(due - SECOND)
    assert lv.tick() == []
    assert j.cards("S1") == {}  # not before ten days
    j.timer_fires_at("Event_first_sale_stuck", due)
    assert j.new_events() == events(("Event_first_sale_stuck", "timer"),
                                    ("sponsor_check_in", "entered"))
    sponsor = j.cards("S1")
    assert list(sponsor) == ["sponsor_check_in"]
    card = sponsor["sponsor_check_in"]
    assert (card.role, card.hook, card.prospect_id, card.distributor_id, card.since) == (
        "sponsor", "sponsor_alert_message", "dist-42", "dist-42", due)
    assert set(j.cards("dist-42")) == {"first_sale"}  # the sponsor's card is not theirs

    j.do("first_sale")
    assert j.new_events() == events(("first_sale", "completed"), ("onboarded", "completed"))
    assert lv.get(j.ref).status == "active"  # the sponsor's check-in is still open
    lv.complete(j.ref, "sponsor_check_in", actor="S1")
    assert j.new_events() == events(("sponsor_check_in", "completed"),
                                    ("Event_sponsor_check_in_end", "completed"))
    assert lv.get(j.ref).status == "completed"
    assert {e.kind for e in lv.history(j.id)} == {"entered", "completed", "skipped", "timer"}
    assert lv.cards("S1") == [] and lv.cards("dist-42") == []
    assert_guidance_suggests(j.cards_seen)


def test_every_guidance_card_in_lifevantage_suggests_rather_than_commands() -> None:
    assert COMMANDING.search("You must call them") and COMMANDING.search("are required to")
    report = load([LIFEVANTAGE])
    assert report.ok, report.problems
    checked = []
    for definition in report.definitions:
        for step in definition.map.all_steps():
            if step.is_human and step.control == "guidance":
                assert step.card, f"{definition.process_id}.{step.id} has no card text"
                assert not COMMANDING.search(step.card), (step.id, step.card)
                checked.append(step.id)
    assert len(checked) == 12, checked
    required = [s for d in report.definitions for s in d.map.all_steps()
                if s.control == "required"]
    assert [(s.id, bool(s.basis)) for s in required] == [("enroll", True)]
