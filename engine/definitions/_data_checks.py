"""Checks of what a map's expressions read against its declared data (docs/data.md).

An expression may read only declared names; a declared enumerated field may only be compared
with its values; a gateway without a default is accepted only when the declared data proves
its conditions exhaustive (one branch per value of a required enumerated field).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from engine.definitions.data import DataDeclaration, DataField
from engine.definitions.model import ProcessMap
from engine.durations import DurationError, check_timer, is_timer_literal, looks_like_duration
from engine.errors import ExpressionError, did_you_mean
from engine.expressions import Expression, compile_expression

_CONSTANT_NAMES = frozenset({"True", "False", "None"})


class Report(Protocol):
    def __call__(
        self, message: str, *, code: str, element: str | None = None, line: int | None = None,
        suggestion: str | None = None, severity: str = "error",
    ) -> None: ...


@dataclass(frozen=True)
class Written:
    """An expression as written in the map: a flow condition or a timer expression."""

    element: str
    line: int | None
    text: str
    kind: str  # "condition" or a timer kind


def expressions_of(pmap: ProcessMap) -> Iterator[Written]:
    """Conditions and timer expressions (not plain ISO values) of the map and its subprocesses."""
    for flow in pmap.flows:
        if flow.condition:
            yield Written(flow.id, flow.line, flow.condition, "condition")
    for step in pmap.steps:
        if step.timer is not None and not (
                is_timer_literal(step.timer) or looks_like_duration(step.timer)):
            yield Written(step.id, step.line, step.timer, step.timer_kind or "timeDuration")
    for sub in pmap.subprocesses:
        yield from expressions_of(sub)


def _compiled(text: str) -> Expression | None:
    try:
        return compile_expression(text)
    except ExpressionError:
        return None  # reported by the condition and timer checks


def declaration_for(pmap: ProcessMap) -> DataDeclaration:
    """The map's declaration; for a map that declares nothing, the names its expressions read,
    taken as optional data of any type."""
    if pmap.data is not None:
        return pmap.data
    names: set[str] = set()
    for written in expressions_of(pmap):
        compiled = _compiled(written.text)
        if compiled is not None:
            names |= compiled.names - _CONSTANT_NAMES
    return DataDeclaration({n: DataField(n) for n in sorted(names)}, inferred=True)


def check_data(pmap: ProcessMap, report: Report) -> None:
    """Report names that are not declared and values outside a declared enumeration."""
    for message, line in pmap.data_issues:
        report(f"data declaration: {message}", code="bad-data", element=pmap.id,
               line=line or pmap.line)
    declaration = declaration_for(pmap)
    if pmap.data is None:
        # Nothing declared (most modeler files): every name read is taken as declared. Two
        # names that differ by a typo are still worth a word.
        names = declaration.names
        for name in names:
            near = did_you_mean(name, [n for n in names if n != name])
            if near is not None and name < near:
                report(f"process {pmap.id!r} declares no data and its expressions read both "
                       f"{name!r} and {near!r}: a typo? (declare the data to have typos "
                       "refused: docs/data.md)", code="possible-typo", element=pmap.id,
                       line=pmap.line, severity="warning")
        return
    for written in expressions_of(pmap):
        compiled = _compiled(written.text)
        if compiled is None:
            continue
        for name in sorted(compiled.names - set(declaration.fields) - _CONSTANT_NAMES):
            report(f"{written.kind} {written.text!r} reads {name!r}, which the map does not "
                   f"declare (declared: {', '.join(declaration.names) or 'nothing'})",
                   code="undeclared-name", element=written.element, line=written.line,
                   suggestion=did_you_mean(name, declaration.fields))
        for name, value in _compared(compiled.syntax):
            found = declaration.fields.get(name)
            if found is not None and found.values and value not in found.values:
                choices = ", ".join(map(repr, found.values))
                report(f"{written.kind} {written.text!r} compares {name!r} with {value!r}, which "
                       f"is not one of its declared values ({choices})",
                       code="unknown-value", element=written.element, line=written.line,
                       suggestion=did_you_mean(str(value), [str(v) for v in found.values]))


def check_constant_timer(element: str, line: int | None, text: str, kind: str,
                         report: Report) -> None:
    """A timer expression that reads no data is evaluated now: its value must schedule."""
    compiled = _compiled(text)
    if compiled is None or compiled.names - _CONSTANT_NAMES:
        return
    try:
        value = compiled.evaluate({})
        check_timer(kind, value)
    except (ExpressionError, DurationError) as exc:
        report(f"timer {text!r} cannot be scheduled: {exc}", code="bad-timer", element=element,
               line=line)


def _values(node: ast.expr) -> list[object] | None:
    if isinstance(node, ast.Constant):
        return [node.value]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and all(
            isinstance(e, ast.Constant) for e in node.elts):
        return [e.value for e in node.elts]  # type: ignore[attr-defined]
    return None


def _compared(tree: ast.Expression) -> Iterator[tuple[str, object]]:
    """(name, constant) for every `name == c`, `c != name`, `name in [c, ...]` in the tree."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            if not isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)):
                continue
            for name_side, value_side in ((left, right), (right, left)):
                values = _values(value_side)
                if isinstance(name_side, ast.Name) and values is not None:
                    for value in values:
                        if value is not None:
                            yield name_side.id, value


def exhaustive(conditions: Iterable[str | None], declaration: DataDeclaration) -> bool:
    """The conditions (of a gateway's flows) cover every value a required enumerated (or
    boolean) field can take, so one of them always holds."""
    covered: dict[str, set[object]] = {}
    for condition in conditions:
        compiled = _compiled(condition or "")
        if compiled is None:
            return False
        body = compiled.syntax.body
        if not (isinstance(body, ast.Compare) and len(body.ops) == 1
                and isinstance(body.ops[0], (ast.Eq, ast.In))):
            continue
        for name_side, value_side in ((body.left, body.comparators[0]),
                                      (body.comparators[0], body.left)):
            values = _values(value_side)
            if isinstance(name_side, ast.Name) and values is not None:
                covered.setdefault(name_side.id, set()).update(values)
    for name, seen in covered.items():
        found = declaration.fields.get(name)
        if found is None or not found.required:
            continue  # an optional value may be absent (None): no branch would match
        domain = found.values or ((True, False) if found.type == "boolean" else ())
        if domain and set(domain) <= seen:
            return True
    return False
