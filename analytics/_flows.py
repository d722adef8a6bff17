"""How often each sequence flow of a map was taken, read from the step log.

The log records steps, not flows, and gateways leave no events. So each arrival at a step (an
`entered` event, or a closing event with no `entered` before it: start, end and catch events)
is traced back to the instance's latest departure (a closing event) from a step the map
connects to it through gateways only, however far back, and every flow on that path is
credited once per departure: a parallel split counts its incoming flow once and each branch
once. A parallel join is credited to the branch that arrived last (the log does not say more).
At a decision (an exclusive, inclusive, event-based or complex gateway, or an activity with
several outgoing flows) each outgoing flow also gets its share of the departures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from analytics._bpmndi import Diagram
from engine.store import CLOSING_KINDS, EventKind

GATEWAYS = frozenset({"exclusiveGateway", "parallelGateway", "inclusiveGateway",
                      "complexGateway", "eventBasedGateway", "gateway"})
DECISIONS = frozenset({"exclusiveGateway", "inclusiveGateway", "complexGateway",
                       "eventBasedGateway"})
_CLOSING = frozenset(CLOSING_KINDS)


@dataclass(frozen=True)
class FlowStats:
    """Per sequence flow id: times taken, and the share of its decision's departures."""

    counts: Mapping[str, int]
    shares: Mapping[str, float]

    @property
    def highest(self) -> int:
        return max(self.counts.values(), default=0)


def _paths(diagram: Diagram) -> tuple[dict[str, dict[str, tuple[str, ...]]], dict[str, str]]:
    kinds = {s.element_id: s.kind for s in diagram.shapes}
    outgoing: dict[str, list[tuple[str, str]]] = {}
    for e in diagram.edges:
        if e.kind == "sequenceFlow" and e.source and e.target:
            outgoing.setdefault(e.source, []).append((e.element_id, e.target))
    reach: dict[str, dict[str, tuple[str, ...]]] = {}
    for start in outgoing:
        if kinds.get(start) in GATEWAYS:
            continue
        found: dict[str, tuple[str, ...]] = {}
        queue: list[tuple[str, tuple[str, ...]]] = [(start, ())]
        seen = {start}
        while queue:
            node, path = queue.pop(0)
            for flow, target in outgoing.get(node, []):
                if kinds.get(target) in GATEWAYS:
                    if target not in seen:
                        seen.add(target)
                        queue.append((target, (*path, flow)))
                elif target not in found:
                    found[target] = (*path, flow)
        reach[start] = found
    return reach, kinds


Event = tuple[int, str, str, bool | None]  # instance id, step id, kind, paired


def flow_stats(diagram: Diagram, events: Iterable[Event]) -> FlowStats:
    """Counts and decision shares over `events`, ordered by instance then log order."""
    reach, kinds = _paths(diagram)
    credited: set[tuple[int, str]] = set()
    counts: Counter[str] = Counter()
    current: int | None = None
    departures: list[tuple[int, str]] = []  # (event number, step)
    for number, (instance, step, kind, paired) in enumerate(events):
        if instance != current:  # departures never span instances: keep one's state only
            current, departures = instance, []
            credited.clear()
        closing = kind in _CLOSING
        if kind == EventKind.ENTERED or (closing and not paired):
            for at, origin in reversed(departures):
                path = reach.get(origin, {}).get(step)
                if path is not None:
                    for flow in path:
                        if (at, flow) not in credited:
                            credited.add((at, flow))
                            counts[flow] += 1
                    break
        if closing:
            departures.append((number, step))
    return FlowStats(dict(counts), _shares(diagram, kinds, counts))


def _shares(diagram: Diagram, kinds: Mapping[str, str],
            counts: Mapping[str, int]) -> dict[str, float]:
    leaving: dict[str, list[str]] = {}
    for e in diagram.edges:
        if e.kind == "sequenceFlow" and e.source:
            leaving.setdefault(e.source, []).append(e.element_id)
    shares: dict[str, float] = {}
    for node, flows in leaving.items():
        kind = kinds.get(node, "")
        if len(flows) < 2 or (kind in GATEWAYS and kind not in DECISIONS):
            continue
        total = sum(counts.get(f, 0) for f in flows)
        if total:
            shares.update({f: counts.get(f, 0) / total for f in flows})
    return shares


def decision_rows(diagram: Diagram, stats: FlowStats,
                  names: Mapping[str, str] | None = None) -> list[dict[str, object]]:
    """One row per flow leaving a decision: from, to, count, share (for tables)."""
    shapes = {s.element_id: s.name or s.element_id for s in diagram.shapes}
    label = {**shapes, **(names or {})}
    rows: list[dict[str, object]] = []
    for e in diagram.edges:
        if e.element_id in stats.shares:
            rows.append({"decision": label.get(e.source, e.source),
                         "to": e.name or label.get(e.target, e.target),
                         "taken": stats.counts.get(e.element_id, 0),
                         "share": stats.shares[e.element_id]})
    return rows

