"""Maps that can stall: an instance still active with nothing waiting and no timer.

The map is played as a token game, every choice taken both ways (conditions and events are not
known ahead, so an exclusive or event-based gateway may send its token down any branch, an
inclusive one down any non-empty set of branches, a boundary timer may fire or not). A state in
which tokens remain but no step can ever move is a stall: in practice tokens sitting at a
parallel join that will never get a token on its other flows (an exclusive split joined by a
parallel gateway, an inclusive split joined by a parallel one). An inclusive join fires once no
other token can still reach it, as SpiffWorkflow's does.

A stall reached only through gateway conditions, in a map where other runs do finish, is
reported apart (`by_data`): the data may never route that way (conditions can be correlated),
so validate warns. A stall reached through events (a boundary timer that fires or not, an
event-based gateway, a signal), or in a map where no run finishes, will happen to some
instance, so validate refuses the map.

The search is bounded (states and tokens per flow); a map too large to explore is not judged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations

from engine.definitions.model import ProcessMap, Step

MAX_STATES = 20_000
MAX_TOKENS = 2  # tokens per flow; more means a loop that multiplies tokens: not judged here
MAX_SUBSETS = 6  # an inclusive split with more branches is played as "all or each one"

Marking = tuple[tuple[str, int], ...]  # (flow id, tokens), sorted


@dataclass(frozen=True)
class Stall:
    """A reachable state where tokens wait at `joins` and nothing can move."""

    joins: tuple[Step, ...]
    missing: tuple[str, ...]  # incoming flows of the joins that never get their token
    by_data: bool  # only reached through gateway conditions, and some run does finish
    finishes: bool = True  # some run of the map ends with no token left


class _Game:
    def __init__(self, pmap: ProcessMap) -> None:
        self.steps = {s.id: s for s in pmap.steps}
        self.incoming: dict[str, list[str]] = {s: [] for s in self.steps}
        self.outgoing: dict[str, list[str]] = {s: [] for s in self.steps}
        self.target: dict[str, str] = {}
        for flow in pmap.flows:
            if flow.source in self.steps and flow.target in self.steps:
                self.outgoing[flow.source].append(flow.id)
                self.incoming[flow.target].append(flow.id)
                self.target[flow.id] = flow.target
        self.boundaries: dict[str, list[Step]] = {}
        for step in pmap.steps:
            if step.attached_to in self.steps:
                self.boundaries.setdefault(step.attached_to, []).append(step)
        self._reach: dict[str, set[str]] = {}

    def is_join(self, step: Step) -> bool:
        return step.type in ("parallelGateway", "inclusiveGateway") and \
            len(self.incoming[step.id]) > 1

    def reach(self, flow: str) -> set[str]:
        """Flows a token on `flow` may later be on (itself included)."""
        if flow not in self._reach:
            seen, todo = {flow}, [flow]
            while todo:
                step = self.target[todo.pop()]
                nxt = list(self.outgoing[step])
                for b in self.boundaries.get(step, []):
                    nxt += self.outgoing[b.id]
                for f in nxt:
                    if f not in seen:
                        seen.add(f)
                        todo.append(f)
            self._reach[flow] = seen
        return self._reach[flow]

    def outputs(self, step: Step) -> Iterator[tuple[list[str], bool]]:
        """Every set of flows a step may put tokens on when it moves, and whether data
        conditions (rather than events) choose it."""
        out = self.outgoing[step.id]
        by_data = step.type in ("exclusiveGateway", "inclusiveGateway") and len(out) > 1
        if step.type == "endEvent" or not out:
            yield [], False
        elif step.type in ("exclusiveGateway", "eventBasedGateway"):
            for flow in out:
                yield [flow], by_data
        elif step.type == "inclusiveGateway":
            sizes = range(1, len(out) + 1) if len(out) <= MAX_SUBSETS else (1, len(out))
            for n in sizes:
                for chosen in combinations(out, n):
                    yield list(chosen), by_data
        else:
            yield list(out), False
        for b in self.boundaries.get(step.id, []):  # a boundary event that fires instead/too
            extra = self.outgoing[b.id]
            if b.interrupting:
                yield list(extra), False
            elif step.type not in ("exclusiveGateway", "eventBasedGateway", "inclusiveGateway"):
                yield [*out, *extra], False

    def moves(self, marking: dict[str, int]) -> Iterator[tuple[Step, list[str]]]:
        """(step, flows it takes its tokens from) for each step that can move."""
        for sid, step in self.steps.items():
            marked = [f for f in self.incoming[sid] if marking.get(f)]
            if not marked:
                continue
            if step.type == "parallelGateway" and len(self.incoming[sid]) > 1:
                if len(marked) == len(self.incoming[sid]):
                    yield step, marked
            elif step.type == "inclusiveGateway" and len(self.incoming[sid]) > 1:
                pending = [f for f, n in marking.items() if n and f not in marked]
                if not any(set(self.incoming[sid]) & self.reach(f) for f in pending):
                    yield step, marked
            else:
                for flow in marked:
                    yield step, [flow]

    def play(self) -> Stall | None:
        starts = [s for s in self.steps.values() if s.type == "startEvent" and s.event is None]
        start = starts[0] if starts else next(
            (s for s in self.steps.values() if s.type == "startEvent"), None)
        if start is None or not self.outgoing[start.id]:
            return None
        first = (_freeze(dict.fromkeys(self.outgoing[start.id], 1)), False)
        seen, todo = {first}, [first]
        found: Stall | None = None
        finishes = False  # some run ends with no token left
        while todo:
            if len(seen) > MAX_STATES:
                return found
            frozen_marking, via_data = todo.pop()
            marking = dict(frozen_marking)
            moved = False
            for step, taken in self.moves(marking):
                moved = True
                if step.type == "endEvent" and step.event == "terminate":
                    continue
                for produced, chosen_by_data in self.outputs(step):
                    nxt = dict(marking)
                    for f in taken:
                        nxt[f] -= 1
                    for f in produced:
                        nxt[f] = nxt.get(f, 0) + 1
                    if any(n > MAX_TOKENS for n in nxt.values()):
                        return None
                    state = (_freeze(nxt), via_data or chosen_by_data)
                    if state not in seen:
                        seen.add(state)
                        todo.append(state)
            finishes = finishes or not any(marking.values())
            if not moved and any(marking.values()):
                joins = sorted({self.steps[self.target[f]].id for f, n in marking.items() if n})
                steps = tuple(self.steps[j] for j in joins)
                missing = tuple(f for j in joins for f in self.incoming[j] if not marking.get(f))
                if not via_data:
                    return Stall(steps, missing, by_data=False)
                found = found or Stall(steps, missing, by_data=True)
        if found is not None and not finishes:
            return Stall(found.joins, found.missing, by_data=False, finishes=False)
        return found


def _freeze(marking: dict[str, int]) -> Marking:
    return tuple(sorted((f, n) for f, n in marking.items() if n))


def find_stall(pmap: ProcessMap) -> Stall | None:
    """A way this process (not its subprocesses) can stop with tokens left and nothing waiting."""
    if any(s.event_subprocess for s in pmap.steps):
        return None  # an event subprocess can start at any time: not played here
    return _Game(pmap).play()
