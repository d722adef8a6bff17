"""The step pipeline's own contract, driven through its public API with an action of our own
(the engine's person steps, timers and prospect events are tested through `Engine`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine import Engine, InstanceIncident, ManualClock
from engine.runtime import tokens
from engine.runtime.pipeline import Acted, NotWaiting
from engine.runtime.state import dump_state
from engine.runtime.versions import LoadedDefinition
from nextmove import open_store

LINEAR = Path(__file__).resolve().parents[1] / "fixtures" / "bpmn" / "linear10.bpmn"


def run_then_fail(workflow: BpmnWorkflow, _definition: LoadedDefinition) -> Acted:
    task = tokens.find_ready(workflow, "add_contact")
    assert task is not None
    task.run()
    workflow.do_engine_steps()
    raise ValueError("the map broke after moving")


def nothing_to_do(_workflow: BpmnWorkflow, _definition: LoadedDefinition) -> Acted:
    raise NotWaiting


def test_a_failing_action_writes_only_the_incident_and_leaves_no_half_moved_copy(
    engine: Engine,
) -> None:
    engine.deploy([LINEAR])
    started = engine.start("prospect_linear", "p1", "d1")
    before = engine.history(started.id)

    with pytest.raises(InstanceIncident, match="the map broke after moving"):
        engine.pipeline.advance(started.id, "add_contact", run_then_fail)
    parked = engine.get(started.id)
    assert (parked.status, parked.version) == ("incident", started.version + 1)
    assert parked.waiting == started.waiting
    history = engine.history(started.id)
    assert history[:-1] == before and history[-1].kind == "incident"
    # The copy the action moved was dropped: the next step starts where the instance waits.
    assert tokens.find_ready(engine.pipeline.workflow(started.id), "add_contact") is not None
    # `retry` runs the recorded step again: a timer's (the default replay) here.
    assert engine.retry(started.id).waiting_steps == ["add_contact"]
    assert engine.complete(started.id, "add_contact").waiting_steps == ["send_invite"]


def test_an_action_with_nothing_to_do_raises_not_waiting_and_writes_nothing(
    engine: Engine,
) -> None:
    engine.deploy([LINEAR])
    started = engine.start("prospect_linear", "p1", "d1")
    with pytest.raises(NotWaiting):
        engine.pipeline.advance(started.id, None, nothing_to_do)
    assert engine.get(started.id) == started


def test_workflow_is_what_the_next_step_starts_from_cached_or_loaded(
    db_url: str, clock: ManualClock,
) -> None:
    store = open_store(db_url)
    try:
        hot = Engine(store, clock=clock)
        hot.deploy([LINEAR])
        instance = hot.complete(hot.start("prospect_linear", "p1", "d1").id, "add_contact")
        cached = hot.pipeline.workflow(instance.id)
        assert cached is hot.pipeline.workflow(instance.id)  # the engine's own copy

        loaded = Engine(store, clock=clock, hot_instances=0).pipeline.workflow(instance.id)
        assert loaded is not cached
        assert dump_state(loaded) == dump_state(cached)
        assert [t.task_spec.bpmn_id for t in tokens.all_tasks(loaded, TaskState.READY)
                if t.task_spec.manual] == ["send_invite"]
    finally:
        store.dispose()


def test_distributor_of_reads_once_for_the_step_and_a_stale_copy_still_steps_right(
    engine: Engine, db_url: str, clock: ManualClock,
) -> None:
    """What the API's scope check does: the distributor comes from the kept instance or one
    read that the step then uses; if another process moved the instance meanwhile, the step
    is still applied to the stored state (once)."""
    from nextmove import open_engine

    engine.deploy([LINEAR])
    started = engine.start("prospect_linear", "p1", "d1")
    other = open_engine(db_url, clock=clock, recommend=False)  # a second server process
    try:
        engine.forget()
        assert engine.distributor_of(started.id) == "d1"  # read, and kept
        first = started.waiting_steps[0]
        second = other.complete(started.id, first, actor="d1").waiting_steps[0]  # now stale
        assert engine.distributor_of(started.id) == "d1"  # a stale copy answers this
        done = engine.complete(started.id, second, actor="d1")
        assert second not in done.waiting_steps
        kinds = [(e.step_id, e.kind) for e in engine.history(started.id)
                 if e.kind == "completed" and e.step_id in (first, second)]
        assert kinds == [(first, "completed"), (second, "completed")]
    finally:
        other.store.dispose()


def test_a_step_on_sqlite_sets_only_the_indexed_columns_it_changes(tmp_path: Path) -> None:
    from sqlalchemy import event

    from nextmove import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'x.db'}", recommend=False)
    engine.store.engine.dispose()
    sent: list[str] = []

    @event.listens_for(engine.store.engine, "connect")
    def trace(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_trace_callback(sent.append)

    try:
        engine.deploy([LINEAR])
        instance = engine.start("prospect_linear", "p1", "d1")
        updates = []
        while instance.active:
            sent.clear()
            instance = engine.complete(instance.id, instance.waiting_steps[0])
            (update,) = [s for s in sent if s.startswith("UPDATE instance")]
            updates.append(update)
        *middle, last = updates
        for update in middle:  # still active, still without a timer
            assert "status" not in update and "active_key" not in update
            assert "next_due_at" not in update and "state = " in update
        assert "status = 'completed'" in last and "active_key = NULL" in last
        row = engine.get(instance.id)
        assert row.status == "completed" and row.waiting == ()
    finally:
        engine.store.dispose()
