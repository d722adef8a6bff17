"""The step pipeline's own contract, driven through its public API with an action of our own
(the engine's person steps, timers and prospect events are tested through `Engine`)."""

from __future__ import annotations

from pathlib import Path

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
