"""The step log's kinds: every kind the engine and the importer write is an `EventKind`, and
the subsets readers filter on are made of them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import Engine, InstanceIncident, ManualClock, Store
from engine.store import (
    ACTED_KINDS,
    CATCH_KINDS,
    CLOSING_KINDS,
    DEVIATED_KINDS,
    DONE_KINDS,
    EVENT_KINDS,
    PATH_KINDS,
    REACHED_KINDS,
    SETTLED_KINDS,
    STEP_EVENT,
    VISIT_KINDS,
    EventKind,
)
from learner import import_log
from nextmove import open_store
from tests.conftest import FIXTURES
from tests.engine._lifevantage import US

SUBSETS = {"ACTED_KINDS": ACTED_KINDS, "CATCH_KINDS": CATCH_KINDS,
           "CLOSING_KINDS": CLOSING_KINDS, "DEVIATED_KINDS": DEVIATED_KINDS,
           "DONE_KINDS": DONE_KINDS, "PATH_KINDS": PATH_KINDS, "REACHED_KINDS": REACHED_KINDS,
           "SETTLED_KINDS": SETTLED_KINDS, "VISIT_KINDS": VISIT_KINDS}


def written_kinds(store: Store) -> set[str]:
    with store.read() as conn:
        return set(conn.execute(select(STEP_EVENT.c.kind).distinct()).scalars())


@pytest.mark.parametrize("name", sorted(SUBSETS))
def test_each_subset_is_made_of_distinct_event_kinds(name: str) -> None:
    subset = SUBSETS[name]
    assert all(isinstance(k, EventKind) for k in subset)
    assert len(set(subset)) == len(subset)


def test_a_visit_is_entered_then_closed_by_a_settling_or_a_catch_kind() -> None:
    assert set(SETTLED_KINDS).isdisjoint(CATCH_KINDS)
    assert set(CLOSING_KINDS) == set(SETTLED_KINDS) | set(CATCH_KINDS)
    assert set(VISIT_KINDS) == {EventKind.ENTERED, *CLOSING_KINDS}
    assert set(EVENT_KINDS) - set(VISIT_KINDS) == {
        EventKind.OUTCOME, EventKind.INCIDENT, EventKind.MIGRATED}


def test_members_are_the_strings_the_log_holds() -> None:
    assert [str(k) for k in EventKind] == [k.value for k in EventKind]
    assert EventKind("timer") is EventKind.TIMER and EventKind.TIMER == "timer"
    assert f"{EventKind.OUTCOME}" == "outcome"


def test_every_kind_the_engine_writes_is_an_event_kind(lv: Engine, clock: ManualClock) -> None:
    """One journey per way a step can end, on SQLite and PostgreSQL; together they write
    every kind there is, and nothing else."""
    # the fixtures' hooks are not LifeVantage's: deployed as by an engine without catalogs
    # (LifeVantage's would refuse them), and run by the LifeVantage engine
    maps_only = Engine(lv.store, clock=clock)
    maps_only.deploy([FIXTURES / "events"])
    # a person's steps: done, skipped, varied; a prospect event; a business outcome
    gus = lv.start("prospect_journey", "gus", "D", {**US, "prospect_first_name": "Gus"}).id
    lv.skip(gus, "add_contact", "met in person", actor="D")
    lv.vary(gus, "share_intro", "showed it on my phone", actor="D")
    lv.signal("video_played", "gus")
    lv.complete(gus, "conversation", {"interest": "customer"}, actor="D")
    lv.outcome(gus, "sale", amount=80.0, actor="D")
    # a boundary timer fires and cancels the step it interrupts
    stuck = lv.start("stuck_interrupting", "ann", "D")
    clock.advance(timedelta(days=3))
    assert [f.instance_id for f in lv.tick()] == [stuck.id]
    # a BPMN signal broadcast reaches a signal catch
    maps_only.deploy([FIXTURES / "bpmn" / "signals" / "signal_catch.bpmn"])
    watch = lv.complete(lv.start("price_watch", "cy", "D").id, "share_offer").id
    assert lv.broadcast("price_change").delivered == (watch,)
    # a step fails at run time (an incident), the instance moves to the fixed version
    maps_only.deploy([FIXTURES / "incidents" / "v1"])
    broken = lv.start("order_check", "bea", "D").id
    with pytest.raises(InstanceIncident):
        lv.complete(broken, "take_order")
    maps_only.deploy([FIXTURES / "incidents" / "v2"])
    lv.migrate_instance(broken, 2)

    assert written_kinds(lv.store) == set(EventKind)
    assert {e.kind for i in (gus, stuck.id, watch, broken) for e in lv.history(i)} == set(EventKind)


def test_the_importer_accepts_exactly_the_event_kinds(tmp_path: Path) -> None:
    """An imported log may record any engine kind; any other kind is a bad row."""
    rows = ["case:concept:name,concept:name,time:timestamp,nextmove:kind"]
    rows += [f"c1,step_{i},2026-01-05T{9 + i:02d}:00:00Z,{kind}"
             for i, kind in enumerate(EventKind)]
    rows.append("c2,early,2026-01-05T19:00:00Z,completed")
    rows.append("c2,late,2026-01-05T20:00:00Z,timer_fired")  # its case is skipped whole
    log = tmp_path / "kinds.csv"
    log.write_text("\n".join(rows) + "\n", encoding="utf-8")
    store = open_store(f"sqlite:///{tmp_path / 'imported.db'}")
    try:
        report = import_log(store, log, "history")
        assert report.events_written == len(EventKind)
        assert [(p.row, "timer_fired" in p.message) for p in report.problems] == [
            (len(EventKind) + 2, True)]
        assert report.cases_skipped == ("c2",)
        assert written_kinds(store) == set(EventKind)
    finally:
        store.dispose()
