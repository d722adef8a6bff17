"""`nextmove export --flavour`: a map written in each modeler's dialect loads the same.

The LifeVantage maps (a YAML map compiled to BPMN, and a BPMN map) are written in every
flavour; each loads, builds in SpiffWorkflow and has the same steps with the same hooks, cards,
controls and every other property, the same messages and the same declared data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from engine.definitions import load
from engine.definitions.compile import compile_map, export_bpmn
from engine.definitions.flavours import DIALECTS, FLAVOURS, MODELER_NS, with_flavour
from engine.definitions.model import NEXTMOVE_NS
from engine.definitions.yaml_maps import load_yaml_map

ROOT = Path(__file__).resolve().parents[2]
MAPS = ROOT / "processes" / "lifevantage"
YAML_MAP = MAPS / "prospect_journey.yaml"
BPMN_MAP = MAPS / "distributor_onboarding.bpmn"


Seen = dict[str, tuple[str | None, list[tuple[Any, ...]]]]


def _seen(paths: list[Path]) -> Seen:
    report = load(paths)
    assert report.ok, [p.to_dict() for p in report.problems]
    out: Seen = {}
    for d in report.definitions:
        out[d.process_id] = (
            d.map.data.to_json() if d.map.data is not None else None,
            sorted((s.id, s.type, s.event, s.timer, s.message, s.message_ttl, s.attached_to,
                    sorted(s.properties.items())) for s in d.map.all_steps()),
        )
    return out


def _hooks(seen: Seen) -> set[tuple[str, str]]:
    return {(step[0], dict(step[7])["hook"]) for _, steps in seen.values()
            for step in steps if "hook" in dict(step[7])}


@pytest.fixture(scope="module")
def originals() -> Seen:
    return _seen([YAML_MAP, BPMN_MAP])


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_each_flavour_loads_the_same_maps(flavour: str, tmp_path: Path,
                                           originals: Seen) -> None:
    journey = tmp_path / "prospect_journey.bpmn"
    export_bpmn(YAML_MAP, journey, flavour)
    onboarding = tmp_path / "distributor_onboarding.bpmn"
    onboarding.write_bytes(with_flavour(BPMN_MAP.read_bytes(), flavour))
    written = _seen([journey, onboarding])
    assert written == originals
    assert len(_hooks(written)) >= 8  # the maps do carry hooks: the comparison is not empty
    # ... and they are written in that flavour's dialect only
    prefix, namespace = DIALECTS[flavour]
    for path in (journey, onboarding):
        root = etree.parse(str(path)).getroot()
        used = {etree.QName(el).namespace for el in root.iter() if isinstance(el.tag, str)}
        others = {ns for _, ns in DIALECTS.values()} - {namespace}
        assert not used & others, path
        assert root.nsmap.get(prefix) == namespace
        attrs = {k for el in root.iter() for k in el.attrib if k.startswith(f"{{{NEXTMOVE_NS}}}")}
        assert flavour == "nextmove" or not attrs


def test_the_camunda_flavours_name_their_platform_and_templates(tmp_path: Path) -> None:
    for flavour, platform in (("camunda7", "Camunda Platform"), ("camunda8", "Camunda Cloud")):
        root = etree.fromstring(compile_map(load_yaml_map(YAML_MAP)).xml)
        root = etree.fromstring(with_flavour(etree.tostring(root), flavour))
        assert root.get(f"{{{MODELER_NS}}}executionPlatform") == platform
        namespace = DIALECTS[flavour][1]
        linked = {el.get("id"): el.get(f"{{{namespace}}}modelerTemplate")
                  for el in root.iter() if el.get(f"{{{namespace}}}modelerTemplate")}
        assert linked["share_intro"] == "dev.nextmove.step"
        assert linked["Event_wait_for_video_video_played"] == "dev.nextmove.prospect-event"


def test_camunda8_messages_carry_a_correlation_key() -> None:
    xml = with_flavour(compile_map(load_yaml_map(YAML_MAP)).xml, "camunda8")
    root = etree.fromstring(xml)
    zeebe = DIALECTS["camunda8"][1]
    messages = root.findall("{http://www.omg.org/spec/BPMN/20100524/MODEL}message")
    assert messages
    for message in messages:
        assert message.find(f".//{{{zeebe}}}subscription").get("correlationKey") == "=prospect_id"


def test_properties_from_several_dialects_merge_into_one_container() -> None:
    xml = b"""<?xml version="1.0"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
  xmlns:nextmove="http://nextmove.dev/schema/bpmn/1.0" id="d" targetNamespace="t">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:userTask id="t" name="Call them" nextmove:role="sponsor">
      <bpmn:documentation>Say hello.</bpmn:documentation>
      <bpmn:extensionElements>
        <camunda:properties><camunda:property name="hook" value="call"/></camunda:properties>
        <nextmove:properties><nextmove:property name="control" value="required"/>
        </nextmove:properties>
      </bpmn:extensionElements>
    </bpmn:userTask>
  </bpmn:process>
</bpmn:definitions>"""
    root = etree.fromstring(with_flavour(xml, "spiff"))
    task = root.find(".//{http://www.omg.org/spec/BPMN/20100524/MODEL}userTask")
    containers = task.findall(".//{http://spiffworkflow.org/bpmn/schema/1.0/core}properties")
    assert len(containers) == 1
    assert {p.get("name"): p.get("value") for p in containers[0]} == {
        "hook": "call", "control": "required", "role": "sponsor"}


def test_an_unknown_flavour_is_refused() -> None:
    with pytest.raises(ValueError, match="camunda7"):
        with_flavour(b"<x/>", "camunda9")


DIALECTS_DIR = ROOT / "tests" / "fixtures" / "bpmn" / "dialects"


@pytest.mark.parametrize("source", sorted(p.name for p in DIALECTS_DIR.glob("*.bpmn")))
def test_maps_drawn_in_each_modeler_convert_to_every_flavour(source: str, tmp_path: Path) -> None:
    original = _seen([DIALECTS_DIR / source])
    for flavour in FLAVOURS:
        path = tmp_path / f"{flavour}.bpmn"
        path.write_bytes(with_flavour((DIALECTS_DIR / source).read_bytes(), flavour))
        assert _seen([path]) == original, flavour
        # whatever else of a dialect the file uses stays, declared once on the root
        assert b"xmlns:ns0" not in path.read_bytes()
        root = etree.parse(str(path)).getroot()
        declared_below = [el for el in root.iter() if isinstance(el.tag, str) and el is not root
                          and set(el.nsmap.items()) - set(root.nsmap.items())]
        assert declared_below == []


def test_converting_between_camunda_platforms_moves_the_template_links() -> None:
    camunda7 = with_flavour(BPMN_MAP.read_bytes(), "camunda7")
    assert b'camunda:modelerTemplate="dev.nextmove.step"' in camunda7
    camunda8 = with_flavour(camunda7, "camunda8")
    assert b"camunda:" not in camunda8
    assert b'zeebe:modelerTemplate="dev.nextmove.step"' in camunda8
    spiffarena = (DIALECTS_DIR / "spiffarena.bpmn").read_bytes()
    assert b"spiffworkflow:instructionsForEndUser" in with_flavour(spiffarena, "camunda8")
