"""One process level (a process or an embedded subprocess) as a graph the rules can ask about:
what comes before what on every path (dominators), what a timer leads to, what can be avoided.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from engine.definitions.model import ProcessMap, Step

ROOT = "\x00start"  # a virtual node before every start event of the level


def levels(pmap: ProcessMap, parent: Step | None = None) -> Iterator[Level]:
    """The map and, depth first, each embedded subprocess, each with the step holding it."""
    yield Level(pmap, parent)
    for sub in pmap.subprocesses:
        holder = next((s for s in pmap.steps if s.id == sub.id), None)
        yield from levels(sub, holder)


@dataclass
class Level:
    """Steps of one level and their flows; boundary events hang off their host."""

    map: ProcessMap
    holder: Step | None  # the subprocess step in the level above (None at the top)
    steps: dict[str, Step] = field(init=False)
    flows: dict[str, set[str]] = field(init=False)  # sequence flows only
    edges: dict[str, set[str]] = field(init=False)  # flows plus host -> boundary event
    _dominators: dict[str, set[str]] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.steps = {s.id: s for s in self.map.steps}
        self.flows = {s: set() for s in self.steps}
        for flow in self.map.flows:
            if flow.source in self.steps and flow.target in self.steps:
                self.flows[flow.source].add(flow.target)
        self.edges = {s: set(t) for s, t in self.flows.items()}
        for step in self.map.steps:
            if step.attached_to in self.steps:
                self.edges[step.attached_to].add(step.id)
        starts = [s.id for s in self.map.steps
                  if s.type == "startEvent" and not s.event_subprocess]
        self.flows[ROOT] = set(starts)
        self.edges[ROOT] = set(starts)

    def reach(self, starts: Iterable[str], *, boundaries: bool = True,
              avoiding: str | None = None) -> set[str]:
        """Steps reachable from `starts` (included), never passing through `avoiding`."""
        edges = self.edges if boundaries else self.flows
        seen = {s for s in starts if s != avoiding}
        todo = list(seen)
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen and nxt != avoiding:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    @property
    def dominators(self) -> dict[str, set[str]]:
        """For each reachable step, the steps every path from the start passes through
        (the step itself included)."""
        if self._dominators is None:
            reachable = self.reach([ROOT])
            preds: dict[str, set[str]] = {n: set() for n in reachable}
            for src in reachable:
                for dst in self.edges.get(src, ()):
                    preds[dst].add(src)
            dom = {n: set(reachable) for n in reachable}
            dom[ROOT] = {ROOT}
            changed = True
            while changed:
                changed = False
                for node in reachable - {ROOT}:
                    incoming = [dom[p] for p in preds[node]]
                    new = set.intersection(*incoming) | {node} if incoming else {node}
                    if new != dom[node]:
                        dom[node], changed = new, True
            self._dominators = {n: d - {ROOT} for n, d in dom.items() if n != ROOT}
        return self._dominators

    def comes_before(self, first: str, then: str) -> bool:
        """Every path from the start to `then` passes through `first` (first != then)."""
        return first != then and first in self.dominators.get(then, set())

    def unavoidable(self, step_id: str) -> bool:
        """No end of this level can be reached without passing `step_id`, by any choice of
        the gateways and prospect events (timers on steps are not a choice: left out)."""
        if step_id not in self.reach([ROOT], boundaries=False):
            return False
        ends = {s for s, step in self.steps.items() if step.type == "endEvent"}
        reachable_ends = ends & self.reach([ROOT], boundaries=False)
        return bool(reachable_ends) and not (
            reachable_ends & self.reach([ROOT], boundaries=False, avoiding=step_id))

    def after(self, step_id: str) -> list[Step]:
        """Steps a timer or other event leads to, in map order (the event itself left out)."""
        found = self.reach(self.edges.get(step_id, ()))
        return [s for s in self.map.steps if s.id in found and s.id != step_id]

    def depth(self, step_id: str) -> int:
        return len(self.dominators.get(step_id, ()))
