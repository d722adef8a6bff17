"""Flow counts traced from the step log: through gateways, a parallel split counted once per
departure and once per branch, decision shares, and arrivals no map path explains."""

from __future__ import annotations

from analytics._bpmndi import Box, Diagram, Edge, Shape
from analytics._flows import decision_rows, flow_stats

BOX = Box(0, 0, 10, 10)
KINDS = {"start": "startEvent", "A": "userTask", "P": "parallelGateway", "B": "userTask",
         "C": "userTask", "X": "exclusiveGateway", "D": "userTask", "E": "endEvent"}
FLOWS = {"f1": ("start", "A"), "f2": ("A", "P"), "f3": ("P", "B"), "f4": ("P", "C"),
         "f5": ("B", "X"), "f6": ("X", "D"), "f7": ("X", "E")}
DIAGRAM = Diagram(
    "p", "p", tuple(Shape(i, k, i, BOX) for i, k in KINDS.items()),
    tuple(Edge(f, "sequenceFlow", "", ((0, 0), (1, 1)), source=s, target=t)
          for f, (s, t) in FLOWS.items()))


def run(instance: int, *steps: str) -> list[tuple[int, str, str, bool | None]]:
    """Events as the engine logs them: a closing event is `paired` when its step was
    entered (tasks), not for start and end events (their own visits)."""
    out: list[tuple[int, str, str, bool | None]] = []
    for item in steps:
        step, kind = item.split(":")
        paired = None if kind == "entered" else step not in ("start", "E")
        out.append((instance, step, kind, paired))
    return out


def test_counts_through_gateways_and_a_parallel_split() -> None:
    events = (run(1, "start:completed", "A:entered", "A:completed", "B:entered", "C:entered",
                  "B:completed", "D:entered")
              + run(2, "start:completed", "A:entered", "A:completed", "B:entered",
                    "C:entered", "C:completed", "B:completed", "E:completed")
              + run(3, "start:completed", "A:entered"))
    stats = flow_stats(DIAGRAM, events)
    assert stats.counts == {"f1": 3, "f2": 2, "f3": 2, "f4": 2, "f5": 2, "f6": 1, "f7": 1}
    assert stats.shares == {"f6": 0.5, "f7": 0.5}  # a parallel split has no shares
    assert stats.highest == 3
    assert [(r["decision"], r["to"], r["taken"]) for r in decision_rows(DIAGRAM, stats)] == [
        ("X", "D", 1), ("X", "E", 1)]


def test_an_arrival_no_path_explains_counts_nothing() -> None:
    # D entered straight after A: the map has no gateway-only path A -> D
    stats = flow_stats(DIAGRAM, run(1, "start:completed", "A:entered", "A:completed",
                                    "D:entered"))
    assert stats.counts == {"f1": 1}
    assert stats.shares == {}


def test_an_arrival_is_traced_past_any_number_of_departures() -> None:
    # forty rounds of B and C after the split: D still traces back to B through X
    events = run(1, "start:completed", "A:entered", "A:completed", "B:entered", "C:entered",
                 *(["C:completed", "C:entered"] * 40), "B:completed", *(["C:completed"] * 40),
                 "D:entered")
    assert flow_stats(DIAGRAM, events).counts["f6"] == 1
