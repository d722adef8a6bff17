"""Compile a YAML map to a BPMN 2.0 document with diagram layout (BPMNDI).

Each YAML step becomes one BPMN element with the step id as its id:

    task (no kind key)   bpmn:userTask             auto: true     bpmn:task
    wait, one trigger    intermediateCatchEvent    wait, several  eventBasedGateway + catch events
    decide               bpmn:exclusiveGateway (the `otherwise` flow is its default)
    parallel             bpmn:parallelGateway split + `Gateway_<id>_join`
    call                 bpmn:callActivity         steps (group)  bpmn:subProcess
    end: true            bpmn:endEvent

`follow_up` on a person's step adds a non-interrupting boundary timer (`Event_<id>_follow_up`,
purpose `follow_up`) leading to an end event: the card shows when to follow up, and once the
timer fires the step stays waiting, flagged as due. `stuck_after` adds the same kind of timer
(`Event_<id>_stuck`) leading to `when_stuck` or to an end event that just records it;
`expires_after` an interrupting one. Step attributes
travel as `nextmove:property` extension elements; `origins` maps every element id back to the
YAML path and line it came from, so problems found in the BPMN can be reported on the YAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from lxml import etree

from engine.definitions._layout import Layout, LayoutEdge, LayoutNode, layout
from engine.definitions._yaml_model import declaration
from engine.definitions.flavours import with_flavour
from engine.definitions.yaml_maps import (
    END,
    HOSTS,
    Step,
    Trigger,
    YamlMap,
    data_json,
    humanize,
)
from engine.definitions.yaml_maps import load_yaml_map as _load
from engine.durations import DurationError, parse_iso_duration

__all__ = ["NSMAP", "CompiledMap", "compile_map", "export_bpmn"]

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NSMAP = {
    "bpmn": BPMN,
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "nextmove": "http://nextmove.dev/schema/bpmn/1.0",
}
SIZES = {"event": (36, 36), "gateway": (50, 50), "task": (100, 80)}
_TAGS = {"task": "userTask", "auto": "task", "call": "callActivity", "group": "subProcess",
         "end": "endEvent", "decide": "exclusiveGateway", "parallel": "parallelGateway"}


@dataclass(frozen=True)
class CompiledMap:
    """A compiled YAML map: the BPMN document and where each of its elements came from."""

    process_id: str
    xml: bytes
    origins: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    file: str | None = None


@dataclass
class _Node:
    id: str
    tag: str
    scope: str
    name: str | None = None
    props: list[tuple[str, str]] = field(default_factory=list)
    timer: str | None = None
    message: str | None = None  # message id
    attached_to: str | None = None
    interrupting: bool = True
    called: str | None = None
    default: str | None = None
    incoming: list[str] = field(default_factory=list)
    outgoing: list[str] = field(default_factory=list)

    @property
    def shape(self) -> str:
        if self.tag.endswith("Event"):
            return "event"
        return "gateway" if self.tag.endswith("Gateway") else "task"


@dataclass
class _Flow:
    id: str
    source: str
    target: str
    scope: str
    condition: str | None = None
    name: str | None = None


# (source element, YAML target or None for the end of the list, condition, is default, label,
#  origin) for flows whose target is only known once the whole list is compiled
_Pending = tuple[str, str | None, str | None, bool, str | None, tuple[str, int | None]]


def human_duration(iso: str) -> str:
    """P2D -> '2 days', PT1H30M -> '1 hour 30 minutes'."""
    try:
        found = parse_iso_duration(iso)
    except DurationError:
        return iso
    words = ("year", "month", "week", "day", "hour", "minute", "second")
    parts = [f"{n:g} {w}{'' if n == 1 else 's'}"
             for w in words if (n := found.get(f"{w}s")) is not None]
    return " ".join(parts) or iso


def _line(line: int | None) -> list[tuple[str, str]]:
    return [("yaml_line", str(line))] if line else []


def _ttl(t: Trigger) -> list[tuple[str, str]]:
    return [("message_ttl", t.ttl)] if t.ttl and t.message else []


def step_properties(s: Step) -> list[tuple[str, str]]:
    """The extension properties of a step's element, in a stable order."""
    human = s.kind == "task"
    values: list[tuple[str, str | None]] = [
        ("hook", s.hook), ("card", s.card),
        ("control", s.control if human or s.control != "guidance" else None),
        ("basis", s.basis), ("role", s.role if human or s.role != "distributor" else None),
        ("ack", s.ack), ("follow_up", s.follow_up), ("stuck_after", s.stuck_after),
        ("when_stuck", s.when_stuck), ("expires_after", s.expires_after),
        ("when_expired", s.when_expired), ("outcome", s.outcome),
        ("data", data_json(s.data) if s.data else None), *s.extra,
    ]
    return [(k, v) for k, v in values if v is not None] + _line(s.line)


def compile_map(m: YamlMap) -> CompiledMap:
    """Compile a loaded YAML map into a BPMN 2.0 document (UTF-8 bytes) with BPMNDI."""
    return _Compiler(m).run()


def export_bpmn(yaml_path: str | Path, out_path: str | Path,
                flavour: str = "nextmove") -> CompiledMap:
    """Load the YAML map at `yaml_path`, compile it and write the BPMN file to `out_path`, its
    properties in `flavour`'s dialect (`engine.definitions.flavours`)."""
    compiled = compile_map(_load(yaml_path))
    if flavour != "nextmove":
        compiled = replace(compiled, xml=with_flavour(compiled.xml, flavour))
    Path(out_path).write_bytes(compiled.xml)
    return compiled


class _Compiler:
    def __init__(self, m: YamlMap) -> None:
        self.m = m
        self.nodes: dict[str, _Node] = {}
        self.flows: list[_Flow] = []
        self.origins: dict[str, tuple[str, int | None]] = {}
        self.messages: dict[str, str] = {}  # name -> id
        self.taken = {m.process, *(s.id for s in m.all_steps())}

    def run(self) -> CompiledMap:
        origin = ("steps", self.m.line)
        self.scope(self.m.steps, self.m.process, origin)
        return CompiledMap(self.m.process, self.xml(), self.origins, self.m.file)

    def new_id(self, base: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", base)
        found, n = base, 1
        while found in self.taken:
            n += 1
            found = f"{base}_{n}"
        self.taken.add(found)
        return found

    def node(self, id: str, tag: str, scope: str, origin: tuple[str, int | None],
             **kw: object) -> _Node:
        n = _Node(id, tag, scope, **kw)  # type: ignore[arg-type]
        self.nodes[id] = n
        self.origins[id] = origin
        return n

    def flow(self, source: str, target: str, scope: str, origin: tuple[str, int | None],
             condition: str | None = None, default: bool = False, name: str | None = None) -> None:
        f = _Flow(self.new_id(f"Flow_{source}_to_{target}"), source, target, scope, condition, name)
        self.flows.append(f)
        self.origins[f.id] = origin
        self.nodes[source].outgoing.append(f.id)
        self.nodes[target].incoming.append(f.id)
        if default:
            self.nodes[source].default = f.id

    def scope(self, steps: tuple[Step, ...], scope: str, origin: tuple[str, int | None]) -> None:
        """A process or group: start event, the steps, and one end event for falling off."""
        prefix = "" if scope == self.m.process else f"{scope}_"
        start = self.node(self.new_id(f"Event_{prefix}start"), "startEvent", scope, origin)
        entry, exits = self.steps(steps, scope)
        self.flow(start.id, entry, scope, origin)
        if exits:
            end = self.node(self.new_id(f"Event_{prefix}end"), "endEvent", scope, origin,
                            name="End")
            self.connect(exits, end.id, scope)

    def connect(self, pending: list[_Pending], target: str, scope: str) -> None:
        for source, _, condition, default, name, origin in pending:
            self.flow(source, target, scope, origin, condition, default, name)

    def steps(self, steps: tuple[Step, ...], scope: str) -> tuple[str, list[_Pending]]:
        """Compile a list of steps; return its entry element and the flows leaving the list."""
        pending: list[_Pending] = []
        for s in steps:
            pending += self.step(s, scope)
        exits = []
        for p in pending:
            if p[1] is None or p[1] == END:
                exits.append(p)
            else:
                self.connect([p], p[1], scope)
        return steps[0].id, exits

    def step(self, s: Step, scope: str) -> list[_Pending]:
        origin = (s.path, s.line)
        then_origin = (f"{s.path}.next", s.key_line("next")) if s.next else origin
        then: list[_Pending] = [(s.id, s.then, None, False, None, then_origin)]
        if s.kind == "wait" and len(s.wait) == 1:
            t = s.wait[0]
            self.node(s.id, "intermediateCatchEvent", scope, origin, name=s.name,
                      props=step_properties(s) + _ttl(t), timer=t.after,
                      message=self.message(t.message) if t.message else None)
            return [(s.id, t.next or s.then, None, False, None, (t.path, t.line))]
        tag = "eventBasedGateway" if s.kind == "wait" else _TAGS[s.kind]
        node = self.node(s.id, tag, scope, origin, name=s.name, props=step_properties(s),
                         called=s.call)
        if s.kind == "wait":
            return [self.trigger(s, t, scope) for t in s.wait]
        if s.kind == "decide":
            return [(s.id, c.next, c.when, c.when is None, c.when or "otherwise",
                     (f"{c.path}.when" if c.when else c.path, c.line)) for c in s.decide]
        if s.kind == "end":
            return []
        if s.kind == "parallel":
            then = [(self.parallel(s, scope), s.then, None, False, None, then_origin)]
        if s.kind == "group":
            self.scope(s.steps, s.id, origin)
        if s.kind in HOSTS:
            then += self.boundaries(s, node, scope)
        return then

    def message(self, name: str) -> str:
        if name not in self.messages:
            self.messages[name] = self.new_id(f"Message_{name}")
        return self.messages[name]

    def trigger(self, s: Step, t: Trigger, scope: str) -> _Pending:
        suffix = t.message or "timer"
        event = self.node(
            self.new_id(f"Event_{s.id}_{suffix}"), "intermediateCatchEvent", scope,
            (t.path, t.line), timer=t.after, message=self.message(t.message) if t.message else None,
            name=humanize(t.message) if t.message else f"After {human_duration(t.after or '')}",
            props=_line(t.line) + _ttl(t),
        )
        self.flow(s.id, event.id, scope, (t.path, t.line))
        return (event.id, t.next or s.then, None, False, None, (t.path, t.line))

    def parallel(self, s: Step, scope: str) -> str:
        """Branches between the split (the step itself) and a join; returns the join's id."""
        exits: list[list[_Pending]] = []
        for branch in s.branches:
            entry, out = self.steps(branch, scope)
            self.flow(s.id, entry, scope, (branch[0].path, branch[0].line))
            exits.append(out)
        join = self.node(self.new_id(f"Gateway_{s.id}_join"), "parallelGateway", scope,
                         (s.path, s.line))
        for k, out in enumerate(exits, start=1):
            if len(out) > 1:  # a parallel join needs exactly one token per branch
                merge = self.node(self.new_id(f"Gateway_{s.id}_merge_{k}"), "exclusiveGateway",
                                  scope, (s.path, s.line))
                self.connect(out, merge.id, scope)
                self.flow(merge.id, join.id, scope, (s.path, s.line), default=True)
            else:
                self.connect(out, join.id, scope)
        return join.id

    def boundaries(self, s: Step, host: _Node, scope: str) -> list[_Pending]:
        out: list[_Pending] = []
        for timer, target, kind, cancel in (
            (s.follow_up if s.kind == "task" else None, None, "follow_up", False),
            (s.stuck_after, s.when_stuck, "stuck", False),
            (s.expires_after, s.when_expired or s.then, "expired", True),
        ):
            if not timer:
                continue
            key = {"stuck": "stuck_after", "expired": "expires_after"}.get(kind, kind)
            origin = (f"{s.path}.{key}", s.key_line(key))
            word = {"stuck": "Stuck", "expired": "Expired"}.get(kind, "Follow up")
            event = self.node(self.new_id(f"Event_{s.id}_{kind}"), "boundaryEvent", scope, origin,
                              name=f"{word} after {human_duration(timer)}", timer=timer,
                              attached_to=host.id, interrupting=cancel,
                              props=[("purpose", kind), *_line(origin[1])])
            if kind == "stuck" and s.stuck_step:
                self.inline(event.id, s.stuck_step, scope, origin)
            elif kind != "expired" and target is None:
                # a reminder: the step stays waiting, flagged on its card once the timer fires
                label = "Flagged as stuck" if kind == "stuck" else "Follow-up reminder"
                end = self.node(self.new_id(f"Event_{s.id}_{kind}_end"), "endEvent", scope,
                                origin, name=label)
                self.flow(event.id, end.id, scope, origin)
            else:
                out.append((event.id, target, None, False, None, origin))
        return out

    def inline(self, source: str, step: Step, scope: str, origin: tuple[str, int | None]) -> None:
        """A step written under `when_stuck:` runs once on its own path, then that path ends."""
        entry, exits = self.steps((step,), scope)
        self.flow(source, entry, scope, origin)
        if exits:
            end = self.node(self.new_id(f"Event_{step.id}_end"), "endEvent", scope, origin,
                            name="End")
            self.connect(exits, end.id, scope)

    def xml(self) -> bytes:
        root = etree.Element(_q("definitions"), nsmap=NSMAP)
        for key, value in (("id", f"Definitions_{self.m.process}"), ("exporter", "nextmove"),
                           ("targetNamespace", "http://nextmove.dev/processes"),
                           ("exporterVersion", "1.0")):
            root.set(key, value)
        proc = _sub(root, "process", id=self.m.process, name=self.m.name, isExecutable="true")
        if self.m.description:
            _sub(proc, "documentation").text = self.m.description.strip()
        declared = declaration(self.m)[0]
        props: list[tuple[str, str]] = []
        if declared is not None:  # the declared data travels with the BPMN (docs/data.md)
            props.append(("data", declared.to_json()))
        if self.m.measures is not None:  # so do the outcomes and indicators
            props += [("outcomes", self.m.measures.outcomes_json()),
                      ("indicators", self.m.measures.indicators_json())]
        if props:
            box = etree.SubElement(_sub(proc, "extensionElements"), _q("properties", "nextmove"))
            for name, value in props:
                etree.SubElement(box, _q("property", "nextmove"), name=name, value=value)
        self.write_scope(proc, self.m.process)
        ttls = dict(self.m.message_ttls)
        for name, mid in self.messages.items():
            message = _sub(root, "message", id=mid, name=name)
            if name in ttls:  # the `messages:` section travels on the message element
                box = etree.SubElement(_sub(message, "extensionElements"),
                                       _q("properties", "nextmove"))
                etree.SubElement(box, _q("property", "nextmove"), name="message_ttl",
                                 value=ttls[name])
        self.write_diagram(root, self.layout())
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                    pretty_print=True))

    def write_scope(self, parent: etree._Element, scope: str) -> None:
        for n in (n for n in self.nodes.values() if n.scope == scope):
            el = _sub(parent, n.tag, id=n.id, name=n.name, attachedToRef=n.attached_to,
                      cancelActivity=None if n.interrupting else "false",
                      calledElement=n.called, default=n.default)
            if n.props:
                box = etree.SubElement(_sub(el, "extensionElements"), _q("properties", "nextmove"))
                for key, value in n.props:
                    etree.SubElement(box, _q("property", "nextmove"), name=key, value=value)
            for kind in ("incoming", "outgoing"):
                for fid in getattr(n, kind):
                    _sub(el, kind).text = fid
            if n.tag == "subProcess":
                self.write_scope(el, n.id)
            if n.timer:
                timer = _sub(el, "timerEventDefinition",
                             id=self.new_id(f"TimerEventDefinition_{n.id}"))
                _formal(_sub(timer, "timeDuration"), n.timer)
            if n.message:
                _sub(el, "messageEventDefinition", messageRef=n.message,
                     id=self.new_id(f"MessageEventDefinition_{n.id}"))
        for f in (f for f in self.flows if f.scope == scope):
            el = _sub(parent, "sequenceFlow", id=f.id, name=f.name, sourceRef=f.source,
                      targetRef=f.target)
            if f.condition:
                _formal(_sub(el, "conditionExpression"), f.condition)

    def write_diagram(self, root: etree._Element, lay: Layout) -> None:
        diagram = etree.SubElement(root, _q("BPMNDiagram", "bpmndi"),
                                   id=f"BPMNDiagram_{self.m.process}")
        plane = etree.SubElement(diagram, _q("BPMNPlane", "bpmndi"),
                                 id=f"BPMNPlane_{self.m.process}", bpmnElement=self.m.process)
        # containers before their content, boundary events after their hosts
        order = sorted(self.nodes.values(), key=lambda n: (n.attached_to is not None,
                                                           self.depth(n.scope)))
        for n in order:
            shape = etree.SubElement(plane, _q("BPMNShape", "bpmndi"), id=f"{n.id}_di",
                                     bpmnElement=n.id)
            if n.tag == "subProcess":
                shape.set("isExpanded", "true")
            if n.tag == "exclusiveGateway":
                shape.set("isMarkerVisible", "true")
            b = lay.boxes[n.id]
            etree.SubElement(shape, _q("Bounds", "dc"), x=str(b.x), y=str(b.y), width=str(b.w),
                             height=str(b.h))
        for f in self.flows:
            edge = etree.SubElement(plane, _q("BPMNEdge", "bpmndi"), id=f"{f.id}_di",
                                    bpmnElement=f.id)
            for x, y in lay.waypoints[f.id]:
                etree.SubElement(edge, _q("waypoint", "di"), x=str(x), y=str(y))

    def depth(self, scope: str) -> int:
        return 0 if scope == self.m.process else 1 + self.depth(self.nodes[scope].scope)

    def layout(self) -> Layout:
        containers = {n.id for n in self.nodes.values() if n.tag == "subProcess"}
        nodes = [LayoutNode(n.id, n.scope, SIZES[n.shape], n.attached_to, n.id in containers,
                            n.shape == "gateway") for n in self.nodes.values()]
        edges = [LayoutEdge(f.id, f.source, f.target, f.scope) for f in self.flows]
        return layout(nodes, edges, self.m.process)


def _q(name: str, prefix: str = "bpmn") -> str:
    return f"{{{NSMAP[prefix]}}}{name}"


def _sub(parent: etree._Element, tag: str, **attrs: str | None) -> etree._Element:
    return etree.SubElement(parent, _q(tag), {k: v for k, v in attrs.items() if v is not None})


def _formal(el: etree._Element, text: str) -> None:
    el.set(_q("type", "xsi"), "bpmn:tFormalExpression")
    el.text = text
