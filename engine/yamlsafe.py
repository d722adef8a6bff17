"""Safe YAML that keeps line numbers, and JSON Schema errors turned into `Problem`s.

Every YAML file nextmove reads (process maps, the content catalog) goes through here, so all of
them follow the same rules and report mistakes the same way: file, line, YAML path, suggestion::

    loaded = load_yaml(text, file)  # raises DefinitionErrors on bad YAML
    problems = schema_problems(loaded.data, read_schema("pkg", "schema/x.json"), loaded.lines, file)
    problems += my_semantic_checks(loaded)  # loaded.line_of(path) gives lines
    if any(p.severity == "error" for p in problems): raise DefinitionErrors(problems)

API
    load_yaml(text, file=None, *, max_nodes=100_000) -> LoadedYaml(data, lines, file)
        One YAML document as plain JSON-like data (dict, list, str, int, float, bool, None).
        Every problem in the YAML itself (syntax, refused tags, duplicate or non-text keys,
        alias bombs) is collected and raised together as `DefinitionErrors`.
    schema_problems(data, schema, lines, file=None) -> list[Problem]
        Draft 2020-12 validation; every error becomes a Problem with path, line and, for unknown
        keys and enum values, a difflib suggestion. Sorted by line; never raises for bad data.
    line_of(lines, path) / LoadedYaml.line_of(path) -> the line of path or of its nearest ancestor
    format_path(path) -> ("items", 3, "variants", 0, "id") becomes "items[3].variants[0].id"
    read_schema(package, resource) -> a JSON Schema shipped in a package (importlib.resources)
    StrictSafeLoader -> yaml.SafeLoader with the same scalar rules, for yaml.load without lines

Rules
* YAML 1.2 core schema for plain scalars: only true/false (True, TRUE, ...) are booleans, so
  `on`, `off`, `yes`, `no`, `y`, `n` stay strings; `1:30` and `2024-05-01` stay strings (no
  sexagesimal numbers, no dates); `017` is 17, `0o17` 15, `0x1F` 31; `~`, `null` and empty are None.
* Only the standard tags !!str !!int !!float !!bool !!null !!map !!seq. Any other tag (notably
  `!!python/object/apply:...`) is a problem: nothing is ever built from a tag.
* Mapping keys must be text; a repeated key is a problem (PyYAML would silently keep the last).
* Anchors, aliases and merge keys (`<<: *base`) work; a recursive alias, or a document expanding
  to more than `max_nodes` nodes (an alias bomb), is refused. One document per file.

Paths are tuples of keys and indexes, `()` being the document. `lines[path]` is the line of the
key for a mapping entry (where people look for `title: ...`), else where the list entry starts.

Schemas may carry `x-messages`, a map from a JSON Schema keyword to the sentence to show when
that keyword fails on that (sub)schema, e.g. `{"pattern": "^[a-z_]+$", "x-messages":
{"pattern": "hook names are snake_case like intro_video"}}`. Validators ignore it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from engine.errors import DefinitionErrors, Problem, did_you_mean

if TYPE_CHECKING:
    from jsonschema import FormatChecker
    from jsonschema.exceptions import ValidationError


@cache
def _formats() -> FormatChecker:
    """Only nextmove's own formats are asserted; a duration is what the timers can schedule.
    (jsonschema and the timers' parser are imported here, when a file is first checked: reading
    what the store holds, already checked, needs neither.)"""
    from jsonschema import FormatChecker

    from engine.durations import DurationError, parse_iso_duration

    checker = FormatChecker(formats=())

    @checker.checks("iso-duration", raises=DurationError)
    def _is_duration(value: object) -> bool:
        return not isinstance(value, str) or bool(parse_iso_duration(value))

    return checker

__all__ = [
    "LoadedYaml", "StrictSafeLoader", "YamlPath", "format_path", "line_of", "load_yaml",
    "read_schema", "schema_problems",
]

YamlPath = tuple[str | int, ...]

_Y = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (_Y + t for t in ("str", "int", "float", "bool", "null"))
MAP, SEQ, MERGE = _Y + "map", _Y + "seq", _Y + "merge"

_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")


def _to_int(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits[:2] in ("0o", "0x"):
        return sign * int(digits[2:], 8 if digits[1] == "o" else 16)
    return sign * int(digits, 10)


def _to_float(text: str) -> float:
    special = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
    return special[text.lower()] if text.lower() in special else float(text)


def _to_bool(text: str) -> bool:
    return {"true": True, "false": False}[text.lower()]  # KeyError: not a boolean


def _to_null(text: str) -> None:
    if not _NULL_RE.match(text):
        raise ValueError(text)


_SCALARS: dict[str, Any] = {
    STR: str, INT: _to_int, FLOAT: _to_float, BOOL: _to_bool, NULL: _to_null
}
_WORDS = {INT: "a whole number", FLOAT: "a number", BOOL: "true or false", NULL: "null"}


class StrictSafeLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` with YAML 1.2 core-schema scalars (see the module docstring)."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}


for _tag, _regexp, _first in (
    (BOOL, _BOOL_RE, "tTfF"),
    (INT, _INT_RE, "-+0123456789"),
    (FLOAT, _FLOAT_RE, "-+.0123456789"),
    (NULL, _NULL_RE, ["~", "n", "N", ""]),
    (MERGE, re.compile(r"^<<$"), "<"),
):
    StrictSafeLoader.add_implicit_resolver(_tag, _regexp, list(_first))


def _construct_refused(loader: StrictSafeLoader, node: Node) -> None:
    message = f"tag {node.tag} is not allowed: plain data only"
    raise yaml.constructor.ConstructorError(None, None, message, node.start_mark)


StrictSafeLoader.add_constructor(INT, lambda loader, node: _to_int(node.value))
StrictSafeLoader.add_constructor(FLOAT, lambda loader, node: _to_float(node.value))
for _tag in ("binary", "timestamp", "set", "omap", "pairs"):  # not JSON data
    StrictSafeLoader.add_constructor(_Y + _tag, _construct_refused)


@dataclass(frozen=True)
class LoadedYaml:
    """One parsed YAML document: plain data plus the line of every path in it."""

    data: Any
    lines: dict[YamlPath, int] = field(default_factory=dict)
    file: str | None = None

    def line_of(self, path: YamlPath) -> int | None:
        return line_of(self.lines, path)


def format_path(path: YamlPath) -> str:
    """("items", 3, "id") -> "items[3].id"; keys that are not plain names are quoted."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def line_of(lines: Mapping[YamlPath, int], path: YamlPath) -> int | None:
    """The line of `path`, else of its nearest ancestor in `lines`, else None."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


class _TooBig(Exception):
    pass


class _Builder:
    """Turns composed nodes into plain data, recording lines and collecting problems."""

    def __init__(self, file: str | None, max_nodes: int) -> None:
        self.file = file
        self.max_nodes, self.count = max_nodes, 0
        self.lines: dict[YamlPath, int] = {}
        self.problems: list[Problem] = []
        self._open: set[int] = set()

    def problem(self, node: Node, path: YamlPath, message: str, code: str) -> None:
        line, element = node.start_mark.line + 1, format_path(path) or None
        self.problems.append(Problem(message, self.file, line, element, code=code))

    def build(self, node: Node, path: YamlPath) -> Any:
        self.count += 1
        if self.count > self.max_nodes:
            raise _TooBig
        if id(node) in self._open:
            self.problem(node, path, "an alias refers to a node that contains it", "yaml-alias")
            return None
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        self._open.add(id(node))
        try:
            if isinstance(node, SequenceNode) and node.tag == SEQ:
                items = []
                for index, child in enumerate(node.value):
                    self.lines[(*path, index)] = child.start_mark.line + 1
                    items.append(self.build(child, (*path, index)))
                return items
            if isinstance(node, MappingNode) and node.tag == MAP:
                return self.mapping(node, path)
            return self.refuse_tag(node, path)
        finally:
            self._open.discard(id(node))

    def scalar(self, node: ScalarNode, path: YamlPath) -> Any:
        convert = _SCALARS.get(node.tag)
        if convert is None:
            return self.refuse_tag(node, path)
        try:
            return convert(node.value)
        except (ValueError, KeyError):
            word = _WORDS.get(node.tag, node.tag)
            self.problem(node, path, f"{node.value!r} is tagged as {word} but is not", "yaml-tag")
            return None

    def refuse_tag(self, node: Node, path: YamlPath) -> None:
        tag = node.tag.replace(_Y, "!!")
        if tag.startswith("!!python/"):
            why = "Python object tags are refused: these files hold plain data only"
        else:
            why = "only plain data is allowed (text, numbers, true/false, null, lists, mappings)"
        self.problem(node, path, f"tag {tag} is not allowed; {why}", "yaml-tag")

    def mapping(self, node: MappingNode, path: YamlPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                merges.extend(sources)
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            line = key_node.start_mark.line + 1
            if key in first_line:
                message = f"duplicate key {key!r} (first at line {first_line[key]})"
                self.problem(key_node, (*path, key), message, "yaml-duplicate")
                continue
            first_line[key] = line
            self.lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key))
        for source in merges:  # explicit keys win over merged ones, earlier merges over later
            if not isinstance(source, MappingNode):
                self.problem(source, path, "'<<' merges only mappings", "yaml-merge")
                continue
            outer, self.lines = self.lines, {}
            merged = self.build(source, path)
            merged_lines, self.lines = self.lines, outer
            for key, value in (merged or {}).items():
                at = (*path, key)
                if key not in result:
                    result[key] = value
                    self.lines.update(
                        (p, n) for p, n in merged_lines.items() if p[: len(path) + 1] == at
                    )
        return result

    def key(self, node: Node, path: YamlPath) -> str | None:
        if not isinstance(node, ScalarNode):
            self.problem(node, path, "a key must be plain text, not a list or mapping", "yaml-key")
            return None
        key = self.scalar(node, path)
        if isinstance(key, str):
            return key
        if node.tag in _WORDS:
            self.problem(node, path, f"key {node.value!r} must be text: quote it", "yaml-key")
        return None


def _fail(message: str, file: str | None, code: str, line: int | None = None) -> DefinitionErrors:
    return DefinitionErrors([Problem(message, file, line, code=code)])


@cache
def _libyaml_composer() -> Any:
    """libyaml's composer with `StrictSafeLoader`'s scalar rules: the same nodes (tags, lines)
    for a document the pure-Python loader accepted, some forty times faster. None when PyYAML
    was built without libyaml."""
    try:
        from yaml._yaml import CParser  # libyaml, when PyYAML was built with it
    except ImportError:
        return None

    class Composer(CParser, BaseResolver):
        yaml_implicit_resolvers = StrictSafeLoader.yaml_implicit_resolvers

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            BaseResolver.__init__(self)

    return Composer


def load_yaml(text: str, file: str | None = None, *, max_nodes: int = 100_000,
              accepted_before: bool = False) -> LoadedYaml:
    """Parse one YAML document safely; raise `DefinitionErrors` listing every YAML problem.

    `accepted_before`: the text passed this function once already (what the store holds), so
    libyaml composes it when PyYAML has it (the same nodes; its error messages differ, so a
    document it refuses is parsed again the usual way, for the usual problems)."""
    composer = _libyaml_composer() if accepted_before else None
    if composer is not None:
        try:
            return _build_document(composer(text), file, max_nodes)
        except (DefinitionErrors, yaml.YAMLError, _TooBig, RecursionError):
            pass
    try:
        return _build_document(StrictSafeLoader(text), file, max_nodes)
    except yaml.YAMLError as exc:
        raise _syntax_problem(exc, file) from exc
    except _TooBig:
        message = f"the document expands to more than {max_nodes} nodes (an alias bomb?)"
        raise _fail(message, file, "yaml-too-big") from None
    except RecursionError:
        raise _fail("the document is nested too deeply", file, "yaml-too-deep") from None


def _build_document(loader: Any, file: str | None, max_nodes: int) -> LoadedYaml:
    builder = _Builder(file, max_nodes)
    try:
        root = loader.get_single_node()
        if root is None:
            return LoadedYaml(None, {}, file)
        builder.lines[()] = root.start_mark.line + 1
        data = builder.build(root, ())
    finally:
        loader.dispose()
    if builder.problems:
        raise DefinitionErrors(builder.problems)
    return LoadedYaml(data, builder.lines, file)


def _syntax_problem(exc: yaml.YAMLError, file: str | None) -> DefinitionErrors:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
        parts = [f"{exc.context}{where}" if exc.context else "", exc.problem or ""]
        message = "YAML syntax error: " + ", ".join(p for p in parts if p)
        return _fail(message, file, "yaml-syntax", mark.line + 1 if mark else None)
    return _fail(f"unreadable YAML: {exc}", file, "yaml-syntax")


@cache
def read_schema(package: str, resource: str) -> dict[str, Any]:
    """A JSON Schema shipped in `package` at `resource` ("schema/x.json"); cached, do not mutate."""
    from importlib import resources  # with tempfile: not for reading a stored catalog (cards)

    schema: dict[str, Any] = json.loads(
        resources.files(package).joinpath(resource).read_text(encoding="utf-8")
    )
    return schema


def schema_problems(
    data: Any, schema: Mapping[str, Any], lines: Mapping[YamlPath, int], file: str | None = None
) -> list[Problem]:
    """Every way `data` breaks `schema` (Draft 2020-12), as Problems sorted by line."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema, format_checker=_formats())
    found: dict[Problem, None] = {}  # ordered and without repeats
    for error in validator.iter_errors(data):
        for problem in _from_error(error, lines, file):
            found.setdefault(problem, None)
    return sorted(found, key=lambda p: (p.line or 0, p.element or "", p.message))


_JSON_TYPES = {
    "object": "a mapping", "array": "a list", "string": "text", "number": "a number",
    "integer": "a whole number", "boolean": "true or false", "null": "null",
}
_PY_TYPES = {dict: "object", list: "array", str: "string", float: "number", int: "integer",
             bool: "boolean", type(None): "null"}


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _from_error(
    error: ValidationError, lines: Mapping[YamlPath, int], file: str | None
) -> Iterator[Problem]:
    path: YamlPath = tuple(error.absolute_path)
    sub = error.schema if isinstance(error.schema, Mapping) else {}
    custom = (sub.get("x-messages") or {}).get(str(error.validator))
    instance: Any = error.instance
    keyword: Any = error.validator
    expected: Any = error.validator_value

    def problem(
        message: str, at: YamlPath = path, code: str = "schema", hint: str | None = None
    ) -> Problem:
        return Problem(message, file, line_of(lines, at), format_path(at) or None, hint, code)

    if keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, dict):
        allowed = list(sub.get("properties", {}))
        patterns = list(sub.get("patternProperties", {}))
        for key in instance:
            if key in allowed or any(re.search(p, key) for p in patterns):
                continue
            hint = did_you_mean(key, allowed)
            message = f"unknown key {key!r}"
            if not hint and allowed:
                message += f"; allowed here: {', '.join(allowed)}"
            yield problem(message, (*path, key), "unknown-key", hint)
    elif keyword == "required" and isinstance(instance, dict):
        for key in expected:
            if key not in instance:
                yield problem(custom or f"missing required key {key!r}", code="missing-key")
    elif keyword in ("enum", "const"):
        choices = list(expected) if keyword == "enum" else [expected]
        hint = did_you_mean(instance, map(str, choices)) if isinstance(instance, str) else None
        message = custom or f"{_short(instance)} is not one of: {', '.join(map(str, choices))}"
        yield problem(message, code="unknown-value", hint=hint)
    elif keyword == "type":
        wanted = [expected] if isinstance(expected, str) else list(expected)
        words = " or ".join(_JSON_TYPES.get(w, w) for w in wanted)
        got = _JSON_TYPES.get(_PY_TYPES.get(type(instance), ""), "?")
        message = custom or f"{'the value' if path else 'the document'} must be {words}, not {got}"
        if isinstance(instance, bool) and "string" in wanted:
            message += " (quote it)"
        yield problem(message, code="wrong-type")
    elif keyword == "uniqueItems" and isinstance(instance, list):
        seen: list[Any] = []
        for index, item in enumerate(instance):
            if item in seen:
                yield problem(custom or f"{_short(item)} is listed twice", (*path, index),
                              "duplicate")
            seen.append(item)
    elif keyword in ("anyOf", "oneOf") and not custom and _best_match(error) is not error:
        yield from _from_error(_best_match(error), lines, file)  # the likeliest intended branch
    else:
        yield problem(custom or _short(error.message, 200))


def _best_match(error: ValidationError) -> ValidationError:
    from jsonschema.exceptions import best_match

    found: ValidationError = best_match([error])
    return found
