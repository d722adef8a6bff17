"""BPMN files → definitions: dialects, validation problems, hostile XML and a real-world corpus."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lxml import etree

from engine import DefinitionError, DefinitionErrors, load, load_definitions
from engine.definitions import build_spec
from engine.definitions._xml import _parser
from tests.conftest import CORPORA, FIXTURES

BPMN = FIXTURES / "bpmn"
DIALECTS = sorted((BPMN / "dialects").glob("*.bpmn"))
ATTACKS = sorted((BPMN / "attacks").glob("*.bpmn"))
INVALID = BPMN / "invalid"
CORPUS = CORPORA / "bpmn"

IDS_CARD = "Share the income disclosure statement before talking about earnings."
DIALECT_PROPERTIES = {
    "invite": {"hook": "invite.message", "card": "Send a short personal invitation."},
    "income_disclosure": {
        "hook": "compliance.ids", "card": IDS_CARD, "control": "required",
        "basis": "FTC income disclosure",
    },
    "present_offer": {"hook": "offer.pack"},
    "share_info": {"hook": "info.brochure"},
}


def line_of(path: Path, element_id: str) -> int:
    """The line on which `element_id` is defined, found without an XML parser."""
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if f'id="{element_id}"' in text:
            return number
    raise AssertionError(f"{element_id} not in {path}")


# -- dialects ------------------------------------------------------------------------------------


def test_the_dialect_fixtures_cover_every_modeler() -> None:
    assert [p.name for p in DIALECTS] == [
        "bpmnio_attributes.bpmn", "camunda_modeler.bpmn", "nextmove.bpmn", "spiffarena.bpmn"]


@pytest.mark.parametrize("path", DIALECTS, ids=lambda p: p.stem)
def test_every_dialect_reads_hook_card_control_and_basis_the_same(path: Path) -> None:
    report = load([path])

    assert report.problems == []
    (definition,) = report.definitions
    people = {s.id: dict(s.properties) for s in definition.map.all_steps() if s.is_human}
    assert people == DIALECT_PROPERTIES
    required = definition.step("income_disclosure")
    assert required is not None
    assert (required.hook, required.card, required.control, required.basis) == (
        "compliance.ids", IDS_CARD, "required", "FTC income disclosure")
    invite = definition.step("invite")
    assert invite is not None
    assert (invite.control, invite.basis, invite.role) == ("guidance", None, "distributor")


@pytest.mark.parametrize("path", DIALECTS, ids=lambda p: p.stem)
def test_every_dialect_hands_the_same_properties_to_the_spiff_spec(path: Path) -> None:
    (definition,) = load_definitions([path])
    spec, subprocess_specs = build_spec(definition.process_id, definition.documents)

    assert subprocess_specs == {}
    for step_id, properties in DIALECT_PROPERTIES.items():
        assert spec.task_specs[step_id].extensions["properties"] == properties


def test_camunda_juel_condition_is_kept_as_written() -> None:
    (definition,) = load_definitions([BPMN / "dialects" / "camunda_modeler.bpmn"])
    flows = {f.id: f for f in definition.map.flows}

    assert flows["Flow_ready"].condition == '${interest eq "high" && score ge 50}'
    assert flows["Flow_info"].condition is None
    assert definition.step("gw_ready").default_flow == "Flow_info"  # type: ignore[union-attr]


def test_linear_map_has_ten_steps_with_hooks_and_one_required_step() -> None:
    (definition,) = load_definitions([BPMN / "linear10.bpmn"])
    people = [s for s in definition.map.all_steps() if s.is_human]

    assert [s.id for s in people] == [
        "add_contact", "send_invite", "share_video", "follow_up", "answer_questions",
        "share_testimonial", "income_disclosure", "present_offer", "handle_objections",
        "close_sale",
    ]
    assert all(s.hook and s.card for s in people)
    assert [(s.id, s.basis) for s in people if s.control == "required"] == [
        ("income_disclosure", "FTC income disclosure")]


def test_call_activity_folder_loads_with_its_called_process() -> None:
    definitions = {d.process_id: d for d in load_definitions([BPMN / "call_activity"])}

    assert sorted(definitions) == ["fast_start_training", "recruit"]
    recruit = definitions["recruit"]
    assert recruit.called == ("fast_start_training",)
    assert sorted(Path(name).name for name in recruit.documents) == [
        "fast_start_training.bpmn", "recruit.bpmn"]
    assert recruit.step("watch_basics") is not None  # steps of the called process are known


def test_call_activity_alone_names_the_missing_process() -> None:
    path = BPMN / "call_activity" / "recruit.bpmn"
    report = load([path])

    assert report.definitions == []
    assert [(p.code, p.element, p.line) for p in report.errors] == [
        ("unknown-process", "training", line_of(path, "training"))]


def test_embedded_subprocess_steps_are_part_of_the_map() -> None:
    (definition,) = load_definitions([BPMN / "subprocess.bpmn"])

    assert [s.id for s in definition.map.steps if s.is_human] == ["welcome_call", "thank_you"]
    (sub,) = definition.map.subprocesses
    assert sub.id == "first_order"
    assert [s.id for s in sub.steps if s.is_human] == ["pick_products", "confirm_order"]
    assert definition.step("pick_products").hook == "order.picker"  # type: ignore[union-attr]


# -- invalid maps ----------------------------------------------------------------------------------

INVALID_CASES = [
    ("missing_start.bpmn", "missing-start", "no_start", None),
    ("unreachable.bpmn", "unreachable", "send_gift", None),
    ("missing_default.bpmn", "missing-default", "gw_interest", None),
    ("unknown_process.bpmn", "unknown-process", "training", "welcome_training"),
    ("unsupported.bpmn", "unsupported", "push_to_crm", None),
    ("event_subprocess_message.bpmn", "unsupported", "question_asked", None),
    ("not_executable.bpmn", "not-executable", "Process_1", None),
    ("script_refused.bpmn", "script-refused", "compute_score", None),
    ("bad_condition.bpmn", "bad-condition", "Flow_escape", None),
]


@pytest.mark.parametrize(("name", "code", "element", "suggestion"), INVALID_CASES,
                         ids=[c[0] for c in INVALID_CASES])
def test_invalid_map_reports_code_file_line_and_element(
    name: str, code: str, element: str, suggestion: str | None
) -> None:
    path = INVALID / name
    report = load([path])

    assert report.definitions == []
    assert [(p.code, p.element) for p in report.errors] == [(code, element)]
    (problem,) = report.errors
    assert problem.file == str(path)
    assert problem.line == line_of(path, element)
    assert problem.suggestion == suggestion
    assert str(problem).startswith(f"{path}:{problem.line}: {element}: ")
    with pytest.raises(DefinitionErrors) as raised:
        load_definitions([path])
    assert raised.value.problems == report.problems


def test_unknown_process_message_suggests_the_near_name() -> None:
    (problem,) = load([INVALID / "unknown_process.bpmn"]).errors

    assert "welcome_trainnig" in problem.message
    assert str(problem).endswith("(did you mean 'welcome_training'?)")


def test_loop_without_a_way_out_names_every_step_stuck_in_it() -> None:
    path = INVALID / "no_end.bpmn"
    report = load([path])

    assert [(p.code, p.element, p.line) for p in report.errors] == [
        ("no-end", "remind", line_of(path, "remind")),
        ("no-end", "wait_reply", line_of(path, "wait_reply")),
    ]


def test_sandbox_escape_in_a_condition_is_refused_at_load_time() -> None:
    (problem,) = load([INVALID / "bad_condition.bpmn"]).errors

    assert "__class__" in problem.message
    assert problem.message.startswith("condition '().__class__.__base__.__subclasses__()'")


def test_script_tasks_load_when_the_operator_allows_them() -> None:
    report = load([INVALID / "script_refused.bpmn"], allow_scripts=True)

    assert report.problems == []
    assert [d.process_id for d in report.definitions] == ["scored_by_script"]


def test_load_reports_every_problem_of_a_file() -> None:
    path = INVALID / "several_problems.bpmn"
    report = load([path])

    found = sorted((p.code, p.element, p.line) for p in report.errors)
    assert found == sorted([
        ("unsupported", "push_to_crm", line_of(path, "push_to_crm")),
        ("script-refused", "compute_score", line_of(path, "compute_score")),
        ("missing-default", "gw_interest", line_of(path, "gw_interest")),
        ("bad-condition", "Flow_high", line_of(path, "Flow_high")),
        ("unreachable", "send_gift", line_of(path, "send_gift")),
    ])
    assert {p.file for p in report.problems} == {str(path)}
    with pytest.raises(DefinitionErrors) as raised:
        load_definitions([path])
    assert str(raised.value).startswith("5 problem(s); first: ")


def test_good_and_bad_files_together_report_the_bad_and_keep_the_good() -> None:
    report = load([BPMN / "gateway.bpmn", INVALID / "missing_default.bpmn", BPMN / "nowhere.bpmn"])

    assert [d.process_id for d in report.definitions] == ["prospect_qualify"]
    assert sorted(p.code for p in report.errors) == ["missing-default", "not-found"]


# -- hostile XML -----------------------------------------------------------------------------------


def test_attack_fixtures_cover_the_known_attacks() -> None:
    assert [p.stem for p in ATTACKS] == [
        "billion_laughs", "external_dtd", "internal_entity", "parameter_entity", "xxe_file",
        "xxe_utf16"]


@pytest.mark.parametrize("path", ATTACKS, ids=lambda p: p.stem)
def test_xml_attacks_are_refused_before_anything_is_expanded(path: Path) -> None:
    started = time.perf_counter()
    report = load([path])
    elapsed = time.perf_counter() - started

    assert report.definitions == []
    assert [(p.code, p.file, p.line) for p in report.problems] == [
        ("xml-doctype", str(path), 2)]
    text = str(report.problems[0])
    for expanded in ("root:", "INJECTED", "lollol", "attacker.example"):
        assert expanded not in text
    assert elapsed < 5, f"refusing {path.name} took {elapsed:.1f}s"  # a hang guard, not a benchmark


@pytest.mark.parametrize("path", ATTACKS, ids=lambda p: p.stem)
def test_building_a_spec_from_hostile_xml_is_refused_too(path: Path) -> None:
    # Stored documents are parsed again when a spec is built: that path must refuse them as well.
    with pytest.raises(DefinitionError) as raised:
        build_spec("xxe", {"stored.bpmn": path.read_bytes()})
    assert raised.value.problem.code == "xml-doctype"


@pytest.mark.parametrize("name", ["xxe_file", "internal_entity", "external_dtd"])
def test_the_hardened_parser_does_not_expand_entities_either(name: str) -> None:
    # Second wall, behind the DOCTYPE refusal: lxml itself resolves nothing.
    data = (BPMN / "attacks" / f"{name}.bpmn").read_bytes()
    text = etree.tostring(etree.fromstring(data, _parser()))

    assert b"add_contact" in text
    assert b"root:" not in text and b"INJECTED" not in text


def test_the_hardened_parser_stops_a_billion_laughs() -> None:
    data = (BPMN / "attacks" / "billion_laughs.bpmn").read_bytes()
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(data, _parser())


# -- real-world corpus ---------------------------------------------------------------------------


def test_every_corpus_file_loads_or_is_rejected_with_problems() -> None:
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    assert len(files) > 200
    loaded: dict[str, list[str]] = {}
    rejected: dict[str, list[str]] = {}
    failures: list[str] = []
    for path in files:
        started = time.perf_counter()
        try:
            report = load([path])
        except Exception as exc:  # the point of the test: nothing escapes as an exception
            failures.append(f"{path}: raised {type(exc).__name__}: {exc}")
            continue
        elapsed = time.perf_counter() - started
        if elapsed >= 10:
            failures.append(f"{path}: took {elapsed:.1f}s")
        name = str(path.relative_to(CORPUS))
        if report.errors:
            rejected[name] = [p.code for p in report.errors]
            if report.definitions:
                failures.append(f"{path}: has errors yet produced definitions")
            for problem in report.errors:
                if not (problem.code and problem.message and problem.file):
                    failures.append(f"{path}: unstructured problem {problem!r}")
        else:
            loaded[name] = [d.process_id for d in report.definitions]

    assert failures == []
    assert len([n for n, ids in loaded.items() if ids]) > 40
    for good in (
        "bpmn-engine/test/resources/forms.bpmn",
        "camunda-bpm-examples/usertask/task-form-embedded/src/main/resources/loanApproval.bpmn",
        "miwg-AB/trisotech-12.6.3/A.1.0-export.bpmn",
    ):
        assert loaded.get(good), f"{good} should load"
    assert rejected["camunda-modeler/test/e2e/fixtures/broken.bpmn"] == ["xml"]
    # Parallel joins that leave an instance active with nothing waiting, on SpiffWorkflow's
    # semantics (bpmn-engine, which wrote them, discards untaken flows; Spiff waits): docs/data.md
    for stalls, joins in (("succeeding-joins.bpmn", 2), ("boundary-timeout.bpmn", 1),
                          ("boundary-non-interupting-timer.bpmn", 1),
                          ("one-or-the-other.bpmn", 1)):
        assert rejected[f"bpmn-engine/test/resources/{stalls}"] == ["stall"] * joins
    dmn = [rejected[n] for n in rejected if n.endswith(".dmn")]
    assert all(codes in (["not-bpmn"], ["xml"]) for codes in dmn)  # one .dmn file is empty
    assert dmn.count(["not-bpmn"]) >= 30


def test_broken_corpus_file_points_at_the_bad_line() -> None:
    path = CORPUS / "camunda-modeler" / "test" / "e2e" / "fixtures" / "broken.bpmn"
    (problem,) = load([path]).problems

    assert (problem.code, problem.file, problem.line) == ("xml", str(path), 5)
    assert problem.message.startswith("not well-formed XML")
