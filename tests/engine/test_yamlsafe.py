"""engine.yamlsafe: safe YAML with line numbers, and schema errors as Problems."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
import yaml

from engine.errors import DefinitionErrors, Problem
from engine.yamlsafe import (
    LoadedYaml,
    StrictSafeLoader,
    format_path,
    line_of,
    load_yaml,
    schema_problems,
)


def problems_of(text: str, file: str | None = "f.yaml") -> list[Problem]:
    with pytest.raises(DefinitionErrors) as caught:
        load_yaml(textwrap.dedent(text), file)
    return caught.value.problems


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "y", "n", "On", "OFF", "Yes", "NO"])
def test_yaml_1_1_booleans_stay_strings(word: str) -> None:
    loaded = load_yaml(f"value: {word}\nlist: [{word}]\n{word}: key\n")
    assert loaded.data == {"value": word, "list": [word], word: "key"}
    assert yaml.load(f"value: {word}", Loader=StrictSafeLoader) == {"value": word}


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("True", True), ("FALSE", False), ("'true'", "true")],
)
def test_only_true_and_false_are_booleans(text: str, value: object) -> None:
    assert load_yaml(f"v: {text}").data == {"v": value}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("017", 17),  # YAML 1.1 would read octal 15
        ("0o17", 15),
        ("0x1F", 31),
        ("-42", -42),
        ("1:30", "1:30"),  # YAML 1.1 would read sexagesimal 90
        ("2024-05-01", "2024-05-01"),  # YAML 1.1 would read a date
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("-.inf", -math.inf),
        ("~", None),
        ("null", None),
        ("", None),
        ("'12'", "12"),
        ("!!str 12", "12"),
        ("!!float 3", 3.0),
    ],
)
def test_core_schema_scalars(text: str, value: object) -> None:
    loaded = load_yaml(f"v: {text}\n")
    assert loaded.data == {"v": value}
    assert type(loaded.data["v"]) is type(value)
    assert yaml.load(f"v: {text}\n", Loader=StrictSafeLoader) == {"v": value}


def test_nan_is_a_float() -> None:
    assert math.isnan(load_yaml("v: .nan").data["v"])


def test_lines_point_at_keys_and_list_entries() -> None:
    loaded = load_yaml(
        textwrap.dedent(
            """\
            # a comment
            name: demo
            items:
              - id: a
                variants:
                  - id: a1

                  - id: a2
                    title: A two
            """
        ),
        "demo.yaml",
    )
    assert loaded.file == "demo.yaml"
    assert loaded.lines[("name",)] == 2
    assert loaded.lines[("items",)] == 3
    assert loaded.lines[("items", 0)] == 4
    assert loaded.lines[("items", 0, "variants")] == 5
    assert loaded.lines[("items", 0, "variants", 1)] == 8
    assert loaded.lines[("items", 0, "variants", 1, "title")] == 9
    assert loaded.line_of(("items", 0, "variants", 1, "title")) == 9
    # a path that is not in the document falls back to its nearest ancestor
    assert loaded.line_of(("items", 0, "variants", 1, "missing")) == 8
    assert line_of({}, ("anything",)) is None


def test_anchors_aliases_and_merge_keys() -> None:
    loaded = load_yaml(
        textwrap.dedent(
            """\
            base: &base
              kind: video
              weight: 2
            item:
              <<: *base
              weight: 3
              id: x
            copy: *base
            """
        )
    )
    assert loaded.data["item"] == {"kind": "video", "weight": 3, "id": "x"}
    assert loaded.data["copy"] == {"kind": "video", "weight": 2}
    assert loaded.lines[("item", "weight")] == 6  # the explicit key wins
    assert loaded.lines[("item", "kind")] == 2  # a merged key points at its definition


def test_python_tags_are_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"""\
        name: ok
        payload: !!python/object/apply:os.system ["touch {marker}"]
        """
    [problem] = problems_of(text, "evil.yaml")
    assert problem.file == "evil.yaml"
    assert problem.line == 2
    assert problem.element == "payload"
    assert problem.code == "yaml-tag"
    assert "!!python/object/apply:os.system is not allowed" in problem.message
    assert "Python object tags are refused" in problem.message
    with pytest.raises(yaml.YAMLError):
        yaml.load(textwrap.dedent(text), Loader=StrictSafeLoader)
    assert not marker.exists()


@pytest.mark.parametrize(
    "value",
    ["!custom x", "!!binary aGk=", "!!timestamp 2024-05-01", "!!set {a: null}", "!!python/name:x"],
)
def test_non_json_tags_are_refused(value: str) -> None:
    [problem] = problems_of(f"v: {value}\n")
    assert problem.code == "yaml-tag"
    assert problem.line == 1
    assert "is not allowed" in problem.message


def test_every_yaml_problem_is_reported_at_once() -> None:
    problems = problems_of(
        """\
        id: a
        title: one
        id: b
        3: three
        v: !!int many
        w: !!bool yes
        """
    )
    assert [(p.line, p.code) for p in problems] == [
        (3, "yaml-duplicate"),
        (4, "yaml-key"),
        (5, "yaml-tag"),
        (6, "yaml-tag"),
    ]
    assert problems[0].message == "duplicate key 'id' (first at line 1)"
    assert "quote it" in problems[1].message


def test_syntax_error_names_file_and_line() -> None:
    [problem] = problems_of("items:\n  - id: a\n    title: [unclosed\n  - id: b\n", "bad.yaml")
    assert problem.code == "yaml-syntax"
    assert problem.file == "bad.yaml"
    assert problem.line is not None and problem.line >= 3
    assert problem.message.startswith("YAML syntax error")


def test_one_document_per_file() -> None:
    [problem] = problems_of("a: 1\n---\nb: 2\n")
    assert problem.line == 2
    assert "single document" in problem.message


def test_alias_bomb_is_refused() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    [problem] = problems_of("\n".join(lines))
    assert problem.code == "yaml-too-big"
    assert "alias bomb" in problem.message


def test_small_documents_under_the_node_limit_load() -> None:
    assert load_yaml("a: &a [1, 2]\nb: [*a, *a]\n", max_nodes=20).data == {
        "a": [1, 2],
        "b": [[1, 2], [1, 2]],
    }
    with pytest.raises(DefinitionErrors):
        load_yaml("a: &a [1, 2]\nb: [*a, *a]\n", max_nodes=5)


def test_recursive_alias_is_refused() -> None:
    [problem] = problems_of("a: &a\n  - *a\n")
    assert problem.code == "yaml-alias"


def test_deep_nesting_is_refused_not_a_crash() -> None:
    [problem] = problems_of("v: " + "[" * 5000 + "]" * 5000)
    assert problem.code in ("yaml-too-deep", "yaml-syntax")


def test_empty_document_is_none() -> None:
    assert load_yaml("") == LoadedYaml(None, {}, None)
    assert load_yaml("# only a comment\n", "x.yaml").data is None


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("items",), "items"),
        (("items", 3, "variants", 0, "id"), "items[3].variants[0].id"),
        (("items", 0, "my key"), 'items[0]["my key"]'),
        ((0, "a"), "[0].a"),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "steps"],
    "properties": {
        "name": {"type": "string"},
        "mode": {"enum": ["guidance", "required"]},
        "steps": {
            "type": "array",
            "uniqueItems": True,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id"],
                "properties": {
                    "id": {
                        "type": "string",
                        "pattern": "^[a-z_]+$",
                        "x-messages": {"pattern": "step ids are snake_case"},
                    },
                    "after": {
                        "anyOf": [
                            {"type": "string", "pattern": "^P"},
                            {"type": "integer", "minimum": 0},
                        ]
                    },
                },
            },
        },
    },
}


def schema_check(text: str) -> list[Problem]:
    loaded = load_yaml(textwrap.dedent(text), "map.yaml")
    return schema_problems(loaded.data, SCHEMA, loaded.lines, "map.yaml")


def test_valid_data_has_no_schema_problems() -> None:
    assert schema_check("name: x\nsteps:\n  - id: a\n  - id: b\n    after: P2D\n") == []


def test_unknown_key_has_line_path_and_suggestion() -> None:
    [problem] = schema_check(
        """\
        name: x
        steps:
          - id: a
          - id: b
            aftr: P1D
        """
    )
    assert (problem.file, problem.line, problem.element) == ("map.yaml", 5, "steps[1].aftr")
    assert problem.code == "unknown-key"
    assert problem.suggestion == "after"
    assert str(problem) == "map.yaml:5: steps[1].aftr: unknown key 'aftr' (did you mean 'after'?)"


def test_unknown_key_without_a_close_match_lists_the_allowed_keys() -> None:
    [problem] = schema_check("name: x\nsteps: []\nzzz: 1\n")
    assert problem.suggestion is None
    assert "allowed here: name, mode, steps" in problem.message


def test_enum_value_gets_a_suggestion() -> None:
    [problem] = schema_check("name: x\nmode: guidence\nsteps: []\n")
    assert (problem.line, problem.element, problem.code) == (2, "mode", "unknown-value")
    assert problem.suggestion == "guidance"
    assert "guidance, required" in problem.message


def test_all_schema_problems_at_once_sorted_by_line() -> None:
    problems = schema_check(
        """\
        name: on
        steps:
          - id: Bad-Id
          - title: no id
          - id: ok
            after: -3
        """
    )
    # `name: on` stays a string, so it is not a problem
    assert [(p.line, p.element, p.code) for p in problems] == [
        (3, "steps[0].id", "schema"),
        (4, "steps[1]", "missing-key"),
        (4, "steps[1].title", "unknown-key"),
        (6, "steps[2].after", "schema"),
    ]
    assert problems[0].message == "step ids are snake_case"  # from x-messages
    assert problems[1].message == "missing required key 'id'"


def test_type_errors_say_what_was_expected() -> None:
    [problem] = schema_check("name: true\nsteps: []\n")
    assert problem.code == "wrong-type"
    assert problem.message == "the value must be text, not true or false (quote it)"
    [problem] = schema_check("- a\n")
    assert problem.message == "the document must be a mapping, not a list"
    assert problem.element is None and problem.line == 1


def test_duplicate_list_entries_point_at_the_repeat() -> None:
    [problem] = schema_check("name: x\nsteps:\n  - id: a\n  - id: b\n  - id: a\n")
    assert (problem.line, problem.element, problem.code) == (5, "steps[2]", "duplicate")


def test_schema_problems_on_missing_lines_still_work() -> None:
    problems = schema_problems({"steps": 5}, SCHEMA, {}, None)
    assert {p.code for p in problems} == {"missing-key", "wrong-type"}
    assert all(p.line is None for p in problems)


# Text the store holds was accepted once; it is read back by libyaml (`accepted_before`),
# which must give exactly what the pure-Python loader gives: data, lines and problems.
LIFEVANTAGE_CATALOG = Path(__file__).resolve().parents[2] / "processes/lifevantage/catalog.yaml"
STORED = [
    LIFEVANTAGE_CATALOG.read_text(encoding="utf-8"),
    "a: on\nb: 017\nc: 0x1F\nd: 1:30\ne: 2024-05-01\nf: ~\ng: .inf\nh: TRUE\ni: ''\n",
    "base: &b {x: 1, y: [1, 2]}\nitems:\n  - <<: *b\n    y: 3\n  - *b\n",
    "text: |\n  two\n  lines\nfolded: >\n  one\n  line\n",
]


@pytest.mark.parametrize("text", STORED)
def test_text_accepted_before_reads_back_the_same(text: str) -> None:
    assert load_yaml(text, "s.yaml", accepted_before=True) == load_yaml(text, "s.yaml")


@pytest.mark.parametrize("text", ["a: [1, 2\n", "a: 1\na: 2\n", "a: !!python/name:os.system x\n",
                                  "a: &x [*x]\n", "a: !!int nope\n"])
def test_text_accepted_before_that_is_bad_gets_the_usual_problems(text: str) -> None:
    with pytest.raises(DefinitionErrors) as usual:
        load_yaml(text, "s.yaml")
    with pytest.raises(DefinitionErrors) as stored:
        load_yaml(text, "s.yaml", accepted_before=True)
    assert stored.value.problems == usual.value.problems
