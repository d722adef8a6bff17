"""YAML maps compiled to BPMN run on SpiffWorkflow the way the YAML says: sequences, routing on
recorded data, parallel joins, calls inside groups, the onboarding's training alongside the
first sale. (The compiled document and its diagram: test_compile.py.)"""

from __future__ import annotations

import re

import pytest
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.mixins.none_task import NoneTask
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from tests.engine.test_compile import ONBOARDING_BPMN, compiled


def quoted_timers(xml: bytes) -> bytes:
    """Spiff evaluates timer expressions; the nextmove loader quotes them the same way."""
    return re.sub(rb"(<bpmn:timeDuration[^>]*>)([^<]+)<", rb'\1"\2"<', xml)


def run_automatic(wf: BpmnWorkflow) -> None:
    """Run the engine, and the `bpmn:task` steps (auto: true) that wait on nobody; SpiffWorkflow
    leaves those to the caller (its NoneTask is manual), as the nextmove runtime does too."""
    wf.do_engine_steps()
    while auto := [t for t in wf.get_tasks(state=TaskState.READY, manual=True)
                   if isinstance(t.task_spec, NoneTask)]:
        auto[0].run()
        wf.do_engine_steps()


def workflow(name: str, *called: str) -> BpmnWorkflow:
    parser = SpiffBpmnParser()
    for source in (name, *called):
        parser.add_bpmn_str(quoted_timers(compiled(source).xml))
    wf = BpmnWorkflow(parser.get_spec(name), parser.get_subprocess_specs(name))
    run_automatic(wf)
    return wf


def ready(wf: BpmnWorkflow) -> list[str]:
    return sorted(t.task_spec.name for t in wf.get_tasks(state=TaskState.READY, manual=True)
                  if not isinstance(t.task_spec, NoneTask))


def complete(wf: BpmnWorkflow, step: str, **data: object) -> None:
    (task,) = [t for t in wf.get_tasks(state=TaskState.READY, manual=True)
               if t.task_spec.name == step]
    task.data.update(data)
    task.run()
    run_automatic(wf)


def receive(wf: BpmnWorkflow, message: str) -> None:
    wf.send_event(BpmnEvent(MessageEventDefinition(message), {}))
    run_automatic(wf)


def test_a_sequence_of_user_steps_runs_in_order() -> None:
    wf = workflow("linear")

    seen = []
    while not wf.is_completed():
        (step,) = ready(wf)
        seen.append(step)
        complete(wf, step)
    assert seen == ["one", "two", "three"]


@pytest.mark.parametrize(("interest", "next_step"), [
    ("customer", "customer_order"), ("distributor", "enroll"), ("not_now", "nurture"),
    ("maybe", "nurture"),
])
def test_the_prospect_journey_routes_on_the_recorded_interest(
    interest: str, next_step: str
) -> None:
    wf = workflow("prospect_journey")
    complete(wf, "add_contact")
    complete(wf, "share_intro")
    assert ready(wf) == []  # waiting for the video or the two-day timer

    receive(wf, "video_played")
    assert ready(wf) == ["conversation"]
    complete(wf, "conversation", interest=interest)

    assert ready(wf) == [next_step]
    if next_step != "nurture":
        complete(wf, next_step)
        assert wf.is_completed()


def test_parallel_branches_join_before_the_journey_ends() -> None:
    wf = workflow("all_kinds", "helper_process")
    complete(wf, "greet")
    receive(wf, "video_played")
    complete(wf, "talk", interest="customer")

    assert ready(wf) == ["order", "thank"]
    complete(wf, "thank")
    assert ready(wf) == ["order"] and not wf.is_completed()
    complete(wf, "order")
    assert wf.is_completed()


def test_a_group_with_a_call_runs_inside_the_journey() -> None:
    wf = workflow("all_kinds", "helper_process")
    complete(wf, "greet")
    receive(wf, "video_played")
    complete(wf, "talk", interest="distributor")

    assert ready(wf) == ["helper_step"]
    complete(wf, "helper_step")
    assert not wf.is_completed()
    receive(wf, "signed_up")
    assert wf.is_completed()


def test_onboarding_runs_training_alongside_the_first_sale() -> None:
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(quoted_timers(ONBOARDING_BPMN.read_bytes()))
    wf = BpmnWorkflow(parser.get_spec("distributor_onboarding"))
    wf.do_engine_steps()

    complete(wf, "welcome")
    assert ready(wf) == ["add_first_prospects", "product_training"]
    complete(wf, "add_first_prospects")
    complete(wf, "first_sale")
    assert ready(wf) == ["product_training"]
    complete(wf, "product_training")
    assert wf.is_completed()
