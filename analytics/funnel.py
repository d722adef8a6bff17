"""The funnel: per step, who arrived, what they did there, how long it took, who converted.

The database aggregates (see `analytics._read_funnel`, its read model); only per-step rows
reach Python, and this module shapes them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from analytics._read_definitions import deployed_map
from analytics._read_funnel import funnel_rows
from analytics._sql import Filters, check_outcome
from engine.definitions import Flow, ProcessMap
from engine.definitions.outcomes import DEFAULT_MEASURES
from engine.store.database import Store
from engine.store.steplog import check_process, outcome_names

# what converts when a map declares no outcomes: the outcome event the engine and the
# simulator record for a sale
DEFAULT_OUTCOME = "sale"


@dataclass(frozen=True)
class FunnelStep:
    """One step of the funnel. Counts are arrivals (a step visited twice counts twice) except
    `instances` and `converted`, which count distinct instances."""

    step_id: str
    step_name: str
    instances: int  # distinct instances that arrived here
    entered: int  # arrivals
    completed: int  # arrivals ended by the person doing the step as suggested
    skipped: int
    varied: int  # ended by the person doing something else instead
    moved_on: int  # ended, and the journey went on (a later event, or it is still active)
    waiting: int  # still open on an active instance
    dropped: int  # nothing came after, the instance is over, and it did not convert
    median_hours: float | None  # time spent here, arrival to end, over ended arrivals
    p90_hours: float | None
    converted: int  # of `instances`, how many reached the outcome

    @property
    def conversion(self) -> float:
        return self.converted / self.instances if self.instances else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "conversion": self.conversion}


@dataclass(frozen=True)
class Funnel:
    """A process's funnel for the instances the filters select; iterating gives the steps
    in map order."""

    filters: Filters
    outcome: str  # what counted as converted: outcome names joined by "+"
    instances: int
    converted: int
    steps: tuple[FunnelStep, ...]
    # the map's other elements: events, gateways, timers, stuck paths (`people()` hides them)
    technical: frozenset[str] = frozenset()

    def people(self) -> Funnel:
        """The people's steps and the journey's ends only (steps the map does not know,
        e.g. of an older version or an imported log, stay)."""
        hidden = self.technical
        return replace(self, steps=tuple(s for s in self.steps if s.step_id not in hidden),
                       technical=frozenset())

    @property
    def conversion(self) -> float:
        return self.converted / self.instances if self.instances else 0.0

    def __iter__(self) -> Iterator[FunnelStep]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def step(self, step_id: str) -> FunnelStep:
        for found in self.steps:
            if found.step_id == step_id:
                return found
        raise KeyError(step_id)

    def to_dict(self) -> dict[str, Any]:
        return {**self.filters.to_dict(), "outcome": self.outcome,
                "instances": self.instances, "converted": self.converted,
                "conversion": self.conversion, "steps": [s.to_dict() for s in self.steps]}


def funnel(
    store: Store, process_id: str, *, since: datetime | None = None,
    distributor: str | None = None, market: str | None = None,
    outcome: str | None = None, all_elements: bool = True,
    people: Collection[str] | None = None,
) -> Funnel:
    """The funnel of `process_id` over instances started at or after `since`, of one
    distributor, in one market (each filter optional), its steps in map order (a topological
    order of the map's flows from its start; steps the map no longer has come last, in order
    of first arrival).

    Converted means reaching an outcome the map declares as converting (see
    `analytics.measures`; a map that declares none: the `sale` outcome event, which the
    engine's `outcome()` records with step id `sale`), or `outcome` when given: a step id
    or an outcome event name. An outcome the process has never seen raises UnknownOutcome, a
    process never deployed or imported DefinitionNotFound.
    `all_elements=False` keeps the people's steps and the journey's ends (`Funnel.people()`).
    `people` keeps the instances of those distributors only (`analytics.people`).
    """
    if outcome is not None and outcome != DEFAULT_OUTCOME:
        check_outcome(store, process_id, outcome)  # the process too
    else:
        check_process(store, process_id)
    pmap = deployed_map(store, process_id)
    declared = (pmap.measures if pmap is not None else None) or DEFAULT_MEASURES
    outcomes = (tuple(sorted(outcome_names(outcome))) if outcome is not None
                else declared.converting)
    filters = Filters(process_id, since, distributor, market,
                      None if people is None else tuple(sorted(people)))
    filters.check(store)
    found = funnel_rows(store, filters, outcomes)
    rows, times, ended, wins = found.steps, found.times, found.ended, found.wins
    steps = []
    for (step_id, name_, distinct, closed, entered, paired_, completed, skipped, varied,
         active_entered, active_paired) in rows:
        closed, paired_ = int(closed or 0), int(paired_ or 0)
        ended_closed, dropped = ended.get(step_id, (0, 0))
        median, p90 = times.get(step_id, (None, None))
        steps.append(FunnelStep(
            step_id, name_, instances=int(distinct or 0),
            entered=closed + int(entered or 0) - paired_,
            completed=int(completed or 0), skipped=int(skipped or 0), varied=int(varied or 0),
            moved_on=closed - ended_closed,
            waiting=int(active_entered or 0) - int(active_paired or 0),
            dropped=dropped, median_hours=median, p90_hours=p90,
            converted=wins.get(step_id, 0)))
    order, people = map_order(pmap)
    last = len(order)
    steps.sort(key=lambda s: order.get(s.step_id, last))  # stable: the rest by first arrival
    whole = Funnel(filters, "+".join(outcomes), found.instances, found.converted, tuple(steps),
                   frozenset(order) - people)
    return whole if all_elements else whole.people()


def map_order(pmap: ProcessMap | None) -> tuple[dict[str, int], set[str]]:
    """(position of each step in a topological order of the map, the people's steps and the
    ends of the main journey). The order is the reverse postorder of a depth-first walk along
    the flows from the start events, in the order the map lists them, so a step comes after
    every step that leads to it except along a loop back. Boundary events (stuck and
    reminder timers) and what follows them come after the main journey."""
    if pmap is None:
        return {}, set()
    steps = pmap.all_steps()
    after: dict[str, list[str]] = {}
    for flow in _all_flows(pmap):
        after.setdefault(flow.source, []).append(flow.target)
    seen: set[str] = set()
    postorder: list[str] = []

    def walk(start: str) -> None:
        stack = [(start, iter(reversed(after.get(start, []))))]
        seen.add(start)
        while stack:
            node, successors = stack[-1]
            for nxt in successors:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, iter(reversed(after.get(nxt, [])))))
                    break
            else:
                stack.pop()
                postorder.append(node)

    for step in steps:
        if step.type == "startEvent" and step.id not in seen:
            walk(step.id)
    main = list(reversed(postorder))
    reached = set(main)
    people = {s.id for s in steps if s.id in reached
              and (s.is_human or s.type == "endEvent")}
    postorder.clear()
    for step in steps:  # the boundary paths, then anything unreachable, in map order
        if step.id not in seen:
            walk(step.id)
    ordered = main + list(reversed(postorder))
    return {step: n for n, step in enumerate(ordered)}, people


def _all_flows(pmap: ProcessMap) -> list[Flow]:
    flows = list(pmap.flows)
    for sub in pmap.subprocesses:
        flows += _all_flows(sub)
    return flows
