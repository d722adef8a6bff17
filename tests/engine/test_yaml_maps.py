"""YAML process maps → typed steps: the format, its defaults, and every problem with its place."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from engine.definitions.yaml_maps import (
    Step,
    YamlMap,
    humanize,
    load_yaml_map,
    load_yaml_map_text,
)
from engine.errors import DefinitionErrors, Problem

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "yaml"
LIFEVANTAGE = Path(__file__).resolve().parents[2] / "processes" / "lifevantage"
CATALOG_HOOKS = {
    "first_contact_message", "intro_video", "follow_up_message", "presentation", "order_link",
    "enroll_invitation", "nurture_message", "welcome_training", "product_training",
    "first_ten_contacts", "first_sale_tips", "sponsor_alert_message",
}
CONTROL_WORDS = re.compile(r"\b(must|always|required to|have to|mandatory)\b", re.IGNORECASE)


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(DefinitionErrors) as caught:
        load_yaml_map_text(text, "map.yaml")
    return caught.value.problems


def only_problem(text: str) -> Problem:
    found = [p for p in problems_of(text) if p.severity == "error"]
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def steps_by_id(m: YamlMap) -> dict[str, Step]:
    return {s.id: s for s in m.all_steps()}


# -- the format ------------------------------------------------------------------------------------


def test_a_minimal_map_needs_only_a_process_and_step_ids() -> None:
    m = load_yaml_map_text("process: p\nsteps:\n  - id: say_hello\n  - id: share_video\n")

    assert (m.process, m.name, m.description) == ("p", "P", None)
    first, second = m.steps
    assert (first.kind, first.name, first.then, first.line) == (
        "task", "Say hello", "share_video", 3)
    assert (first.control, first.role, first.hook) == ("guidance", "distributor", None)
    assert (second.then, second.path) == (None, "steps[1]")
    assert m.warnings == ()


def test_every_kind_of_step_is_read() -> None:
    m = load_yaml_map(FIXTURES / "all_kinds.yaml")
    steps = steps_by_id(m)

    kinds = {s.id: s.kind for s in m.all_steps()}
    assert kinds == {
        "greet": "task", "log_contact": "auto", "wait_video": "wait", "nudge": "task",
        "talk": "task", "route": "decide", "coach": "task", "both": "parallel", "order": "task",
        "thank": "task", "remind": "task", "thank_again": "auto", "group_phase": "group",
        "inner_call": "call", "inner_wait": "wait", "finish": "end",
    }
    assert m.file == str(FIXTURES / "all_kinds.yaml")
    assert [(t.message, t.after, t.next, t.path) for t in steps["wait_video"].wait] == [
        ("video_played", None, "talk", "steps[2].wait[0]"),
        (None, "PT4H", "nudge", "steps[2].wait[1]"),
    ]
    assert [(c.when, c.next) for c in steps["route"].decide] == [
        ("interest == 'customer'", "both"), ("interest == 'distributor'", "group_phase"),
        (None, "finish"),
    ]
    assert [[s.id for s in b] for b in steps["both"].branches] == [
        ["order"], ["thank", "thank_again"]]
    assert steps["order"].path == "steps[7].parallel[0]"
    assert steps["thank_again"].path == "steps[7].parallel[1][1]"
    assert [s.id for s in steps["group_phase"].steps] == ["inner_call", "inner_wait"]
    assert steps["inner_call"].call == "helper_process"
    assert steps["inner_wait"].wait[0].message == "signed_up"  # the one-trigger mapping form
    assert (steps["thank"].when_stuck, steps["thank"].stuck_step) == ("remind", steps["remind"])
    assert steps["remind"].path == "steps[7].parallel[1][0].when_stuck"
    assert (steps["talk"].stuck_after, steps["talk"].when_stuck) == ("P3D", "coach")
    assert (steps["group_phase"].expires_after, steps["group_phase"].when_expired) == (
        "P14D", "finish")
    assert steps["greet"].extra == (("channel", "sms"), ("priority", "2"), ("pinned", "true"))
    assert steps["talk"].data == (("interest", ("customer", "distributor", "not_now")),)
    assert (steps["order"].control, steps["order"].ack) == (
        "required", "I sent the order confirmation.")
    assert steps["coach"].role == "sponsor"
    assert m.step("finish") == steps["finish"] and m.step("nope") is None


def test_yaml_1_1_booleans_and_numbers_stay_text() -> None:
    m = load_yaml_map_text("process: p\nsteps:\n  - id: a\n    hook: on\n    card: no\n")

    assert (m.steps[0].hook, m.steps[0].card) == ("on", "no")
    problem = only_problem("process: p\nsteps:\n  - id: a\n  - id: b\n    end: yes\n")
    assert (problem.code, problem.element, problem.line) == ("unknown-value", "steps[1].end", 5)


def test_python_tags_are_refused_before_anything_is_built() -> None:
    problem = only_problem("process: p\nsteps:\n  - id: !!python/object/apply:os.system [ls]\n")

    assert (problem.code, problem.line) == ("yaml-tag", 3)


def test_humanize() -> None:
    assert humanize("share_intro-video.v2") == "Share intro video v2"


def test_the_schema_ships_in_the_package_and_is_draft_2020_12() -> None:
    text = resources.files("engine.definitions.schema").joinpath(
        "process-map.schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert schema["required"] == ["process", "steps"]


# -- problems --------------------------------------------------------------------------------------


def test_every_problem_in_a_file_is_reported_at_its_line() -> None:
    path = FIXTURES / "many_problems.yaml"
    expected = {
        (m.group(1), n) for n, line in enumerate(path.read_text().splitlines(), start=1)
        if (m := re.search(r"# expect: ([\w-]+)", line))
    }

    with pytest.raises(DefinitionErrors) as caught:
        load_yaml_map(path)

    found = caught.value.problems
    assert {(p.code, p.line) for p in found} == expected
    assert len(found) == len(expected) == 8
    assert all(p.file == str(path) and p.severity == "error" for p in found)
    by_code = {p.code: p for p in found}
    assert (by_code["unknown-key"].element, by_code["unknown-key"].suggestion) == (
        "steps[0].nxt", "next")
    assert (by_code["unknown-step"].element, by_code["unknown-step"].suggestion) == (
        "steps[2].wait[0].next", "conversation")
    assert by_code["duplicate-id"].element == "steps[4].id"
    assert "ISO 8601" in by_code["schema"].message
    assert str(by_code["unknown-key"]).startswith(f"{path}:6: steps[0].nxt: unknown key 'nxt'")


MAP = "process: p\nsteps:\n"

CASES = [
    ("unknown next target", MAP + "  - id: share\n    next: folow_up\n  - id: follow_up\n",
     "unknown-step", "steps[0].next", 4, "follow_up"),
    ("next into a group", MAP + "  - id: a\n    next: inner\n  - id: g\n    steps:\n"
     "      - id: inner\n", "out-of-scope", "steps[0].next", 4, None),
    ("decide without otherwise", MAP + "  - id: d\n    decide:\n      - when: x == 1\n"
     "        next: a\n  - id: a\n", "no-default", "steps[0].decide", 4, None),
    ("two otherwise", MAP + "  - id: d\n    decide:\n      - otherwise: a\n      - otherwise: a\n"
     "  - id: a\n", "two-defaults", "steps[0].decide[1].otherwise", 6, None),
    ("empty decide", MAP + "  - id: d\n    decide: []\n", "schema", "steps[0].decide", 4, None),
    ("wait without triggers", MAP + "  - id: w\n    wait: []\n", "schema", "steps[0].wait", 4,
     None),
    ("empty trigger", MAP + "  - id: w\n    wait: {}\n", "empty-trigger", "steps[0].wait", 4,
     None),
    ("message and timer in one trigger", MAP + "  - id: w\n    wait:\n      - message: m\n"
     "        after: P1D\n", "two-triggers", "steps[0].wait[0].after", 6, None),
    ("duplicate message", MAP + "  - id: w\n    wait:\n      - message: m\n      - message: m\n",
     "duplicate-trigger", "steps[0].wait[1].message", 6, None),
    ("duplicate id", MAP + "  - id: a\n  - id: a\n", "duplicate-id", "steps[1].id", 4, None),
    ("reserved id", MAP + "  - id: end\n", "reserved-id", "steps[0].id", 3, None),
    ("step named like the process", MAP + "  - id: p\n", "duplicate-id", "steps[0].id", 3, None),
    ("unreachable step", MAP + "  - id: a\n    next: end\n  - id: b\n", "unreachable",
     "steps[1]", 5, None),
    ("a loop with no way out", MAP + "  - id: a\n  - id: b\n    next: a\n", "no-end",
     "steps[0]", 3, None),
    ("stuck path rejoins", MAP + "  - id: a\n    stuck_after: P1D\n    when_stuck: b\n"
     "  - id: b\n", "stuck-path-rejoins", "steps[0].when_stuck", 5, None),
    ("end inside a branch", MAP + "  - id: par\n    parallel:\n      - id: a\n"
     "        next: end\n      - id: b\n", "end-in-branch", "steps[0].parallel[0].next", 6, None),
    ("stuck id inside a branch", MAP + "  - id: par\n    parallel:\n      - - id: a\n"
     "          stuck_after: P1D\n          when_stuck: b\n        - id: b\n      - id: c\n",
     "stuck-in-branch", "steps[0].parallel[0][0].when_stuck", 7, None),
    ("timer on a decide", MAP + "  - id: d\n    stuck_after: P1D\n    decide:\n"
     "      - otherwise: a\n  - id: a\n", "timer-not-allowed", "steps[0].stuck_after", 4, None),
    ("next on a decide", MAP + "  - id: d\n    next: a\n    decide:\n      - otherwise: a\n"
     "  - id: a\n", "next-not-allowed", "steps[0].next", 4, None),
    ("when_stuck without a timer", MAP + "  - id: a\n    when_stuck: end\n", "missing-timer",
     "steps[0].when_stuck", 4, None),
    ("a process calling itself", MAP + "  - id: a\n    call: p\n", "recursive-call",
     "steps[0].call", 4, None),
    ("bad condition", MAP + "  - id: d\n    decide:\n      - when: \"a = 1\"\n        next: x\n"
     "      - otherwise: x\n  - id: x\n", "expression", "steps[0].decide[0].when", 5, None),
    ("property with its own key", MAP + "  - id: a\n    properties:\n      hook: intro_video\n",
     "shadowed-property", "steps[0].properties.hook", 5, None),
    ("two kinds in one step", MAP + "  - id: a\n    call: x\n    end: true\n", "several-kinds",
     "steps[0].end", 5, None),
    ("unknown key", MAP + "  - id: a\n    hock: intro_video\n", "unknown-key", "steps[0].hock",
     4, "hook"),
    ("bad id", MAP + "  - id: 2nd step\n", "schema", "steps[0].id", 3, None),
    ("bad duration", MAP + "  - id: a\n    follow_up: 2 days\n", "schema", "steps[0].follow_up",
     4, None),
    ("unknown top-level key", "process: p\nnmae: P\nsteps:\n  - id: a\n", "unknown-key",
     "nmae", 2, "name"),
    ("missing steps", "process: p\n", "missing-key", None, 1, None),
]


@pytest.mark.parametrize(("text", "code", "element", "line", "hint"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_mistake_is_named_with_path_line_and_suggestion(
    text: str, code: str, element: str | None, line: int, hint: str | None
) -> None:
    problem = only_problem(text)

    assert (problem.code, problem.element, problem.line, problem.suggestion) == (
        code, element, line, hint)
    assert problem.file == "map.yaml"


def test_warnings_do_not_stop_a_map_from_loading() -> None:
    m = load_yaml_map_text(
        MAP + "  - id: a\n    control: required\n  - id: w\n    wait:\n      - after: P1D\n"
        "      - after: P2D\n  - id: d\n    decide:\n      - when: \"intrest == 'x'\"\n"
        "        next: a\n      - otherwise: end\ndata:\n  interest: [x]\n"
    )

    assert [(w.code, w.element, w.line, w.severity) for w in m.warnings] == [
        ("loop", "steps[0]", 3, "warning"),
        ("required-without-basis", "steps[0].control", 4, "warning"),
        ("several-timers", "steps[1].wait[1].after", 8, "warning"),
        ("unknown-data", "steps[2].decide[0].when", 11, "warning"),
    ]
    assert m.warnings[3].suggestion == "interest"
    assert "a → w → d → a" in m.warnings[0].message


def test_an_explicit_bounded_loop_loads_with_a_warning() -> None:
    m = load_yaml_map(FIXTURES / "loop.yaml")

    assert [w.code for w in m.warnings] == ["loop"]


def test_a_missing_file_is_a_definition_error(tmp_path: Path) -> None:
    with pytest.raises(DefinitionErrors) as caught:
        load_yaml_map(tmp_path / "nope.yaml")

    assert caught.value.problems[0].code == "io"


def test_an_empty_file_is_a_definition_error() -> None:
    problem = only_problem("")

    assert (problem.code, problem.message) == (
        "wrong-type", "the document must be a mapping, not null")


# -- the LifeVantage reference journeys ----------------------------------------------------------


def lifevantage_maps() -> list[YamlMap]:
    return [load_yaml_map(LIFEVANTAGE / "prospect_journey.yaml"),
            load_yaml_map(FIXTURES / "distributor_onboarding.yaml")]


def test_the_prospect_journey_follows_the_seed() -> None:
    m = load_yaml_map(LIFEVANTAGE / "prospect_journey.yaml")
    steps = steps_by_id(m)

    assert m.process == "prospect_journey" and m.warnings == ()
    assert [s.id for s in m.steps][:6] == [
        "add_contact", "share_intro", "wait_for_video", "follow_up", "conversation",
        "where_they_landed"]
    assert [(t.message, t.after, t.next) for t in steps["wait_for_video"].wait] == [
        ("video_played", None, "conversation"), (None, "P2D", "follow_up")]
    assert {c.next for c in steps["where_they_landed"].decide} == {
        "customer_order", "enroll", "nurture"}
    assert dict(steps["conversation"].data) == {"interest": ("customer", "distributor", "not_now")}
    assert steps["enroll"].control == "required"
    assert (steps["enroll"].basis or "").endswith("Income Disclosure Statement before enrolling.")
    assert steps["follow_up"].card == (
        "It's been a couple of days since you shared the video. A friendly check-in often helps:"
        " ask whether they had a chance to watch it, and what caught their attention.")


def test_onboarding_has_a_sponsor_alert_after_ten_days_without_a_sale() -> None:
    m = load_yaml_map(FIXTURES / "distributor_onboarding.yaml")
    sale = steps_by_id(m)["first_sale"]

    assert (sale.hook, sale.stuck_after) == ("first_sale_tips", "P10D")
    assert sale.stuck_step is not None
    assert (sale.stuck_step.role, sale.stuck_step.hook) == ("sponsor", "sponsor_alert_message")
    assert m.warnings == ()


@pytest.mark.parametrize("m", lifevantage_maps(), ids=lambda m: m.process)
def test_lifevantage_journeys_use_catalog_hooks_and_guiding_language(m: YamlMap) -> None:
    hooks = {s.hook for s in m.all_steps() if s.hook}
    assert hooks <= CATALOG_HOOKS
    for s in m.all_steps():
        if s.kind == "task":
            assert s.card, f"{s.id} has no card"
        assert not CONTROL_WORDS.search(s.card or ""), f"{s.id}: {s.card}"
        assert s.control == "guidance" or s.basis, s.id


def test_lifevantage_journeys_together_use_every_catalog_hook() -> None:
    used = {s.hook for m in lifevantage_maps() for s in m.all_steps() if s.hook}

    assert used == CATALOG_HOOKS
