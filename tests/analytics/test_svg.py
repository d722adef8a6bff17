"""Process maps drawn from their BPMNDI: the LifeVantage maps, every modeler file in the
corpus, hostile names, files without a layout, and the heat overlay."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from analytics.svg import HEAT_SCALE, Heat, heat_colour, render_map
from engine.definitions import parse_xml
from engine.definitions.compile import export_bpmn
from engine.errors import DefinitionError
from tests.conftest import CORPORA, REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
SVG = "{http://www.w3.org/2000/svg}"
BPMNDI = "{http://www.omg.org/spec/BPMN/20100524/DI}"
NS = {"s": "http://www.w3.org/2000/svg"}
CORPUS_FILES = sorted((CORPORA / "bpmn").rglob("*.bpmn"))


@pytest.fixture(scope="module")
def journey_xml(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The YAML prospect journey compiled to BPMN with layout, as `nextmove export` does."""
    out = tmp_path_factory.mktemp("export") / "prospect_journey.bpmn"
    return export_bpmn(LIFEVANTAGE / "prospect_journey.yaml", out).xml


def drawn(svg: str) -> etree._Element:
    return etree.fromstring(svg.encode("utf-8"))


def element(tree: etree._Element, element_id: str) -> etree._Element:
    (found,) = tree.xpath("//s:g[@data-element=$id]", namespaces=NS, id=element_id)
    return found


def shape_fill(tree: etree._Element, element_id: str) -> str:
    group = element(tree, element_id)
    first = group.xpath("s:rect|s:circle|s:polygon|s:path", namespaces=NS)[0]
    return str(first.get("fill"))


def all_text(node: etree._Element) -> str:
    return " ".join(" ".join(t.itertext()) for t in node.iter(f"{SVG}text"))


def test_the_prospect_journey_is_drawn_shape_by_shape(journey_xml: bytes) -> None:
    tree = drawn(render_map(journey_xml, process_id="prospect_journey"))
    source = parse_xml(journey_xml).getroot()
    shapes = [s.get("bpmnElement") for s in source.iter(f"{BPMNDI}BPMNShape")]
    edges = list(source.iter(f"{BPMNDI}BPMNEdge"))
    assert sorted(tree.xpath("//s:g/@data-element", namespaces=NS)) == sorted(shapes)
    assert len(tree.xpath("//s:polyline[contains(@class, 'edge')]", namespaces=NS)) == len(edges)
    # A user task: a rounded rectangle with its name wrapped inside it.
    task = element(tree, "share_intro")
    assert "userTask" in task.get("class")
    (rect,) = task.xpath("s:rect", namespaces=NS)
    assert (rect.get("rx"), rect.get("width"), rect.get("height")) == ("10", "100", "80")
    assert all_text(task).split() == ["Share", "the", "intro", "video"]
    assert len(task.xpath("s:text/s:tspan", namespaces=NS)) == 2
    # An exclusive gateway: a diamond with its X; the decision's name below it.
    gateway = element(tree, "where_they_landed")
    assert gateway.xpath("s:polygon", namespaces=NS)
    assert gateway.xpath("s:path[@stroke-width='4']", namespaces=NS)
    assert "Where did they" in all_text(tree)
    # Events: thin start, thick end, double-ringed timer with a clock, dashed when
    # non-interrupting (the "stuck" boundary timers).
    assert element(tree, "Event_start").xpath("s:circle/@stroke-width", namespaces=NS) == ["2"]
    assert element(tree, "Event_end").xpath("s:circle/@stroke-width", namespaces=NS) == ["4"]
    timer = element(tree, "nurture_pause")
    assert len(timer.xpath("s:circle", namespaces=NS)) >= 3  # two rings and the clock face
    stuck = element(tree, "Event_share_intro_stuck")
    assert stuck.xpath("s:circle[@stroke-dasharray]", namespaces=NS)
    # Sequence flows end in the arrowhead; the default flow carries its slash.
    arrows = tree.xpath("//s:polyline[@marker-end='url(#map-arrow)']", namespaces=NS)
    assert len(arrows) == len(edges)
    defaults = tree.xpath("//s:polyline[@marker-start='url(#map-default)']/@data-flow",
                          namespaces=NS)
    assert sorted(defaults) == ["Flow_after_check_in_to_not_now",
                                "Flow_where_they_landed_to_nurture"]


def test_the_onboarding_map_has_its_parallel_gateways(tmp_path: Path) -> None:
    xml = (LIFEVANTAGE / "distributor_onboarding.bpmn").read_bytes()
    tree = drawn(render_map(xml, process_id="distributor_onboarding"))
    parallel = tree.xpath("//s:g[contains(@class, 'parallelGateway')]", namespaces=NS)
    assert len(parallel) == 2
    for gateway in parallel:
        (plus,) = gateway.xpath("s:path", namespaces=NS)
        assert plus.get("d").count("M") == 2  # one vertical and one horizontal stroke
    assert "Welcome aboard" in all_text(tree)


def test_heat_colours_steps_on_a_scale_from_zero_and_leaves_the_rest_neutral(
        journey_xml: bytes) -> None:
    heat = Heat({"share_intro": 12, "conversation": 3, "add_contact": 0}, "Waiting now")
    tree = drawn(render_map(journey_xml, process_id="prospect_journey", heat=heat))
    assert shape_fill(tree, "share_intro") == HEAT_SCALE[-1]
    assert shape_fill(tree, "add_contact") == HEAT_SCALE[0]
    assert shape_fill(tree, "conversation") == heat_colour(3, 0, 12)
    assert shape_fill(tree, "conversation") not in (HEAT_SCALE[0], HEAT_SCALE[-1])
    assert shape_fill(tree, "follow_up") == "#ffffff"
    assert "heated" in element(tree, "share_intro").get("class")
    assert "heated" not in element(tree, "follow_up").get("class")
    # A tooltip per step with its figure, and white text where the fill is dark.
    tooltip = element(tree, "share_intro").find(f"{SVG}title").text
    assert tooltip == "Share the intro video\nWaiting now: 12"
    assert element(tree, "share_intro").xpath("s:text/@fill", namespaces=NS) == ["#ffffff"]
    (legend,) = tree.xpath("//s:g[@class='legend']", namespaces=NS)
    # the journey's timer waits ("After 2 days", "A few weeks later") are hatched, not heated
    assert all_text(legend).split() == ["Waiting", "now", "0", "12", "no", "data", "deliberate",
                                        "wait", "(timer):", "not", "coloured"]


def test_a_timer_on_a_steps_border_is_off_the_scale(journey_xml: bytes) -> None:
    """A stuck flag's "time spent" is its own duration (168 h for P7D): it must not set the
    scale every step is coloured on, nor look like the worst step."""
    heat = Heat({"conversation": 28, "share_intro": 32, "Event_conversation_stuck": 168},
                "Median time spent", "h")
    tree = drawn(render_map(journey_xml, process_id="prospect_journey", heat=heat))
    assert shape_fill(tree, "share_intro") == HEAT_SCALE[-1]  # the highest of the steps
    flag = element(tree, "Event_conversation_stuck")
    assert "heated" not in flag.get("class") and "deliberate-wait" in flag.get("class")
    assert "not coloured" in flag.find(f"{SVG}title").text


def test_the_scale_runs_through_every_colour_in_order() -> None:
    assert heat_colour(0, 0, 10) == HEAT_SCALE[0]
    assert heat_colour(10, 0, 10) == HEAT_SCALE[-1]
    assert heat_colour(2, 0, 10) == HEAT_SCALE[1]  # 2/10 of the way = the second stop of six
    assert heat_colour(99, 0, 10) == HEAT_SCALE[-1]
    assert heat_colour(5, 5, 5) == HEAT_SCALE[0]  # no spread: nothing to rank
    reds = [int(heat_colour(v, 0, 10)[3:5], 16) for v in range(11)]  # green channel falls
    assert reds == sorted(reds, reverse=True)


HOSTILE = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
  xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" id="d" targetNamespace="x">
  <bpmn:process id="p">
    <bpmn:task id="t" name="&lt;script&gt;alert('x')&lt;/script&gt; &amp; &quot;co&quot;"/>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="dg"><bpmndi:BPMNPlane id="pl" bpmnElement="p">
    <bpmndi:BPMNShape id="t_di" bpmnElement="t">
      <dc:Bounds x="0" y="0" width="__W__" height="80"/></bpmndi:BPMNShape>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>"""


def test_names_from_the_file_are_escaped_not_interpreted() -> None:
    svg = render_map(HOSTILE.replace(b"__W__", b"400"))
    tree = drawn(svg)
    assert "<script" not in svg
    assert not list(tree.iter(f"{SVG}script", "script"))
    assert all_text(element(tree, "t")) == "<script>alert('x')</script> & \"co\""


def test_a_broken_number_in_the_layout_names_the_element() -> None:
    with pytest.raises(DefinitionError) as caught:
        render_map(HOSTILE.replace(b"__W__", b"NaN"), file="evil.bpmn")
    problem = caught.value.problem
    assert (problem.code, problem.element, problem.file) == ("diagram", "t", "evil.bpmn")
    assert "width='NaN'" in problem.message


def test_entities_are_refused_before_anything_is_drawn() -> None:
    xxe = HOSTILE.replace(b'<?xml version="1.0" encoding="UTF-8"?>',
                          b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM '
                          b'"file:///etc/passwd">]>').replace(b"__W__", b"100")
    with pytest.raises(DefinitionError) as caught:
        render_map(xxe)
    assert caught.value.problem.code == "xml-doctype"


def test_a_process_the_file_does_not_draw_is_named() -> None:
    with pytest.raises(DefinitionError, match="no diagram in this file shows process 'q'"):
        render_map(HOSTILE.replace(b"__W__", b"100"), process_id="q")


def _planes_with_shapes(path: Path) -> int | None:
    """How many shapes the file's first drawn plane has; None when it is not well-formed."""
    try:
        root = parse_xml(path.read_bytes()).getroot()
    except DefinitionError:
        return None
    for plane in root.iter(f"{BPMNDI}BPMNPlane"):
        shapes = list(plane.iter(f"{BPMNDI}BPMNShape"))
        if shapes:
            return len(shapes)
    return 0


def test_the_corpus_is_in_the_repository() -> None:
    """The parametrized test below must never pass by having nothing to draw."""
    assert len(CORPUS_FILES) > 200


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: str(p.relative_to(CORPORA)))
def test_every_corpus_file_with_a_layout_is_drawn_and_the_rest_say_why(path: Path) -> None:
    shapes = _planes_with_shapes(path)
    if not shapes:
        with pytest.raises(DefinitionError) as caught:
            render_map(path.read_bytes(), file=str(path))
        expected = "xml" if shapes is None else "no-diagram"
        assert caught.value.problem.code == expected
        if shapes == 0:
            assert "no diagram layout (BPMNDI)" in str(caught.value)
        return
    tree = drawn(render_map(path.read_bytes(), file=str(path)))
    assert tree.tag == f"{SVG}svg"
    assert len(tree.xpath("//s:g[@data-element]", namespaces=NS)) == shapes
    x, y, width, height = (float(v) for v in tree.get("viewBox").split())
    assert width > 0 and height > 0
