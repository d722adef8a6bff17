"""`follow_up` and `stuck_after` properties drawn in a modeler become boundary timers.

A YAML map's `follow_up: P2D` compiles to a non-interrupting boundary timer on the step
(purpose `follow_up`) leading to an end event; `stuck_after` to the same kind of timer with
purpose `stuck` (engine.definitions.compile). A designer in Camunda Modeler sets the same
property with the nextmove step template instead of drawing the timer; this adds the timer the
YAML compiler would have drawn, to a person's step (user or manual task) that has the property
but no boundary timer with that purpose yet. Maps compiled from YAML already have theirs, so
they are left byte for byte as they are.
"""

from __future__ import annotations

from lxml import etree

from engine.definitions.extract import read_properties
from engine.definitions.model import BPMN_NS, NEXTMOVE_NS

# property -> (purpose of the timer it stands for, id suffix, event name)
REMINDERS = {"follow_up": ("follow_up", "follow_up", "Follow up"),
             "stuck_after": ("stuck", "stuck", "Stuck")}
PERSON_STEPS = ("userTask", "manualTask")


def _q(name: str) -> str:
    return f"{{{BPMN_NS}}}{name}"


def add_reminder_timers(root: etree._Element) -> bool:
    """Add the missing timers in place; True when the document changed."""
    ids = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
    purposes: dict[str, set[str]] = {}
    for event in root.iter(_q("boundaryEvent")):
        host = event.get("attachedToRef", "")
        purpose = read_properties(event, card=False).get("purpose")
        if purpose and event.find(_q("timerEventDefinition")) is not None:
            purposes.setdefault(host, set()).add(purpose)
    changed = False
    for tag in PERSON_STEPS:
        for step in list(root.iter(_q(tag))):
            props = read_properties(step, card=False)
            for key, (purpose, suffix, word) in REMINDERS.items():
                after = props.get(key, "").strip()
                step_id = step.get("id", "")
                if not after or not step_id or purpose in purposes.get(step_id, set()):
                    continue
                _add_timer(step, step_id, after, purpose, f"{word} after {after}",
                           _fresh(f"Event_{step_id}_{suffix}", ids), ids)
                changed = True
    return changed


def _fresh(wanted: str, ids: set[str | None]) -> str:
    found, n = wanted, 1
    while found in ids:
        n += 1
        found = f"{wanted}_{n}"
    ids.add(found)
    return found


def _add_timer(step: etree._Element, step_id: str, after: str, purpose: str, name: str,
               event_id: str, ids: set[str | None]) -> None:
    scope = step.getparent()
    assert scope is not None  # a task always sits in a process or subprocess
    end_id = _fresh(f"{event_id}_end", ids)
    flow_id = _fresh(f"Flow_{event_id}_to_{end_id}", ids)
    at = scope.index(step) + 1
    event = etree.Element(_q("boundaryEvent"), id=event_id, name=name, attachedToRef=step_id,
                          cancelActivity="false")
    box = etree.SubElement(etree.SubElement(event, _q("extensionElements")),
                           f"{{{NEXTMOVE_NS}}}properties")
    etree.SubElement(box, f"{{{NEXTMOVE_NS}}}property", name="purpose", value=purpose)
    etree.SubElement(event, _q("outgoing")).text = flow_id
    timer = etree.SubElement(event, _q("timerEventDefinition"), id=_fresh(f"Timer_{event_id}",
                                                                           ids))
    etree.SubElement(timer, _q("timeDuration")).text = after
    end = etree.Element(_q("endEvent"), id=end_id,
                        name="Flagged as stuck" if purpose == "stuck" else "Follow-up reminder")
    etree.SubElement(end, _q("incoming")).text = flow_id
    flow = etree.Element(_q("sequenceFlow"), id=flow_id, sourceRef=event_id, targetRef=end_id)
    for offset, el in enumerate((event, end, flow)):
        scope.insert(at + offset, el)
        for part in el.iter():
            part.sourceline = step.sourceline  # problems point at the step's line
