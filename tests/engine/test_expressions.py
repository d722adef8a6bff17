from typing import Any

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from engine.errors import ExpressionError
from engine.expressions import Expression, SafeScriptEngine, compile_expression, evaluate


@pytest.mark.parametrize(
    ("text", "data", "expected"),
    [
        ("x == 'a'", {"x": "a"}, True),
        ("x == 'a'", {"x": "b"}, False),
        ("score > 3 and market in ['US', 'CA']", {"score": 4, "market": "CA"}, True),
        ("score > 3 and market in ['US', 'CA']", {"score": 4, "market": "MX"}, False),
        ("'P2D'", {}, "P2D"),
        ("prospect.interest == 'energy'", {"prospect": {"interest": "energy"}}, True),
        ("prospect['interest']", {"prospect": {"interest": "energy"}}, "energy"),
        ("a or b", {"a": 0, "b": "fallback"}, "fallback"),
        ("a and b", {"a": 0, "b": 1}, 0),
        ("1 < x <= 3", {"x": 3}, True),
        ("1 < x <= 3", {"x": 4}, False),
        ("x is None", {}, True),
        ("x is not None", {"x": 0}, True),
        ("'gold' not in tags", {"tags": ["silver"]}, True),
        ("'big' if n * 2 > 10 else 'small'", {"n": 6}, "big"),
        ("len(items[1:]) + items[-1]", {"items": [1, 2, 3]}, 5),
        ("max(a, b) - min([3, 1]) + abs(-2)", {"a": 1, "b": 7}, 8),
        ("round(x / 3, ndigits=2)", {"x": 10}, 3.33),
        ("sum(xs) // 2 + 7 % 4 + 2 ** 10", {"xs": [3, 5]}, 4 + 3 + 1024),
        ("sorted(xs, reverse=True)[0]", {"xs": [2, 9, 4]}, 9),
        ("any([a, b]) and not all([a, b])", {"a": True, "b": False}, True),
        ("int('42') + float('0.5') + len(str(12)) + bool(1)", {}, 45.5),
        ("{'k': [1, (2, 3)], 'v': {4}}", {}, {"k": [1, (2, 3)], "v": {4}}),
        ("-x + +y", {"x": 2, "y": 5}, 3),
        ("'ab' * 3", {}, "ababab"),
    ],
)
def test_conditions_evaluate_like_python(text: str, data: dict[str, Any], expected: Any) -> None:
    assert evaluate(text, data) == expected


@pytest.mark.parametrize(
    ("text", "data", "expected"),
    [
        ("${score gt 3 && market eq 'US'}", {"score": 5, "market": "US"}, True),
        ("${score lt 3 || market ne 'US'}", {"score": 5, "market": "US"}, False),
        ("${score ge 5 and score le 5}", {"score": 5}, True),
        ("${!approved}", {"approved": False}, True),
        ("${x != null}", {"x": 1}, True),
        ("${x == null}", {}, True),
        ("${flag == true}", {"flag": True}, True),
        ("${flag eq false}", {"flag": True}, False),
        ("${empty notes}", {"notes": ""}, True),
        ("${empty prospect.email}", {"prospect": {"email": "a@b.c"}}, False),
        ("${not empty tags[0]}", {"tags": [[1]]}, True),
        # JUEL's `!` binds tighter than `==`: (not name) == 'ann', not `not (name == 'ann')`.
        ("${!name == 'ann'}", {"name": "bob"}, False),
        # Operators inside string literals are text, not JUEL.
        ("${label eq 'a && !b or null'}", {"label": "a && !b or null"}, True),
        ("${n mod 2 eq 0 && n div 2 gt 1}", {"n": 6}, True),
        ("  ${ x }  ", {"x": 7}, 7),
    ],
)
def test_juel_expressions_are_translated(text: str, data: dict[str, Any], expected: Any) -> None:
    assert evaluate(text, data) == expected


def test_expression_records_source_and_the_names_it_reads() -> None:
    expr = compile_expression("len(items) > limit and prospect.market in markets")
    assert isinstance(expr, Expression)
    assert expr.source == "len(items) > limit and prospect.market in markets"
    assert expr.names == frozenset({"items", "limit", "prospect", "markets"})
    assert compile_expression("${a && !b}").names == frozenset({"a", "b"})


def test_compiled_expressions_are_cached_by_text() -> None:
    assert compile_expression("cache_me == 1") is compile_expression("cache_me == 1")


def test_unknown_names_and_missing_keys_are_none() -> None:
    assert evaluate("missing", {}) is None
    assert evaluate("prospect.interest == 'energy'", {}) is False
    assert evaluate("prospect.address.country", {"prospect": {}}) is None
    assert evaluate("prospect['address']['country']", {"prospect": {"address": None}}) is None
    # Function names are not values: `len` is just a missing variable here.
    assert evaluate("len", {}) is None
    assert evaluate("len", {"len": 3}) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("().__class__.__base__.__subclasses__()", "attribute names starting with '_'"),
        ("__import__('os').system('id')", "names starting with '_'"),
        ("[c for c in ().__class__.__mro__]", "starting with '_'"),
        ("[c for c in xs]", "comprehensions are not allowed"),
        ("(lambda: 1)()", "lambdas are not allowed"),
        ("getattr(x, 'y')", "function calls other than len, min, max"),
        ("open('/etc/passwd')", "(got open())"),
        ("eval('1')", "(got eval())"),
        ("exec('1')", "(got exec())"),
        ("globals()", "(got globals())"),
        ("type(x)", "(got type())"),
        ("x.__dict__", "attribute names starting with '_'"),
        ("f'{x.__class__}'", "starting with '_'"),
        ("f'{x}'", "f-strings are not allowed"),
        ("__builtins__", "names starting with '_'"),
        ("'{0.__class__}'.format(x)", "method calls are not allowed"),
        ("s.upper()", "method calls are not allowed"),
        ("import os", "imports are not allowed"),
        ("x = 1", "statements are not allowed"),
        ("(y := 1)", "assignment expressions"),
        ("len(*xs)", "starred arguments"),
        ("sorted(xs, key=f)", "keyword argument key="),
        ("dict(**d)", "(got dict())"),
        ("{**d}", "dict unpacking"),
        ("min(xs, _k=1)", "names starting with '_'"),
        ("1 << 30", "bitwise operators"),
        ("b'x'", "bytes literals"),
        ("x if", "invalid syntax"),
        ("", "empty expression"),
    ],
)
def test_forbidden_constructs_fail_at_compile_time(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text)
    assert message in str(info.value)


def test_attribute_syntax_never_reaches_python_attributes() -> None:
    with pytest.raises(ExpressionError, match="reads a field of a mapping, but the value is a str"):
        evaluate("s.upper", {"s": "abc"})
    with pytest.raises(ExpressionError, match="value is a list"):
        evaluate("xs.append", {"xs": []})
    # A mapping key that looks like a dunder is just a key.
    assert evaluate("d['__class__']", {"d": {"__class__": "plain"}}) == "plain"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9**9**9**9", "exponent within"),
        ("'a' * 10**9", "repetition would exceed 10000"),
        ("[1] * 10**9", "repetition would exceed 10000"),
        ("10**9 * [[]]", "repetition would exceed 10000"),
        ("[[1] * 10000] * 2", "repetition would exceed 10000"),
        ("1e7 ** 2", "number base below"),
        ("'%999999999d' % 1", "string formatting is not allowed"),
        ("x or " * 500 + "x", "longer than 2000 characters"),
        ("[" + "1, " * 250 + "]", "too complex"),
        ("-" * 80 + "1", "nested too deeply"),
    ],
)
def test_resource_bombs_fail_at_compile_time(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "data", "message"),
    [
        ("s * n", {"s": "a", "n": 10**9}, "repetition would exceed"),
        ("xs * n", {"xs": [[1] * 5000], "n": 3}, "repetition would exceed"),
        ("b ** e", {"b": 2, "e": 10**6}, "exponent within"),
        ("round(x, n)", {"x": 10**300, "n": -(10**9)}, "round() digits"),
        ("sum(xs, [])", {"xs": [[1]] * 10}, "sum() only adds numbers"),
        ("fmt % x", {"fmt": "%s", "x": 1}, "string formatting"),
    ],
)
def test_resource_bombs_through_data_fail_at_evaluation(
    text: str, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(text, data)
    assert message in str(info.value)


def test_repetition_up_to_the_limit_is_allowed() -> None:
    assert len(evaluate("'ab' * 5000", {})) == 10_000
    assert len(evaluate("xs * 2", {"xs": [1] * 5000})) == 10_000


def test_evaluation_failures_become_expression_errors_with_the_cause() -> None:
    with pytest.raises(ExpressionError, match=r"cannot evaluate 'a / b'") as info:
        evaluate("a / b", {"a": 1, "b": 0})
    assert isinstance(info.value.__cause__, ZeroDivisionError)

    with pytest.raises(ExpressionError, match="cannot compare NoneType > int") as info:
        evaluate("score > 3", {})
    assert isinstance(info.value.__cause__, TypeError)

    with pytest.raises(ExpressionError, match="TypeError"):
        evaluate("len(x)", {"x": None})
    with pytest.raises(ExpressionError, match="IndexError"):
        evaluate("xs[5]", {"xs": [1]})
    with pytest.raises(ExpressionError, match="cannot compare NoneType in NoneType"):
        evaluate("x in y", {})


def test_non_text_is_rejected() -> None:
    with pytest.raises(ExpressionError, match="must be text"):
        compile_expression(3)  # type: ignore[arg-type]


BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="defs"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="route" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f_start</bpmn:outgoing></bpmn:startEvent>
    {middle}
    <bpmn:exclusiveGateway id="gw" default="f_other">
      <bpmn:incoming>f_gw</bpmn:incoming>
      <bpmn:outgoing>f_us</bpmn:outgoing>
      <bpmn:outgoing>f_other</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f_us" sourceRef="gw" targetRef="call_us">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}
      </bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_other" sourceRef="gw" targetRef="call_other" />
    <bpmn:userTask id="call_us" name="Call US"><bpmn:incoming>f_us</bpmn:incoming>
      <bpmn:outgoing>f_end1</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="call_other" name="Call other"><bpmn:incoming>f_other</bpmn:incoming>
      <bpmn:outgoing>f_end2</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f_end1" sourceRef="call_us" targetRef="end" />
    <bpmn:sequenceFlow id="f_end2" sourceRef="call_other" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>f_end1</bpmn:incoming>
      <bpmn:incoming>f_end2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""
SCRIPT = """<bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="enrich" />
    <bpmn:scriptTask id="enrich" name="Enrich" scriptFormat="python">
      <bpmn:incoming>f_start</bpmn:incoming><bpmn:outgoing>f_gw</bpmn:outgoing>
      <bpmn:script>doubled = score * 2</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f_gw" sourceRef="enrich" targetRef="gw" />"""
NO_SCRIPT = '<bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="gw" />'


def _workflow(condition: str, engine: SafeScriptEngine, script: bool = False) -> BpmnWorkflow:
    xml = BPMN.format(middle=SCRIPT if script else NO_SCRIPT, condition=condition)
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(xml.encode())
    return BpmnWorkflow(parser.get_spec("route"), parser.get_subprocess_specs("route"),
                        script_engine=engine)


def _run(workflow: BpmnWorkflow, data: dict[str, Any]) -> list[str]:
    """Start the instance with `data` and return the ids of the tasks now waiting."""
    workflow.get_tasks(state=TaskState.READY)[0].data.update(data)
    workflow.do_engine_steps()
    return sorted(t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY))


@pytest.mark.parametrize(
    "condition",
    ["market == 'US' and score &gt; 3", "${market eq 'US' &amp;&amp; score gt 3}"],
)
def test_gateway_conditions_route_through_the_safe_engine(condition: str) -> None:
    assert _run(_workflow(condition, SafeScriptEngine()), {"market": "US", "score": 4}) == [
        "call_us"
    ]
    assert _run(_workflow(condition, SafeScriptEngine()), {"market": "US", "score": 2}) == [
        "call_other"
    ]
    # Optional data left out: unknown names are None, so the default flow is taken.
    assert _run(_workflow("prospect.market == 'US'", SafeScriptEngine()), {}) == ["call_other"]


def test_a_forbidden_condition_fails_the_task_with_a_spiff_exception() -> None:
    workflow = _workflow("().__class__.__bases__", SafeScriptEngine())
    with pytest.raises(WorkflowTaskException, match="attribute names starting with '_'") as info:
        _run(workflow, {})
    assert isinstance(info.value.__cause__, ExpressionError)

    with pytest.raises(WorkflowTaskException, match="cannot compare NoneType > int"):
        _run(_workflow("score &gt; 3", SafeScriptEngine()), {})


def test_script_tasks_are_refused_unless_the_operator_allows_them() -> None:
    workflow = _workflow("doubled &gt; 6", SafeScriptEngine(), script=True)
    with pytest.raises(ExpressionError, match="script tasks are disabled: 'enrich'"):
        _run(workflow, {"score": 4})
    assert "doubled" not in workflow.get_tasks(state=TaskState.ERROR)[0].data

    allowed = _workflow("doubled &gt; 6", SafeScriptEngine(allow_scripts=True), script=True)
    assert _run(allowed, {"score": 4}) == ["call_us"]
    assert allowed.get_tasks(state=TaskState.READY)[0].data["doubled"] == 8


def test_spiff_paths_that_bypass_the_engine_are_safe_too() -> None:
    engine = SafeScriptEngine()
    # Spiff evaluates completion conditions and correlations on the environment directly.
    with pytest.raises(ExpressionError, match="starting with '_'"):
        engine.environment.evaluate("().__class__", {})
    with pytest.raises(ExpressionError, match="script tasks are disabled"):
        engine.environment.execute("import os", {})
    assert engine.environment.evaluate("a + b", {"a": 1}, {"a": 5, "b": 2}) == 3  # data wins


def test_validate_uses_the_whitelist_and_keeps_spiffs_syntax_error_contract() -> None:
    engine = SafeScriptEngine()
    engine.validate("score > 3")
    with pytest.raises(ExpressionError, match="starting with '_'"):
        engine.validate("x.__class__")
    # Spiff's DMN engine probes with validate() and expects SyntaxError for partial tests.
    with pytest.raises(SyntaxError):
        engine.validate("> 3")


def test_a_flat_sum_is_one_level_however_many_terms() -> None:
    terms = [f"x{i}" for i in range(90)]  # 179 parts: under MAX_NODES, far over MAX_DEPTH
    assert evaluate(" + ".join(terms), dict.fromkeys(terms, 1)) == 90
    assert evaluate(" * ".join(["2"] * 10), {}) == 1024
    mixed = "x" + "".join(f" {op} x" for op in ["+", "-"] * 30)  # one precedence: flat
    assert evaluate(mixed, {"x": 1}) == 1
    with pytest.raises(ExpressionError, match="nested too deeply"):
        compile_expression("(" * 30 + "x" + " + 1) * 2" * 30)  # 60 levels of real nesting
