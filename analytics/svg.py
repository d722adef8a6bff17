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

import re
from collections.abc import Mapping
from dataclasses import dataclass

from analytics._bpmndi import Box, Diagram, Edge, Shape, read_diagram
from analytics._flows import FlowStats
from analytics._svgflows import (
    flow_label,
    flow_width,
    is_deliberate_wait,
    wait_legend,
    wait_pattern,
)
from analytics._svgshapes import (
    INK,
    TASK_ICONS,
    circle,
    event_glyph,
    gateway_marker,
    is_container,
    midpoint,
    rect,
    task_markers,
)
from analytics._svgtext import FONT, esc, hex_rgb, is_dark, num, rgb_hex, text_block, wrap

__all__ = ["HEAT_SCALE", "Heat", "draw_diagram", "heat_colour", "read_diagram", "render_map"]

# ColorBrewer YlOrRd: sequential, readable by most colour-blind viewers, prints in greyscale.
HEAT_SCALE = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")
NEUTRAL = "#ffffff"
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
               file: str | None = None, id_prefix: str = "map",
               flows: FlowStats | None = None) -> str:
    """The diagram of `process_id` in a BPMN document as an SVG document (a string).

    Raises DefinitionError (code `no-diagram`) when the file has no layout to draw.
    """
    return draw_diagram(read_diagram(xml, process_id, file=file), heat=heat,
                        id_prefix=id_prefix, flows=flows)


def draw_diagram(diagram: Diagram, *, heat: Heat | None = None, id_prefix: str = "map",
                 flows: FlowStats | None = None) -> str:
    """SVG markup for a diagram already read. `id_prefix` keeps the arrowhead ids of two
    drawings in one page apart. With `flows`, sequence flows carry how often they were taken
    (and their share at a decision), drawn wider the more they were."""
    if not _PREFIX.match(id_prefix):
        raise ValueError(f"id_prefix must be a short identifier, not {id_prefix!r}")
    return _Painter(diagram, heat, id_prefix, flows).svg()


class _Painter:
    def __init__(self, diagram: Diagram, heat: Heat | None, prefix: str,
                 flows: FlowStats | None = None) -> None:
        self.diagram = diagram
        self.waits = {s.element_id for s in diagram.shapes if is_deliberate_wait(s)}
        if heat is not None:  # deliberate waits stay off the scale
            heat = Heat({k: v for k, v in heat.values.items() if k not in self.waits},
                        heat.title, heat.unit, heat.decimals)
        self.heat = heat if heat and heat.values else None
        self.prefix = prefix
        self.flows = flows
        self.labels: list[str] = []

    def svg(self) -> str:
        d = self.diagram
        bounds = d.bounds
        x0, y0 = bounds.x - _PAD, bounds.y - _PAD
        width = bounds.width + 2 * _PAD
        height = bounds.height + 2 * _PAD + (_LEGEND_HEIGHT if self.heat else 0)
        width = max(width, 260.0) if self.heat else width
        containers = sorted((s for s in d.shapes if is_container(s)),
                            key=lambda s: (s.kind not in ("participant", "lane"),
                                           -s.box.width * s.box.height))
        nodes = [s for s in d.shapes if not is_container(s) and s.kind != "boundaryEvent"]
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
            f"{wait_pattern(p)}</defs>")

    def fill(self, shape: Shape) -> str:
        colour = self.heat.colour(shape.element_id) if self.heat else None
        return colour or NEUTRAL

    def tooltip(self, shape: Shape) -> str:
        text = shape.name or shape.element_id
        if shape.element_id in self.waits and shape.kind == "boundaryEvent":
            text += "\nA timer on the step (a reminder or a stuck flag): not coloured"
        elif shape.element_id in self.waits:
            text += "\nA deliberate wait (timer): not coloured by the measure"
        elif self.heat and shape.element_id in self.heat.values:
            text += f"\n{self.heat.title}: {self.heat.format(self.heat.values[shape.element_id])}"
        return f"<title>{esc(text)}</title>"

    def group(self, shape: Shape, body: str) -> str:
        heated = self.heat is not None and shape.element_id in self.heat.values
        css = f"node {shape.kind}" + (" heated" if heated else "") + (
            " deliberate-wait" if shape.element_id in self.waits else "")
        return (f'<g class="{esc(css)}" data-element="{esc(shape.element_id)}">'
                f"{self.tooltip(shape)}{body}</g>")

    def container(self, s: Shape) -> str:
        b = s.box
        if s.kind in ("participant", "lane"):
            band = self.band(s)
            fill = "#ffffff" if s.kind == "participant" else "none"
            return (f'<g class="{s.kind}" data-element="{esc(s.element_id)}">'
                    f"{rect(b, fill=fill, stroke=INK, width=1.5)}"
                    f"{band}</g>")
        if s.kind == "group":
            body = rect(b, rx=10, fill="none", stroke="#555555", width=1.5, dash="8,3,2,3")
            if s.name:
                place = s.label or Box(b.x, b.y - 18, b.width, 16)
                body += text_block(wrap(s.name, max(place.width, 80), 11), place.cx,
                                   place.y + 11, 11)
            return f'<g class="group" data-element="{esc(s.element_id)}">{body}</g>'
        # An expanded subprocess: a container whose steps are drawn inside it.
        fill = self.fill(s)
        dash = "2,4" if s.triggered_by_event else None
        body = rect(b, rx=10, fill=fill, stroke=INK,
                    width=4 if s.kind == "callActivity" else 1.5, dash=dash)
        if s.kind == "transaction":
            body += rect(Box(b.x + 3, b.y + 3, b.width - 6, b.height - 6), rx=8, fill="none",
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
        body = rect(b, rx=10, fill=fill, stroke=INK, width=stroke_width, dash=dash)
        if s.kind == "transaction":
            body += rect(Box(b.x + 3, b.y + 3, b.width - 6, b.height - 6), rx=8, fill="none",
                         stroke=INK, width=1)
        icon = TASK_ICONS.get(s.kind)
        if icon is not None:
            body += icon(b.x + 6, b.y + 6, ink)
        markers = task_markers(s, ink)
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
        if s.element_id in self.waits:
            fill = f"url(#{self.prefix}-wait)"
        dash = "" if s.interrupting else ' stroke-dasharray="5,3"'
        if s.kind == "startEvent":
            body = circle(cx, cy, r, fill, 2, dash)
        elif s.kind == "endEvent":
            body = circle(cx, cy, r - 1.5, fill, 4, dash)
        else:
            body = circle(cx, cy, r, fill, 1.5, dash) + circle(cx, cy, r - 3, "none", 1.5, dash)
        body += event_glyph(s.events, cx, cy, r, s.throwing, ink, fill)
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
        body += gateway_marker(s, ink)
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
        if self.flows is not None and e.kind == "sequenceFlow":
            count = self.flows.counts.get(e.element_id, 0)
            style = style.replace('stroke-width="1.5"', 'stroke-width="'
                                  f'{num(flow_width(count, self.flows.highest))}"', 1)
            self.labels.append(flow_label(e, count, self.flows.shares.get(e.element_id)))
        return (f'<polyline class="edge {esc(e.kind)}" data-flow="{esc(e.element_id)}" '
                f'points="{points}" {style}/>')

    def edge_label(self, e: Edge) -> str:
        size = 11.0
        if e.label is not None and e.label.width > 0:
            lines = wrap(e.name, max(e.label.width, 60), size, 3)
            return text_block(lines, e.label.cx, e.label.y + size, size, css_class="label")
        x, y = midpoint(e.points)
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
            + (wait_legend(bar_width + 120, 10, self.prefix) if self.waits else "")
            + ('<text x="0" y="54" font-size="11" fill="#08519c">Edges: times taken'
               " · share at each decision</text>" if self.flows is not None else "")
            + "</g>")
