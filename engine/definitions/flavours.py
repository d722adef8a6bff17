"""Write a compiled map in the property dialect a team's modeler shows (docs/bpmn.md).

`compile_map` writes step properties as `nextmove:property` elements; Camunda Modeler shows
`camunda:property` (Camunda 7) or `zeebe:property` (Camunda 8) in its properties panel, the
SpiffArena modeler `spiffworkflow:property`. The loader reads all four with the same names
(`engine.definitions.extract`), so a flavour changes only where the properties are written.

For the Camunda flavours the document also says which platform it is for (so Camunda Modeler
opens it with the right properties panel) and links each person's step and each message catch
to the nextmove element templates (modeler/element-templates/), which show the properties as
named fields. Camunda 8 messages get the correlation key its linter asks for.
"""

from __future__ import annotations

from typing import Literal, get_args

from lxml import etree

from engine.definitions._xml import parse_xml
from engine.definitions.extract import ZEEBE_NS
from engine.definitions.model import BPMN_NS, CAMUNDA_NS, NEXTMOVE_NS, SPIFF_NS

Flavour = Literal["nextmove", "camunda7", "camunda8", "spiff"]
FLAVOURS: tuple[str, ...] = get_args(Flavour)
MODELER_NS = "http://camunda.org/schema/modeler/1.0"
# flavour -> (prefix, namespace of its properties elements)
DIALECTS: dict[str, tuple[str, str]] = {
    "nextmove": ("nextmove", NEXTMOVE_NS),
    "camunda7": ("camunda", CAMUNDA_NS),
    "camunda8": ("zeebe", ZEEBE_NS),
    "spiff": ("spiffworkflow", SPIFF_NS),
}
# what Camunda Modeler reads to pick its properties panel
PLATFORMS = {"camunda7": ("Camunda Platform", "7.22.0"), "camunda8": ("Camunda Cloud", "8.6.0")}
STEP_TEMPLATE = "dev.nextmove.step"
EVENT_TEMPLATE = "dev.nextmove.prospect-event"
TEMPLATE_VERSION = "1"
STEP_TAGS = frozenset({"userTask", "manualTask"})  # a person's step; a plain task is automatic
# the elements the prospect-event template applies to, per flavour
EVENT_TAGS = {"camunda7": frozenset({"intermediateCatchEvent", "receiveTask", "boundaryEvent"}),
              "camunda8": frozenset({"intermediateCatchEvent"})}
CORRELATION_KEY = "=prospect_id"
# the properties each template (modeler/element-templates/) writes
TEMPLATE_PROPERTIES = {
    STEP_TEMPLATE: ("hook", "card", "role", "control", "basis", "follow_up", "stuck_after"),
    EVENT_TEMPLATE: ("message_ttl",),
}


def with_flavour(xml: bytes, flavour: str) -> bytes:
    """The BPMN document `xml` with every element's properties (in whichever dialects it has
    them, `nextmove:` attributes included) written in `flavour`'s dialect."""
    if flavour not in DIALECTS:
        raise ValueError(f"unknown flavour {flavour!r}: one of {', '.join(FLAVOURS)}")
    prefix, namespace = DIALECTS[flavour]
    old = parse_xml(xml).getroot()
    _unlink_templates(old, namespace)
    kept = _still_used(old)  # camunda:formData, spiffworkflow:instructionsForEndUser, ...
    nsmap = {k: v for k, v in old.nsmap.items() if v not in _DIALECT_NAMESPACES or v in kept}
    nsmap[prefix] = namespace
    if flavour in PLATFORMS:
        nsmap["modeler"] = MODELER_NS
    root = etree.Element(old.tag, dict(old.attrib), nsmap=nsmap)
    root.text = old.text
    root.extend(list(old))
    for el in list(root.iter(f"{{{BPMN_NS}}}*")):
        _rewrite(el, namespace)
    if flavour in PLATFORMS:
        platform, version = PLATFORMS[flavour]
        root.set(f"{{{MODELER_NS}}}executionPlatform", platform)
        root.set(f"{{{MODELER_NS}}}executionPlatformVersion", version)
        _link_templates(root, flavour, namespace)
    if flavour == "camunda8":
        _correlate(root)
    etree.cleanup_namespaces(root)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                pretty_print=True))


_DIALECT_NAMESPACES = frozenset(ns for _, ns in DIALECTS.values())


def _unlink_templates(root: etree._Element, namespace: str) -> None:
    """Drop links to our templates written for another platform than `namespace`'s."""
    for el in root.iter(f"{{{BPMN_NS}}}*"):
        for ns in (CAMUNDA_NS, ZEEBE_NS):
            key = f"{{{ns}}}modelerTemplate"
            if ns != namespace and el.get(key, "") in (STEP_TEMPLATE, EVENT_TEMPLATE):
                del el.attrib[key]
                el.attrib.pop(f"{{{ns}}}modelerTemplateVersion", None)


def _still_used(root: etree._Element) -> set[str]:
    """Namespaces the document uses for anything but properties (which move)."""
    used: set[str] = set()
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        name = etree.QName(el)
        if name.namespace not in _DIALECT_NAMESPACES or name.localname not in (
                "properties", "property"):
            used.add(name.namespace or "")
        used.update(etree.QName(key).namespace or "" for key in el.attrib
                    if isinstance(key, str) and key.startswith("{")
                    and not key.startswith(f"{{{NEXTMOVE_NS}}}"))
    return used


def _rewrite(el: etree._Element, namespace: str) -> None:
    """One element's properties, from every dialect, into one `namespace` container."""
    found: list[tuple[str, str]] = [
        (etree.QName(key).localname, value) for key, value in el.attrib.items()
        if isinstance(key, str) and key.startswith(f"{{{NEXTMOVE_NS}}}")]
    for key, _ in found:
        del el.attrib[f"{{{NEXTMOVE_NS}}}{key}"]
    ext = el.find(f"{{{BPMN_NS}}}extensionElements")
    containers = [] if ext is None else [
        c for c in ext if isinstance(c.tag, str) and etree.QName(c).localname == "properties"
        and etree.QName(c).namespace in _DIALECT_NAMESPACES]
    if not found and not containers:
        return
    if ext is None:
        ext = etree.Element(f"{{{BPMN_NS}}}extensionElements")
        first = el[0] if len(el) else None
        # extensionElements follow documentation, before every other child
        at = 1 if first is not None and first.tag == f"{{{BPMN_NS}}}documentation" else 0
        el.insert(at, ext)
    target = containers[0] if containers else etree.SubElement(ext, "properties")
    target.tag = f"{{{namespace}}}properties"
    for extra in containers[1:]:
        target.extend(list(extra))
        ext.remove(extra)
    for name, value in found:
        etree.SubElement(target, "property", name=name, value=value)
    for prop in target:
        if isinstance(prop.tag, str) and etree.QName(prop).localname == "property":
            prop.tag = f"{{{namespace}}}property"


def _link_templates(root: etree._Element, flavour: str, namespace: str) -> None:
    for el in root.iter(f"{{{BPMN_NS}}}*"):
        tag = etree.QName(el).localname
        if tag in STEP_TAGS and el.find(f"{{{BPMN_NS}}}extensionElements") is not None:
            template = STEP_TEMPLATE
        elif tag in EVENT_TAGS[flavour] and (
                el.find(f"{{{BPMN_NS}}}messageEventDefinition") is not None
                or (tag == "receiveTask" and el.get("messageRef"))):
            template = EVENT_TEMPLATE
        else:
            continue
        el.set(f"{{{namespace}}}modelerTemplate", template)
        el.set(f"{{{namespace}}}modelerTemplateVersion", TEMPLATE_VERSION)


def _correlate(root: etree._Element) -> None:
    """Camunda 8 matches a message to an instance by a correlation key; nextmove by prospect."""
    for message in root.iter(f"{{{BPMN_NS}}}message"):
        ext = message.find(f"{{{BPMN_NS}}}extensionElements")
        if ext is None:
            ext = etree.Element(f"{{{BPMN_NS}}}extensionElements")
            first = message[0] if len(message) else None
            at = 1 if first is not None and first.tag == f"{{{BPMN_NS}}}documentation" else 0
            message.insert(at, ext)
        etree.SubElement(ext, f"{{{ZEEBE_NS}}}subscription", correlationKey=CORRELATION_KEY)
