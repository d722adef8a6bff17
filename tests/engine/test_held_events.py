"""Prospect events that come early are held and delivered when a catch starts waiting, by the
step that made it wait (a person's step, a timer, another message, a start), in one
transaction; they expire after their time to live; message ids are unique per prospect and
message; concurrent duplicates always answer "duplicate". SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import Engine, ManualClock, UnknownMessage
from engine.store import MESSAGE_RECEIPT as RECEIPT
from engine.store import STEP_EVENT
from nextmove import open_engine
from tests.conftest import FIXTURES

EVENTS = FIXTURES / "events"

# Two waits in a row, a timer before a third, a form with its own time to live.
CHAIN = """
process: chain
messages:
  form_submitted: {ttl: P7D}
steps:
  - id: wait_first
    wait: {message: first}
  - id: wait_second
    wait: [{message: second, ttl: P2D, next: pause}, {after: P10D, next: pause}]
  - id: pause
    wait: {after: P1D}
  - id: wait_form
    wait: {message: form_submitted}
  - id: done
"""


@pytest.fixture
def deployed(engine: Engine) -> Engine:
    engine.deploy([EVENTS])
    return engine


@pytest.fixture
def chain(engine: Engine, tmp_path: Path) -> Engine:
    path = tmp_path / "chain.yaml"
    path.write_text(CHAIN)
    engine.deploy([path])
    return engine


def receipts(engine: Engine, prospect: str) -> list[tuple[str, str, int, str]]:
    with engine.store.read() as conn:
        rows = conn.execute(select(RECEIPT.c.message, RECEIPT.c.message_id, RECEIPT.c.instance_id,
                                   RECEIPT.c.status).where(RECEIPT.c.prospect_id == prospect)
                            .order_by(RECEIPT.c.id)).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def messages(engine: Engine, instance_id: int) -> list[tuple[str, dict[str, Any] | None]]:
    return [(e.step_id, e.data) for e in engine.history(instance_id) if e.kind == "message"]


def test_an_early_event_is_delivered_by_the_step_that_makes_it_wait(
    deployed: Engine, clock: ManualClock
) -> None:
    instance = deployed.start("video_follow_up", "p1", "d1")  # the video is not shared yet
    sent_at = clock.now()
    early = deployed.signal("video_played", "p1", message_id="evt-early", data={"seconds": 40})
    assert (early.status, early.held, early.delivered) == ("held", True, ())
    assert deployed.get(instance.id) == instance  # nothing moved
    (listed,) = deployed.show(instance.id).held
    assert (listed.message, listed.message_id, listed.status, listed.data, listed.expires_at) == (
        "video_played", "evt-early", "held", {"seconds": 40}, sent_at + timedelta(days=30))

    clock.advance(timedelta(hours=5))
    moved = deployed.complete(instance.id, "share_video")

    assert moved.waiting_steps == ["conversation"]  # not waiting for the video at all
    assert moved.version == instance.version + 1  # one step, one commit
    assert messages(deployed, instance.id) == [("video_played", {
        "message_id": "evt-early", "seconds": 40, "held_since": sent_at.isoformat()})]
    assert receipts(deployed, "p1") == [("video_played", "evt-early", instance.id, "delivered")]
    assert deployed.show(instance.id).held == ()
    again = deployed.signal("video_played", "p1", message_id="evt-early")
    assert again.status == "duplicate"
    clock.advance(timedelta(days=3))
    assert deployed.tick() == []  # the two-day timer went with the gateway


def test_a_start_that_waits_takes_the_held_event(deployed: Engine) -> None:
    assert deployed.signal("form_submitted", "p1", message_id="form-1").held
    assert deployed.signal("form_submitted", "p1", message_id="form-1").duplicate  # of the held

    instance = deployed.start("wait_for_form", "p1", "d1")

    assert instance.waiting_steps == ["call_back"]
    assert messages(deployed, instance.id)[0][0] == "form_received"
    assert receipts(deployed, "p1") == [("form_submitted", "form-1", instance.id, "delivered")]
    second = deployed.start("wait_for_form", "p1", "d1", new=True)
    assert second.waiting_steps == ["form_received"]  # a held event is delivered once


def test_a_message_and_a_timer_deliver_what_waits_behind_them(
    chain: Engine, clock: ManualClock
) -> None:
    instance = chain.start("chain", "p1", "d1")
    for name in ("second", "form_submitted"):
        assert chain.signal(name, "p1", message_id=f"{name}-1").held
    first = chain.signal("first", "p1", message_id="first-1")

    # `first` moved it to `second`, held: delivered in the same step; then the pause timer
    assert [(f.step_id, f.kind) for f in first.fired] == [
        ("wait_first", "message"), ("Event_wait_second_second", "message")]
    assert chain.get(instance.id).waiting_steps == ["pause"]
    clock.advance(timedelta(days=1))
    # the timer's step makes it wait for the form: held, so taken in that step
    assert [(f.step_id, f.kind) for f in chain.tick()] == [
        ("pause", "timer"), ("wait_form", "message")]
    assert chain.get(instance.id).waiting_steps == ["done"]
    assert [s for s, _ in messages(chain, instance.id)] == [
        "wait_first", "Event_wait_second_second", "wait_form"]
    assert {r[3] for r in receipts(chain, "p1")} == {"delivered"}


def test_time_to_live_comes_from_the_map(chain: Engine, clock: ManualClock) -> None:
    now = clock.now()
    ttl = {name: chain.signal(name, "p1").expires_at
           for name in ("first", "second", "form_submitted")}
    assert ttl == {"first": now + timedelta(days=30),  # the default
                   "second": now + timedelta(days=2),  # on the trigger
                   "form_submitted": now + timedelta(days=7)}  # in `messages:`


def test_an_expired_event_is_marked_by_the_tick_and_never_delivered(
    chain: Engine, clock: ManualClock
) -> None:
    instance = chain.start("chain", "p1", "d1")
    assert chain.signal("second", "p1", message_id="late").held  # two days to live
    clock.advance(timedelta(days=2))
    chain.tick()
    (listed,) = chain.show(instance.id).held
    assert (listed.status, listed.settled_at) == ("expired", clock.now())

    chain.signal("first", "p1")
    assert chain.get(instance.id).waiting_steps == ["Event_wait_second_second",
                                                    "Event_wait_second_timer"]
    assert chain.signal("second", "p1", message_id="late").duplicate  # still its id


def test_an_event_past_its_time_is_expired_by_the_step_that_would_take_it(
    chain: Engine, clock: ManualClock
) -> None:
    instance = chain.start("chain", "p1", "d1")
    chain.signal("second", "p1", message_id="late")
    clock.advance(timedelta(days=3))  # no tick in between
    chain.signal("first", "p1")
    assert "Event_wait_second_second" in chain.get(instance.id).waiting_steps
    assert receipts(chain, "p1")[0] == ("second", "late", 0, "expired")


def test_message_ids_are_unique_per_prospect_and_message(deployed: Engine) -> None:
    a = deployed.start("wait_for_form", "a", "d1")
    b = deployed.start("wait_for_form", "b", "d1")
    assert deployed.signal("form_submitted", "a", message_id="evt-1").delivered == (a.id,)
    assert deployed.signal("form_submitted", "b", message_id="evt-1").delivered == (b.id,)
    assert deployed.signal("video_played", "a", message_id="evt-1").held  # another message
    assert deployed.signal("form_submitted", "a", message_id="evt-1").duplicate


def _race(url: str, clock: ManualClock, senders: int, sends: int,
          send: Callable[[Engine, int], str]) -> Counter[str]:
    """`senders` threads, each with its own engine (and connections), `sends` calls in all,
    released at once."""
    engines = [open_engine(url, clock=clock, recommend=False) for _ in range(senders)]
    gate = threading.Barrier(senders)
    answers: Counter[str] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        gate.wait()
        for i in range(n, sends, senders):
            try:
                answer = send(engines[n], i)
            except BaseException as exc:  # reported below
                errors.append(exc)
                return
            with lock:
                answers[answer] += 1

    threads = [threading.Thread(target=run, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.store.dispose()
    assert errors == []
    return answers


@pytest.mark.parametrize("waiting", [True, False], ids=["waiting", "nothing-waits"])
def test_concurrent_duplicates_always_answer_duplicate(
    deployed: Engine, db_url: str, clock: ManualClock, waiting: bool
) -> None:
    instance = deployed.start("wait_for_form" if waiting else "video_follow_up", "p1", "d1")

    answers = _race(db_url, clock, 4, 300, lambda engine, _i: engine.signal(
        "form_submitted", "p1", message_id="evt-1").status)

    assert answers == Counter({"delivered" if waiting else "held": 1, "duplicate": 299})
    assert len(receipts(deployed, "p1")) == 1
    with deployed.store.read() as conn:
        assert conn.execute(select(func.count()).where(
            STEP_EVENT.c.instance_id == instance.id, STEP_EVENT.c.kind == "message")
        ).scalar() == (1 if waiting else 0)


def test_an_event_held_while_its_catch_starts_waiting_is_never_stranded(
    deployed: Engine, db_url: str, clock: ManualClock
) -> None:
    prospects = [f"p{n}" for n in range(40)]
    ids = {p: deployed.start("video_follow_up", p, "d1").id for p in prospects}

    def send(engine: Engine, i: int) -> str:
        prospect = prospects[i // 2]
        if i % 2:
            engine.complete(ids[prospect], "share_video")
            return "completed"
        return engine.signal("video_played", prospect, message_id=f"v-{prospect}").status

    answers = _race(db_url, clock, 2, 2 * len(prospects), send)

    assert answers["completed"] == len(prospects)
    for prospect in prospects:  # held and taken, or delivered: never held while it waits
        assert deployed.get(ids[prospect]).waiting_steps == ["conversation"], prospect
        assert [r[3] for r in receipts(deployed, prospect)] == ["delivered"]


ZEEBE = 'xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" '
CAMUNDA = 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '


def _ttl_on_message(dialect: str, ttl: str) -> str:
    return (f'<bpmn:extensionElements><{dialect}:properties><{dialect}:property '
            f'name="message_ttl" value="{ttl}" /></{dialect}:properties>'
            '</bpmn:extensionElements>')


def test_bpmn_maps_give_a_time_to_live_on_the_message_or_on_the_catch(
    engine: Engine, clock: ManualClock, tmp_path: Path
) -> None:
    video = (EVENTS / "follow_up.bpmn").read_text()
    video = video.replace('<bpmn:definitions ', f"<bpmn:definitions {ZEEBE}", 1).replace(
        '<bpmn:message id="Message_video" name="video_played" />',
        '<bpmn:message id="Message_video" name="video_played">'
        f'{_ttl_on_message("zeebe", "P3D")}</bpmn:message>')
    form = (EVENTS / "receive_form.bpmn").read_text()
    catch = form.index(">", form.index('<bpmn:receiveTask id="form_received"')) + 1
    form = form[:catch] + _ttl_on_message("camunda", "PT12H") + form[catch:]
    form = form.replace('<bpmn:definitions ', f"<bpmn:definitions {CAMUNDA}", 1)
    (tmp_path / "video.bpmn").write_text(video)
    (tmp_path / "form.bpmn").write_text(form)
    engine.deploy([tmp_path])

    now = clock.now()
    assert engine.signal("video_played", "p1").expires_at == now + timedelta(days=3)
    assert engine.signal("form_submitted", "p1").expires_at == now + timedelta(hours=12)


def test_a_time_to_live_that_is_no_duration_is_refused_with_its_place(tmp_path: Path) -> None:
    from engine.definitions import load

    form = (EVENTS / "receive_form.bpmn").read_text().replace(
        '<bpmn:message id="Message_form" name="form_submitted" />',
        '<bpmn:message id="Message_form" name="form_submitted">'
        f'{_ttl_on_message("nextmove", "2 days")}</bpmn:message>')
    (tmp_path / "form.bpmn").write_text(form)
    (tmp_path / "map.yaml").write_text(CHAIN.replace("ttl: P2D", "ttl: a week"))

    problems = {(p.file and Path(p.file).name, p.element, p.code)
                for p in load([tmp_path]).problems if p.severity == "error"}
    assert ("form.bpmn", "form_received", "bad-ttl") in problems
    assert any(name == "map.yaml" and element == "steps[1].wait[0].ttl"
               for name, element, _ in problems), problems


def test_an_event_no_deployed_map_catches_is_refused_not_held(
    deployed: Engine, clock: ManualClock
) -> None:
    """A mistyped event name was held for 30 days for a catch that could never come, and the
    sender was told it was held. It is refused, with the nearest name, and nothing is stored;
    a name some map version catches is still held."""
    instance = deployed.start("video_follow_up", "p1", "d1")
    with pytest.raises(UnknownMessage, match="did you mean 'video_played'") as caught:
        deployed.signal("video_playd", "p1", message_id="evt-typo")
    assert caught.value.suggestion == "video_played"
    assert receipts(deployed, "p1") == []
    assert deployed.show(instance.id).held == ()
    held = deployed.signal("form_submitted", "p1", message_id="evt-form")
    assert held.held  # caught by another map of the folder: held for the prospect
    assert deployed.signal("video_played", "p1", message_id="evt-ok").held
