"""The runtime trail as evidence: what contractors did with the guidance (exact counts on a
small driven log, SQLite and PostgreSQL), and tampering with the step log found and named
(SQLite files altered behind the engine's back). The policy log: test_policy_trail.py."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest

from compliance import StepTrail, Tampering, trail_summary, verify_trail
from engine import DefinitionNotFound, Engine, ManualClock, ProspectRef, Store
from nextmove import open_engine, open_store
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
DAY = timedelta(days=1)
US = {"market": "US", "locale": "en-US"}


def shown(engine: Engine, instance_id: int, step: str) -> str:
    (event,) = [e for e in engine.history(instance_id) if (e.step_id, e.kind) == (step, "entered")]
    assert event.content_shown
    return event.content_shown


def another(engine: Engine, distributor: str, instance_id: int, step: str) -> str:
    (card,) = [c for c in engine.cards(distributor)
               if (c.instance_id, c.step_id) == (instance_id, step)]
    return next(s.option_id for s in card.content if not s.top)


def drive(lv: Engine, clock: ManualClock) -> None:
    """Three distributors, day 0 unless said:

    d1  p1  add_contact: done, suggestion      share_intro: done, suggestion
    d1  p2  add_contact: done, other content   share_intro: skipped
    d2  p3  add_contact: varied                share_intro: done, no content
    d2  own onboarding: welcome done, product training skipped, first prospects done
    d3  p4  (day 1) add_contact: done, suggestion, no actor given (the distributor counts)
    """
    p1 = lv.start("prospect_journey", "p1", "d1", US, actor="d1").id
    p2 = lv.start("prospect_journey", "p2", "d1", US, actor="d1").id
    lv.start("prospect_journey", "p3", "d2", US, actor="d2")
    lv.start("distributor_onboarding", "d2", "d2", US, actor="d2")
    lv.complete(ProspectRef("p1"), "add_contact", actor="d1", used=shown(lv, p1, "add_contact"))
    lv.complete(ProspectRef("p2"), "add_contact", actor="d1",
                used=another(lv, "d1", p2, "add_contact"))
    lv.vary(ProspectRef("p3"), "add_contact", "met in person", actor="d2")
    lv.complete(ProspectRef("p1"), "share_intro", actor="d1", used=shown(lv, p1, "share_intro"))
    lv.skip(ProspectRef("p2"), "share_intro", "prefers to call", actor="d1")
    lv.complete(ProspectRef("p3"), "share_intro", actor="d2")
    onboarding = ProspectRef("d2", "distributor_onboarding")
    lv.complete(onboarding, "welcome", actor="d2")
    lv.skip(onboarding, "product_training", "knows the range", actor="d2")
    lv.complete(onboarding, "add_first_prospects", actor="d2")
    clock.advance(DAY)
    p4 = lv.start("prospect_journey", "p4", "d3", US, actor="d3").id
    lv.complete(ProspectRef("p4"), "add_contact", used=shown(lv, p4, "add_contact"))


@pytest.fixture
def driven(db_url: str, clock: ManualClock) -> Iterator[Store]:
    store = open_store(db_url)
    try:
        lv = open_engine(store, clock=clock, rng=random.Random(7))
        lv.deploy([LIFEVANTAGE])
        drive(lv, clock)
        yield store
    finally:
        store.dispose()


def step(process: str, step_id: str, name: str, offered: int, followed: tuple[int, int, int],
         skipped: int, varied: int, contractors: int, deviated: int) -> StepTrail:
    return StepTrail(process, step_id, name, "guidance", "distributor", offered, sum(followed),
                     *followed, skipped, varied, contractors, deviated)


JOURNEY, ONBOARDING = "prospect_journey", "distributor_onboarding"
ADD_CONTACT = step(JOURNEY, "add_contact", "Add a prospect", 4, (2, 1, 0), 0, 1, 3, 1)
WELCOME = step(ONBOARDING, "welcome", "Welcome aboard", 1, (0, 0, 1), 0, 0, 1, 0)
SHARE_INTRO = step(JOURNEY, "share_intro", "Share the intro video", 4, (1, 0, 1), 1, 0, 2, 1)
FIRST_PROSPECTS = step(ONBOARDING, "add_first_prospects", "Add your first prospects", 1,
                       (0, 0, 1), 0, 0, 1, 0)
TRAINING = step(ONBOARDING, "product_training", "Product training (optional)", 1, (0, 0, 0),
                1, 0, 1, 1)
FIRST_SALE = step(ONBOARDING, "first_sale", "Make your first sale", 1, (0, 0, 0), 0, 0, 0, 0)


def test_trail_summary_counts_what_contractors_did_with_the_guidance(driven: Store) -> None:
    summary = trail_summary(driven)
    assert summary.steps == (ADD_CONTACT, WELCOME, SHARE_INTRO, FIRST_PROSPECTS, TRAINING,
                             FIRST_SALE)
    assert (summary.contractors, summary.deviated) == (3, 2)  # d1 skipped, d2 varied/skipped
    assert summary.deviation_share == pytest.approx(2 / 3)
    assert ADD_CONTACT.acted == 4 and ADD_CONTACT.deviation_share == pytest.approx(1 / 3)
    assert FIRST_SALE.deviation_share == 0.0
    body = summary.to_dict()
    assert body["steps"][0] == {**ADD_CONTACT.to_dict(), "acted": 4,
                                "deviation_share": pytest.approx(1 / 3)}
    assert (body["process"], body["since"], body["contractors"]) == (None, None, 3)


def test_trail_summary_by_process_and_since(driven: Store, clock: ManualClock) -> None:
    onboarding = trail_summary(driven, process=ONBOARDING)
    assert onboarding.steps == (WELCOME, FIRST_PROSPECTS, TRAINING, FIRST_SALE)
    assert (onboarding.contractors, onboarding.deviated) == (1, 1)
    day_one = clock.now() - timedelta(hours=1)  # the clock stands at day 1, after p4's step
    late = trail_summary(driven, process=JOURNEY, since=day_one)
    assert late.steps == (
        step(JOURNEY, "add_contact", "Add a prospect", 1, (1, 0, 0), 0, 0, 1, 0),
        step(JOURNEY, "share_intro", "Share the intro video", 1, (0, 0, 0), 0, 0, 0, 0))
    assert (late.contractors, late.deviated, late.since) == (1, 0, day_one)
    with pytest.raises(DefinitionNotFound):  # a mistyped process is not an empty trail
        trail_summary(driven, process="no_such_process")


def test_since_counts_only_what_was_done_with_cards_offered_from_then_on(
    driven: Store, clock: ManualClock
) -> None:
    """A card offered before `since` and acted on after it is in neither count, so no step
    shows more followed, skipped and varied than offered (it did: offered 0, followed 1)."""
    lv = open_engine(driven, clock=clock, recommend=False)
    clock.advance(DAY)  # day 2
    since = clock.now()
    lv.complete(ProspectRef("p4"), "share_intro", actor="d3")  # offered on day 1
    lv.start(JOURNEY, "p5", "d3", US, actor="d3")
    lv.skip(ProspectRef("p5"), "add_contact", "already a customer", actor="d3")
    window = trail_summary(driven, process=JOURNEY, since=since)
    assert [(s.step, s.offered, s.followed, s.skipped) for s in window.steps] == [
        ("add_contact", 1, 0, 1), ("share_intro", 1, 0, 0)]  # p5's, offered on day 2
    assert (window.contractors, window.deviated) == (1, 1)


# -- tampering --------------------------------------------------------------------------------


@dataclass
class Trail:
    store: Store
    path: Path
    p1: int
    p2: int

    def sql(self, statement: str, *args: object) -> None:
        with sqlite3.connect(self.path) as conn:
            conn.execute(statement, args)

    def events(self, instance: int) -> list[tuple[int, str, str]]:
        with sqlite3.connect(self.path) as conn:
            return conn.execute("SELECT id, step_id, kind FROM step_event WHERE instance_id = ? "
                                "ORDER BY id", (instance,)).fetchall()


@pytest.fixture
def trail(tmp_path: Path, clock: ManualClock) -> Iterator[Trail]:
    """Two prospects whose events interleave in the log (p1: ids 1 2 5 6 9 10 11 12 13)."""
    path = tmp_path / "trail.db"
    store = open_store(f"sqlite:///{path}")
    lv = open_engine(store, clock=clock, recommend=False)
    lv.deploy([LIFEVANTAGE])
    p1 = lv.start(JOURNEY, "p1", "d1", actor="d1").id
    p2 = lv.start(JOURNEY, "p2", "d2", actor="d2").id
    lv.complete(ProspectRef("p1"), "add_contact", actor="d1")
    lv.complete(ProspectRef("p2"), "add_contact", actor="d2")
    lv.complete(ProspectRef("p1"), "share_intro", actor="d1")
    lv.signal("video_played", "p1")
    lv.complete(ProspectRef("p1"), "conversation", {"interest": "customer"}, actor="d1")
    found = Trail(store, path, p1, p2)
    assert [e[0] for e in found.events(p1)] == [1, 2, 5, 6, 9, 10, 11, 12, 13]
    yield found
    store.dispose()


def owner(t: Trail, **fields: object) -> Tampering:
    base = Tampering(t.p1, JOURNEY, "p1", "d1", "?", "")
    return replace(base, **fields)  # type: ignore[arg-type]


def without_detail(found: tuple[Tampering, ...]) -> list[Tampering]:
    return [replace(t, detail="") for t in found]


def test_an_intact_trail_verifies(trail: Trail) -> None:
    check = verify_trail(trail.store)
    assert (check.ok, check.checked, check.instances, check.tampered) == (True, 13, 2, ())
    body = check.to_dict()
    assert {k: body[k] for k in ("ok", "checked", "instances", "tampered")} == {
        "ok": True, "checked": 13, "instances": 2, "tampered": []}
    assert body["policy"] == check.policy.to_dict() and body["policy"]["ok"] is True


def test_an_edited_event_is_named(trail: Trail) -> None:
    trail.sql("UPDATE step_event SET actor = 'someone else' WHERE id = 5")
    check = verify_trail(trail.store)
    assert not check.ok
    assert without_detail(check.tampered) == [
        owner(trail, what="edited", event_id=5, step="add_contact", kind="completed")]
    assert "event 5 (add_contact completed) no longer matches its hash" in check.tampered[0].detail


def test_an_edited_first_event_is_edited_not_removed(trail: Trail) -> None:
    trail.sql("UPDATE step_event SET actor = 'someone else' WHERE id = 1")
    (found,) = verify_trail(trail.store).tampered
    assert (found.what, found.event_id) == ("edited", 1)


@pytest.mark.parametrize(("removed", "next_event"), [
    (6, (9, "share_intro", "completed")), (1, (2, "add_contact", "entered"))])
def test_a_removed_event_is_named(
    trail: Trail, removed: int, next_event: tuple[int, str, str]
) -> None:
    trail.sql("DELETE FROM step_event WHERE id = ?", removed)
    (found,) = verify_trail(trail.store).tampered
    event_id, step_id, kind = next_event
    assert replace(found, detail="") == owner(trail, what="removed", event_id=event_id,
                                              step=step_id, kind=kind)
    assert f"ids {removed} are gone" in found.detail


def test_reordered_events_are_named_once(trail: Trail) -> None:
    with sqlite3.connect(trail.path) as conn:  # swap everything but the ids of 9 and 10
        columns = [r[1] for r in conn.execute("PRAGMA table_info(step_event)") if r[1] != "id"]
        rows = {i: conn.execute(f"SELECT {', '.join(columns)} FROM step_event WHERE id = ?",
                                (i,)).fetchone() for i in (9, 10)}
        sets = ", ".join(f"{c} = ?" for c in columns)
        conn.execute(f"UPDATE step_event SET {sets} WHERE id = 9", (*rows[10],))
        conn.execute(f"UPDATE step_event SET {sets} WHERE id = 10", (*rows[9],))
    (found,) = verify_trail(trail.store).tampered
    assert replace(found, detail="") == owner(
        trail, what="moved", event_id=9, step="Event_wait_for_video_video_played", kind="message")
    assert found.detail.startswith("events 9, 10, 11 are out of their recorded order: "
                                   "9 (Event_wait_for_video_video_played message) came right "
                                   "after event 10; 10 (share_intro completed) came right after "
                                   "event 6")


def test_a_cut_tail_is_named(trail: Trail) -> None:
    trail.sql("DELETE FROM step_event WHERE id = 13")
    (found,) = verify_trail(trail.store).tampered
    assert replace(found, detail="") == owner(trail, what="truncated")
    assert "chain head" in found.detail


def test_only_the_tampered_instance_is_reported(trail: Trail) -> None:
    trail.sql("UPDATE step_event SET kind = 'skipped' WHERE id = 7")  # p2's add_contact
    (found,) = verify_trail(trail.store).tampered
    assert (found.instance_id, found.prospect, found.what, found.event_id, found.kind) == (
        trail.p2, "p2", "edited", 7, "skipped")
