"""Safe evaluation of the conditions written in process maps.

Process maps are untrusted, so their expressions are never handed to `eval`: the text is parsed
once, checked against a whitelist of AST nodes and then interpreted node by node.

Semantics a map designer should know:

* names are the map's declared data (docs/data.md): a declared, optional value that is absent is
  `None`; a name the map does not declare is an ExpressionError naming it and the declared ones
  (never a silent `None`); a required value that is absent is an ExpressionError. Without a
  declaration (`declared=None`) every absent name is `None`;
* `a.b` and `a['b']` read key `b` of a mapping and give `None` when it is missing or `a` is
  `None`; on any other value `a.b` is an error (Python attributes are never reached);
* ordering comparisons with `None` (`None > 3`) raise ExpressionError rather than guess;
* only the functions in `FUNCTIONS` can be called; method calls are not allowed;
* Camunda `${ ... }` and `#{ ... }` (JUEL) conditions are translated to the same language first.
"""

from __future__ import annotations

import ast
import re
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from types import MappingProxyType
from typing import Any, Protocol

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

from engine.errors import ExpressionError

__all__ = [
    "DeclaredNames", "Expression", "SafeScriptEngine", "compile_expression", "declared_data",
    "evaluate",
]

MAX_SOURCE = 2_000
MAX_NODES = 200
MAX_DEPTH = 50
MAX_SIZE = 10_000  # elements or characters a repetition may produce
MAX_EXPONENT = 64
MAX_POW_BASE = 1e6
_NUMBER = (int, float)


def _round(number: Any, ndigits: Any = None) -> Any:
    # round(10**300, -10**9) computes 10**(10**9): bound ndigits like an exponent.
    if ndigits is not None and (not isinstance(ndigits, int) or abs(ndigits) > MAX_EXPONENT):
        raise ExpressionError(f"round() digits must be an integer within ±{MAX_EXPONENT}")
    return round(number, ndigits)


def _sum(items: Any, start: Any = 0) -> Any:
    # Summing lists is quadratic; conditions only need numbers.
    if not isinstance(start, _NUMBER):
        raise ExpressionError("sum() only adds numbers")
    return sum(items, start)


FUNCTIONS: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "len": len, "min": min, "max": max, "abs": abs, "round": _round, "int": int,
    "float": float, "str": str, "bool": bool, "any": any, "all": all, "sum": _sum,
    "sorted": sorted,
})
# `key=` would call a value taken from the data; every other keyword is plain data.
_KEYWORDS = frozenset({"default", "reverse", "ndigits", "start", "base"})

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b, ast.Pow: lambda a, b: a**b,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.Not: lambda a: not a, ast.USub: lambda a: -a, ast.UAdd: lambda a: +a,
}
_COMPARE: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Eq: ("==", lambda a, b: a == b), ast.NotEq: ("!=", lambda a, b: a != b),
    ast.Lt: ("<", lambda a, b: a < b), ast.LtE: ("<=", lambda a, b: a <= b),
    ast.Gt: (">", lambda a, b: a > b), ast.GtE: (">=", lambda a, b: a >= b),
    ast.In: ("in", lambda a, b: a in b), ast.NotIn: ("not in", lambda a, b: a not in b),
    ast.Is: ("is", lambda a, b: a is b), ast.IsNot: ("is not", lambda a, b: a is not b),
}
_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.List, ast.Tuple, ast.Dict, ast.Set,
    ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Subscript,
    ast.Slice, ast.Attribute, ast.Call, ast.keyword, *_BINOPS, *_UNARY, *_COMPARE,
)
_FORBIDDEN: dict[type, str] = {
    **dict.fromkeys((ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp), "comprehensions"),
    **dict.fromkeys((ast.BitAnd, ast.BitOr, ast.BitXor, ast.LShift, ast.RShift, ast.Invert),
                    "bitwise operators"),
    ast.Lambda: "lambdas", ast.NamedExpr: "assignment expressions (:=)",
    ast.Starred: "starred arguments", ast.JoinedStr: "f-strings",
}

_STRING = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""", re.S)
_JUEL_WORDS = {
    "eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">=", "div": "/",
    "mod": "%", "null": "None", "true": "True", "false": "False",
}
_JUEL_PATH = r"[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*|\[[^\[\]]*\])*"
_JUEL_SUBS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(rf"(?<![\w.])({'|'.join(_JUEL_WORDS)})\b"), lambda m: f" {_JUEL_WORDS[m[1]]} "),
    # JUEL's `!x` and `empty x` bind tighter than `==`; Python's `not` does not, so wrap x.
    (re.compile(rf"(?:!(?!=)|(?<![\w.])empty\b)\s*({_JUEL_PATH})"), r" (not \1) "),
    (re.compile(r"!(?!=)|(?<![\w.])empty\b"), " not "),
    (re.compile(r"&&"), " and "),
    (re.compile(r"\|\|"), " or "),
]


def _translate(text: str) -> str:
    """Python text for `text`; `${ ... }` / `#{ ... }` (JUEL) is translated, anything else kept."""
    stripped = text.strip()
    if not (stripped.startswith(("${", "#{")) and stripped.endswith("}")):
        return stripped
    parts = _STRING.split(stripped[2:-1])  # odd items are string literals: keep them as written
    for i in range(0, len(parts), 2):
        for pattern, replacement in _JUEL_SUBS:
            parts[i] = pattern.sub(replacement, parts[i])
    return "".join(parts).strip()


_PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


def _parse(source: str, text: str) -> ast.Expression:
    try:
        return ast.parse(source, mode="eval")
    except _PARSE_ERRORS as exc:
        try:
            module = ast.parse(source, mode="exec")
        except _PARSE_ERRORS:
            raise ExpressionError(f"invalid syntax in expression {text!r}: {exc}") from exc
        imports = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(module))
        what = "imports are" if imports else "statements are"
        raise ExpressionError(f"{what} not allowed in expression {text!r}") from exc


def _problem(node: ast.AST) -> str | None:
    """Why `node` is not allowed, or None (node types are checked before this)."""
    if isinstance(node, ast.Constant) and not isinstance(node.value, (str, int, float, type(None))):
        return f"{type(node.value).__name__} literals are not allowed"
    if isinstance(node, ast.Call):
        func, allowed = getattr(node.func, "id", None), ", ".join(FUNCTIONS)
        if func is None:
            return f"method calls are not allowed; only {allowed} can be called"
        if func not in FUNCTIONS:
            return f"function calls other than {allowed} are not allowed (got {func}())"
    if isinstance(node, ast.keyword) and node.arg not in _KEYWORDS:
        return f"keyword argument {node.arg or '**'}= is not allowed"
    if isinstance(node, ast.Dict) and None in node.keys:
        return "dict unpacking (**) is not allowed"
    return None


def _precedence(op: ast.operator) -> int:
    if isinstance(op, ast.Add | ast.Sub):
        return 1
    if isinstance(op, ast.Mult | ast.Div | ast.FloorDiv | ast.Mod | ast.MatMult):
        return 2
    return id(type(op))  # any other operator chains only with itself


def _check(tree: ast.Expression, text: str) -> frozenset[str]:
    """Raise ExpressionError if `tree` is not allowed; return the variable names it reads."""
    nodes = list(ast.walk(tree))
    if sum(isinstance(n, ast.expr) for n in nodes) > MAX_NODES:
        raise ExpressionError(f"expression is too complex (over {MAX_NODES} parts): {text!r}")
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:  # iterative: a deep tree must not exhaust the Python stack while checking
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression is nested too deeply (over {MAX_DEPTH} "
                                  f"levels): {text!r}")
        for child in ast.iter_child_nodes(node):
            # `a + b - c` parses as ((a + b) - c): a flat chain at one precedence is one level
            flat = (isinstance(node, ast.BinOp) and isinstance(child, ast.BinOp)
                    and child is node.left and _precedence(child.op) == _precedence(node.op))
            stack.append((child, depth if flat else depth + 1))
    # Names first: `_` is the door to every known sandbox escape, so say so plainly.
    for node in nodes:
        name = getattr(node, "id", None) or getattr(node, "attr", None) or getattr(node, "arg", "")
        if isinstance(name, str) and name.startswith("_"):
            kind = "attribute names" if isinstance(node, ast.Attribute) else "names"
            raise ExpressionError(
                f"{kind} starting with '_' are not allowed (got {name!r}) in expression {text!r}"
            )
    for node in nodes:
        if type(node) in _FORBIDDEN or not isinstance(node, _NODES):
            what = _FORBIDDEN.get(type(node)) or f"{type(node).__name__} nodes"
            raise ExpressionError(f"{what} are not allowed in expression {text!r}")
    for node in nodes:
        if (reason := _problem(node)) is not None:
            raise ExpressionError(f"{reason} in expression {text!r}")
    called = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    _check_constants(nodes, called, text)
    return frozenset(n.id for n in nodes if isinstance(n, ast.Name) and id(n) not in called)


def _check_constants(nodes: list[ast.AST], called: set[int], text: str) -> None:
    """Evaluate arithmetic on literals now, so `'a' * 10**9` fails when the map is loaded."""
    done: set[int] = set()
    for node in nodes:  # breadth first: the largest constant subtrees come first
        if id(node) in done or not isinstance(node, ast.BinOp):
            continue
        inner = list(ast.walk(node))
        if any(isinstance(n, ast.Name) and id(n) not in called for n in inner):
            continue
        done.update(map(id, inner))
        try:
            _eval(node, {})
        except ExpressionError as exc:
            raise ExpressionError(f"{exc} in expression {text!r}") from exc
        except Exception:  # plain failures (1 / 0) are reported when evaluated
            pass


class DeclaredNames(Protocol):
    """What an expression may read: `engine.definitions.data.DataDeclaration` is one."""

    def read(self, data: Mapping[str, Any], name: str) -> Any: ...


class _Declared(Mapping[str, Any]):
    """The data as an expression sees it: names go through the declaration."""

    def __init__(self, data: Mapping[str, Any], declared: DeclaredNames) -> None:
        self._data, self._declared = data, declared

    def get(self, key: str, default: Any = None) -> Any:
        return self._declared.read(self._data, key)

    def __getitem__(self, key: str) -> Any:
        return self._declared.read(self._data, key)

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True)
class Expression:
    """A checked expression. Build it with `compile_expression`, never directly."""

    source: str
    names: frozenset[str]
    _tree: ast.Expression = field(repr=False, compare=False)

    @property
    def syntax(self) -> ast.Expression:
        """The checked Python syntax tree (after JUEL translation), for static checks."""
        return self._tree

    def evaluate(self, data: Mapping[str, Any], declared: DeclaredNames | None = None) -> Any:
        """The value of the expression over `data`; every failure is an ExpressionError.

        With `declared`, names are read through it (see the module docstring).
        """
        if declared is not None:
            data = _Declared(data, declared)
        try:
            return _eval(self._tree.body, data)
        except ExpressionError as exc:  # a limit or comparison refused: keep the Python cause
            raise ExpressionError(f"cannot evaluate {self.source!r}: {exc}") from exc.__cause__
        except Exception as exc:  # any failure is the map's fault: report it, don't crash
            raise ExpressionError(
                f"cannot evaluate {self.source!r}: {type(exc).__name__}: {exc}"
            ) from exc


@lru_cache(maxsize=4096)
def compile_expression(text: str) -> Expression:
    """Parse and check `text` once; raise ExpressionError naming any forbidden construct."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, not {type(text).__name__}")
    if len(text) > MAX_SOURCE:
        raise ExpressionError(f"expression is longer than {MAX_SOURCE} characters")
    source = _translate(text)
    if not source:
        raise ExpressionError("empty expression")
    tree = _parse(source, text)
    return Expression(text, _check(tree, text), tree)


def evaluate(text: str, data: Mapping[str, Any], declared: DeclaredNames | None = None) -> Any:
    """Compile (cached) and evaluate `text` over `data` (names read through `declared`)."""
    return compile_expression(text).evaluate(data, declared)


def declared_data(task: Any) -> DeclaredNames | None:
    """The declaration of the process a Spiff task runs in: `build_spec` sets it on each spec
    as `nextmove_data` (None for specs built elsewhere)."""
    workflow = getattr(task, "workflow", None)
    while workflow is not None:
        found = getattr(workflow.spec, "nextmove_data", None)
        if found is not None:
            return found  # type: ignore[no-any-return]
        parent = getattr(workflow, "parent_workflow", None)
        workflow = parent if parent is not workflow else None
    return None


def _size(value: Any, budget: int = MAX_SIZE + 1) -> int:
    """Elements and characters in `value`, counted deeply but never much past `budget`."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        items: Iterable[Any] = chain(value.keys(), value.values())
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        return 1
    total = 0
    for item in items:
        # Each element counts at least once: [[]] * 10**9 is still 10**9 references.
        total += max(1, _size(item, budget - total))
        if total >= budget:
            break
    return total


def _binop(op: ast.operator, left: Any, right: Any) -> Any:
    if isinstance(op, ast.Pow) and not (
        isinstance(left, _NUMBER) and isinstance(right, _NUMBER)
        and abs(left) < MAX_POW_BASE and abs(right) <= MAX_EXPONENT
    ):
        raise ExpressionError(
            f"** needs a number base below {MAX_POW_BASE:g} and an exponent within "
            f"±{MAX_EXPONENT}"
        )
    if isinstance(op, ast.Mod) and not isinstance(left, _NUMBER):
        raise ExpressionError("% is only for numbers (string formatting is not allowed)")
    if isinstance(op, ast.Mult):
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                if max(times, 0) * _size(seq) > MAX_SIZE:
                    raise ExpressionError(f"repetition would exceed {MAX_SIZE} elements")
    return _BINOPS[type(op)](left, right)


def _compare(node: ast.Compare, data: Mapping[str, Any]) -> bool:
    left = _eval(node.left, data)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = _eval(right_node, data)
        symbol, fn = _COMPARE[type(op)]
        try:
            if not fn(left, right):
                return False
        except TypeError as exc:
            raise ExpressionError(
                f"cannot compare {type(left).__name__} {symbol} {type(right).__name__}"
            ) from exc
        left = right
    return True


def _lookup(container: Any, key: Any, node: ast.AST) -> Any:
    if container is None:
        return None
    if isinstance(container, Mapping):
        return container.get(key)
    if isinstance(node, ast.Attribute):
        raise ExpressionError(
            f"'.{key}' reads a field of a mapping, but the value is a {type(container).__name__}"
        )
    if isinstance(container, (list, tuple, str)):
        return container[key]
    raise ExpressionError(f"cannot index a {type(container).__name__}")


def _eval(node: ast.expr, data: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return data.get(node.id)
    if isinstance(node, ast.BoolOp):
        value: Any = None
        for operand in node.values:  # short-circuit, returning the deciding value like Python
            value = _eval(operand, data)
            if bool(value) == isinstance(node.op, ast.Or):
                return value
        return value
    if isinstance(node, ast.BinOp):
        return _binop(node.op, _eval(node.left, data), _eval(node.right, data))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, data))
    if isinstance(node, ast.Compare):
        return _compare(node, data)
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, data) else node.orelse, data)
    if isinstance(node, ast.Attribute):
        return _lookup(_eval(node.value, data), node.attr, node)
    if isinstance(node, ast.Subscript):
        return _lookup(_eval(node.value, data), _eval(node.slice, data), node)
    if isinstance(node, ast.Slice):
        parts = (node.lower, node.upper, node.step)
        return slice(*(None if p is None else _eval(p, data) for p in parts))
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_eval(e, data) for e in node.elts]
        return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](items)
    if isinstance(node, ast.Dict):
        return {_eval(k, data): _eval(v, data) for k, v in zip(node.keys, node.values, strict=True)
                if k is not None}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        args = [_eval(a, data) for a in node.args]
        kwargs = {k.arg: _eval(k.value, data) for k in node.keywords if k.arg}
        return FUNCTIONS[node.func.id](*args, **kwargs)
    raise ExpressionError(f"{type(node).__name__} is not allowed")  # unreachable after _check


class _SafeEnvironment(TaskDataEnvironment):  # type: ignore[misc]  # Spiff is untyped
    """Spiff calls `environment.evaluate` directly in places, so the environment is safe too."""

    def __init__(self, allow_scripts: bool) -> None:
        super().__init__()
        self.allow_scripts = allow_scripts

    def evaluate(
        self, expression: str, context: Any, external_context: Any = None,
        declared: DeclaredNames | None = None,
    ) -> Any:
        # Task data wins over external context (data objects), as in Spiff's own environment.
        return compile_expression(expression).evaluate(
            ChainMap(context, external_context or {}), declared)

    def execute(self, script: str, context: Any, external_context: Any = None) -> Any:
        if not self.allow_scripts:
            raise ExpressionError("script tasks are disabled; scripts in maps are not run")
        return super().execute(script, context, external_context)


class SafeScriptEngine(PythonScriptEngine):  # type: ignore[misc]  # Spiff is untyped
    """Spiff script engine that evaluates with the whitelist and refuses scripts by default.

    `allow_scripts=True` is the operator's explicit opt-in to run designer Python code in
    script tasks and service calls, exactly as SpiffWorkflow would.
    """

    def __init__(self, *, allow_scripts: bool = False) -> None:
        super().__init__(environment=_SafeEnvironment(allow_scripts))
        self.allow_scripts = allow_scripts

    def validate(self, expression: str) -> None:
        try:
            compile_expression(expression)
        except ExpressionError as exc:
            if isinstance(exc.__cause__, SyntaxError):
                # Spiff's DMN engine probes with validate() and expects SyntaxError.
                raise SyntaxError(str(exc)) from exc
            raise

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        """Evaluate over the task's data, reading names through its process's declared data."""
        try:
            return self.environment.evaluate(expression, task.data, external_context,
                                             declared=declared_data(task))
        except ExpressionError as exc:
            raise WorkflowTaskException(str(exc), task=task, exception=exc) from exc

    def execute(self, task: Any, script: str, external_context: Any = None) -> Any:
        if not self.allow_scripts:
            raise ExpressionError(
                f"script tasks are disabled: {task.task_spec.bpmn_id!r} has a script; "
                "run the engine with allow_scripts=True to run designer code"
            )
        return super().execute(task, script, external_context)

    def call_service(self, task: Any, **kwargs: Any) -> Any:
        if not self.allow_scripts:
            raise ExpressionError(
                f"service tasks are disabled: {task.task_spec.bpmn_id!r} calls a service; "
                "run the engine with allow_scripts=True to allow it"
            )
        return super().call_service(task, **kwargs)
