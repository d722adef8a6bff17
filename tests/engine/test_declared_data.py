"""Declared data (docs/data.md): what conditions may read, checked when a map is loaded and
when it runs; gateways the declared data proves exhaustive; maps that can stall."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.util.task import TaskState

import nextmove
from engine import Engine, ProspectRef, load
from engine.definitions import build_spec
from engine.definitions.compile import compile_map
from engine.definitions.data import DataDeclaration, DataField
from engine.definitions.yaml_maps import load_yaml_map
from engine.errors import ExpressionError
from engine.expressions import SafeScriptEngine, evaluate
from tests.conftest import FIXTURES, REPO

DECLARED = FIXTURES / "yaml" / "declared"
BPMN_DATA = FIXTURES / "bpmn" / "data"
STALLS = FIXTURES / "bpmn" / "stalls"
LIFEVANTAGE = REPO / "processes" / "lifevantage"


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


def only_error(path: Path) -> tuple[str, str | None, int | None, str | None, str]:
    report = load([path])
    (problem,) = report.errors
    assert report.definitions == []
    assert problem.file == str(path)
    return problem.code, problem.element, problem.line, problem.suggestion, problem.message


# -- the reproductions -------------------------------------------------------------------


def test_a_typo_in_a_condition_name_is_refused_with_the_declared_name() -> None:
    path = DECLARED / "name_typo.yaml"
    code, element, line, hint, message = only_error(path)

    assert (code, element, line, hint) == (
        "undeclared-name", "steps[5].decide[0].when", line_of(path, "interst =="), "interest")
    assert "'interst'" in message and "declared: interest" in message


def test_a_value_outside_the_enumeration_is_refused_with_the_nearest_value() -> None:
    path = DECLARED / "value_typo.yaml"
    code, element, line, hint, message = only_error(path)

    assert (code, element, line, hint) == (
        "unknown-value", "steps[5].decide[1].when", line_of(path, "'distributer'"), "distributor")
    assert "'customer', 'distributor', 'not_now'" in message


def test_timers_the_runtime_cannot_schedule_are_refused_at_validate() -> None:
    path = BPMN_DATA / "bad_durations.bpmn"
    report = load([path])

    assert report.definitions == []
    assert [(p.code, p.element, p.line) for p in report.errors] == [
        ("bad-timer", element, line_of(path, f'id="{element}"'))
        for element in ("quoted_words", "plain_words", "weeks_and_days", "date_as_duration")]
    assert "'2 days' is not an ISO 8601 duration" in report.errors[0].message
    assert "a date timer needs a date-time" in report.errors[3].message


# -- declarations ----------------------------------------------------------------------------------


def test_every_map_in_processes_declares_its_data() -> None:
    report = nextmove.load([LIFEVANTAGE])  # with its catalog, cross-checked

    assert report.problems == []
    declared = {d.process_id: d.map.data for d in report.definitions}
    assert declared == {
        "distributor_onboarding": DataDeclaration({}),
        "prospect_journey": DataDeclaration({"interest": DataField(
            "interest", "string", ("customer", "distributor", "not_now"))}),
    }


def test_the_compiled_bpmn_carries_the_declaration() -> None:
    m = load_yaml_map(DECLARED / "exhaustive.yaml")
    root = etree.fromstring(compile_map(m).xml)
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
          "nextmove": "http://nextmove.dev/schema/bpmn/1.0"}
    (prop,) = root.findall("bpmn:process/bpmn:extensionElements/nextmove:properties/"
                           "nextmove:property[@name='data']", ns)
    assert json.loads(prop.get("value")) == {
        "plan": {"type": "string", "values": ["customer", "distributor"], "required": True}}
    (definition,) = load([DECLARED / "exhaustive.yaml"]).definitions
    assert definition.map.data == DataDeclaration({"plan": DataField(
        "plan", "string", ("customer", "distributor"), required=True)})


def test_a_camunda_8_form_and_a_data_object_declare_data() -> None:
    report = load([BPMN_DATA / "camunda8_form.bpmn"])

    assert report.problems == []
    (definition,) = report.definitions
    assert definition.map.data == DataDeclaration({
        "budget": DataField("budget", "number"),
        "interest": DataField("interest", "string", ("customer", "not_now"), True, "Interest"),
        "score": DataField("score", description="Lead score"),
    })


def test_a_bpmn_file_that_declares_nothing_reads_the_names_its_conditions_read() -> None:
    report = load([FIXTURES / "bpmn" / "gateway.bpmn"])

    assert report.problems == []
    (definition,) = report.definitions
    assert definition.map.data is None
    spec, _ = build_spec(definition.process_id, definition.documents)
    assert spec.nextmove_data.inferred
    assert spec.nextmove_data.names == ["interest"]


def test_two_names_a_typo_apart_in_an_undeclared_file_are_a_warning() -> None:
    path = BPMN_DATA / "undeclared_typo.bpmn"
    report = load([path])

    assert report.errors == [] and len(report.definitions) == 1
    (warning,) = report.problems
    assert (warning.code, warning.severity, warning.element, warning.line) == (
        "possible-typo", "warning", "undeclared_typo", line_of(path, "<bpmn:process"))
    assert "'interest' and 'interst'" in warning.message


# -- exhaustive gateways ---------------------------------------------------------------------------


def test_a_branch_per_value_of_a_required_field_needs_no_default() -> None:
    report = load([DECLARED / "exhaustive.yaml"])

    assert report.problems == []
    assert [d.process_id for d in report.definitions] == ["exhaustive"]


def test_an_optional_field_can_be_absent_so_the_gateway_still_needs_a_default() -> None:
    path = DECLARED / "not_exhaustive.yaml"
    code, element, line, _, _ = only_error(path)

    assert (code, element, line) == ("no-default", "steps[1].decide", line_of(path, "decide:"))


# -- at run time -----------------------------------------------------------------------------------

INTEREST = DataDeclaration({
    "interest": DataField("interest", "string", ("customer", "not_now")),
    "plan": DataField("plan", "string", ("a", "b"), required=True),
})


def test_a_declared_optional_value_that_is_absent_is_none() -> None:
    assert evaluate("interest == 'customer'", {}, INTEREST) is False
    assert evaluate("interest is None", {}, INTEREST) is True
    assert evaluate("interest == 'customer'", {"interest": "customer"}, INTEREST) is True


def test_an_undeclared_name_is_an_error_naming_the_declared_ones() -> None:
    with pytest.raises(ExpressionError, match=r"'interst' is not declared data \(declared: "
                       r"interest, plan\); did you mean 'interest'\?"):
        evaluate("interst == 'customer'", {"interst": "customer"}, INTEREST)
    assert evaluate("interst == 'customer'", {}) is False  # no declaration: the old reading


def test_a_required_value_that_is_absent_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="required data 'plan' is missing"):
        evaluate("plan == 'a'", {}, INTEREST)


def test_the_script_engine_reads_names_through_the_specs_declaration() -> None:
    (definition,) = load([DECLARED / "exhaustive.yaml"]).definitions
    spec, subprocesses = build_spec(definition.process_id, definition.documents)
    assert spec.nextmove_data == definition.map.data

    def run(data: dict[str, str]) -> BpmnWorkflow:
        workflow = BpmnWorkflow(spec, subprocesses, script_engine=SafeScriptEngine())
        workflow.do_engine_steps()
        (talk,) = workflow.get_tasks(state=TaskState.READY, manual=True)
        talk.data.update(data)
        talk.run()
        workflow.do_engine_steps()
        return workflow

    ready = run({"plan": "distributor"}).get_tasks(state=TaskState.READY, manual=True)
    waiting = [t.task_spec.name for t in ready]
    assert waiting == ["enroll"]
    with pytest.raises(WorkflowTaskException, match="required data 'plan' is missing"):
        run({})


def test_lifevantage_routes_as_before_through_the_engine(lv: Engine) -> None:
    routes = {}
    for prospect, said in (("ann", {"interest": "customer"}), ("bo", {})):
        ref = ProspectRef(prospect)
        lv.start("prospect_journey", prospect, "d1")
        lv.complete(ref, "add_contact")
        lv.complete(ref, "share_intro")
        lv.signal("video_played", prospect)
        routes[prospect] = lv.complete(ref, "conversation", said).waiting_steps
    assert routes == {"ann": ["customer_order"], "bo": ["nurture"]}


# -- stalls ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "missing"), [("timeout_join", "Flow_called"),
                                                ("choice_join", "Flow_ordered")])
def test_a_join_that_can_wait_forever_is_refused(name: str, missing: str) -> None:
    path = STALLS / f"{name}.bpmn"
    code, element, line, _, message = only_error(path)

    assert (code, element, line) == ("stall", "join", line_of(path, 'id="join"'))
    assert f"'{missing}'" in message and "nothing waiting and no timer" in message


def test_a_join_that_stalls_only_for_some_data_is_a_warning() -> None:
    path = STALLS / "maybe_join.bpmn"
    report = load([path])

    assert [d.process_id for d in report.definitions] == ["maybe_join"]
    (warning,) = report.problems
    assert (warning.code, warning.severity, warning.element) == ("stall", "warning", "join")
    assert "if the gateway conditions upstream route that way" in warning.message
