"""A row written along with a step (`engine.Along`): it commits with the step or not at all —
on a SQLite file and on PostgreSQL. The service stores its idempotent answers this way, so a
crash after a step's commit cannot leave the step without its answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, select

from engine import Along, AlreadyRecorded, Engine, StepNotWaiting
from tests.engine._lifevantage import US

METADATA = MetaData()
ANSWER = Table(
    "test_along_answer", METADATA,
    Column("key", String(50), primary_key=True),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
)


@pytest.fixture
def eng(lv: Engine) -> Engine:
    with lv.store.write() as conn:
        METADATA.create_all(conn, checkfirst=True)
        conn.execute(ANSWER.delete())
    return lv


def answer(engine: Engine, key: str) -> Along:
    def row(result: Any) -> dict[str, Any]:
        return {"key": key, "status": 200, "body": json.dumps(result.to_dict(), default=str),
                "created_at": engine.clock.now()}
    return Along(ANSWER, row)


def stored(engine: Engine) -> dict[str, Any]:
    return {r["key"]: json.loads(r["body"]) for r in engine.store.select(select(ANSWER))}


def state(engine: Engine, instance_id: int) -> tuple[int, int, list[str]]:
    """What a step changes: the version, the number of trail events, the waiting steps."""
    shown = engine.show(instance_id)
    return shown.instance.version, len(shown.history), shown.instance.waiting_steps


def test_a_step_and_its_along_row_commit_together(eng: Engine) -> None:
    first = eng.start("prospect_journey", "p1", "d1", US).id
    before = state(eng, first)
    done = eng.complete(first, "add_contact", actor="d1", along=answer(eng, "k1"))
    assert stored(eng) == {"k1": json.loads(json.dumps(done.to_dict(), default=str))}
    after = state(eng, first)
    assert after[0] == before[0] + 1 and after[1] > before[1]
    assert "add_contact" not in after[2]
    # an outcome too
    sale = eng.outcome(first, "sale", amount=12.5, actor="i1", along=answer(eng, "k2"))
    assert stored(eng)["k2"]["id"] == sale.id


def test_a_step_whose_along_row_is_already_stored_writes_nothing(eng: Engine) -> None:
    first = eng.start("prospect_journey", "p2", "d1", US).id
    other = eng.start("prospect_journey", "p3", "d1", US).id
    eng.complete(other, "add_contact", actor="d1", along=answer(eng, "taken"))
    kept = stored(eng)
    before = state(eng, first)
    with pytest.raises(AlreadyRecorded):
        eng.complete(first, "add_contact", actor="d1", along=answer(eng, "taken"))
    assert state(eng, first) == before  # no version, no event, still waiting
    assert "add_contact" in before[2]
    with pytest.raises(AlreadyRecorded):
        eng.skip(first, "add_contact", "no", actor="d1", along=answer(eng, "taken"))
    with pytest.raises(AlreadyRecorded):
        eng.outcome(first, "sale", actor="i1", along=answer(eng, "taken"))
    assert state(eng, first) == before
    assert stored(eng) == kept
    # the same step with a fresh key goes through (the refused one left the instance usable)
    eng.complete(first, "add_contact", actor="d1", along=answer(eng, "fresh"))
    assert state(eng, first)[0] == before[0] + 1
    assert set(stored(eng)) == {"taken", "fresh"}


def test_a_refused_step_writes_no_along_row(eng: Engine) -> None:
    first = eng.start("prospect_journey", "p4", "d1", US).id
    with pytest.raises(StepNotWaiting):
        eng.complete(first, "close_sale", actor="d1", along=answer(eng, "k"))
    assert stored(eng) == {}


def test_a_step_that_starts_waiting_for_a_message_writes_its_along_row_too(eng: Engine) -> None:
    # share_intro makes the journey wait for video_played: that step's write also checks the
    # prospect's held events, in an ordinary transaction (`_write.StepWriter._with_held`).
    first = eng.start("prospect_journey", "p5", "d1", US).id
    eng.complete(first, "add_contact", actor="d1")
    eng.complete(eng.start("prospect_journey", "p6", "d1", US).id, "add_contact",
                 actor="d1", along=answer(eng, "held"))
    before = state(eng, first)
    with pytest.raises(AlreadyRecorded):
        eng.complete(first, "share_intro", actor="d1", along=answer(eng, "held"))
    assert state(eng, first) == before
    done = eng.complete(first, "share_intro", actor="d1", along=answer(eng, "h2"))
    assert "Event_wait_for_video_video_played" in done.waiting_steps
    assert stored(eng)["h2"]["version"] == done.version == before[0] + 1
