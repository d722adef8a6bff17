"""The Camunda Modeler element templates (modeler/element-templates/) are valid templates.

Each file validates against the element-template JSON schema Camunda publishes for its platform
(vendored in tests/fixtures/modeler/, see SOURCE.md there), and every property a template writes
is one nextmove reads (`engine.definitions.extract.ACCEPTED_PROPERTIES`). Camunda's own
validator (`@bpmn-io/element-templates-validator`, what Camunda Modeler runs on templates)
accepts them too, when node is there (tests/engine/_node.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engine.definitions.extract import ACCEPTED_PROPERTIES
from engine.definitions.flavours import TEMPLATE_PROPERTIES
from tests.engine._node import node_with_packages, run_script

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "modeler" / "element-templates"
SCHEMAS = ROOT / "tests" / "fixtures" / "modeler"
PLATFORMS = {
    "camunda7": ("camunda7-element-templates-0.22.1.schema.json", "camunda:property"),
    "camunda8": ("camunda8-element-templates-0.46.0.schema.json", "zeebe:property"),
}


def _templates(flavour: str) -> list[dict[str, Any]]:
    found = json.loads((TEMPLATES / f"nextmove-{flavour}.json").read_text(encoding="utf-8"))
    assert isinstance(found, list)
    return found


def _validator(flavour: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / PLATFORMS[flavour][0]).read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("flavour", PLATFORMS)
def test_templates_are_valid_against_the_published_schema(flavour: str) -> None:
    validator = _validator(flavour)
    templates = _templates(flavour)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(templates)]
    assert errors == []
    assert {t["id"] for t in templates} == {"dev.nextmove.step", "dev.nextmove.prospect-event"}


@pytest.mark.parametrize("flavour", PLATFORMS)
def test_the_schema_does_refuse_a_broken_template(flavour: str) -> None:
    """The check has teeth: a binding the platform does not know is an error."""
    broken = _templates(flavour)
    broken[0]["properties"][0]["binding"]["type"] = "nextmove:property"
    assert list(_validator(flavour).iter_errors(broken))
    missing = _templates(flavour)
    del missing[1]["appliesTo"]
    assert list(_validator(flavour).iter_errors(missing))


@pytest.mark.parametrize("flavour", PLATFORMS)
def test_templates_write_the_properties_nextmove_reads(flavour: str) -> None:
    binding = PLATFORMS[flavour][1]
    by_template = {
        t["id"]: {p["binding"]["name"] for p in t["properties"]
                  if p["binding"]["type"] == binding}
        for t in _templates(flavour)
    }
    assert by_template == {key: set(names) for key, names in TEMPLATE_PROPERTIES.items()}
    for names in by_template.values():
        assert names <= set(ACCEPTED_PROPERTIES)


def test_both_platforms_offer_the_same_step_fields() -> None:
    labels = {f: [p.get("label") for p in _templates(f)[0]["properties"]] for f in PLATFORMS}
    assert labels["camunda7"] == labels["camunda8"]
    assert labels["camunda7"] == ["Hook", "Card text", "Whose card", "Control", "Basis",
                                  "Follow up after", "Stuck after"]


@pytest.mark.parametrize("flavour", PLATFORMS)
def test_camundas_own_validator_accepts_the_templates(flavour: str) -> None:
    node = node_with_packages()
    path = TEMPLATES / f"nextmove-{flavour}.json"
    assert run_script(node, "validate_templates.mjs", flavour, str(path)) == {
        "valid": True, "errors": [[], []]}
    other = "camunda8" if flavour == "camunda7" else "camunda7"
    assert run_script(node, "validate_templates.mjs", other, str(path))["valid"] is False
