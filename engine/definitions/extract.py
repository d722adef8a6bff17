"""Read process maps out of a BPMN document into `ProcessMap`s.

Works on what modelers write: properties in the `nextmove:`, `camunda:` (Camunda 7),
`zeebe:` (Camunda 8) or `spiffworkflow:` (SpiffArena) dialect, with the same names in each.
Which properties nextmove reads, on which elements, and what they do: docs/bpmn.md (the table
there and `ACCEPTED_PROPERTIES` below are checked against each other by
tests/engine/test_bpmn_properties.py). Nothing here judges the map; `validate` does that.
"""

from __future__ import annotations

from dataclasses import replace

from lxml import etree

from engine.definitions._bpmn_data import read_declaration
from engine.definitions.model import (
    BPMN_NS,
    CAMUNDA_NS,
    NEXTMOVE_NS,
    SPIFF_NS,
    Flow,
    ProcessMap,
    Step,
)
from engine.definitions.outcomes import measures_from_json

ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"
_PROPERTY_CONTAINERS = (NEXTMOVE_NS, CAMUNDA_NS, SPIFF_NS, ZEEBE_NS)
# On a message catch or a `bpmn:message`: how long its early events are held (P30D default).
TTL_PROPERTY = "message_ttl"
# Every property nextmove reads from a BPMN element, in any dialect, and where: docs/bpmn.md
# says what each does. `NAME` and `RULE` stand for any name (`data.interest`, `compliance.NM003`).
ACCEPTED_PROPERTIES: dict[str, str] = {
    "hook": "step", "card": "step", "control": "step", "basis": "step", "role": "step",
    "data": "step, process", "follow_up": "person's step", "stuck_after": "person's step",
    "outcome": "step", "compliance.RULE": "step, timer event", "yaml_line": "any element",
    "purpose": "boundary timer", "catch_up": "cycle timer", TTL_PROPERTY: "message, catch",
    "data.NAME": "process", "card.LOCALE": "step", "outcomes": "process",
    "indicators": "process",
}
# Written by `nextmove export` as a record of the YAML map; the drawn flow does what they said,
# so nextmove reads none of them back (they are not an error either).
RECORDED_PROPERTIES = ("ack", "when_stuck", "expires_after", "when_expired")

FLOW_NODE_TYPES = frozenset(
    {
        "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent",
        "boundaryEvent", "task", "userTask", "manualTask", "sendTask", "receiveTask",
        "scriptTask", "serviceTask", "businessRuleTask", "callActivity", "subProcess",
        "transaction", "adHocSubProcess", "exclusiveGateway", "inclusiveGateway",
        "parallelGateway", "eventBasedGateway", "complexGateway",
    }
)
CONTAINER_TYPES = frozenset({"subProcess", "transaction", "adHocSubProcess"})


def local(tag: object) -> str:
    """Local name of an lxml tag ('' for comments and processing instructions)."""
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def bpmn(name: str) -> str:
    return f"{{{BPMN_NS}}}{name}"


def read_properties(node: etree._Element, *, card: bool = True) -> dict[str, str]:
    """Step properties from every dialect's extension elements, plus documentation as card.

    An empty value counts as no property: a modeler's template writes its empty fields."""
    props: dict[str, str] = {}
    for key, value in node.attrib.items():
        if isinstance(key, str) and key.startswith(f"{{{NEXTMOVE_NS}}}") and value.strip():
            props[etree.QName(key).localname] = value
    ext = node.find(bpmn("extensionElements"))
    if ext is not None:
        for container in ext:
            if not isinstance(container.tag, str):
                continue  # a comment
            qname = etree.QName(container)
            if qname.namespace not in _PROPERTY_CONTAINERS or qname.localname != "properties":
                continue
            for prop in container:
                value = prop.get("value", prop.text or "")
                if local(prop.tag) == "property" and prop.get("name") and value.strip():
                    props[prop.get("name", "")] = value
    if card and "card" not in props:
        doc = node.find(bpmn("documentation"))
        if doc is not None and doc.text and doc.text.strip():
            props["card"] = doc.text.strip()
    return props


def _event_details(node: etree._Element, messages: dict[str, str]) -> dict[str, object]:
    details: dict[str, object] = {}
    for child in node:
        name = local(child.tag)
        if not name.endswith("EventDefinition"):
            continue
        kind = name[: -len("EventDefinition")]
        details.setdefault("event", kind)
        if kind == "timer":
            for part in child:
                if local(part.tag) in ("timeDuration", "timeDate", "timeCycle") and part.text:
                    details["timer"] = part.text.strip()
                    details["timer_kind"] = local(part.tag)
        elif kind == "message":
            ref = child.get("messageRef")
            details["message"] = messages.get(ref or "", ref)
    if local(node.tag) == "receiveTask":
        ref = node.get("messageRef")
        details["message"] = messages.get(ref or "", ref)
    return details


def _cardinality(node: etree._Element) -> str | None:
    loop = node.find(bpmn("multiInstanceLoopCharacteristics"))
    found = loop.find(bpmn("loopCardinality")) if loop is not None else None
    return found.text.strip() if found is not None and found.text else None


def _node_name(node: etree._Element) -> str:
    name = node.get("name")
    return " ".join(name.split()) if name else node.get("id", "")


def _read_container(
    node: etree._Element, container_id: str, file: str | None, messages: dict[str, str],
    ttls: dict[str, str] | None = None,
) -> tuple[list[Step], list[Flow], list[ProcessMap]]:
    ttls = ttls or {}
    steps: list[Step] = []
    flows: list[Flow] = []
    subs: list[ProcessMap] = []
    for child in node:
        kind = local(child.tag)
        if not isinstance(child.tag, str) or etree.QName(child).namespace != BPMN_NS:
            continue
        if kind == "sequenceFlow":
            cond = child.find(bpmn("conditionExpression"))
            flows.append(
                Flow(
                    id=child.get("id", ""),
                    source=child.get("sourceRef", ""),
                    target=child.get("targetRef", ""),
                    process=container_id,
                    condition=cond.text.strip() if cond is not None and cond.text else None,
                    line=child.sourceline,
                    name=child.get("name"),
                )
            )
            continue
        if kind not in FLOW_NODE_TYPES:
            continue
        details = _event_details(child, messages)
        properties = read_properties(child)
        message = details.get("message")
        step = Step(
            id=child.get("id", ""),
            name=_node_name(child),
            type=kind,
            process=container_id,
            line=child.sourceline,
            properties=properties,
            event=details.get("event"),  # type: ignore[arg-type]
            timer=details.get("timer"),  # type: ignore[arg-type]
            timer_kind=details.get("timer_kind"),  # type: ignore[arg-type]
            message=message,  # type: ignore[arg-type]
            message_ttl=properties.get(TTL_PROPERTY) or ttls.get(str(message))
            if message else None,
            attached_to=child.get("attachedToRef"),
            interrupting=child.get("cancelActivity", "true") != "false",
            called=child.get("calledElement"),
            default_flow=child.get("default"),
            event_subprocess=child.get("triggeredByEvent") == "true",
            cardinality=_cardinality(child),
        )
        steps.append(step)
        if kind in CONTAINER_TYPES:
            sub_steps, sub_flows, sub_subs = _read_container(child, step.id, file, messages,
                                                             ttls)
            subs.append(
                ProcessMap(
                    id=step.id,
                    name=step.name,
                    file=file,
                    line=child.sourceline,
                    executable=True,
                    steps=tuple(sub_steps),
                    flows=tuple(sub_flows),
                    subprocesses=tuple(sub_subs),
                )
            )
    return steps, flows, subs


def message_names(root: etree._Element) -> dict[str, str]:
    """Message id → name (the name is what prospects' events carry)."""
    return {
        m.get("id", ""): m.get("name") or m.get("id", "")
        for m in root.iter(bpmn("message"))
    }


def message_ttls(root: etree._Element) -> dict[str, str]:
    """Message name → the `message_ttl` property its `bpmn:message` element carries."""
    names = message_names(root)
    return {names[m.get("id", "")]: ttl for m in root.iter(bpmn("message"))
            if (ttl := read_properties(m, card=False).get(TTL_PROPERTY))}


def read_maps(tree: etree._ElementTree, file: str | None) -> list[ProcessMap]:
    """Every `bpmn:process` of a BPMN document, as ProcessMaps."""
    root = tree.getroot()
    messages = message_names(root)
    ttls = message_ttls(root)
    maps = []
    for proc in root.iter(bpmn("process")):
        steps, flows, subs = _read_container(proc, proc.get("id", ""), file, messages, ttls)
        pmap = ProcessMap(
            id=proc.get("id", ""),
            name=_node_name(proc),
            file=file,
            line=proc.sourceline,
            executable=proc.get("isExecutable", "true") != "false",
            steps=tuple(steps),
            flows=tuple(flows),
            subprocesses=tuple(subs),
        )
        props = read_properties(proc, card=False)
        data, issues = read_declaration(proc, props,
                                        [dict(s.properties) for s in pmap.all_steps()])
        measures, problems = measures_from_json(props.get("outcomes"), props.get("indicators"))
        issues += [(f"outcomes: {p}", proc.sourceline) for p in problems]
        maps.append(replace(pmap, data=data, data_issues=tuple(issues), measures=measures))
    return maps
