"""Data declarations read from a BPMN process, in every form docs/data.md lists.

1. a `data` property on the process (nextmove:, camunda:, spiffworkflow: or zeebe: properties,
   or a `nextmove:data` attribute): JSON of the YAML `data:` mapping; `data.NAME` properties
   declare one field each (JSON, a type name or a description);
2. Camunda 7 form fields (`camunda:formData/camunda:formField`) on the process's tasks and start
   events, with their types, `camunda:value` enumerations and `required` constraints;
3. Camunda 8 embedded forms (`zeebe:userTaskForm`, form-js JSON) with their components' keys;
4. a step's own `data` property (what completing it records; YAML steps compile to it);
5. `bpmn:dataObject` elements: SpiffWorkflow gives a data object's value to expressions under
   its id, so the id is declared (any type).
"""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from engine.definitions.data import DataDeclaration, DataField, field_from, fields_from, merge
from engine.definitions.model import BPMN_NS, CAMUNDA_NS

ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"
_CAMUNDA_TYPES = {"string": "string", "long": "integer", "boolean": "boolean", "date": "date",
                  "enum": "string"}
_FORM_JS_TYPES = {"textfield": "string", "textarea": "string", "number": "number",
                  "checkbox": "boolean", "select": "string", "radio": "string",
                  "datetime": "date", "checklist": "any", "taglist": "any"}

Issues = list[tuple[str, int | None]]


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _from_properties(props: dict[str, str], line: int | None, issues: Issues
                     ) -> dict[str, DataField] | None:
    found: dict[str, DataField] | None = None
    if "data" in props:
        parsed = _json(props["data"])
        if parsed is None:
            issues.append(("the `data` property must be JSON like "
                           '{"interest": ["customer", "not_now"]}', line))
        fields, problems = fields_from(parsed if parsed is not None else {})
        issues.extend((p, line) for p in problems)
        found = dict(fields)
    for key, value in props.items():
        if key.startswith("data.") and len(key) > 5:
            text = value.strip()
            spec = _json(text) if text[:1] in "[{" else text
            one, why = field_from(key[5:], spec)
            found = found if found is not None else {}
            if one is not None:
                issues.extend((p, line) for p in merge(found, {one.name: one}))
            elif why:
                issues.append((why, line))
    return found


def _camunda_fields(proc: etree._Element) -> dict[str, DataField]:
    out: dict[str, DataField] = {}
    for form_field in proc.iter(f"{{{CAMUNDA_NS}}}formField"):
        name = form_field.get("id")
        if not name:
            continue
        values = tuple(v.get("id", "") for v in form_field.iter(f"{{{CAMUNDA_NS}}}value")
                       if v.get("id"))
        required = any(c.get("name") == "required"
                       for c in form_field.iter(f"{{{CAMUNDA_NS}}}constraint"))
        kind = _CAMUNDA_TYPES.get(form_field.get("type", ""), "any")
        merge(out, {name: DataField(name, kind, values, required, form_field.get("label"))})
    return out


def _zeebe_fields(root: etree._Element) -> dict[str, DataField]:
    out: dict[str, DataField] = {}
    for form in root.iter(f"{{{ZEEBE_NS}}}userTaskForm"):
        parsed = _json(form.text or "")
        todo = list(parsed.get("components", [])) if isinstance(parsed, dict) else []
        while todo:
            comp = todo.pop()
            if not isinstance(comp, dict):
                continue
            todo.extend(comp.get("components", []) or [])
            key = comp.get("key")
            if not isinstance(key, str) or not key.isidentifier():
                continue
            values = tuple(str(v["value"]) for v in comp.get("values", []) or []
                           if isinstance(v, dict) and isinstance(v.get("value"), str))
            required = bool((comp.get("validate") or {}).get("required"))
            kind = _FORM_JS_TYPES.get(str(comp.get("type")), "any")
            merge(out, {key: DataField(key, kind, values, required, comp.get("label"))})
    return out


def read_declaration(
    proc: etree._Element, props: dict[str, str], step_props: list[dict[str, str]]
) -> tuple[DataDeclaration | None, Issues]:
    """The declaration of `proc` (None: the file declares nothing) and what is wrong with it."""
    issues: Issues = []
    fields = _from_properties(props, proc.sourceline, issues)
    declared = fields is not None
    fields = fields or {}
    sources = [_camunda_fields(proc), _zeebe_fields(proc.getroottree().getroot())]
    for each in step_props:
        if "data" in each:
            parsed = _json(each["data"])
            if isinstance(parsed, dict):
                sources.append(fields_from(parsed)[0])
    sources.append({obj.get("id", ""): DataField(obj.get("id", ""), description=obj.get("name"))
                    for obj in proc.iter(f"{{{BPMN_NS}}}dataObject")
                    if obj.get("id", "").isidentifier()})
    for more in sources:
        declared = declared or bool(more)
        issues.extend((p, proc.sourceline) for p in merge(fields, more))
    return (DataDeclaration(fields) if declared else None), issues
