"""The catalogue of control indicators and the checks that find them in a `ProcessMap`.

Each rule names the recognised test it speaks to: the IRS common-law factors (Rev. Rul. 87-41:
instructions, training, set hours, order or sequence set, reports, ...) and prong A of the ABC
test (free from control and direction in performing the work, under contract and in fact).
The checks read only the `ProcessMap` model, so a BPMN file and a YAML map that say the same
thing get the same findings.

`Hit` is what a check returns: the rule, the step a reviewer would look at (where a
justification goes) and, for a timer, the event itself (where its line comes from).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from compliance import _text as text
from compliance._graph import Level, levels
from engine.definitions.model import ProcessMap, Step

SEVERITIES = ("info", "low", "medium", "high")
_ABC = "ABC test, prong A: free from control and direction in performing the work"


@dataclass(frozen=True)
class Rule:
    """One control indicator: what it looks for, the test it relates to, how to fix it."""

    id: str
    name: str
    title: str
    looks_for: str
    factor: str
    tests: tuple[str, ...]
    severity: str
    fix: str

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "title": self.title,
                "looks_for": self.looks_for, "factor": self.factor, "tests": list(self.tests),
                "severity": self.severity, "fix": self.fix}


def _rule(id: str, name: str, title: str, looks_for: str, factor: str, irs: str,
          severity: str, fix: str) -> Rule:
    return Rule(id, name, title, looks_for, factor, (irs, _ABC), severity, fix)


RULES: tuple[Rule, ...] = (
    _rule("NM001", "training-before-selling", "Required training before selling",
          "a required training or qualification step (or a gateway on training status) that "
          "every path to a selling step passes through", "Training",
          "IRS common-law factor 2: training", "high",
          "make the training guidance (offered, skippable) and run it alongside selling, not "
          "before it; if a law demands it, give the step a `basis` and justify it"),
    _rule("NM002", "required-without-basis", "Required step without a basis",
          "a step with `control: required` and no `basis` (the legal or brand reason)",
          "Instructions", "IRS common-law factor 1: instructions", "high",
          "add `basis:` naming the law or brand rule that demands the step, or make it "
          "guidance"),
    _rule("NM003", "fixed-order", "Required steps in a fixed order",
          "two or more required steps where one always comes before the other, so the map "
          "sets the order of the work", "Order or sequence set",
          "IRS common-law factor 10: order or sequence set", "medium",
          "run the required steps as parallel branches, or make all but one guidance; if the "
          "order itself is what the law demands, justify it"),
    _rule("NM004", "set-hours", "Working hours set by timers",
          "repeating timers anchored at a clock time or without end (timeCycle R/...), and "
          "waits until a fixed date or time (timeDate)", "Set hours of work",
          "IRS common-law factor 7: set hours of work", "medium",
          "use relative reminders (P2D after the last step, at most a few repetitions) and let "
          "the contractor pick when to act"),
    _rule("NM005", "deadline-with-consequence", "Deadlines with consequences",
          "timers on a contractor's step that take the step away at a fixed date, or escalate "
          "to a sponsor or manager, or lead to a sanction (late, warning, removal), when the "
          "contractor has not acted in time", "Set hours of work",
          "IRS common-law factor 7: set hours of work", "high",
          "make the timer non-interrupting and supportive: a reminder to the contractor, or "
          "a guidance card for the sponsor that offers help and carries no sanction"),
    _rule("NM006", "required-reporting", "Required reports to the company's staff",
          "required steps that report to a manager, sponsor, upline or the office, or ask for "
          "daily or weekly activity reports or timesheets", "Oral or written reports",
          "IRS common-law factor 11: oral or written reports", "high",
          "make reporting guidance (the contractor may share results if they like) and read "
          "results from the trail instead of asking for reports"),
    _rule("NM007", "commanding-card", "Guidance written as orders",
          "guidance steps whose name or card says must, always, never, required to, have to, "
          "mandatory, you shall, ...", "Instructions",
          "IRS common-law factor 1: instructions", "medium",
          "rephrase as a suggestion (\"you could\", \"many find it helpful to\"); if the step "
          "truly is required, say so with `control: required` and a `basis`"),
    _rule("NM008", "no-way-around", "Required step with no way around it",
          "a required step that every path to the end passes through: it can be neither "
          "skipped nor avoided", "Instructions",
          "IRS common-law factor 1: instructions", "low",
          "keep required steps on the branches that need them (e.g. only when the prospect "
          "enrolls) and justify any that every contractor must pass"),
    _rule("NM009", "quota-gate", "Activity quota used as a gate",
          "gateway conditions comparing the contractor's activity counts (contacts, calls, "
          "sales, hours, ...) with a threshold, so progress depends on meeting a quota",
          "Full time required", "IRS common-law factor 8: full time required", "high",
          "route on what the prospect said or did, never on how much the contractor worked; "
          "show activity counts as information only"),
    _rule("NM010", "quota-in-card", "Activity minimum demanded in a card",
          "card text demanding a minimum or a rate of activity (\"at least 20 calls\", "
          "\"5 posts a day\", \"your weekly quota\")", "Full time required",
          "IRS common-law factor 8: full time required", "medium",
          "offer a range or an example (\"up to ten people, as many or as few as you like\") "
          "instead of a minimum"),
)
RULES_BY_ID: Mapping[str, Rule] = {r.id: r for r in RULES}


@dataclass(frozen=True)
class Hit:
    """A check's raw finding; `element` is the exact element when it is not `step` itself."""

    rule: str
    step: Step
    message: str
    element: Step | None = None


def check_map(pmap: ProcessMap, called: Mapping[str, ProcessMap]) -> list[Hit]:
    """Every rule's hits on one process map (with its embedded subprocesses).

    `called` maps process ids to the maps call activities may name, so a call into a
    training process counts as training.
    """
    found: list[Hit] = []
    all_levels = list(levels(pmap))
    avoidable = _avoidable_holders(all_levels)
    for level in all_levels:
        found += _training(level, called)
        found += _fixed_order(level)
        found += _timers(level)
        found += _quota_gates(level)
        if level.holder is None or level.holder.id not in avoidable:
            found += _no_way_around(level)
    for step in pmap.all_steps():
        found += _step_hits(step)
    return found


def _is_required(step: Step) -> bool:
    return step.control == "required"


def _contractor(step: Step) -> bool:
    return step.is_human and step.role == "distributor"


def _requires_inside(step: Step, level: Level, called: Mapping[str, ProcessMap]) -> bool:
    inner: list[Step] = []
    if step.called and step.called in called:
        inner = called[step.called].all_steps()
    else:
        sub = next((m for m in level.map.subprocesses if m.id == step.id), None)
        inner = sub.all_steps() if sub else []
    return any(s.is_human and _is_required(s) for s in inner)


def _training(level: Level, called: Mapping[str, ProcessMap]) -> Iterator[Hit]:
    selling = [s for s in level.steps.values() if _contractor(s) and text.is_selling(
        text.described(s))]
    if not selling:
        return
    for step in level.map.steps:
        words = text.described(step)
        if step.called in called:
            words += " " + called[step.called or ""].name
        before = [s for s in selling if level.comes_before(step.id, s.id)]
        if not before:
            continue
        names = ", ".join(repr(s.name) for s in before[:3])
        if (step.is_human or step.type in ("callActivity", "subProcess")) and (
                text.is_training(words) and (
                    _is_required(step) or _requires_inside(step, level, called))):
            yield Hit("NM001", step, f"required training {step.name!r} comes before every "
                      f"path to {names}: nobody can sell until it is done")
        elif step.is_gateway:
            flows = [f for f in level.map.flows if f.source == step.id and f.condition]
            variables = [v for f in flows for v in text.training_conditions(f.condition or "")]
            if variables:
                yield Hit("NM001", step, f"gateway {step.name!r} routes on training status "
                          f"({', '.join(dict.fromkeys(variables))}) before every path to "
                          f"{names}")


def _fixed_order(level: Level) -> Iterator[Hit]:
    required = [s for s in level.map.steps
                if (s.is_human or s.type == "callActivity") and _is_required(s)
                and s.id in level.dominators]
    nearest: dict[str, str] = {}
    for step in required:
        before = [r for r in required if level.comes_before(r.id, step.id)]
        if before:
            nearest[step.id] = max(before, key=lambda r: level.depth(r.id)).id
    roots = [s for s in required if s.id not in nearest and s.id in nearest.values()]
    for root in roots:
        run = [root]
        for step in sorted(required, key=lambda s: level.depth(s.id)):
            chain, cur = [], step.id
            while cur in nearest:
                cur = nearest[cur]
                chain.append(cur)
            if chain and chain[-1] == root.id:
                run.append(step)
        later = run[1:]
        if all(level.comes_before(a.id, b.id) for a, b in zip(later, later[1:], strict=False)):
            order = " → ".join(repr(s.name) for s in run)
            yield Hit("NM003", root, f"required steps always run in this order: {order}")
        else:
            names = ", ".join(repr(s.name) for s in later)
            yield Hit("NM003", root, f"required step {root.name!r} always comes before the "
                      f"required steps {names}")


def _timer_kind(expression: str) -> str:
    value = expression.strip().strip("'\"")
    if value.upper().startswith("R"):
        return "cycle"
    if value[:4].isdigit() and "-" in value[:8]:
        return "date"
    return "duration"


def _fixed_clock(expression: str) -> bool:
    value = expression.strip().strip("'\"")
    parts = value.split("/")
    unbounded = parts[0].upper() == "R"
    return unbounded or any(p[:4].isdigit() and "-" in p[:8] for p in parts[1:])


def _timers(level: Level) -> Iterator[Hit]:
    for event in level.map.steps:
        if event.event != "timer" or not event.timer:
            continue
        host = level.steps.get(event.attached_to or "")
        anchor = host or event
        kind = _timer_kind(event.timer)
        where = f"timer {event.timer!r}" + (f" on {host.name!r}" if host else "")
        if kind == "cycle" and _fixed_clock(event.timer):
            yield Hit("NM004", anchor, f"{where} repeats on a fixed schedule: it sets when "
                      "the contractor works", event)
        elif kind == "date" and host is None:
            yield Hit("NM004", anchor, f"{where} waits until a fixed date and time", event)
        if host is None or not _contractor(host):
            continue
        consequence = _consequence(level, event, kind)
        if consequence:
            yield Hit("NM005", anchor, f"{where}: {consequence}", event)


def _consequence(level: Level, event: Step, kind: str) -> str | None:
    after = level.after(event.id)
    bosses = [s for s in after if s.is_human and s.role != "distributor"]
    sanction = [w for s in after for w in text.sanctions(
        " ".join(filter(None, (s.name, s.card, s.properties.get("outcome")))))]
    if event.interrupting:
        if kind == "date":
            return "a fixed deadline takes the step away from the contractor"
        if bosses:
            return (f"a late contractor's step is taken away and handed to the "
                    f"{bosses[0].role} ({bosses[0].name!r})")
        if sanction:
            return f"a late contractor's step is taken away with a sanction ({sanction[0]!r})"
        return None
    required = [b for b in bosses if _is_required(b)]
    if required:
        return (f"a late contractor is reported to their {required[0].role} in a required "
                f"step ({required[0].name!r})")
    if sanction:
        return f"lateness leads to a sanction ({sanction[0]!r})"
    return None


def _quota_gates(level: Level) -> Iterator[Hit]:
    for gateway in level.map.steps:
        if not gateway.is_gateway:
            continue
        gates = [f.condition.strip() for f in level.map.flows
                 if f.source == gateway.id and f.condition and text.counted(f.condition)]
        if gates:
            quoted = ", ".join(repr(g) for g in gates)
            yield Hit("NM009", gateway, f"gateway {gateway.name!r} routes the journey by "
                      f"activity count: {quoted}")


def _avoidable_holders(all_levels: list[Level]) -> set[str]:
    """Subprocess steps a prospect's journey can go around, at any level above."""
    avoidable: set[str] = set()
    for level in all_levels:
        parent_avoidable = level.holder is not None and level.holder.id in avoidable
        for sub in level.map.subprocesses:
            if parent_avoidable or not level.unavoidable(sub.id):
                avoidable.add(sub.id)
    return avoidable


def _no_way_around(level: Level) -> Iterator[Hit]:
    for step in level.map.steps:
        if step.is_human and _is_required(step) and level.unavoidable(step.id):
            yield Hit("NM008", step, f"required step {step.name!r} is on every path to the "
                      "end: it can be neither skipped nor avoided")


def _step_hits(step: Step) -> Iterator[Hit]:
    if _is_required(step) and not step.basis:
        yield Hit("NM002", step, f"step {step.name!r} is required but gives no basis (the "
                  "legal or brand reason it cannot be skipped)")
    if _is_required(step) and text.is_reporting(step):
        yield Hit("NM006", step, f"required step {step.name!r} asks the contractor to report "
                  "on their work (to a sponsor, a manager or the office)")
    if step.control == "guidance":
        said = (text.orders(step.name) if step.is_human else []) + text.orders(step.card or "")
        if said:
            quoted = ", ".join(repr(p) for p in dict.fromkeys(p.lower() for p in said))
            yield Hit("NM007", step, f"guidance step {step.name!r} is worded as an order: "
                      f"{quoted}")
    if step.card:
        demanded = text.quotas(step.card)
        if demanded:
            quoted = ", ".join(repr(q) for q in dict.fromkeys(demanded))
            yield Hit("NM010", step, f"card of {step.name!r} demands a minimum of activity: "
                      f"{quoted}")
