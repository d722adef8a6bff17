"""Read a BPMN file's diagram (BPMNDI) into plain shapes and edges for drawing.

The file is untrusted, so it goes through the project's hardened parser, and every number is
checked: a diagram with a NaN width or a waypoint without coordinates is a DefinitionError
naming the element, not a broken picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.definitions import parse_xml
from engine.errors import DefinitionError

MODEL = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def cy(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True)
class Shape:
    """One BPMNShape with what its model element says about how to draw it."""

    element_id: str
    kind: str  # the model element's local name: userTask, startEvent, participant, ...
    name: str
    box: Box
    label: Box | None = None
    expanded: bool = False  # an expanded subprocess (drawn as a container)
    marker_visible: bool = False  # exclusive gateway "X"
    horizontal: bool = True  # pools and lanes
    events: tuple[str, ...] = ()  # event definitions: timer, message, ...
    interrupting: bool = True
    throwing: bool = False
    loop: str | None = None  # standard, parallel, sequential
    triggered_by_event: bool = False  # an event subprocess


@dataclass(frozen=True)
class Edge:
    element_id: str
    kind: str  # sequenceFlow, messageFlow, association, dataInputAssociation, ...
    name: str
    points: tuple[tuple[float, float], ...]
    label: Box | None = None
    is_default: bool = False
    conditional: bool = False  # a condition on a flow leaving an activity (diamond marker)
    directed: bool = True
    source: str = ""  # the flow's sourceRef / targetRef element ids
    target: str = ""


@dataclass(frozen=True)
class Diagram:
    element_id: str  # what the plane shows: a process or a collaboration
    name: str
    shapes: tuple[Shape, ...]
    edges: tuple[Edge, ...]

    @property
    def bounds(self) -> Box:
        xs: list[float] = []
        ys: list[float] = []
        for shape in self.shapes:
            for box in (shape.box, shape.label):
                if box is not None:
                    xs += (box.x, box.right)
                    ys += (box.y, box.bottom)
        for edge in self.edges:
            xs += [p[0] for p in edge.points]
            ys += [p[1] for p in edge.points]
            if edge.label is not None:
                xs += (edge.label.x, edge.label.right)
                ys += (edge.label.y, edge.label.bottom)
        return Box(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


_ACTIVITIES = {"task", "userTask", "serviceTask", "scriptTask", "sendTask", "receiveTask",
               "manualTask", "businessRuleTask", "callActivity", "subProcess", "transaction",
               "adHocSubProcess"}
_EVENT_DEFINITIONS = {"timer", "message", "signal", "error", "escalation", "conditional", "link",
                      "terminate", "compensate", "cancel"}


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _ns(tag: Any) -> str:
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def read_diagram(xml: bytes, process_id: str | None = None, *,
                 file: str | None = None) -> Diagram:
    """The diagram that shows `process_id` (its own plane, or the collaboration it takes part
    in); without a process id, the first diagram with shapes.

    Raises DefinitionError with code `no-diagram` when the file has no layout to draw.
    """
    root = parse_xml(xml, file).getroot()
    model = {el.get("id"): el for el in root.iter() if _ns(el.tag) == MODEL and el.get("id")}
    planes = [p for p in root.iter(f"{{{BPMNDI}}}BPMNPlane")
              if p.find(f"{{{BPMNDI}}}BPMNShape") is not None]
    if not planes:
        raise DefinitionError(
            "the file has no diagram layout (BPMNDI) to draw; open it in a modeler such as "
            "Camunda Modeler or bpmn.io and save it, or for a YAML map use `nextmove export`",
            file=file, code="no-diagram")
    plane = _choose_plane(planes, model, process_id, file)
    defaults = {el.get("default") for el in model.values() if el.get("default")}
    shapes = tuple(_shape(el, model, file) for el in plane.iter(f"{{{BPMNDI}}}BPMNShape"))
    edges = tuple(_edge(el, model, defaults, file) for el in plane.iter(f"{{{BPMNDI}}}BPMNEdge"))
    shown = str(plane.get("bpmnElement") or "")
    target = model.get(shown)
    name = str(target.get("name") or "") if target is not None else ""
    return Diagram(shown, name, shapes, tuple(e for e in edges if len(e.points) >= 2))


def _choose_plane(planes: list[Any], model: dict[Any, Any], process_id: str | None,
                  file: str | None) -> Any:
    if process_id is None:
        return planes[0]
    for plane in planes:
        shown = plane.get("bpmnElement")
        if shown == process_id:
            return plane
        element = model.get(shown)
        if element is not None and _local(element.tag) == "collaboration" and any(
                p.get("processRef") == process_id
                for p in element.iter(f"{{{MODEL}}}participant")):
            return plane
    raise DefinitionError(
        f"no diagram in this file shows process {process_id!r}", file=file,
        element=process_id, code="no-diagram")


def _number(el: Any, attr: str, file: str | None, *, default: float | None = None) -> float:
    raw = el.get(attr)
    if raw is None and default is not None:
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        owner = el.getparent()
        raise DefinitionError(
            f"diagram element has {attr}={raw!r}, not a number",
            file=file, line=el.sourceline,
            element=owner.get("bpmnElement") if owner is not None else None, code="diagram")
    return value


def _bounds(el: Any, file: str | None) -> Box | None:
    if el is None:
        return None
    box = Box(*(_number(el, a, file) for a in ("x", "y", "width", "height")))
    if box.width < 0 or box.height < 0:
        raise DefinitionError("diagram bounds have a negative size", file=file,
                              line=el.sourceline, code="diagram")
    return box


def _label(di: Any, file: str | None) -> Box | None:
    label = di.find(f"{{{BPMNDI}}}BPMNLabel")
    return _bounds(label.find(f"{{{DC}}}Bounds"), file) if label is not None else None


def _flag(value: str | None, default: bool) -> bool:
    return default if value is None else value.strip().lower() == "true"


def _shape(di: Any, model: dict[Any, Any], file: str | None) -> Shape:
    element_id = str(di.get("bpmnElement") or "")
    box = _bounds(di.find(f"{{{DC}}}Bounds"), file)
    if box is None:
        raise DefinitionError("diagram shape has no bounds", file=file, line=di.sourceline,
                              element=element_id or None, code="diagram")
    el = model.get(element_id)
    if el is None:
        return Shape(element_id, "unknown", "", box, _label(di, file))
    kind = _local(el.tag)
    name = str(el.get("name") or "")
    if kind == "textAnnotation":
        text = el.find(f"{{{MODEL}}}text")
        name = (text.text or "") if text is not None else ""
    events = tuple(sorted(
        d for d in (_local(c.tag).removesuffix("EventDefinition") for c in el)
        if d in _EVENT_DEFINITIONS))
    loop = None
    if el.find(f"{{{MODEL}}}standardLoopCharacteristics") is not None:
        loop = "standard"
    multi = el.find(f"{{{MODEL}}}multiInstanceLoopCharacteristics")
    if multi is not None:
        loop = "sequential" if _flag(multi.get("isSequential"), False) else "parallel"
    return Shape(
        element_id=element_id, kind=kind, name=name, box=box, label=_label(di, file),
        expanded=kind in ("subProcess", "transaction", "adHocSubProcess", "callActivity")
        and _flag(di.get("isExpanded"), False),
        marker_visible=_flag(di.get("isMarkerVisible"), False),
        horizontal=_flag(di.get("isHorizontal"), True),
        events=events,
        interrupting=_flag(el.get("cancelActivity") or el.get("isInterrupting"), True),
        throwing=kind in ("endEvent", "intermediateThrowEvent"),
        loop=loop,
        triggered_by_event=_flag(el.get("triggeredByEvent"), False),
    )


def _edge(di: Any, model: dict[Any, Any], defaults: set[Any], file: str | None) -> Edge:
    element_id = str(di.get("bpmnElement") or "")
    points = tuple((_number(p, "x", file), _number(p, "y", file))
                   for p in di.iter(f"{{{DI}}}waypoint"))
    el = model.get(element_id)
    if el is None:
        return Edge(element_id, "unknown", "", points, _label(di, file))
    kind = _local(el.tag)
    source = model.get(el.get("sourceRef"))
    conditional = (kind == "sequenceFlow"
                   and el.find(f"{{{MODEL}}}conditionExpression") is not None
                   and source is not None and _local(source.tag) in _ACTIVITIES)
    return Edge(
        element_id=element_id, kind=kind, name=str(el.get("name") or ""), points=points,
        label=_label(di, file), is_default=element_id in defaults, conditional=conditional,
        directed=kind != "association" or el.get("associationDirection") in ("One", "Both"),
        source=str(el.get("sourceRef") or ""), target=str(el.get("targetRef") or ""),
    )
