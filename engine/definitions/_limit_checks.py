"""Work limits a map can be seen to break before it runs (see engine.limits): a literal
multi-instance cardinality above the limit, a cycle timer of zero length, a call activity
that can reach its own process again. Each is refused with file, line and element; what
only shows at run time (a cardinality read from data, a loop) becomes an incident there."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from engine.definitions.model import ProcessMap, Step
from engine.durations import DurationError, parse_cycle
from engine.errors import Problem
from engine.limits import DEFAULT_LIMITS, Limits

_PROBE_NOW = datetime(2000, 1, 1, tzinfo=UTC)
_ARITHMETIC = {ast.Add: int.__add__, ast.Sub: int.__sub__, ast.Mult: int.__mul__,
               ast.FloorDiv: int.__floordiv__, ast.Mod: int.__mod__}


def check_limits(maps: Iterable[ProcessMap], limits: Limits = DEFAULT_LIMITS) -> list[Problem]:
    """Cardinalities and cycles of one document's processes."""
    problems = []
    for pmap in maps:
        for step in pmap.all_steps():
            problems.extend(_check_step(pmap, step, limits))
    return problems


def _check_step(pmap: ProcessMap, step: Step, limits: Limits) -> list[Problem]:
    out = []
    if step.cardinality is not None:
        value = constant_int(step.cardinality)
        if value is not None and value > limits.cardinality:
            shown = f"{value:,}" if value < 10**12 else "more than 10**12"
            out.append(Problem(
                f"multi-instance cardinality {step.cardinality!r} ({shown}) is above the "
                f"limit of {limits.cardinality} instances (see docs/limits.md)",
                pmap.file, step.line, step.id, code="limit-cardinality"))
    if step.timer_kind == "timeCycle" and step.timer:
        try:
            _, _, period = parse_cycle(step.timer.strip().strip("'\""), _PROBE_NOW)
        except (DurationError, ValueError, TypeError):
            period = None  # not a literal cycle (an expression): other checks cover it
        if period is not None and period.total_seconds() <= 0:
            out.append(Problem(
                f"cycle timer {step.timer!r} has a zero-length period: it would fire without "
                "end; give it a period such as R/P1D", pmap.file, step.line, step.id,
                code="limit-cycle"))
    return out


def constant_int(text: str) -> int | None:
    """The value of an integer expression made of literals only (`10**6`), or None. Powers
    are capped so checking `10**10**10` cannot itself run long."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return None
    return _value(tree.body)


def _value(node: ast.expr) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _value(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left), _value(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Pow):
            if right < 0:
                return None
            return left ** right if right <= 64 and abs(left) <= 10**6 else 10**13
        operation = _ARITHMETIC.get(type(node.op))
        if operation is None or (right == 0 and isinstance(node.op, (ast.FloorDiv, ast.Mod))):
            return None
        return int(operation(left, right))
    return None


def check_recursion(maps: Iterable[ProcessMap], known: Mapping[str, ProcessMap]) -> list[Problem]:
    """Call activities from which the calling process can be reached again (a process that
    calls itself, directly or through others): an instance would nest without end."""
    calls = {pid: {s.called for s in m.all_steps() if s.type == "callActivity" and s.called}
             for pid, m in known.items()}
    problems = []
    for pmap in maps:
        for step in pmap.all_steps():
            if step.type != "callActivity" or not step.called or step.called not in known:
                continue
            path = _path(step.called, pmap.id, calls)
            if path is not None:
                chain = " → ".join([pmap.id, *path])
                problems.append(Problem(
                    f"calls {step.called!r}, which leads back to {pmap.id!r} ({chain}): an "
                    "instance would nest call activities without end", pmap.file, step.line,
                    step.id, code="limit-recursion"))
    return problems


def _path(start: str, goal: str, calls: Mapping[str, set[str]]) -> list[str] | None:
    """Processes from `start` to `goal` along call activities, if there is a way."""
    todo: list[list[str]] = [[start]]
    seen = {start}
    while todo:
        path = todo.pop(0)
        if path[-1] == goal:
            return path
        for nxt in sorted(calls.get(path[-1], ())):
            if nxt not in seen:
                seen.add(nxt)
                todo.append([*path, nxt])
    return None
