"""Steps are recorded in time order per instance. A person's step, an outcome or a prospect
event timed before the instance's last step (`--now` in the past) was accepted: the log got a
completion before its arrival, a negative visit time, and a stuck timer due before the
instance began. It is refused now (`BeforeLastStep`), and nothing is written. SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import BeforeLastStep, Engine, ManualClock, ProspectRef
from tests.engine._lifevantage import US


def test_a_step_timed_before_the_instances_last_one_is_refused(
        lv: Engine, clock: ManualClock) -> None:
    ann = lv.start("prospect_journey", "ann", "d1", US)
    clock.advance(timedelta(days=2))
    lv.complete(ann.id, "add_contact", actor="d1")
    last = clock.now()
    before = lv.get(ann.id)
    history = lv.history(ann.id)
    clock.set(last - timedelta(days=1))
    with pytest.raises(BeforeLastStep) as caught:
        lv.complete(ann.id, "share_intro", actor="d1")
    assert (caught.value.instance_id, caught.value.at, caught.value.last) == (
        ann.id, last - timedelta(days=1), last)
    assert "check --now" in str(caught.value)
    with pytest.raises(BeforeLastStep):
        lv.skip(ann.id, "share_intro", "met in person", actor="d1")
    with pytest.raises(BeforeLastStep):
        lv.outcome(ProspectRef("ann"), "sale", amount=80.0, actor="d1")
    assert lv.get(ann.id) == before and lv.history(ann.id) == history  # nothing written

    clock.set(last)  # the same moment as the last step is in order
    lv.complete(ann.id, "share_intro", actor="d1")
    clock.set(last - timedelta(hours=1))
    with pytest.raises(BeforeLastStep):  # the video wait catches it: it would be a step
        lv.signal("video_played", "ann", message_id="evt-early")
    assert [e.kind for e in lv.history(ann.id)][-1] != "message"
    clock.set(last + timedelta(hours=1))
    assert lv.signal("video_played", "ann", message_id="evt-late").delivered == (ann.id,)
    visits = [e for e in lv.history(ann.id) if e.kind == "completed"]
    assert all(b.at >= a.at for a, b in zip(visits, visits[1:], strict=False))
