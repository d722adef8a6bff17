"""Each wrapper of SpiffWorkflow's private API against the installed SpiffWorkflow.

If an upgrade renames or changes one of the private names nextmove relies on, the test of
its wrapper fails here, before the engine's behaviour tests fail for reasons harder to see.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from engine import ManualClock, load_definitions
from engine._spiff_private import (
    encode_json,
    encoder_mode,
    internal_value,
    quick_task_lists,
    set_internal_values,
    share_task_ids,
    spiff_extensions,
    task_converter_inputs,
    task_text,
    tree_tasks,
    workflow_converter_inputs,
)
from engine.definitions import build_spec
from engine.runtime import tokens
from engine.runtime._scripting import ClockedScriptEngine
from engine.runtime.state import _SERIALIZER as STATE_SERIALIZER
from engine.runtime.state import dump_state, load_state
from tests.engine.test_state import new_workflow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def started(path: Path) -> BpmnWorkflow:
    (definition,) = load_definitions([path])
    spec, subprocess_specs = build_spec(definition.process_id, definition.documents)
    workflow = BpmnWorkflow(spec, subprocess_specs,
                            script_engine=ClockedScriptEngine(ManualClock(T0)))
    workflow.do_engine_steps()
    return workflow


def waiting_task(workflow: BpmnWorkflow, bpmn_id: str) -> Any:
    (task,) = [t for t in workflow.get_tasks(state=TaskState.WAITING | TaskState.READY)
               if t.task_spec.bpmn_id == bpmn_id]
    return task


def test_internal_value_reads_what_spiffs_timer_stored() -> None:
    # remind_daily: a cycle timer (R3/P1D) on present_offer; Spiff asks our timer definition
    # whether it fired, which stores its next due time in the task's internal data.
    workflow = started(FIXTURES / "events" / "remind_daily.bpmn")
    workflow.refresh_timers()
    timer = waiting_task(workflow, "remind")
    value = internal_value(timer, "event_value")
    assert value == {"cycles": 3, "next": "2026-03-03T09:00:00+00:00", "duration": 86400.0}
    assert internal_value(timer, "no_such_key") is None
    assert internal_value(timer, "no_such_key", "fallback") == "fallback"


def test_set_internal_values_is_kept_with_the_task_through_spiffs_serializer() -> None:
    workflow = started(FIXTURES / "events" / "follow_up.bpmn")
    task = waiting_task(workflow, "share_video")
    set_internal_values(task, event_value="2026-03-04T09:00:00+00:00", event_fired=True)
    assert internal_value(task, "event_value") == "2026-03-04T09:00:00+00:00"
    assert internal_value(task, "event_fired") is True
    assert task.internal_data["event_fired"] is True  # Spiff's public view of the same data

    # dump_state writes through encode_json; internal data is part of the task's state.
    restored = load_state(dump_state(workflow), workflow.spec, workflow.subprocess_specs)
    again = restored.get_task_from_id(task.id)
    assert internal_value(again, "event_value") == "2026-03-04T09:00:00+00:00"
    assert internal_value(again, "event_fired") is True


def spiff_serializer() -> BpmnWorkflowSerializer:
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))


def test_encode_json_converts_in_encoder_mode_and_writes_spiffs_typed_values() -> None:
    serializer = spiff_serializer()
    registry = serializer.registry
    when, key = datetime(2026, 1, 2, 3, 4, 5), uuid.UUID(int=7)
    seen: dict[str, Any] = {}

    def build() -> Any:
        converted = registry.convert({"when": when, "key": key, "callback": print})
        seen["deferred"] = converted["when"] is when  # left for the encoder in encoder mode
        return converted

    text = encode_json(serializer, build, separators=(",", ":"))
    assert seen["deferred"] is True
    assert json.loads(text) == {
        "when": {"value": "2026-01-02T03:04:05", "typename": "datetime"},
        "key": {"value": str(key), "typename": "UUID"},
    }  # callables dropped, as Spiff's serializer drops them from task data
    assert '": ' not in text  # the separators were used
    # Encoder mode is off again: convert turns the values into dictionaries itself.
    assert registry.convert({"when": when})["when"] == {"value": "2026-01-02T03:04:05",
                                                        "typename": "datetime"}


def test_encode_json_leaves_encoder_mode_off_when_building_fails() -> None:
    serializer = spiff_serializer()
    when = datetime(2026, 1, 2)

    def fail() -> Any:
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError):
        encode_json(serializer, fail)
    assert isinstance(serializer.registry.convert({"when": when})["when"], dict)


def test_encoder_mode_defers_values_to_an_encoder_that_is_reused() -> None:
    serializer = spiff_serializer()
    registry = serializer.registry
    when = datetime(2026, 1, 2, 3, 4, 5)
    with encoder_mode(serializer) as encoder:
        converted = registry.convert({"when": when})
        assert converted["when"] is when  # left for the encoder
        first = encoder.encode(converted)
        assert encoder.encode(converted) == first  # no state kept between calls
    assert first == '{"when":{"value":"2026-01-02T03:04:05","typename":"datetime"}}'
    assert isinstance(registry.convert({"when": when})["when"], dict)  # mode off again
    with pytest.raises(RuntimeError), encoder_mode(serializer):
        raise RuntimeError("broken")
    assert isinstance(registry.convert({"when": when})["when"], dict)


def test_spiff_extensions_reads_spiffworkflow_extension_elements() -> None:
    tree = etree.parse(str(FIXTURES / "bpmn" / "dialects" / "spiffarena.bpmn"))
    (invite,) = tree.xpath("//bpmn:userTask[@id='invite']",
                           namespaces={"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"})
    extensions = spiff_extensions(invite)
    assert extensions["instructionsForEndUser"] == "Invite them in your own words."
    assert extensions["properties"] == {"hook": "invite.message",
                                        "card": "Send a short personal invitation."}


MASKS = [TaskState.READY, TaskState.WAITING, TaskState.READY | TaskState.WAITING,
         TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.FINISHED_MASK,
         TaskState.COMPLETED, TaskState.ANY_MASK, TaskState.PREDICTED_MASK]


def test_tree_tasks_is_spiffs_task_iterator_on_every_map() -> None:
    from engine import NextmoveError
    from tests.engine.test_fast_starts import MAPS

    own = [p for p in sorted((FIXTURES / "bpmn").rglob("*.bpmn"))
           if p.parent.name not in ("invalid", "attacks", "call_activity")]
    groups = [[p] for p in [*MAPS, *own]]
    groups.append(sorted((FIXTURES / "bpmn" / "call_activity").glob("*.bpmn")))
    compared = with_subprocesses = found_ready = texts = lockstep = 0
    for paths in groups:
        try:
            definitions = load_definitions(paths)
        except NextmoveError:
            continue
        for definition in definitions:
            try:
                spec, subprocess_specs = build_spec(definition.process_id, definition.documents)
                workflow = BpmnWorkflow(spec, subprocess_specs,
                                        script_engine=ClockedScriptEngine(ManualClock(T0)))
                workflow.task_tree.data.update({"market": "US"})
                quick_task_lists(workflow)  # the engine runs every step so
                # a twin run by Spiff alone, in lockstep: the same tasks in the same states
                twin = BpmnWorkflow(spec, subprocess_specs,
                                    script_engine=ClockedScriptEngine(ManualClock(T0)))
                twin.task_tree.data.update({"market": "US"})
                for _ in range(8):
                    workflow.do_engine_steps()
                    twin.do_engine_steps()
                    assert shape(workflow) == shape(twin), paths
                    lockstep += 1
                    for mask in MASKS:
                        spiffs = type(workflow).get_tasks(workflow, state=mask)
                        assert tree_tasks(workflow, mask) == spiffs, (paths, mask)
                        assert workflow.get_tasks(state=mask) == spiffs, (paths, mask)
                        compared += 1
                    # A step's waits are taken from the walk its token moves made.
                    assert tokens.waiting_tasks(workflow, tokens.all_tasks(workflow)) == \
                        workflow.get_tasks(state=TaskState.READY | TaskState.WAITING), paths
                    # A flat task's text is written directly, as Spiff's converter writes it.
                    with encoder_mode(STATE_SERIALIZER) as encoder:
                        for task in workflow.get_tasks(state=TaskState.ANY_MASK):
                            if task_converter_inputs(task) is not None:
                                assert task_text(task) == encoder.encode(
                                    STATE_SERIALIZER.registry.convert(task)), paths
                                texts += 1
                    # A person's task is found in the task dicts: the walk's first match.
                    for task in workflow.get_tasks(state=TaskState.READY):
                        step = tokens.bpmn_id(task)
                        first = next(t for t in workflow.get_tasks(state=TaskState.READY)
                                     if t.task_spec.manual and tokens.bpmn_id(t) == step) \
                            if task.task_spec.manual else None
                        if first is not None:
                            assert tokens.find_ready(workflow, step) is first, paths
                            found_ready += 1
                    with_subprocesses += bool(workflow.subprocesses)
                    ready = workflow.get_next_task(state=TaskState.READY, manual=True)
                    if ready is None:
                        break
                    twin.get_next_task(state=TaskState.READY, manual=True).run()
                    ready.run()
            except AssertionError:
                raise
            except Exception:  # a map Spiff cannot run this way: nothing more to compare
                pass
    assert (compared, with_subprocesses) > (400, 0), (compared, with_subprocesses)
    assert with_subprocesses > 5, (compared, with_subprocesses)
    assert found_ready > 80, found_ready
    assert texts > 1000, texts
    assert lockstep > 100, lockstep


def shape(workflow: BpmnWorkflow) -> list[tuple[str, int, int]]:
    """A workflow's tasks by spec and state, in tree order, subprocesses included."""
    return [(t.task_spec.name, t.state, len(t.children))
            for t in type(workflow).get_tasks(workflow, state=TaskState.ANY_MASK)]


def test_quick_task_lists_answer_only_the_state_question_and_are_set_once() -> None:
    workflow = new_workflow()
    quick_task_lists(workflow)
    quick = workflow.get_tasks
    quick_task_lists(workflow)
    assert workflow.get_tasks is quick
    ready = type(workflow).get_tasks(workflow, state=TaskState.READY)
    assert workflow.get_tasks(state=TaskState.READY) == ready and ready
    # other questions are Spiff's: a filter, a first task
    assert workflow.get_tasks(state=TaskState.READY, manual=True) == \
        type(workflow).get_tasks(workflow, state=TaskState.READY, manual=True)
    child = workflow.task_tree.children[0]
    assert workflow.get_tasks(child, state=TaskState.ANY_MASK) == \
        type(workflow).get_tasks(workflow, child, state=TaskState.ANY_MASK)
    assert "get_tasks" not in dump_state(workflow)


def test_quick_task_lists_walk_for_waiting_tasks_only_when_there_are_some(
        monkeypatch: pytest.MonkeyPatch) -> None:
    walked: list[object] = []
    spiffs = BpmnWorkflow.update_waiting_tasks

    def spy(self: BpmnWorkflow) -> None:
        walked.append(self)
        spiffs(self)

    monkeypatch.setattr(BpmnWorkflow, "update_waiting_tasks", spy)
    workflow = new_workflow()  # user steps only: nothing waits on an event
    quick_task_lists(workflow)
    walked.clear()  # the walks of the start, before the quick lists were set
    workflow.get_next_task(state=TaskState.READY, manual=True).run()  # a completion
    workflow.do_engine_steps()
    assert walked == []
    future = next(t for t in workflow.tasks.values() if t.state == TaskState.FUTURE)
    future._state = TaskState.WAITING  # as a timer or message catch would
    workflow.update_waiting_tasks()
    assert walked == [workflow]


def test_task_text_writes_what_the_converter_writes_for_any_flat_values() -> None:
    workflow = new_workflow()
    task = workflow.get_next_task(state=TaskState.READY, manual=True)
    task.parent.data.update({"market": "US", "source": "web"})
    task.data = dict(task.parent.data)
    task.data.update({"café": "naïve ☕", "n": 3, "x": 0.1 + 0.2, "none": None, "yes": True,
                      "big": 2**63, "market": "CA"})  # "market" updates the parent's value
    del task.data["source"]  # a deletion against the parent
    task.internal_data["seen"] = 1.5
    assert task_converter_inputs(task) is not None
    with encoder_mode(STATE_SERIALIZER) as encoder:
        for each in [task, workflow.task_tree, *workflow.tasks.values()]:
            assert task_text(each) == encoder.encode(STATE_SERIALIZER.registry.convert(each))
    task.last_state_change = float("nan")  # what it does not write: the converter's job
    assert task_text(task) is None


def test_tree_tasks_keeps_spiffs_depth_limit() -> None:
    workflow = started(FIXTURES / "bpmn" / "linear10.bpmn")
    chain = [workflow.task_tree]
    while chain[-1].children:
        chain.append(chain[-1].children[0])
    from engine import _spiff_private
    limit = _spiff_private._MAX_DEPTH
    try:
        _spiff_private._MAX_DEPTH = 3  # as if the tree were deeper than Spiff descends
        found = tree_tasks(workflow, TaskState.ANY_MASK)
    finally:
        _spiff_private._MAX_DEPTH = limit
    assert found == workflow.get_tasks(state=TaskState.ANY_MASK, max_depth=3)
    assert len(found) < len(chain)


def test_task_converter_inputs_change_with_what_the_converter_writes() -> None:
    workflow = started(FIXTURES / "bpmn" / "linear10.bpmn")
    task = workflow.get_next_task(state=TaskState.READY, manual=True)
    before = task_converter_inputs(task)
    assert before is not None and before == task_converter_inputs(task)
    task.data["answer"] = "yes"
    assert task_converter_inputs(task) != before
    task.internal_data["nested"] = {"a": 1}
    assert task_converter_inputs(task) is None  # a mutable value: never taken as unchanged


def test_workflow_converter_inputs_change_with_what_the_converter_writes() -> None:
    workflow = started(FIXTURES / "bpmn" / "linear10.bpmn")
    before = workflow_converter_inputs(workflow)
    assert before is not None and before == workflow_converter_inputs(workflow)
    workflow.data["answer"] = "yes"
    assert workflow_converter_inputs(workflow) != before
    changed = workflow_converter_inputs(workflow)
    workflow.get_next_task(state=TaskState.READY, manual=True).run()  # a new last_task
    assert workflow_converter_inputs(workflow) != changed
    workflow.data["nested"] = {"a": 1}
    assert workflow_converter_inputs(workflow) is None  # a mutable value
    del workflow.data["nested"]
    workflow.correlations["c"] = {}
    assert workflow_converter_inputs(workflow) is None


def test_share_task_ids_leaves_one_uuid_object_per_id_and_the_same_state() -> None:
    path = FIXTURES / "bpmn" / "subprocess.bpmn"
    (definition,) = load_definitions([path])
    spec, subprocess_specs = build_spec(definition.process_id, definition.documents)
    workflow = BpmnWorkflow(spec, subprocess_specs)
    workflow.do_engine_steps()
    for _ in range(2):
        workflow.get_next_task(state=TaskState.READY, manual=True).run()
        workflow.do_engine_steps()
    text = dump_state(workflow)
    loaded = load_state(text, spec, subprocess_specs)
    assert workflow.subprocesses
    share_task_ids(loaded)
    for tasks in (loaded.tasks, *(sub.tasks for sub in loaded.subprocesses.values())):
        for key, task in tasks.items():
            assert task.id is key
            assert all(child is next(k for k in tasks if k == child) for child in task._children)
    assert dump_state(loaded) == text
    assert load_state(text, spec, subprocess_specs, shared_ids=True).get_tasks() != []
