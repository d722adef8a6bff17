"""What the process-mining view adds to a drawn map: flow counts and decision shares on the
edges (line width by count), and deliberate waits (timer catch events) hatched apart from
the heat scale, so a 30-day pause by design does not read as the map's worst step."""

from __future__ import annotations

from analytics._bpmndi import Edge, Shape
from analytics._svgshapes import INK
from analytics._svgtext import esc, num

# Timers are off the colour scale: a timer a token rests at (a deliberate wait), and one on a
# step's border (a reminder, a stuck flag), whose "time spent" is only its own duration.
WAIT_KINDS = frozenset({"intermediateCatchEvent", "boundaryEvent"})


def is_deliberate_wait(shape: Shape) -> bool:
    return shape.kind in WAIT_KINDS and "timer" in shape.events


def flow_width(count: int, highest: int) -> float:
    return 1.5 if highest <= 0 else 1.5 + 4.5 * count / highest


def flow_label(edge: Edge, count: int, share: float | None) -> str:
    """`count` (and `share` at a decision) at the middle of the flow, on a white halo."""
    text = f"{count:,}" if share is None else f"{count:,} · {share:.0%}"
    x, y = _label_point(edge.points, 0.18 if edge.name else 0.5)
    return (f'<text class="flow-count" data-flow="{esc(edge.element_id)}" x="{num(x)}" '
            f'y="{num(y)}" font-size="11" font-weight="bold" text-anchor="middle" '
            f'fill="#08519c" stroke="#ffffff" stroke-width="3" paint-order="stroke">'
            f"{esc(text)}</text>")


def _label_point(points: tuple[tuple[float, float], ...],
                 along: float) -> tuple[float, float]:
    """A point `along` the longest segment, nudged off the line (bends crowd the ends); a
    named flow's count goes near its start, clear of the name in the middle."""
    best = max(range(len(points) - 1),
               key=lambda i: abs(points[i + 1][0] - points[i][0])
               + abs(points[i + 1][1] - points[i][1]))
    (x1, y1), (x2, y2) = points[best], points[best + 1]
    x, y = x1 + (x2 - x1) * along, y1 + (y2 - y1) * along
    if abs(x2 - x1) >= abs(y2 - y1):
        return max(x, x1 + 24 if x2 > x1 else x), y - 5
    return x + 16, y + 4


def wait_pattern(prefix: str) -> str:
    return (f'<pattern id="{prefix}-wait" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eef3fb"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="#6b8fc7" stroke-width="2"/></pattern>')


def wait_legend(x: float, y: float, prefix: str) -> str:
    return (f'<g class="wait-legend"><rect x="{num(x)}" y="{num(y)}" width="22" height="14" '
            f'fill="url(#{prefix}-wait)" stroke="{INK}" stroke-width="0.5"/>'
            f'<text x="{num(x + 28)}" y="{num(y + 11)}" font-size="11">deliberate wait '
            "(timer): not coloured</text></g>")
