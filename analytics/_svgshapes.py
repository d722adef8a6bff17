"""The drawing primitives of a process map: shapes, event glyphs, gateway and task markers.

Plain SVG markup built from numbers (`num`) and fixed strings; `analytics.svg` composes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from analytics._bpmndi import Box, Shape
from analytics._svgtext import num

INK = "#222222"


def is_container(s: Shape) -> bool:
    return s.kind in ("participant", "lane", "group") or s.expanded


def rect(b: Box, *, rx: float = 0, fill: str, stroke: str, width: float,
         dash: str | None = None) -> str:
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    corner = f' rx="{num(rx)}"' if rx else ""
    return (f'<rect x="{num(b.x)}" y="{num(b.y)}" width="{num(b.width)}" '
            f'height="{num(b.height)}"{corner} fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{num(width)}"{extra}/>')


def circle(cx: float, cy: float, r: float, fill: str, width: float, extra: str = "") -> str:
    return (f'<circle cx="{num(cx)}" cy="{num(cy)}" r="{num(max(r, 1))}" fill="{fill}" '
            f'stroke="{INK}" stroke-width="{num(width)}"{extra}/>')


def midpoint(points: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    lengths = [math.dist(a, b) for a, b in zip(points, points[1:], strict=False)]
    half = sum(lengths) / 2
    for (a, b), length in zip(zip(points, points[1:], strict=False), lengths, strict=True):
        if half <= length and length > 0:
            t = half / length
            return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t
        half -= length
    return points[0]


def _path(d: str, ink: str, fill: str = "none", width: float = 1.5) -> str:
    return (f'<path d="{d}" fill="{fill}" stroke="{ink}" stroke-width="{num(width)}" '
            f'stroke-linejoin="round" stroke-linecap="round"/>')


def _scaled(points: list[tuple[float, float]], cx: float, cy: float, s: float) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{num(cx + x * s)},{num(cy + y * s)}"
                    for i, (x, y) in enumerate(points))


def event_glyph(events: tuple[str, ...], cx: float, cy: float, r: float, throwing: bool,
                ink: str, fill: str) -> str:
    """The trigger's symbol inside an event; thrown (result) symbols are filled."""
    if not events:
        return ""
    s = r * 0.55
    solid = ink if throwing else "none"
    if len(events) > 1:  # multiple triggers: a pentagon
        pts = [(math.sin(a) * 0.9, -math.cos(a) * 0.9)
               for a in (i * 2 * math.pi / 5 for i in range(5))]
        return _path(_scaled(pts, cx, cy, s) + " Z", ink, solid)
    kind = events[0]
    if kind == "timer":
        marks = "".join(
            f'<line x1="{num(cx + math.sin(a) * s * 0.8)}" y1="{num(cy - math.cos(a) * s * 0.8)}" '
            f'x2="{num(cx + math.sin(a) * s)}" y2="{num(cy - math.cos(a) * s)}" stroke="{ink}" '
            f'stroke-width="1"/>' for a in (i * math.pi / 6 for i in range(12)))
        hands = _path(f"M{num(cx)},{num(cy - s * 0.7)} L{num(cx)},{num(cy)} "
                      f"L{num(cx + s * 0.5)},{num(cy + s * 0.1)}", ink)
        return (f'<circle cx="{num(cx)}" cy="{num(cy)}" r="{num(s * 1.05)}" fill="{fill}" '
                f'stroke="{ink}" stroke-width="1.5"/>{marks}{hands}')
    if kind == "message":
        env = Box(cx - s * 0.95, cy - s * 0.62, s * 1.9, s * 1.24)
        flap_fill = fill if throwing else "none"
        return (rect(env, fill=solid if throwing else "none", stroke=ink, width=1.3)
                + _path(f"M{num(env.x)},{num(env.y)} L{num(env.cx)},{num(env.cy + s * 0.1)} "
                        f"L{num(env.right)},{num(env.y)}",
                        fill if throwing else ink, flap_fill, 1.3))
    glyphs: dict[str, list[tuple[float, float]]] = {
        "signal": [(0, -0.95), (0.9, 0.65), (-0.9, 0.65)],
        "escalation": [(0, -0.95), (0.6, 0.8), (0, 0.2), (-0.6, 0.8)],
        "error": [(-0.7, 0.8), (-0.3, -0.6), (0.2, 0.2), (0.7, -0.8), (0.35, 0.6), (-0.15, -0.2)],
        "link": [(-0.8, -0.3), (0.2, -0.3), (0.2, -0.7), (0.85, 0), (0.2, 0.7), (0.2, 0.3),
                 (-0.8, 0.3)],
        "compensate": [(-0.9, 0), (0, -0.6), (0, 0.6), (-0.9, 0), (0, 0), (0.9, -0.6),
                       (0.9, 0.6), (0, 0)],
    }
    if kind in glyphs:
        return _path(_scaled(glyphs[kind], cx, cy, s) + " Z", ink, solid)
    if kind == "terminate":
        return f'<circle cx="{num(cx)}" cy="{num(cy)}" r="{num(r * 0.55)}" fill="{ink}"/>'
    if kind == "cancel":
        return _path(f"{_scaled([(-0.7, -0.7), (0.7, 0.7)], cx, cy, s)} "
                     f"{_scaled([(0.7, -0.7), (-0.7, 0.7)], cx, cy, s)}", ink, width=3)
    if kind == "conditional":
        page = Box(cx - s * 0.65, cy - s * 0.85, s * 1.3, s * 1.7)
        lines = "".join(_path(_scaled([(-0.45, y), (0.45, y)], cx, cy, s), ink, width=1)
                        for y in (-0.5, -0.15, 0.2, 0.55))
        return rect(page, fill="none", stroke=ink, width=1.3) + lines
    return ""


def gateway_marker(s: Shape, ink: str) -> str:
    b = s.box
    cx, cy, h = b.cx, b.cy, min(b.width, b.height) / 2
    if s.kind == "exclusiveGateway" and s.marker_visible:
        k = h * 0.32
        return _path(f"M{num(cx - k)},{num(cy - k)} L{num(cx + k)},{num(cy + k)} "
                     f"M{num(cx + k)},{num(cy - k)} L{num(cx - k)},{num(cy + k)}", ink, width=4)
    if s.kind == "parallelGateway":
        k = h * 0.5
        return _path(f"M{num(cx)},{num(cy - k)} V{num(cy + k)} "
                     f"M{num(cx - k)},{num(cy)} H{num(cx + k)}", ink, width=4)
    if s.kind == "inclusiveGateway":
        return (f'<circle cx="{num(cx)}" cy="{num(cy)}" r="{num(h * 0.45)}" fill="none" '
                f'stroke="{ink}" stroke-width="3"/>')
    if s.kind == "complexGateway":
        k, d = h * 0.5, h * 0.36
        return _path(f"M{num(cx)},{num(cy - k)} V{num(cy + k)} M{num(cx - k)},{num(cy)} "
                     f"H{num(cx + k)} M{num(cx - d)},{num(cy - d)} L{num(cx + d)},{num(cy + d)} "
                     f"M{num(cx + d)},{num(cy - d)} L{num(cx - d)},{num(cy + d)}", ink, width=3)
    if s.kind == "eventBasedGateway":
        pts = [(math.sin(a) * 0.26, -math.cos(a) * 0.26)
               for a in (i * 2 * math.pi / 5 for i in range(5))]
        return (f'<circle cx="{num(cx)}" cy="{num(cy)}" r="{num(h * 0.5)}" fill="none" '
                f'stroke="{ink}" stroke-width="1"/>'
                f'<circle cx="{num(cx)}" cy="{num(cy)}" r="{num(h * 0.42)}" fill="none" '
                f'stroke="{ink}" stroke-width="1"/>'
                + _path(_scaled(pts, cx, cy, h) + " Z", ink, width=1.3))
    return ""


def task_markers(s: Shape, ink: str) -> str:
    """Markers along a task's bottom edge: collapsed subprocess [+], loops, ad hoc ~."""
    b = s.box
    marks: list[Callable[[float, float], str]] = []
    if s.kind in ("subProcess", "transaction", "adHocSubProcess") and not s.expanded:
        marks.append(lambda x, y: rect(Box(x - 6, y - 6, 12, 12), fill="none", stroke=ink,
                                       width=1.2)
                     + _path(f"M{num(x - 3.5)},{num(y)} H{num(x + 3.5)} M{num(x)},{num(y - 3.5)} "
                             f"V{num(y + 3.5)}", ink, width=1.2))
    if s.loop == "standard":
        marks.append(lambda x, y: _path(
            f"M{num(x - 3)},{num(y + 5)} A5.5,5.5 0 1 1 {num(x + 3)},{num(y + 5)} "
            f"M{num(x + 3)},{num(y + 5)} l1,-4 M{num(x + 3)},{num(y + 5)} l4,0", ink, width=1.2))
    elif s.loop == "parallel":
        marks.append(lambda x, y: _path(
            f"M{num(x - 4)},{num(y - 5)} v10 M{num(x)},{num(y - 5)} v10 "
            f"M{num(x + 4)},{num(y - 5)} v10", ink, width=1.6))
    elif s.loop == "sequential":
        marks.append(lambda x, y: _path(
            f"M{num(x - 5)},{num(y - 4)} h10 M{num(x - 5)},{num(y)} h10 "
            f"M{num(x - 5)},{num(y + 4)} h10", ink, width=1.6))
    if s.kind == "adHocSubProcess":
        marks.append(lambda x, y: _path(
            f"M{num(x - 6)},{num(y + 1)} q3,-5 6,-1 q3,4 6,-1", ink, width=1.5))
    if not marks:
        return ""
    step = 16
    start = b.cx - step * (len(marks) - 1) / 2
    return "".join(mark(start + i * step, b.bottom - 10) for i, mark in enumerate(marks))


def _user_icon(x: float, y: float, ink: str) -> str:
    return (f'<circle cx="{num(x + 7)}" cy="{num(y + 4)}" r="3.5" fill="none" stroke="{ink}" '
            f'stroke-width="1.2"/>'
            + _path(f"M{num(x)},{num(y + 15)} C{num(x)},{num(y + 8)} {num(x + 14)},{num(y + 8)} "
                    f"{num(x + 14)},{num(y + 15)} Z", ink, width=1.2))


def _service_icon(x: float, y: float, ink: str) -> str:
    cx, cy = x + 7, y + 7
    teeth = "".join(
        f'<line x1="{num(cx + math.cos(a) * 4)}" y1="{num(cy + math.sin(a) * 4)}" '
        f'x2="{num(cx + math.cos(a) * 7)}" y2="{num(cy + math.sin(a) * 7)}" stroke="{ink}" '
        f'stroke-width="2.2"/>' for a in (i * math.pi / 4 for i in range(8)))
    return (teeth + f'<circle cx="{num(cx)}" cy="{num(cy)}" r="4.5" fill="none" stroke="{ink}" '
            f'stroke-width="1.6"/>')


def _envelope_icon(filled: bool) -> Callable[[float, float, str], str]:
    def draw(x: float, y: float, ink: str) -> str:
        body = rect(Box(x, y + 2, 16, 11), fill=ink if filled else "none", stroke=ink,
                    width=1.2)
        flap = "#ffffff" if filled and ink != "#ffffff" else ink
        return body + _path(f"M{num(x)},{num(y + 2)} L{num(x + 8)},{num(y + 8)} "
                            f"L{num(x + 16)},{num(y + 2)}", flap, width=1.2)
    return draw


def _script_icon(x: float, y: float, ink: str) -> str:
    lines = "".join(_path(f"M{num(x + 4)},{num(y + yy)} h7", ink, width=1)
                    for yy in (4.5, 8, 11.5))
    return _path(f"M{num(x + 2)},{num(y)} h11 c-4,4 4,8 0,16 h-11 c4,-8 -4,-12 0,-16 Z",
                 ink, width=1.2) + lines


def _manual_icon(x: float, y: float, ink: str) -> str:
    return _path(f"M{num(x)},{num(y + 6)} h9 v-3 h5 v10 h-14 Z M{num(x + 4)},{num(y + 6)} v7 "
                 f"M{num(x + 9)},{num(y + 6)} v7", ink, width=1.1)


def _rule_icon(x: float, y: float, ink: str) -> str:
    return (rect(Box(x, y + 1, 16, 12), fill="none", stroke=ink, width=1.2)
            + _path(f"M{num(x)},{num(y + 5)} h16 M{num(x)},{num(y + 9)} h16 "
                    f"M{num(x + 5)},{num(y + 5)} v8", ink, width=1))


TASK_ICONS: dict[str, Callable[[float, float, str], str]] = {
    "userTask": _user_icon,
    "serviceTask": _service_icon,
    "sendTask": _envelope_icon(True),
    "receiveTask": _envelope_icon(False),
    "scriptTask": _script_icon,
    "manualTask": _manual_icon,
    "businessRuleTask": _rule_icon,
}
