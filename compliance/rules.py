"""The checks that find the catalogue's control indicators in a `ProcessMap`.

The rules themselves, with the factors they evidence and the sources they cite (Rev. Rul.
87-41, the IRS's three categories, IRC §3508, the ABC test, the DOL's economic-reality test),
are in `compliance.catalogue`. The checks read only the `ProcessMap` model, so a BPMN file
and a YAML map that say the same thing get the same findings. Text is read in English and
Spanish (`compliance._text`).

`Hit` is what a check returns: the rule, the step a reviewer would look at (where a
justification goes) and, for a timer, the event itself (where its line comes from).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from compliance import _text as text
from compliance._graph import Level, levels
from engine.definitions.model import ProcessMap, Step


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


# words that hold a basis's place without giving one: "TODO" is no more a reason than nothing
_PLACEHOLDERS = {"todo", "tbd", "tba", "tbc", "fixme", "xxx", "n/a", "na", "none", "null",
                 "nil", "placeholder", "basis", "unknown"}


def _is_placeholder(basis: str) -> bool:
    """True for a basis such as "TODO", "tbd.", "-", "n/a", "..." or "TODO: find the law"."""
    words = re.findall(r"[\w/]+", basis.lower())  # any script: a basis may be in Chinese
    return not words or words[0] in {"todo", "tbd", "fixme"} or " ".join(words) in _PLACEHOLDERS


def _step_hits(step: Step) -> Iterator[Hit]:
    if _is_required(step) and (not step.basis or _is_placeholder(step.basis)):
        given = f" ({step.basis.strip()!r} is a placeholder)" if step.basis else ""
        yield Hit("NM002", step, f"step {step.name!r} is required but gives no basis (the "
                  f"legal or brand reason it cannot be skipped){given}")
    if _is_required(step) and text.is_reporting(step):
        yield Hit("NM006", step, f"required step {step.name!r} asks the contractor to report "
                  "on their work (to a sponsor, a manager or the office)")
    written = text.cards(step)
    if step.control == "guidance":
        said = (text.orders(step.name) if step.is_human else []) + [
            o for card in written for o in text.orders(card)]
        if said:
            quoted = ", ".join(repr(p) for p in dict.fromkeys(p.lower() for p in said))
            yield Hit("NM007", step, f"guidance step {step.name!r} is worded as an order: "
                      f"{quoted}")
    demanded = [q for card in written for q in text.quotas(card)]
    if demanded:
        quoted = ", ".join(repr(q) for q in dict.fromkeys(demanded))
        yield Hit("NM010", step, f"card of {step.name!r} demands a minimum of activity: "
                  f"{quoted}")
    if step.role.lower() not in text.STAFF_ROLES:
        yield from _card_control(step, written)


def _quoted(found: list[str]) -> str:
    return ", ".join(repr(f) for f in dict.fromkeys(found))


def _card_control(step: Step, written: list[str]) -> Iterator[Hit]:
    """Control a card expresses without the obvious words: set hours, sanctions, reports on
    demand, access waiting on an upline's approval."""
    said = ([step.name] if step.is_human else []) + written
    hours = [h for t in said for h in text.set_hours(t)]
    if hours:
        yield Hit("NM004", step, f"card of {step.name!r} sets working hours: {_quoted(hours)}")
    threats = [h for t in said for h in text.threats(t)]
    if threats:
        yield Hit("NM005", step, f"card of {step.name!r} ties a sanction to not doing as "
                  f"told: {_quoted(threats)}")
    reports = [h for t in said for h in text.demanded_reports(t)]
    if reports:
        yield Hit("NM006", step, f"card of {step.name!r} asks the contractor to report their "
                  f"results: {_quoted(reports)}")
    gates = [h for t in said for h in text.approval_gates(t)]
    if gates:
        yield Hit("NM007", step, f"card of {step.name!r} makes the contractor's work wait on "
                  f"an upline's approval: {_quoted(gates)}")
