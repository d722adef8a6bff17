"""The stored state document: no spec inside, round trips, and frozen older formats still load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import text

from engine import Engine, ProspectRef, load_definitions
from engine.definitions import build_spec
from engine.runtime.state import FORMAT, StateError, dump_state, load_state
from engine.runtime.tokens import find_ready

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LINEAR = FIXTURES / "bpmn" / "linear10.bpmn"
FROZEN = FIXTURES / "state"
LINEAR_STEPS = [
    "add_contact", "send_invite", "share_video", "follow_up", "answer_questions",
    "share_testimonial", "income_disclosure", "present_offer", "handle_objections", "close_sale",
]


def specs(path: Any) -> tuple[Any, dict[str, Any]]:
    (definition,) = load_definitions([path])
    return build_spec(definition.process_id, definition.documents)


def new_workflow(path: Any = LINEAR) -> BpmnWorkflow:
    spec, subprocess_specs = specs(path)
    workflow = BpmnWorkflow(spec, subprocess_specs)
    workflow.do_engine_steps()
    return workflow


def ready_steps(workflow: BpmnWorkflow) -> list[str]:
    return [t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY, manual=True)]


def do(workflow: BpmnWorkflow, step: str, data: dict[str, Any] | None = None) -> None:
    task = find_ready(workflow, step)
    assert task is not None, f"{step} is not ready (ready: {ready_steps(workflow)})"
    task.data.update(data or {})
    task.run()
    workflow.do_engine_steps()


def test_state_document_leaves_the_spec_out_and_is_much_smaller() -> None:
    workflow = new_workflow()
    for step in LINEAR_STEPS[:3]:
        do(workflow, step)

    ours = dump_state(workflow)
    spiffs = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG)) \
        .serialize_json(workflow)

    doc = json.loads(ours)
    assert sorted(doc) == ["format", "spiff", "workflow"]
    assert doc["format"] == FORMAT == 1
    assert "spec" not in doc["workflow"] and "subprocess_specs" not in doc["workflow"]
    assert "spec" in json.loads(spiffs)  # what we leave out is really in Spiff's document
    assert "Add the prospect to your list" not in ours  # card text lives in the spec only
    ratio = len(ours) / len(spiffs)
    assert ratio < 0.8, f"state {len(ours)} B vs Spiff {len(spiffs)} B (ratio {ratio:.2f})"


def test_state_round_trips() -> None:
    spec, subprocess_specs = specs(LINEAR)
    workflow = BpmnWorkflow(spec, subprocess_specs)
    workflow.task_tree.data.update({"source": "instagram"})
    workflow.do_engine_steps()
    do(workflow, "add_contact", {"phone": "555-0100", "tags": ["warm", "gym"]})
    do(workflow, "send_invite")

    text_1 = dump_state(workflow)
    restored = load_state(text_1, spec, subprocess_specs)

    assert dump_state(restored) == text_1
    assert {t.id: (t.state, t.task_spec.name) for t in restored.get_tasks()} == {
        t.id: (t.state, t.task_spec.name) for t in workflow.get_tasks()}
    assert ready_steps(restored) == ["share_video"]
    (ready,) = restored.get_tasks(state=TaskState.READY, manual=True)
    assert ready.data == {"source": "instagram", "phone": "555-0100", "tags": ["warm", "gym"]}

    for step in LINEAR_STEPS[2:]:
        do(restored, step)
    assert restored.completed


def test_state_with_a_subprocess_round_trips() -> None:
    path = FIXTURES / "bpmn" / "subprocess.bpmn"
    spec, subprocess_specs = specs(path)
    workflow = new_workflow(path)
    do(workflow, "welcome_call")
    do(workflow, "pick_products", {"products": ["starter-pack"]})

    restored = load_state(dump_state(workflow), spec, subprocess_specs)

    assert ready_steps(restored) == ["confirm_order"]
    assert len(restored.subprocesses) == 1
    do(restored, "confirm_order")
    do(restored, "thank_you")
    assert restored.completed


@pytest.mark.parametrize(("document", "message"), [
    ("not json", "cannot read stored workflow state"),
    ('{"format": 1}', "cannot read stored workflow state"),
    ('{"format": 99, "workflow": {}}', "unknown state format 99"),
    ('{"workflow": {}}', "unknown state format None"),
    ("[]", "cannot read stored workflow state"),
    ("null", "cannot read stored workflow state"),
])
def test_unreadable_state_is_a_state_error(document: str, message: str) -> None:
    spec, subprocess_specs = specs(LINEAR)
    with pytest.raises(StateError) as raised:
        load_state(document, spec, subprocess_specs)
    assert str(raised.value).startswith(message)


# -- frozen formats ------------------------------------------------------------------------------
# format1_linear.json is an instance of format1_linear.bpmn (a frozen copy of linear10.bpmn) as
# nextmove stored it in format 1, after: add_contact {phone}, skip send_invite, share_video
# {video}, follow_up {interest}. Never regenerate it: a new format adds a migration and a new
# frozen file, and this test keeps proving that format 1 documents still load and run.


def test_frozen_format_1_document_loads_and_runs_to_the_end() -> None:
    spec, subprocess_specs = specs(FROZEN / "format1_linear.bpmn")
    document = (FROZEN / "format1_linear.json").read_text(encoding="utf-8")
    assert json.loads(document)["format"] == 1

    workflow = load_state(document, spec, subprocess_specs)

    assert ready_steps(workflow) == ["answer_questions"]
    (ready,) = workflow.get_tasks(state=TaskState.READY, manual=True)
    assert ready.data == {"source": "instagram", "phone": "555-0100", "video": "intro-v2",
                          "interest": "high"}
    done = {t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.COMPLETED)
            if t.task_spec.manual}
    assert done == set(LINEAR_STEPS[:4])
    for step in LINEAR_STEPS[4:]:
        do(workflow, step)
    assert workflow.completed


def test_engine_continues_an_instance_stored_in_format_1(engine: Engine) -> None:
    engine.deploy([FROZEN / "format1_linear.bpmn"])
    instance = engine.start("prospect_linear", "p-frozen", "d1", {"source": "instagram"})
    for step in LINEAR_STEPS[:4]:
        instance = engine.complete(instance.id, step)
    document = (FROZEN / "format1_linear.json").read_text(encoding="utf-8").strip()
    with engine.store.write() as conn:  # as if this row had been written by an older nextmove
        conn.execute(text("UPDATE instance SET state = :s WHERE id = :i"),
                     {"s": document, "i": instance.id})
    engine.forget()

    for step in LINEAR_STEPS[4:]:
        instance = engine.complete(ProspectRef("p-frozen"), step)
    assert instance.status == "completed"
    assert instance.version == 1 + len(LINEAR_STEPS)
