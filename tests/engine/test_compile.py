"""YAML maps → BPMN 2.0 with diagram: XSD-valid, read back by lxml, SpiffWorkflow and our loader,
laid out left to right without overlaps. (Running the compiled maps: test_compile_runs.py.)"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import pytest
from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from engine.definitions._layout import Box
from engine.definitions.compile import CompiledMap, compile_map, export_bpmn, human_duration
from engine.definitions.yaml_maps import load_yaml_map

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "yaml"
LIFEVANTAGE = Path(__file__).resolve().parents[2] / "processes" / "lifevantage"
ONBOARDING_BPMN = LIFEVANTAGE / "distributor_onboarding.bpmn"
SOURCES = {
    "all_kinds": FIXTURES / "all_kinds.yaml",
    "helper_process": FIXTURES / "helper_process.yaml",
    "linear": FIXTURES / "linear.yaml",
    "loop": FIXTURES / "loop.yaml",
    "distributor_onboarding": FIXTURES / "distributor_onboarding.yaml",
    "prospect_journey": LIFEVANTAGE / "prospect_journey.yaml",
}
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "nextmove": "http://nextmove.dev/schema/bpmn/1.0",
}
NODE_TAGS = {
    "startEvent", "endEvent", "intermediateCatchEvent", "boundaryEvent", "task", "userTask",
    "callActivity", "subProcess", "exclusiveGateway", "parallelGateway", "eventBasedGateway",
}
XSI_TYPE = f"{{{NS['xsi']}}}type"


def line_in(name: str, text: str) -> int:
    """The line of the first occurrence of `text` in the YAML source `name`."""
    lines = SOURCES[name].read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, start=1) if text in line)


def compiled(name: str) -> CompiledMap:
    return compile_map(load_yaml_map(SOURCES[name]))


def root_of(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def local(el: etree._Element) -> str:
    return etree.QName(el).localname


def nodes(root: etree._Element) -> dict[str, etree._Element]:
    return {el.get("id"): el for el in root.iter() if isinstance(el.tag, str)
            and etree.QName(el).namespace == NS["bpmn"] and local(el) in NODE_TAGS}


def flows(root: etree._Element) -> dict[str, etree._Element]:
    return {f.get("id"): f for f in root.iterfind(".//bpmn:sequenceFlow", NS)}


def props(el: etree._Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in el.iterfind(
        "bpmn:extensionElements/nextmove:properties/nextmove:property", NS)}


def boxes(root: etree._Element) -> dict[str, Box]:
    out = {}
    for shape in root.iterfind(".//bpmndi:BPMNShape", NS):
        b = shape.find("dc:Bounds", NS)
        out[shape.get("bpmnElement")] = Box(*(int(b.get(k)) for k in ("x", "y", "width", "height")))
    return out


def waypoints(root: etree._Element) -> dict[str, list[tuple[int, int]]]:
    return {e.get("bpmnElement"): [(int(p.get("x")), int(p.get("y")))
                                   for p in e.iterfind("di:waypoint", NS)]
            for e in root.iterfind(".//bpmndi:BPMNEdge", NS)}


# -- the document --------------------------------------------------------------------------------


def all_documents() -> list[tuple[str, bytes]]:
    docs = [(name, compiled(name).xml) for name in SOURCES]
    return [*docs, ("distributor_onboarding.bpmn", ONBOARDING_BPMN.read_bytes())]


@pytest.mark.parametrize(("name", "xml"), all_documents(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_the_document_is_valid_bpmn_2_with_diagram(name: str, xml: bytes) -> None:
    root = root_of(xml)

    BpmnValidator().validate(etree.ElementTree(root))
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    (process,) = root.iterfind("bpmn:process", NS)
    assert process.get("isExecutable") == "true"
    assert len(process.findall("bpmn:startEvent", NS)) == 1
    assert process.findall("bpmn:endEvent", NS)
    assert root.nsmap["nextmove"] == NS["nextmove"]


def test_the_xsd_check_does_fail_on_a_broken_diagram() -> None:
    root = root_of(compiled("linear").xml)
    bounds = root.find(".//dc:Bounds", NS)
    bounds.getparent().remove(bounds)

    with pytest.raises(ValidationException, match="Bounds"):
        BpmnValidator().validate(etree.ElementTree(root))


def test_every_step_comes_back_with_its_element_and_properties() -> None:
    m = load_yaml_map(SOURCES["all_kinds"])
    root = root_of(compile_map(m).xml)
    found = nodes(root)

    assert {s.id: local(found[s.id]) for s in m.all_steps()} == {
        "greet": "userTask", "log_contact": "task", "wait_video": "eventBasedGateway",
        "nudge": "userTask", "talk": "userTask", "route": "exclusiveGateway",
        "coach": "userTask", "both": "parallelGateway", "order": "userTask",
        "thank": "userTask", "remind": "userTask", "thank_again": "task",
        "group_phase": "subProcess", "inner_call": "callActivity",
        "inner_wait": "intermediateCatchEvent", "finish": "endEvent",
    }
    assert all(props(found[s.id])["yaml_line"] == str(s.line) for s in m.all_steps())
    assert props(found["greet"]) == {
        "hook": "first_contact_message", "card": "Say hello in your own words.",
        "control": "guidance", "role": "distributor", "follow_up": "P1D", "channel": "sms",
        "priority": "2", "pinned": "true", "yaml_line": str(line_in("all_kinds", "id: greet")),
    }
    assert props(found["order"]) == {
        "hook": "order_link", "control": "required", "role": "distributor",
        "basis": "Consumer protection: a written order confirmation",
        "ack": "I sent the order confirmation.",
        "yaml_line": str(line_in("all_kinds", "id: order")),
    }
    talk = props(found["talk"])
    assert json.loads(talk["data"]) == {"interest": ["customer", "distributor", "not_now"]}
    assert (talk["stuck_after"], talk["when_stuck"]) == ("P3D", "coach")
    assert props(found["coach"])["role"] == "sponsor"
    assert props(found["finish"]) == {
        "outcome": "done", "yaml_line": str(line_in("all_kinds", "id: finish"))}
    assert "control" not in props(found["log_contact"])  # automatic steps wait on nobody
    assert found["inner_call"].get("calledElement") == "helper_process"
    assert found["inner_call"].getparent() is found["group_phase"]
    assert found["greet"].get("name") == "Greet" and found["both"].get("name") == "Order and thank"


def test_waits_decisions_and_stuck_timers_follow_the_bpmn_conventions() -> None:
    root = root_of(compiled("prospect_journey").xml)
    found, all_flows = nodes(root), flows(root)

    gateway = found["wait_for_video"]
    assert local(gateway) == "eventBasedGateway"
    catches = [found[all_flows[o.text].get("targetRef")]
               for o in gateway.iterfind("bpmn:outgoing", NS)]
    assert [c.get("id") for c in catches] == [
        "Event_wait_for_video_video_played", "Event_wait_for_video_timer"]
    message_def = catches[0].find("bpmn:messageEventDefinition", NS)
    assert message_def.get("messageRef") == "Message_video_played"
    (message,) = root.iterfind("bpmn:message", NS)
    assert (message.get("id"), message.get("name")) == ("Message_video_played", "video_played")
    assert not root.findall(".//bpmn:correlationKey", NS)
    duration = catches[1].find("bpmn:timerEventDefinition/bpmn:timeDuration", NS)
    assert (duration.text, duration.get(XSI_TYPE)) == ("P2D", "bpmn:tFormalExpression")

    decide = found["where_they_landed"]
    out = [all_flows[o.text] for o in decide.iterfind("bpmn:outgoing", NS)]
    default = all_flows[decide.get("default")]
    assert default.get("targetRef") == "nurture"
    assert default.find("bpmn:conditionExpression", NS) is None
    conditions = {f.get("targetRef"): f.find("bpmn:conditionExpression", NS) for f in out
                  if f is not default}
    assert {k: c.text for k, c in conditions.items()} == {
        "customer_order": "interest == 'customer'", "enroll": "interest == 'distributor'"}
    assert {c.get(XSI_TYPE) for c in conditions.values()} == {"bpmn:tFormalExpression"}

    stuck = found["Event_share_intro_stuck"]
    assert (stuck.get("attachedToRef"), stuck.get("cancelActivity")) == ("share_intro", "false")
    assert stuck.find("bpmn:timerEventDefinition/bpmn:timeDuration", NS).text == "P5D"
    assert props(stuck)["purpose"] == "stuck"
    assert "Flow_share_intro_to_wait_for_video" in all_flows


def test_an_interrupting_timer_and_an_inline_stuck_step() -> None:
    root = root_of(compiled("all_kinds").xml)
    found, all_flows = nodes(root), flows(root)

    expired = found["Event_group_phase_expired"]
    assert expired.get("cancelActivity") is None  # true is the BPMN default
    assert props(expired)["purpose"] == "expired"
    targets = {f.get("sourceRef"): f.get("targetRef") for f in all_flows.values()}
    assert targets["Event_group_phase_expired"] == "finish"
    assert targets["Event_thank_stuck"] == "remind"
    assert local(found[targets["remind"]]) == "endEvent"  # the stuck path ends on its own
    assert targets["Event_talk_stuck"] == "coach"
    assert targets["thank_again"] == "Gateway_both_join"


def test_incoming_and_outgoing_match_the_sequence_flows() -> None:
    for name in SOURCES:
        root = root_of(compiled(name).xml)
        all_flows = flows(root)
        for node_id, el in nodes(root).items():
            assert [i.text for i in el.iterfind("bpmn:incoming", NS)] == [
                f for f, x in all_flows.items() if x.get("targetRef") == node_id], node_id
            assert [o.text for o in el.iterfind("bpmn:outgoing", NS)] == [
                f for f, x in all_flows.items() if x.get("sourceRef") == node_id], node_id


def test_origins_point_every_element_back_to_its_yaml() -> None:
    c = compiled("prospect_journey")
    root = root_of(c.xml)

    assert set(c.origins) == set(nodes(root)) | set(flows(root))
    def at(text: str) -> int:
        return line_in("prospect_journey", text)

    assert c.origins["wait_for_video"] == ("steps[2]", at("id: wait_for_video"))
    assert c.origins["Event_wait_for_video_timer"] == ("steps[2].wait[1]", at("after: P2D"))
    assert c.origins["Event_share_intro_stuck"] == ("steps[1].stuck_after", at("stuck_after: P5D"))
    decide_flows = {f.get("targetRef"): c.origins[fid] for fid, f in flows(root).items()
                    if f.get("sourceRef") == "where_they_landed"}
    assert decide_flows["nurture"] == ("steps[5].decide[2]", at("otherwise: nurture"))
    (to_end,) = [fid for fid, f in flows(root).items() if f.get("sourceRef") == "customer_order"]
    assert c.origins[to_end] == ("steps[6].next", at("id: customer_order") + 7)
    assert c.process_id == "prospect_journey" and c.file == str(SOURCES["prospect_journey"])


def test_compiling_is_deterministic_and_export_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "journey.bpmn"

    exported = export_bpmn(SOURCES["prospect_journey"], out)

    assert out.read_bytes() == exported.xml == compiled("prospect_journey").xml


def test_human_duration() -> None:
    assert [human_duration(d) for d in ("P2D", "PT1H30M", "P1W", "P1M", "P1DT12H")] == [
        "2 days", "1 hour 30 minutes", "1 week", "1 month", "1 day 12 hours"]


# -- the diagram ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SOURCES)
def test_every_node_has_a_modeler_sized_shape_and_every_flow_an_edge(name: str) -> None:
    root = root_of(compiled(name).xml)
    shapes = boxes(root)

    assert set(shapes) == set(nodes(root))
    assert set(waypoints(root)) == set(flows(root))
    for node_id, el in nodes(root).items():
        kind = local(el)
        size = (shapes[node_id].w, shapes[node_id].h)
        if kind.endswith("Event"):
            assert size == (36, 36), node_id
        elif kind.endswith("Gateway"):
            assert size == (50, 50), node_id
        elif kind != "subProcess":
            assert size == (100, 80), node_id


@pytest.mark.parametrize("name", SOURCES)
def test_no_two_shapes_overlap(name: str) -> None:
    root = root_of(compiled(name).xml)
    shapes, found = boxes(root), nodes(root)

    def related(a: str, b: str) -> bool:
        ea, eb = found[a], found[b]
        return (ea in eb.iterancestors() or eb in ea.iterancestors()
                or ea.get("attachedToRef") == b or eb.get("attachedToRef") == a)

    clashes = [(a, b) for a, b in combinations(shapes, 2)
               if not related(a, b) and shapes[a].overlaps(shapes[b])]
    assert clashes == []


@pytest.mark.parametrize("name", SOURCES)
def test_shapes_inside_a_subprocess_are_drawn_inside_it(name: str) -> None:
    root = root_of(compiled(name).xml)
    shapes = boxes(root)
    for sub in root.iterfind(".//bpmn:subProcess", NS):
        outer = shapes[sub.get("id")]
        for child in sub:
            if child.get("id") in shapes:
                inner = shapes[child.get("id")]
                assert outer.x < inner.x and inner.right < outer.right, child.get("id")
                assert outer.y < inner.y and inner.bottom <= outer.bottom + 18, child.get("id")


@pytest.mark.parametrize("name", [n for n in SOURCES if n != "loop"])
def test_maps_without_loops_read_left_to_right(name: str) -> None:
    root = root_of(compiled(name).xml)
    shapes = boxes(root)

    for flow_id, f in flows(root).items():
        assert shapes[f.get("targetRef")].cx > shapes[f.get("sourceRef")].cx, flow_id


def test_a_loop_goes_back_under_the_shapes() -> None:
    root = root_of(compiled("loop").xml)
    shapes, edges = boxes(root), waypoints(root)
    (back,) = [fid for fid, f in flows(root).items() if f.get("targetRef") == "remind"
               and f.get("sourceRef") == "enough"]

    lowest = max(b.bottom for b in shapes.values())
    assert max(y for _, y in edges[back]) > lowest
    assert edges[back][-1] == (shapes["remind"].cx, shapes["remind"].bottom)


@pytest.mark.parametrize("name", SOURCES)
def test_edges_are_orthogonal_and_touch_their_shapes(name: str) -> None:
    root = root_of(compiled(name).xml)
    shapes, edges = boxes(root), waypoints(root)

    def on_border(point: tuple[int, int], b: Box) -> bool:
        x, y = point
        inside = b.x <= x <= b.right and b.y <= y <= b.bottom
        return inside and (x in (b.x, b.right) or y in (b.y, b.bottom))

    for flow_id, f in flows(root).items():
        points = edges[flow_id]
        assert len(points) >= 2
        segments = zip(points, points[1:], strict=False)
        assert all(a[0] == b[0] or a[1] == b[1] for a, b in segments), flow_id
        assert on_border(points[0], shapes[f.get("sourceRef")]), flow_id
        assert on_border(points[-1], shapes[f.get("targetRef")]), flow_id


def test_boundary_events_sit_on_their_hosts_bottom_edge() -> None:
    root = root_of(compiled("all_kinds").xml)
    shapes = boxes(root)
    bounds = list(root.iter(f"{{{NS['bpmn']}}}boundaryEvent"))

    assert len(bounds) == 4  # follow-up on greet, stuck on talk and thank, expiry of the group
    for event in bounds:
        host, b = shapes[event.get("attachedToRef")], shapes[event.get("id")]
        assert b.cy == host.bottom and host.x <= b.cx <= host.right


def test_branches_are_stacked_below_the_main_line() -> None:
    shapes = boxes(root_of(compiled("prospect_journey").xml))

    main = ["add_contact", "share_intro", "wait_for_video", "conversation", "where_they_landed"]
    assert len({shapes[s].cy for s in main}) == 1
    assert shapes["follow_up"].cy > shapes["conversation"].cy
    assert shapes["nurture"].cy > shapes["enroll"].cy > shapes["customer_order"].cy


# -- the checked-in onboarding BPMN ---------------------------------------------------------------


def summary(xml: bytes) -> tuple[dict[str, tuple[str, dict[str, str]]], set[tuple[str, str]]]:
    root = root_of(xml)
    found = {i: (local(el), props(el)) for i, el in nodes(root).items()}
    edges = {(f.get("sourceRef"), f.get("targetRef")) for f in flows(root).values()}
    return found, edges


def test_the_onboarding_bpmn_still_matches_its_yaml_source() -> None:
    """processes/ holds the BPMN form; tests/fixtures/yaml/distributor_onboarding.yaml is the
    source it was exported from. Re-export after editing either (see the YAML's header)."""
    assert summary(ONBOARDING_BPMN.read_bytes()) == summary(compiled("distributor_onboarding").xml)
    assert not (LIFEVANTAGE / "distributor_onboarding.yaml").exists()


def test_the_lifevantage_folder_loads_without_problems() -> None:
    from nextmove import load  # the maps with their catalog, as `nextmove validate` checks

    report = load([LIFEVANTAGE])

    assert [str(p) for p in report.problems] == []
    assert sorted(d.process_id for d in report.definitions) == [
        "distributor_onboarding", "prospect_journey"]
