"""Group commit (issue 23): the worker fires the timers of many instances in one transaction.
Each instance is still version-checked: one that another writer moved meanwhile writes
nothing in the group, the others commit, and it is redone alone on fresh state. SQLite and
PostgreSQL. Also: held events a step catches run within that step's work limits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from engine import Engine, InstanceIncident, Limits, ManualClock
from engine.runtime import events
from engine.runtime.model import NewProspect
from engine.store import INSTANCE, STEP_EVENT, trail
from nextmove import open_engine
from tests.conftest import FIXTURES

REMINDER = FIXTURES / "events" / "reminder.bpmn"
HELD = FIXTURES / "held_limits"


def timer_events(engine: Engine) -> Counter[int]:
    with engine.store.read() as conn:
        rows = conn.execute(select(STEP_EVENT.c.instance_id)
                            .where(STEP_EVENT.c.kind == "timer")).scalars().all()
    return Counter(rows)


def versions(engine: Engine) -> dict[int, int]:
    with engine.store.read() as conn:
        return dict(conn.execute(select(INSTANCE.c.id, INSTANCE.c.version)).all())  # type: ignore[arg-type]


def transactions(engine: Engine) -> dict[int, int]:
    """PostgreSQL: the transaction that last wrote each instance row."""
    with engine.store.read() as conn:
        return dict(conn.execute(text("SELECT id, xmin::text::bigint FROM instance")).all())  # type: ignore[arg-type]


@pytest.fixture
def two_writers(db_url: str, clock: ManualClock) -> Iterator[tuple[Engine, Engine]]:
    """The worker, and another writer on the same database (each with its own cache)."""
    worker = open_engine(db_url, clock=clock, recommend=False)
    other = open_engine(db_url, clock=clock, recommend=False)
    try:
        worker.deploy([REMINDER])
        yield worker, other
    finally:
        worker.store.dispose()
        other.store.dispose()


def test_a_group_with_one_conflicting_instance_commits_the_others_and_retries_it(
    two_writers: tuple[Engine, Engine], clock: ManualClock,
) -> None:
    worker, other = two_writers
    ids = [worker.start("reminder", f"p{k}", "d1").id for k in range(6)]  # hot in `worker`
    stale = ids[2]
    # version 1 -> 2: the worker's cached copy is now stale
    other.outcome(stale, "customer_order", actor="other")
    clock.advance(timedelta(days=3))

    report = worker.fire_due(limit=100)

    assert sorted(f.instance_id for f in report) == ids  # every one fired, reported once
    assert report.incidents == []
    assert timer_events(worker) == dict.fromkeys(ids, 1)
    # the others: start (1) + the group's step; the stale one: + the outcome + its retry
    assert versions(worker) == {**dict.fromkeys(ids, 2), stale: 3}
    history = [(e.kind, e.step_id) for e in worker.history(stale)]
    assert history[-3:] == [("outcome", "customer_order"), ("timer", "two_days"),
                            ("entered", "follow_up")]
    if not worker.store.is_sqlite:
        written_by = transactions(worker)
        group = {written_by[i] for i in ids if i != stale}
        assert len(group) == 1  # one transaction committed the five others
        assert written_by[stale] not in group  # the stale one was written alone


def test_an_instance_moved_on_by_another_writer_is_not_fired_twice(
    two_writers: tuple[Engine, Engine], clock: ManualClock,
) -> None:
    worker, other = two_writers
    ids = [worker.start("reminder", f"p{k}", "d1").id for k in range(4)]
    clock.advance(timedelta(days=3))
    events.fire_instance(other, ids[1], [])  # fired elsewhere; worker's copy still waits

    results = worker.pipeline.advance_many(
        [(i, None, events._fire_act(worker)) for i in ids])

    assert isinstance(results[ids[1]], events.NotWaiting)  # redone alone: nothing due
    assert all(not isinstance(results[i], Exception) for i in ids if i != ids[1])
    assert timer_events(worker) == dict.fromkeys(ids, 1)


def test_the_worker_commits_a_group_per_transaction(db_url: str, clock: ManualClock) -> None:
    engine = open_engine(db_url, clock=clock, recommend=False, hot_instances=0)
    try:
        engine.deploy([REMINDER])
        ids = [s.instance.id for s in engine.start_many(
            "reminder", [NewProspect(f"p{k}", "d1") for k in range(events.GROUP + 3)])]
        clock.advance(timedelta(days=3))
        report = engine.tick(batch=1000)
        assert sorted(f.instance_id for f in report) == sorted(ids)
        assert timer_events(engine) == dict.fromkeys(ids, 1)
        if not engine.store.is_sqlite:
            assert len(set(transactions(engine).values())) == 2  # GROUP, then 3
        # Every instance's events came out of the group write in chain order, intact.
        checked, breaks = trail.verify(engine.store)
        assert breaks == []
        assert checked == sum(len(engine.history(i)) for i in ids)
        assert {e.kind for e in engine.history(ids[-1])} >= {"timer", "entered"}
    finally:
        engine.store.dispose()


@pytest.mark.parametrize("process", ["held_run_start", "held_run_step"])
def test_a_held_event_runs_within_the_step_s_work_limits(
    db_url: str, clock: ManualClock, process: str,
) -> None:
    """The held event sets off six automatic tasks; four are allowed: the step that takes it
    is an incident, not an unbounded run."""
    tight = open_engine(db_url, clock=clock, recommend=False, limits=Limits(engine_steps=4))
    try:
        tight.deploy([HELD])
        assert tight.start(process, "free", "d1").status == "active"  # nothing held: fine
        assert tight.signal("go", "p1", message_id="go-1").held
        with pytest.raises(InstanceIncident) as raised:
            started = tight.start(process, "p1", "d1")
            tight.complete(started.id, "ask")
        assert raised.value.limit == "engine_steps"
        assert tight.get(raised.value.instance_id).status == "incident"
    finally:
        tight.store.dispose()
