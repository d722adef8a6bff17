"""Draw a process map from its BPMNDI layout as SVG, optionally coloured by a heat overlay.

    from analytics.svg import Heat, render_map
    svg = render_map(xml, process_id="prospect_journey",
                     heat=Heat({"share_intro": 12, "conversation": 3}, "Waiting now"))

Shapes follow the BPMN notation as modelers draw it: tasks as rounded rectangles with their
type's icon, events as circles (start thin, end thick, intermediate double, dashed when
non-interrupting) with their trigger's glyph, gateways as diamonds with their marker, pools,
lanes, expanded subprocesses, data, annotations and groups; flows as polylines along their
waypoints. The output is plain markup built here, every value escaped: no script, no link,
nothing fetched, so it can be inlined in a self-contained page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from analytics._bpmndi import Box, Diagram, Edge, Shape, read_diagram
from analytics._svgtext import FONT, esc, hex_rgb, is_dark, num, rgb_hex, text_block, wrap

__all__ = ["HEAT_SCALE", "Heat", "draw_diagram", "heat_colour", "read_diagram", "render_map"]

# ColorBrewer YlOrRd: sequential, readable by most colour-blind viewers, prints in greyscale.
HEAT_SCALE = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")
NEUTRAL = "#ffffff"
INK = "#222222"
_PAD = 24
_LEGEND_HEIGHT = 64
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,40}$")

_TASKS = {"task", "userTask", "serviceTask", "scriptTask", "sendTask", "receiveTask",
          "manualTask", "businessRuleTask", "callActivity", "subProcess", "transaction",
          "adHocSubProcess", "unknown"}
_EVENTS = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent",
           "boundaryEvent", "implicitThrowEvent"}
_GATEWAYS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "complexGateway",
             "eventBasedGateway", "gateway"}


def heat_colour(value: float, low: float, high: float) -> str:
    """The colour of `value` on the sequential scale running from `low` to `high`."""
    t = 0.0 if high <= low else min(1.0, max(0.0, (value - low) / (high - low)))
    position = t * (len(HEAT_SCALE) - 1)
    i = min(int(position), len(HEAT_SCALE) - 2)
    frac = position - i
    a, b = hex_rgb(HEAT_SCALE[i]), hex_rgb(HEAT_SCALE[i + 1])
    return rgb_hex([x + (y - x) * frac for x, y in zip(a, b, strict=True)])


@dataclass(frozen=True)
class Heat:
    """A value per step id (e.g. instances waiting there, or median hours spent there).

    The scale runs from 0 (or the lowest value, if negative) to the highest value, so the same
    colour means the same amount on every step; steps without a value stay neutral.
    """

    values: Mapping[str, float]
    title: str
    unit: str = ""
    decimals: int = 0

    @property
    def low(self) -> float:
        return min(0.0, *self.values.values()) if self.values else 0.0

    @property
    def high(self) -> float:
        return max(self.values.values()) if self.values else 0.0

    def colour(self, step_id: str) -> str | None:
        if step_id not in self.values:
            return None
        return heat_colour(self.values[step_id], self.low, self.high)

    def format(self, value: float) -> str:
        text = f"{value:,.{self.decimals}f}"
        return f"{text} {self.unit}".strip()


def render_map(xml: bytes, *, process_id: str | None = None, heat: Heat | None = None,
               file: str | None = None, id_prefix: str = "map") -> str:
    """The diagram of `process_id` in a BPMN document as an SVG document (a string).

    Raises DefinitionError (code `no-diagram`) when the file has no layout to draw.
    """
    return draw_diagram(read_diagram(xml, process_id, file=file), heat=heat,
                        id_prefix=id_prefix)


def draw_diagram(diagram: Diagram, *, heat: Heat | None = None, id_prefix: str = "map") -> str:
    """SVG markup for a diagram already read. `id_prefix` keeps the arrowhead ids of two
    drawings in one page apart."""
    if not _PREFIX.match(id_prefix):
        raise ValueError(f"id_prefix must be a short identifier, not {id_prefix!r}")
    return _Painter(diagram, heat, id_prefix).svg()


class _Painter:
    def __init__(self, diagram: Diagram, heat: Heat | None, prefix: str) -> None:
        self.diagram = diagram
        self.heat = heat if heat and heat.values else None
        self.prefix = prefix
        self.labels: list[str] = []

    def svg(self) -> str:
        d = self.diagram
        bounds = d.bounds
        x0, y0 = bounds.x - _PAD, bounds.y - _PAD
        width = bounds.width + 2 * _PAD
        height = bounds.height + 2 * _PAD + (_LEGEND_HEIGHT if self.heat else 0)
        width = max(width, 260.0) if self.heat else width
        containers = sorted((s for s in d.shapes if _is_container(s)),
                            key=lambda s: (s.kind not in ("participant", "lane"),
                                           -s.box.width * s.box.height))
        nodes = [s for s in d.shapes if not _is_container(s) and s.kind != "boundaryEvent"]
        boundaries = [s for s in d.shapes if s.kind == "boundaryEvent"]
        parts = [self.defs()]
        parts += [self.container(s) for s in containers]
        parts += [self.edge(e) for e in d.edges]
        parts += [self.node(s) for s in nodes + boundaries]
        parts += self.labels
        if self.heat:
            parts.append(self.legend(x0 + _PAD, bounds.bottom + _PAD + 8))
        title = d.name or d.element_id or "process map"
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="bpmn-map" role="img" '
            f'viewBox="{num(x0)} {num(y0)} {num(width)} {num(height)}" '
            f'width="{num(width)}" height="{num(height)}" font-family="{FONT}">'
            f"<title>{esc(title)}</title>"
            f'<rect x="{num(x0)}" y="{num(y0)}" width="{num(width)}" height="{num(height)}" '
            f'fill="#ffffff"/>'
            + "".join(parts) + "</svg>")

    def defs(self) -> str:
        p = self.prefix
        stops = "".join(f'<stop offset="{num(i / (len(HEAT_SCALE) - 1))}" stop-color="{c}"/>'
                        for i, c in enumerate(HEAT_SCALE))
        return (
            "<defs>"
            f'<marker id="{p}-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="11" '
            f'markerHeight="11" markerUnits="userSpaceOnUse" orient="auto">'
            f'<path d="M0,0 L10,5 L0,10 Z" fill="{INK}"/></marker>'
            f'<marker id="{p}-open-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
            f'markerWidth="11" markerHeight="11" markerUnits="userSpaceOnUse" orient="auto">'
            f'<path d="M0,0 L10,5 L0,10" fill="none" stroke="{INK}" stroke-width="1.2"/>'
            "</marker>"
            f'<marker id="{p}-message-end" viewBox="0 0 10 10" refX="10" refY="5" '
            f'markerWidth="11" markerHeight="11" markerUnits="userSpaceOnUse" orient="auto">'
            f'<path d="M1,1 L10,5 L1,9 Z" fill="#ffffff" stroke="{INK}" stroke-width="1"/>'
            "</marker>"
            f'<marker id="{p}-message-start" viewBox="0 0 10 10" refX="5" refY="5" '
            f'markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
            f'<circle cx="5" cy="5" r="4" fill="#ffffff" stroke="{INK}" stroke-width="1"/>'
            "</marker>"
            f'<marker id="{p}-default" viewBox="0 0 20 20" refX="-4" refY="10" '
            f'markerWidth="20" markerHeight="20" markerUnits="userSpaceOnUse" orient="auto">'
            f'<path d="M2,5 L8,15" stroke="{INK}" stroke-width="1.5"/></marker>'
            f'<marker id="{p}-conditional" viewBox="0 0 20 10" refX="0" refY="5" '
            f'markerWidth="20" markerHeight="10" markerUnits="userSpaceOnUse" orient="auto">'
            f'<path d="M0,5 L9,0 L18,5 L9,10 Z" fill="#ffffff" stroke="{INK}" '
            f'stroke-width="1"/></marker>'
            f'<linearGradient id="{p}-heat" x1="0" y1="0" x2="1" y2="0">{stops}</linearGradient>'
            "</defs>")

    def fill(self, shape: Shape) -> str:
        colour = self.heat.colour(shape.element_id) if self.heat else None
        return colour or NEUTRAL

    def tooltip(self, shape: Shape) -> str:
        text = shape.name or shape.element_id
        if self.heat and shape.element_id in self.heat.values:
            text += f"\n{self.heat.title}: {self.heat.format(self.heat.values[shape.element_id])}"
        return f"<title>{esc(text)}</title>"

    def group(self, shape: Shape, body: str) -> str:
        heated = self.heat is not None and shape.element_id in self.heat.values
        css = f"node {shape.kind}" + (" heated" if heated else "")
        return (f'<g class="{esc(css)}" data-element="{esc(shape.element_id)}">'
                f"{self.tooltip(shape)}{body}</g>")

    def container(self, s: Shape) -> str:
        b = s.box
        if s.kind in ("participant", "lane"):
            band = self.band(s)
            fill = "#ffffff" if s.kind == "participant" else "none"
            return (f'<g class="{s.kind}" data-element="{esc(s.element_id)}">'
                    f"{_rect(b, fill=fill, stroke=INK, width=1.5)}"
                    f"{band}</g>")
        if s.kind == "group":
            body = _rect(b, rx=10, fill="none", stroke="#555555", width=1.5, dash="8,3,2,3")
            if s.name:
                place = s.label or Box(b.x, b.y - 18, b.width, 16)
                body += text_block(wrap(s.name, max(place.width, 80), 11), place.cx,
                                   place.y + 11, 11)
            return f'<g class="group" data-element="{esc(s.element_id)}">{body}</g>'
        # An expanded subprocess: a container whose steps are drawn inside it.
        fill = self.fill(s)
        dash = "2,4" if s.triggered_by_event else None
        body = _rect(b, rx=10, fill=fill, stroke=INK,
                     width=4 if s.kind == "callActivity" else 1.5, dash=dash)
        if s.kind == "transaction":
            body += _rect(Box(b.x + 3, b.y + 3, b.width - 6, b.height - 6), rx=8, fill="none",
                          stroke=INK, width=1)
        ink = "#ffffff" if is_dark(fill) else INK
        body += text_block(wrap(s.name, b.width - 16, 12, 2), b.x + 8, b.y + 16, 12,
                           anchor="start", fill=ink)
        return self.group(s, body)

    def band(self, s: Shape) -> str:
        """A pool's or lane's name in a strip along its leading edge."""
        if not s.name:
            return ""
        b = s.box
        if s.horizontal:
            lines = wrap(s.name, max(b.height - 10, 20), 12, 2)
            cx, cy = b.x + 15, b.cy
            strip = (f'<line x1="{num(b.x + 30)}" y1="{num(b.y)}" x2="{num(b.x + 30)}" '
                     f'y2="{num(b.bottom)}" stroke="{INK}" stroke-width="1"/>'
                     if s.kind == "participant" else "")
            text = text_block(lines, cx, cy + 4 - 7 * (len(lines) - 1), 12)
            return f'{strip}<g transform="rotate(-90 {num(cx)} {num(cy)})">{text}</g>'
        lines = wrap(s.name, max(b.width - 10, 20), 12, 2)
        strip = (f'<line x1="{num(b.x)}" y1="{num(b.y + 30)}" x2="{num(b.right)}" '
                 f'y2="{num(b.y + 30)}" stroke="{INK}" stroke-width="1"/>'
                 if s.kind == "participant" else "")
        return strip + text_block(lines, b.cx, b.y + 19 - 7 * (len(lines) - 1), 12)

    def node(self, s: Shape) -> str:
        if s.kind in _EVENTS:
            return self.event(s)
        if s.kind in _GATEWAYS:
            return self.gateway(s)
        if s.kind == "dataObjectReference" or s.kind == "dataObject" or s.kind in (
                "dataInput", "dataOutput"):
            return self.data_object(s)
        if s.kind == "dataStoreReference":
            return self.data_store(s)
        if s.kind == "textAnnotation":
            return self.annotation(s)
        return self.task(s)

    def task(self, s: Shape) -> str:
        b = s.box
        fill = self.fill(s)
        ink = "#ffffff" if is_dark(fill) else INK
        dash = "4,3" if s.kind == "unknown" else None
        stroke_width = 4 if s.kind == "callActivity" else 2
        body = _rect(b, rx=10, fill=fill, stroke=INK, width=stroke_width, dash=dash)
        if s.kind == "transaction":
            body += _rect(Box(b.x + 3, b.y + 3, b.width - 6, b.height - 6), rx=8, fill="none",
                          stroke=INK, width=1)
        icon = _TASK_ICONS.get(s.kind)
        if icon is not None:
            body += icon(b.x + 6, b.y + 6, ink)
        markers = _task_markers(s, ink)
        # The name is centred in what the type icon (top) and markers (bottom) leave free.
        top_edge = b.y + (22 if icon is not None else 4)
        bottom_edge = b.bottom - (18 if markers else 4)
        size = 12.0
        lines = wrap(s.name, b.width - 12, size,
                     max_lines=max(1, int((bottom_edge - top_edge) / (size * 1.2))))
        middle = max(top_edge + len(lines) * size * 0.6, b.cy)
        middle = min(middle, (top_edge + bottom_edge) / 2 + (bottom_edge - top_edge) / 2
                     - len(lines) * size * 0.6)
        baseline = middle - (len(lines) - 1) * size * 0.6 + size * 0.35
        body += text_block(lines, b.cx, baseline, size, fill=ink) + markers
        return self.group(s, body)

    def event(self, s: Shape) -> str:
        b = s.box
        r = min(b.width, b.height) / 2
        cx, cy = b.cx, b.cy
        fill = self.fill(s)
        ink = "#ffffff" if is_dark(fill) else INK
        dash = "" if s.interrupting else ' stroke-dasharray="5,3"'
        if s.kind == "startEvent":
            body = _circle(cx, cy, r, fill, 2, dash)
        elif s.kind == "endEvent":
            body = _circle(cx, cy, r - 1.5, fill, 4, dash)
        else:
            body = _circle(cx, cy, r, fill, 1.5, dash) + _circle(cx, cy, r - 3, "none", 1.5, dash)
        body += _event_glyph(s.events, cx, cy, r, s.throwing, ink, fill)
        self.outside_label(s)
        return self.group(s, body)

    def gateway(self, s: Shape) -> str:
        b = s.box
        fill = self.fill(s)
        ink = "#ffffff" if is_dark(fill) else INK
        points = f"{num(b.cx)},{num(b.y)} {num(b.right)},{num(b.cy)} {num(b.cx)},{num(b.bottom)} " \
                 f"{num(b.x)},{num(b.cy)}"
        body = (f'<polygon points="{points}" fill="{fill}" stroke="{INK}" stroke-width="2" '
                f'stroke-linejoin="round"/>')
        body += _gateway_marker(s, ink)
        self.outside_label(s)
        return self.group(s, body)

    def data_object(self, s: Shape) -> str:
        b = s.box
        fold = min(10.0, b.width / 3)
        d = (f"M{num(b.x)},{num(b.y)} H{num(b.right - fold)} L{num(b.right)},{num(b.y + fold)} "
             f"V{num(b.bottom)} H{num(b.x)} Z M{num(b.right - fold)},{num(b.y)} "
             f"V{num(b.y + fold)} H{num(b.right)}")
        self.outside_label(s)
        return self.group(s, f'<path d="{d}" fill="{self.fill(s)}" stroke="{INK}" '
                              f'stroke-width="1.5" stroke-linejoin="round"/>')

    def data_store(self, s: Shape) -> str:
        b = s.box
        ry = min(8.0, b.height / 6)
        d = (f"M{num(b.x)},{num(b.y + ry)} V{num(b.bottom - ry)} "
             f"A{num(b.width / 2)},{num(ry)} 0 0 0 {num(b.right)},{num(b.bottom - ry)} "
             f"V{num(b.y + ry)}")
        body = (f'<path d="{d}" fill="{self.fill(s)}" stroke="{INK}" stroke-width="1.5"/>'
                f'<ellipse cx="{num(b.cx)}" cy="{num(b.y + ry)}" rx="{num(b.width / 2)}" '
                f'ry="{num(ry)}" fill="{self.fill(s)}" stroke="{INK}" stroke-width="1.5"/>')
        self.outside_label(s)
        return self.group(s, body)

    def annotation(self, s: Shape) -> str:
        b = s.box
        bracket = (f'<path d="M{num(b.x + 10)},{num(b.y)} H{num(b.x)} V{num(b.bottom)} '
                   f'H{num(b.x + 10)}" fill="none" stroke="{INK}" stroke-width="1.5"/>')
        lines = wrap(s.name, b.width - 10, 11, max(1, int((b.height - 4) / 13.2)))
        return (f'<g class="annotation" data-element="{esc(s.element_id)}">{bracket}'
                f"{text_block(lines, b.x + 5, b.y + 14, 11, anchor='start')}</g>")

    def outside_label(self, s: Shape) -> None:
        """Events, gateways and data carry their name beside the shape, as modelers do."""
        if not s.name:
            return
        size = 11.0
        if s.label is not None and s.label.width > 0:
            place = s.label
            # Modelers size label bounds to their own font: leave some slack before wrapping.
            lines = wrap(s.name, max(place.width * 1.15 + 4, 40), size, 4)
            self.labels.append(text_block(lines, place.cx, place.y + size, size,
                                          css_class="label"))
            return
        lines = wrap(s.name, 100, size, 4)
        self.labels.append(text_block(lines, s.box.cx, s.box.bottom + 6 + size, size,
                                      css_class="label"))

    def edge(self, e: Edge) -> str:
        p = self.prefix
        points = " ".join(f"{num(x)},{num(y)}" for x, y in e.points)
        style = f'fill="none" stroke="{INK}" stroke-width="1.5" stroke-linejoin="round"'
        if e.kind == "sequenceFlow":
            style += f' marker-end="url(#{p}-arrow)"'
            if e.is_default:
                style += f' marker-start="url(#{p}-default)"'
            elif e.conditional:
                style += f' marker-start="url(#{p}-conditional)"'
        elif e.kind == "messageFlow":
            style += (f' stroke-dasharray="6,4" marker-start="url(#{p}-message-start)" '
                      f'marker-end="url(#{p}-message-end)"')
        elif e.kind in ("association", "dataInputAssociation", "dataOutputAssociation"):
            style = 'fill="none" stroke="#555555" stroke-width="1.5" stroke-dasharray="2,4"'
            if e.directed:
                style += f' marker-end="url(#{p}-open-arrow)"'
        else:
            style += ' stroke-dasharray="3,3" stroke-opacity="0.6"'
        if e.name:
            self.labels.append(self.edge_label(e))
        return (f'<polyline class="edge {esc(e.kind)}" data-flow="{esc(e.element_id)}" '
                f'points="{points}" {style}/>')

    def edge_label(self, e: Edge) -> str:
        size = 11.0
        if e.label is not None and e.label.width > 0:
            lines = wrap(e.name, max(e.label.width, 60), size, 3)
            return text_block(lines, e.label.cx, e.label.y + size, size, css_class="label")
        x, y = _midpoint(e.points)
        lines = wrap(e.name, 120, size, 3)
        return text_block(lines, x + 4, y - 6 - (len(lines) - 1) * size * 1.2, size,
                          anchor="start", css_class="label")

    def legend(self, x: float, y: float) -> str:
        heat = self.heat
        assert heat is not None
        bar_width = 180
        return (
            f'<g class="legend" transform="translate({num(x)} {num(y)})">'
            f'<text x="0" y="0" font-size="12" font-weight="bold">{esc(heat.title)}</text>'
            f'<rect x="0" y="10" width="{bar_width}" height="14" fill="url(#{self.prefix}-heat)" '
            f'stroke="{INK}" stroke-width="0.5"/>'
            f'<text x="0" y="38" font-size="11">{esc(heat.format(heat.low))}</text>'
            f'<text x="{bar_width}" y="38" font-size="11" text-anchor="end">'
            f"{esc(heat.format(heat.high))}</text>"
            f'<rect x="{bar_width + 24}" y="10" width="22" height="14" fill="{NEUTRAL}" '
            f'stroke="{INK}" stroke-width="0.5"/>'
            f'<text x="{bar_width + 52}" y="21" font-size="11">no data</text>'
            "</g>")


def _is_container(s: Shape) -> bool:
    return s.kind in ("participant", "lane", "group") or s.expanded


def _rect(b: Box, *, rx: float = 0, fill: str, stroke: str, width: float,
          dash: str | None = None) -> str:
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    corner = f' rx="{num(rx)}"' if rx else ""
    return (f'<rect x="{num(b.x)}" y="{num(b.y)}" width="{num(b.width)}" '
            f'height="{num(b.height)}"{corner} fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{num(width)}"{extra}/>')


def _circle(cx: float, cy: float, r: float, fill: str, width: float, extra: str = "") -> str:
    return (f'<circle cx="{num(cx)}" cy="{num(cy)}" r="{num(max(r, 1))}" fill="{fill}" '
            f'stroke="{INK}" stroke-width="{num(width)}"{extra}/>')


def _midpoint(points: tuple[tuple[float, float], ...]) -> tuple[float, float]:
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


def _event_glyph(events: tuple[str, ...], cx: float, cy: float, r: float, throwing: bool,
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
        return (_rect(env, fill=solid if throwing else "none", stroke=ink, width=1.3)
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
        return _rect(page, fill="none", stroke=ink, width=1.3) + lines
    return ""


def _gateway_marker(s: Shape, ink: str) -> str:
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


def _task_markers(s: Shape, ink: str) -> str:
    """Markers along a task's bottom edge: collapsed subprocess [+], loops, ad hoc ~."""
    b = s.box
    marks: list[Callable[[float, float], str]] = []
    if s.kind in ("subProcess", "transaction", "adHocSubProcess") and not s.expanded:
        marks.append(lambda x, y: _rect(Box(x - 6, y - 6, 12, 12), fill="none", stroke=ink,
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
        body = _rect(Box(x, y + 2, 16, 11), fill=ink if filled else "none", stroke=ink,
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
    return (_rect(Box(x, y + 1, 16, 12), fill="none", stroke=ink, width=1.2)
            + _path(f"M{num(x)},{num(y + 5)} h16 M{num(x)},{num(y + 9)} h16 "
                    f"M{num(x + 5)},{num(y + 5)} v8", ink, width=1))


_TASK_ICONS: dict[str, Callable[[float, float, str], str]] = {
    "userTask": _user_icon,
    "serviceTask": _service_icon,
    "sendTask": _envelope_icon(True),
    "receiveTask": _envelope_icon(False),
    "scriptTask": _script_icon,
    "manualTask": _manual_icon,
    "businessRuleTask": _rule_icon,
}
