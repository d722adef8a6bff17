"""Graph and content checks on process maps, reporting every problem found.

Checks: one start, every step reachable, every step can reach an end, diverging gateways have a
default flow (unless the declared data proves their conditions exhaustive), expressions read only
declared data (`_data_checks`), no instance can be left active with nothing waiting (`_stalls`),
flows point at real steps, conditions and timers are safe and well formed (timers by the parser
the runtime uses, `engine.durations`), step properties are known, script tasks only when the
operator allows designer code, and elements nextmove cannot run are named as such.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.definitions._data_checks import (
    check_constant_timer,
    check_data,
    declaration_for,
    exhaustive,
)
from engine.definitions._stalls import find_stall
from engine.definitions.data import DataDeclaration
from engine.definitions.extract import ACCEPTED_PROPERTIES, RECORDED_PROPERTIES
from engine.definitions.model import CONTROL_VALUES, STEP_PROPERTIES, Flow, ProcessMap, Step
from engine.durations import (
    DurationError,
    check_timer,
    is_timer_literal,
    looks_like_duration,
    parse_iso_duration,
)
from engine.errors import ExpressionError, Problem, did_you_mean
from engine.expressions import compile_expression

# Every property name docs/bpmn.md lists; a name close to one of them is likely a typo.
KNOWN_PREFIXES = tuple(name.split(".")[0] + "." for name in ACCEPTED_PROPERTIES if "." in name)
KNOWN_PROPERTIES = tuple(dict.fromkeys(
    (*STEP_PROPERTIES, *(n for n in ACCEPTED_PROPERTIES if "." not in n), *RECORDED_PROPERTIES)))

UNSUPPORTED = {
    "serviceTask": "service tasks call external code, which nextmove does not run; "
    "model the step as a task, or as a message wait for the outside system's answer",
    "businessRuleTask": "decision tables (DMN) are not supported; use an exclusive gateway "
    "with conditions",
    "complexGateway": "complex gateways are not supported; use exclusive or inclusive gateways",
    "adHocSubProcess": "ad-hoc subprocesses are not supported; use a subprocess or parallel "
    "branches",
}
UNSUPPORTED_EVENTS = {
    "conditional": "conditional events are not supported; use a gateway after a wait",
    "compensate": "compensation is not supported",
    "link": "link events are not supported; draw the sequence flow",
}

# timers a map's property draws (`follow_up`, `stuck_after`, `expires_after`): a zero wait is a
# slip of the pen, not a meaning (a BPMN timer of PT0S drawn as such stays allowed)
_NEVER_ZERO = {"follow_up": ("a follow_up", "would be due for a follow-up"),
               "stuck": ("a stuck_after", "would be flagged stuck"),
               "expired": ("an expires_after", "would expire")}


class _Checker:
    def __init__(self, file: str | None, allow_scripts: bool) -> None:
        self.file = file
        self.allow_scripts = allow_scripts
        self.problems: list[Problem] = []
        self.declaration = DataDeclaration()

    def add(
        self, message: str, *, code: str, element: str | None = None, line: int | None = None,
        suggestion: str | None = None, severity: str = "error",
    ) -> None:
        self.problems.append(
            Problem(message, self.file, line, element, suggestion, code, severity)
        )

    def check_map(self, pmap: ProcessMap, top_level: bool) -> None:
        steps = {s.id: s for s in pmap.steps}
        if not steps:
            return
        if top_level:
            self.declaration = declaration_for(pmap)
            check_data(pmap, self.add)
        self._check_ids(pmap)
        self._check_flows(pmap, steps)
        self._check_starts(pmap, top_level)
        for step in pmap.steps:
            self._check_step(step)
        self._check_gateways(pmap, steps)
        self._check_graph(pmap, steps)
        self._check_stall(pmap)
        for sub in pmap.subprocesses:
            if getattr(steps.get(sub.id), "event_subprocess", False):
                self._check_event_starts(sub)
            self.check_map(sub, top_level=False)

    def _check_event_starts(self, sub: ProcessMap) -> None:
        """Prospect events and signals reach only the catches an instance waits at; an event
        subprocess's start never waits, so one started by them would never run (its events
        held until they expire). Timer starts run; error and escalation starts are thrown
        inside the instance."""
        for start in sub.steps:
            if start.type == "startEvent" and start.event in ("message", "signal"):
                self.add(f"an event subprocess started by a {start.event} is not supported: "
                         "nextmove delivers prospect events and signals only to steps that wait "
                         "for them, so it would never start; catch it with a boundary event on "
                         "the steps it may interrupt, or an event-based gateway",
                         code="unsupported", element=start.id, line=start.line)

    def _check_ids(self, pmap: ProcessMap) -> None:
        seen: dict[str, int | None] = {}
        items: list[Step | Flow] = [*pmap.steps, *pmap.flows]
        for item in items:
            if not item.id:
                self.add("element without an id", code="missing-id", line=item.line)
            elif item.id in seen:
                self.add(f"duplicate id (first used on line {seen[item.id]})",
                         code="duplicate-id", element=item.id, line=item.line)
            else:
                seen[item.id] = item.line

    def _check_flows(self, pmap: ProcessMap, steps: dict[str, Step]) -> None:
        for flow in pmap.flows:
            for end, ref in (("source", flow.source), ("target", flow.target)):
                if ref not in steps:
                    self.add(f"sequence flow {end} {ref!r} is not a step of {pmap.id!r}",
                             code="unknown-ref", element=flow.id, line=flow.line,
                             suggestion=did_you_mean(ref, steps))

    def _check_starts(self, pmap: ProcessMap, top_level: bool) -> None:
        starts = [s for s in pmap.steps if s.type == "startEvent"]
        plain = [s for s in starts if s.event is None]
        if not starts:
            self.add(f"{'process' if top_level else 'subprocess'} {pmap.id!r} has no start event",
                     code="missing-start", element=pmap.id, line=pmap.line)
        elif len(plain) > 1:
            self.add(f"{pmap.id!r} has {len(plain)} plain start events; an instance needs "
                     "exactly one place to begin", code="ambiguous-start", element=pmap.id,
                     line=pmap.line)

    def _check_step(self, step: Step) -> None:
        if step.type in UNSUPPORTED:
            self.add(f"unsupported element {step.type}: {UNSUPPORTED[step.type]}",
                     code="unsupported", element=step.id, line=step.line)
        if step.event in UNSUPPORTED_EVENTS:
            self.add(f"unsupported {step.event} event: {UNSUPPORTED_EVENTS[step.event]}",
                     code="unsupported", element=step.id, line=step.line)
        if step.type == "scriptTask" and not self.allow_scripts:
            self.add("script tasks run designer code and are refused; an operator can allow "
                     "them explicitly (--allow-scripts / NEXTMOVE_ALLOW_SCRIPTS=1)",
                     code="script-refused", element=step.id, line=step.line)
        if step.type == "callActivity" and not step.called:
            self.add("call activity without calledElement", code="unknown-process",
                     element=step.id, line=step.line)
        if step.timer is not None:
            self._check_timer(step)
        elif step.event == "timer":
            self.add("timer without a duration, date or cycle", code="bad-timer",
                     element=step.id, line=step.line)
        if step.message_ttl is not None:
            try:
                parse_iso_duration(step.message_ttl)
            except DurationError as exc:
                self.add(f"message_ttl of {step.message!r} cannot be used: {exc}",
                         code="bad-ttl", element=step.id, line=step.line)
        if step.event == "message" and not step.message and step.type != "endEvent":
            self.add("message event without a message", code="bad-message", element=step.id,
                     line=step.line)
        self._check_properties(step)

    def _check_timer(self, step: Step) -> None:
        assert step.timer is not None
        kind = step.timer_kind or "timeDuration"
        if is_timer_literal(step.timer, kind):
            purpose = step.properties.get("purpose")
            if (kind == "timeDuration" and purpose in _NEVER_ZERO
                    and not any(parse_iso_duration(step.timer).values())):
                key, then = _NEVER_ZERO[purpose]
                self.add(f"{key} of {step.timer!r} is no wait at all: the step {then} the "
                         "moment it is entered; give how long to wait first (e.g. P3D)",
                         code="bad-timer", element=step.id, line=step.line)
            return
        if is_timer_literal(step.timer) or looks_like_duration(step.timer):
            # a value of another kind, or a duration Spiff cannot read: the timer would fail
            try:
                check_timer(kind, step.timer)
            except DurationError as exc:
                self.add(f"timer {step.timer!r} cannot be scheduled: {exc}", code="bad-timer",
                         element=step.id, line=step.line)
            return
        try:
            compile_expression(step.timer)
        except ExpressionError as exc:
            self.add(f"timer {step.timer!r} is neither ISO 8601 nor a safe expression: {exc}",
                     code="bad-timer", element=step.id, line=step.line)
            return
        check_constant_timer(step.id, step.line, step.timer, kind, self.add)

    def _check_properties(self, step: Step) -> None:
        for name in step.properties:
            if name in KNOWN_PROPERTIES or name.startswith(KNOWN_PREFIXES):
                continue
            hint = did_you_mean(name, KNOWN_PROPERTIES)
            if hint:
                self.add(f"unknown step property {name!r}", code="unknown-property",
                         element=step.id, line=step.line, suggestion=hint, severity="warning")
        control = step.properties.get("control")
        if control is not None and control not in CONTROL_VALUES:
            self.add(f"control must be one of {', '.join(CONTROL_VALUES)}, not {control!r}",
                     code="bad-control", element=step.id, line=step.line,
                     suggestion=did_you_mean(control, CONTROL_VALUES))

    def _check_gateways(self, pmap: ProcessMap, steps: dict[str, Step]) -> None:
        outgoing: dict[str, list[Flow]] = {}
        for flow in pmap.flows:
            outgoing.setdefault(flow.source, []).append(flow)
        for step in pmap.steps:
            flows = outgoing.get(step.id, [])
            if not step.is_gateway and len(flows) > 1:
                self.add(f"{step.type} {step.id!r} has {len(flows)} outgoing flows; split with a "
                         "parallel or exclusive gateway so the intent is explicit",
                         code="implicit-split", element=step.id, line=step.line)
            if step.type in ("exclusiveGateway", "inclusiveGateway") and len(flows) > 1:
                ids = [f.id for f in flows]
                if not step.default_flow:
                    if exhaustive([f.condition for f in flows], self.declaration):
                        pass  # the declared data proves one condition always holds
                    else:
                        self.add(f"{step.type} {step.id!r} splits into {len(flows)} flows but has "
                                 "no default flow, and its conditions can all be false; mark one "
                                 "outgoing flow as default so every prospect has a way on (or "
                                 "branch on every value of a required enumerated field)",
                                 code="missing-default", element=step.id, line=step.line)
                elif step.default_flow not in ids:
                    self.add(f"default flow {step.default_flow!r} is not an outgoing flow",
                             code="unknown-ref", element=step.id, line=step.line,
                             suggestion=did_you_mean(step.default_flow, ids))
                for flow in flows:
                    if flow.id != step.default_flow and not flow.condition:
                        self.add(f"flow from gateway {step.id!r} has no condition and is not the "
                                 "default", code="missing-condition", element=flow.id,
                                 line=flow.line)
            for flow in flows:
                if flow.condition:
                    self._check_condition(flow.id, flow.line, flow.condition)

    def _check_condition(self, element: str, line: int | None, text: str) -> None:
        try:
            compile_expression(text)
        except ExpressionError as exc:
            self.add(f"condition {text!r} is not allowed: {exc}", code="bad-condition",
                     element=element, line=line)

    def _check_graph(self, pmap: ProcessMap, steps: dict[str, Step]) -> None:
        forward: dict[str, set[str]] = {s: set() for s in steps}
        backward: dict[str, set[str]] = {s: set() for s in steps}
        for flow in pmap.flows:
            if flow.source in steps and flow.target in steps:
                forward[flow.source].add(flow.target)
                backward[flow.target].add(flow.source)
        for step in pmap.steps:  # a boundary event goes where its host goes
            if step.attached_to in steps:
                forward[step.attached_to].add(step.id)
                backward[step.id].add(step.attached_to)
        roots = [s.id for s in pmap.steps if s.type == "startEvent" or s.event_subprocess]
        if not roots:
            return  # already reported as missing start
        reached = _walk(roots, forward)
        ends = [s for s in steps if not (forward[s] - {b.id for b in pmap.steps
                                                         if b.attached_to == s})]
        finishing = _walk(ends, backward)
        for step in pmap.steps:
            if step.id not in reached:
                self.add(f"step {step.name!r} cannot be reached from the start",
                         code="unreachable", element=step.id, line=step.line)
            elif step.id not in finishing:
                self.add(f"step {step.name!r} cannot reach an end (a loop with no way out?)",
                         code="no-end", element=step.id, line=step.line)


    def _check_stall(self, pmap: ProcessMap) -> None:
        if any(p.severity == "error" for p in self.problems):
            return  # a broken graph would only add noise
        stall = find_stall(pmap)
        if stall is None:
            return
        missing = ", ".join(repr(f) for f in stall.missing)
        why = ("whichever branch is taken upstream" if not stall.finishes else
               "if the gateway conditions upstream route that way" if stall.by_data else
               "when an event upstream (a timer, message or signal) takes another branch")
        for join in stall.joins:
            self.add(f"{join.type} {join.id!r} can wait forever: {why}, an instance reaches it "
                     f"with no token ever coming on {missing}, and stays active with nothing "
                     "waiting and no timer; join alternative branches with an exclusive gateway",
                     code="stall", element=join.id, line=join.line,
                     severity="warning" if stall.by_data else "error")


def _walk(starts: Iterable[str], edges: dict[str, set[str]]) -> set[str]:
    seen = set(starts)
    todo = list(seen)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def check_maps(
    maps: Iterable[ProcessMap], file: str | None, *, allow_scripts: bool = False
) -> list[Problem]:
    """Every problem in the processes of one document (cross-file references are not checked)."""
    maps = list(maps)
    checker = _Checker(file, allow_scripts)
    executable = [m for m in maps if m.executable and m.steps]
    if not executable:
        drawn = [m for m in maps if m.steps]
        if not maps:
            checker.add("no bpmn:process in this file", code="no-process")
        for m in drawn:
            checker.add(f"process {m.id!r} is marked not executable (isExecutable=\"false\"); "
                        "tick 'Executable' in the modeler to run it", code="not-executable",
                        element=m.id, line=m.line)
        if maps and not drawn:
            checker.add("the file's processes are empty (a diagram with no steps)",
                        code="no-process")
    for m in executable:
        checker.check_map(m, top_level=True)
    return checker.problems


def check_calls(maps: Iterable[ProcessMap], known: dict[str, ProcessMap]) -> list[Problem]:
    """Call activities naming a process that no loaded file defines, or one not executable."""
    problems = []
    for pmap in maps:
        for step in pmap.all_steps():
            if step.type != "callActivity" or not step.called:
                continue
            target = known.get(step.called)
            if target is None:
                problems.append(Problem(
                    f"calls process {step.called!r}, which no loaded file defines",
                    pmap.file, step.line, step.id, did_you_mean(step.called, known),
                    "unknown-process",
                ))
            elif not target.executable:
                problems.append(Problem(
                    f"calls process {step.called!r}, which is marked not executable",
                    pmap.file, step.line, step.id, code="not-executable",
                ))
    return problems
