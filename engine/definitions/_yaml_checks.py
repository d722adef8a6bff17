"""The journey checks run on a YAML map after its schema check (see `yaml_maps`).

They look at the map as a graph of steps, one list (the journey, a group, a parallel branch) at a
time: where `next` may point, what is reachable, what can finish, which loops exist, and whether a
stuck path stays apart from the main journey.
"""

from __future__ import annotations

import ast
from typing import Protocol

from engine.definitions._data_checks import exhaustive
from engine.definitions._yaml_model import END, HOSTS, Step, YamlMap, declaration
from engine.errors import did_you_mean

OWN_KEYS = frozenset({"hook", "card", "control", "basis", "role", "ack", "follow_up", "outcome",
                      "stuck_after", "when_stuck", "expires_after", "when_expired", "data",
                      "yaml_line", "purpose"})


class Report(Protocol):
    def __call__(
        self, message: str, path: str, code: str, hint: str | None = None,
        severity: str = "error",
    ) -> None: ...


Graph = dict[str, list[str | None]]  # step id -> successors; None is the end of the list


def _reach(starts: list[str | None], graph: Graph) -> set[str | None]:
    seen: set[str | None] = set()
    todo = list(starts)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, []) if node is not None else [])
    return seen


def _successors(s: Step, stuck: bool = True) -> list[str | None]:
    if s.kind == "end":
        return [None]
    if s.kind == "decide":
        out: list[str | None] = [c.next for c in s.decide]
    elif s.kind == "wait":
        out = [t.next or s.then for t in s.wait]
    else:
        out = [s.then]
        if s.expires_after:
            out.append(s.when_expired or s.then)
        if stuck and s.when_stuck:
            out.append(s.when_stuck)
    return [None if t == END else t for t in out]


def check(m: YamlMap, report: Report) -> None:
    seen: dict[str, Step] = {}
    for s in m.all_steps():
        _check_step(m, s, report)
        if s.id == END:
            report("`end` is a keyword (`next: end`); pick another id", f"{s.path}.id",
                   "reserved-id")
        elif s.id == m.process:
            report(f"{s.id!r} is also the process id; ids must be unique", f"{s.path}.id",
                   "duplicate-id")
        elif s.id in seen:
            report(f"duplicate step id {s.id!r} (first at line {seen[s.id].line})",
                   f"{s.path}.id", "duplicate-id")
        seen.setdefault(s.id, s)
    _check_scope(m.steps, "journey", set(seen), report)
    _check_data_names(m, report)


def _check_step(m: YamlMap, s: Step, report: Report) -> None:
    if s.control == "required" and not s.basis:
        report("a required step needs a `basis:` (the legal or brand reason); compliance "
               "audits flag required steps without one", f"{s.path}.control",
               "required-without-basis", severity="warning")
    for timer, target in (("stuck_after", "when_stuck"), ("expires_after", "when_expired")):
        if getattr(s, target) and not getattr(s, timer):
            report(f"`{target}` needs `{timer}:` (how long to wait first)",
                   f"{s.path}.{target}", "missing-timer")
        if getattr(s, timer) and s.kind not in HOSTS:
            report(f"a {s.kind} step cannot time out; put `{timer}` on a task, call or group",
                   f"{s.path}.{timer}", "timer-not-allowed")
    if s.follow_up and s.kind != "task":
        report(f"a {s.kind} step waits on nobody, so there is no one to remind; put "
               "`follow_up` on a person's step", f"{s.path}.follow_up", "timer-not-allowed")
    for key, _ in s.extra:
        if key in OWN_KEYS:
            report(f"`{key}` has its own key: write `{key}:` on the step, not under properties",
                   f"{s.path}.properties.{key}", "shadowed-property")
    if s.kind in ("decide", "end") and s.next:
        why = "goes where its choices say" if s.kind == "decide" else "finishes the journey"
        report(f"a {s.kind} step {why}; remove `next`", f"{s.path}.next", "next-not-allowed")
    if s.kind == "call" and s.call == m.process:
        report("a process cannot call itself", f"{s.path}.call", "recursive-call")
    if s.kind == "decide":
        defaults = [c for c in s.decide if c.when is None]
        if not defaults and not _exhaustive(m, s):
            report("`decide` needs an `- otherwise: STEP` choice: where to go when no "
                   "condition holds (or a choice for every value of a required field in "
                   "`data:`)", f"{s.path}.decide", "no-default")
        for c in defaults[1:]:
            report("only one `otherwise` per decide", f"{c.path}.otherwise", "two-defaults")
        for c in s.decide:
            try:
                ast.parse(c.when or "0", mode="eval")
            except SyntaxError as exc:
                report(f"condition is not a valid expression: {exc.msg}", f"{c.path}.when",
                       "expression")
    messages: set[str | None] = set()
    for t in s.wait:
        if t.message and t.message in messages:
            report(f"{t.message!r} is waited for twice in this step", f"{t.path}.message",
                   "duplicate-trigger")
        messages.add(t.message)
    timers = [t for t in s.wait if t.after]
    if len(timers) > 1:
        report("several delays in one wait: only the shortest can ever fire",
               f"{timers[1].path}.after", "several-timers", severity="warning")


def _exhaustive(m: YamlMap, s: Step) -> bool:
    """The declared data proves one of the decide's conditions always holds."""
    found = declaration(m)[0]
    return found is not None and exhaustive([c.when for c in s.decide], found)


def _check_scope(steps: tuple[Step, ...], kind: str, ids: set[str], report: Report) -> None:
    here = [s.id for s in steps]
    ok = True

    def target(name: str, element: str) -> None:
        nonlocal ok
        if name == END and kind == "branch":
            report("a parallel branch joins the others again; it cannot end the journey",
                   element, "end-in-branch")
        elif name != END and name not in here:
            if name in ids:
                report(f"{name!r} is in another list; `next` can only point to a step of the "
                       "same list (groups and branches are entered at their first step)",
                       element, "out-of-scope")
            else:
                report(f"no step named {name!r} here", element, "unknown-step",
                       did_you_mean(name, [*here, END]))
        else:
            return
        ok = False

    for s in steps:
        if (s.kind == "decide" and not s.decide) or (s.kind == "wait" and not s.wait):
            ok = False  # already reported; a step with no way out would only add noise
        for key in ("next", "when_stuck", "when_expired"):
            if getattr(s, key) and not (key == "when_stuck" and s.stuck_step):
                target(getattr(s, key), f"{s.path}.{key}")
        for t in s.wait:
            if t.next:
                target(t.next, f"{t.path}.next")
        for c in s.decide:
            target(c.next, f"{c.path}.{'next' if c.when else 'otherwise'}")
        if kind == "branch" and s.kind == "end":
            target(END, f"{s.path}.end")
        if kind == "branch" and s.when_stuck and not s.stuck_step:
            report("inside a parallel branch a stuck path would run into the join; write the "
                   "stuck step right under `when_stuck:` instead (it runs once and ends)",
                   f"{s.path}.when_stuck", "stuck-in-branch")
        for child in s.branches:
            _check_scope(child, "branch", ids, report)
        if s.steps:
            _check_scope(s.steps, "group", ids, report)
        if s.stuck_step:
            _check_scope((s.stuck_step,), "stuck", ids, report)
    if ok and steps:
        _check_graph(steps, kind, report)


def _check_graph(steps: tuple[Step, ...], kind: str, report: Report) -> None:
    graph: Graph = {s.id: _successors(s) for s in steps}
    reached = _reach([steps[0].id], graph)
    back: Graph = {}
    for node, outs in graph.items():
        for out in outs:
            back.setdefault(out or "", []).append(node)
    finishing = _reach(back.get("", []), back)
    for s in steps:
        if s.id not in reached:
            report(f"step {s.id!r} is never reached: no step leads to it (steps run in "
                   "order unless one says `next:`, and nothing runs after `end`)",
                   s.path, "unreachable")
    trapped = [s for s in steps if s.id in reached and s.id not in finishing]
    if trapped:
        names = ", ".join(s.id for s in trapped)
        report(f"the journey can never finish once it reaches {names}: every path from there "
               "loops back (add a decide that leaves the loop)", trapped[0].path, "no-end")
    onward = {s.id: _reach(graph[s.id], graph) for s in steps}
    looped: set[str] = set()
    for s in steps:
        if s.id in onward[s.id] and s.id not in looped:
            cycle = [x.id for x in steps if x.id in onward[s.id] and s.id in onward[x.id]]
            looped.update(cycle)
            report(f"steps {' → '.join([*cycle, cycle[0]])} form a loop; every round adds to "
                   "the prospect's history, so make sure it ends (a decide that exits)",
                   s.path, "loop", severity="warning")
    main = _reach([steps[0].id], {s.id: _successors(s, stuck=False) for s in steps})
    for s in steps:
        if s.when_stuck and s.when_stuck != END and not s.stuck_step and kind != "branch":
            side = _reach([s.when_stuck], {x.id: _successors(x, stuck=False) for x in steps})
            hits = [x.id for x in steps if x.id in side and x.id in main]
            if hits:
                report(f"the stuck path from {s.id!r} reaches {hits[0]!r}, which is on the "
                       "main journey: the prospect would be in two places at once; end the "
                       "stuck path with `next: end`", f"{s.path}.when_stuck",
                       "stuck-path-rejoins")


def _check_data_names(m: YamlMap, report: Report) -> None:
    declared = {k for k, _ in m.data} | {k for s in m.all_steps() for k, _ in s.data}
    if not declared:
        return
    for s in m.all_steps():
        for c in s.decide:
            try:
                tree = ast.parse(c.when or "0", mode="eval")
            except SyntaxError:
                continue
            names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            for name in sorted(names - declared - {"True", "False", "None"}):
                report(f"{name!r} is not declared in any `data:`", f"{c.path}.when",
                       "unknown-data", did_you_mean(name, declared), severity="warning")
