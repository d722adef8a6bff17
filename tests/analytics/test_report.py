"""The HTML report on a journey driven by hand (every figure known), on SQLite and PostgreSQL:
the map and its heat, the funnel, the tables, and nothing that reaches the network."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree, html

from analytics.report import ReportData, collect, render_html, write_report
from analytics.svg import HEAT_SCALE, heat_colour
from engine import DefinitionNotFound, Engine, ManualClock, NextmoveError
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
US = {"market": "US", "locale": "en-US"}
SVG = {"s": "http://www.w3.org/2000/svg"}
# Anything a browser would fetch: a src/href/action to a scheme or host, a CSS url(), @import.
EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z]+:|//)"""
                      r"""|url\(\s*["']?\s*(?:[a-z]+:|//)|@import""", re.IGNORECASE)


@pytest.fixture
def journey(engine: Engine, clock: ManualClock) -> Engine:
    """Three prospects: p1 and p2 finished adding (after 2 h and 3 h) and now wait at
    share_intro; p3 still waits at add_contact. Then it is 12:00."""
    engine.deploy([LIFEVANTAGE])
    for pid in ("p1", "p2", "p3"):
        engine.start("prospect_journey", pid, "D", US)
    clock.set(T0 + 2 * HOUR)
    engine.complete(engine.list_instances(prospect_id="p1")[0].id, "add_contact")
    clock.set(T0 + 3 * HOUR)
    engine.complete(engine.list_instances(prospect_id="p2")[0].id, "add_contact")
    return engine


def fills(page: str) -> dict[str, str]:
    """Step id -> the fill of its shape on the map."""
    tree = html.fromstring(page)
    (svg,) = tree.xpath("//svg[contains(@class, 'bpmn-map')]")
    out = {}
    for group in svg.xpath(".//g[@data-element]"):
        shape = group.xpath("rect|circle|polygon|path")
        if shape:
            out[group.get("data-element")] = shape[0].get("fill")
    return out


def test_the_report_shows_the_map_heated_by_who_waits_where(
        journey: Engine, clock: ManualClock) -> None:
    data = collect(journey.store, "prospect_journey", now=clock.now())
    assert data.heat["share_intro"] == 2 and data.heat["add_contact"] == 1
    page = render_html(data)
    shape = fills(page)
    assert shape["share_intro"] == HEAT_SCALE[-1]  # the most waiting
    assert shape["add_contact"] == heat_colour(1, 0, 2)
    assert shape["conversation"] == "#ffffff"  # nobody got there: no data, neutral
    tree = html.fromstring(page)
    assert tree.findtext(".//title") == "Prospect journey: journey report"
    assert tree.findtext(".//h1") == "Prospect journey: journey report"
    meta = tree.xpath("string(//p[@class='meta'])")
    assert "prospect_journey v1" in meta and "generated 2026-01-05 12:00 UTC" in meta


def test_the_tables_carry_the_funnel_and_the_content_offered(
        journey: Engine, clock: ManualClock) -> None:
    page = render_html(collect(journey.store, "prospect_journey", now=clock.now()))
    tree = html.fromstring(page)
    # the filter's distributor list and the map's decisions come before the funnel's table
    tables = tree.xpath("//table[not(ancestor::details) and not(@class='decisions')]")
    rows = {r.xpath("string(td[1])"): [c.text_content() for c in r.xpath("td")]
            for r in tables[0].xpath(".//tbody/tr")}
    headers = [h.text_content() for h in tables[0].xpath(".//th")]
    add = dict(zip(headers, rows["Add a prospect"], strict=True))
    assert (add["Prospects"], add["Arrivals"], add["Completed"], add["Waiting now"]) == (
        "3", "3", "2", "1")
    assert add["Median h"] == "2.5"  # the two that finished took 2 h and 3 h
    share = dict(zip(headers, rows["Share the intro video"], strict=True))
    assert (share["Arrivals"], share["Waiting now"]) == ("2", "2")
    # The chart has a bar group per funnel row, in the same order.
    chart_steps = tree.xpath("//svg[contains(@class,'funnel-chart')]//g[@data-step]/@data-step")
    assert chart_steps == [s["step_id"] for s in collect(
        journey.store, "prospect_journey", now=clock.now()).funnel]
    content = {r.xpath("string(td[1])") for r in tables[-1].xpath(".//tbody/tr")}
    assert "first_contact_message" in content


def test_dwell_heat_colours_by_median_hours(journey: Engine, clock: ManualClock) -> None:
    data = collect(journey.store, "prospect_journey", now=clock.now(), heat="dwell")
    assert data.heat["add_contact"] == 2.5
    assert "share_intro" not in data.heat  # nobody has finished there yet
    tooltip = html.fromstring(render_html(data)).xpath(
        "//g[@data-element='add_contact']/title/text()")
    assert tooltip == ["Add a prospect\nMedian time spent there: 2.5 h"]


def test_the_page_needs_nothing_from_the_network(
        journey: Engine, clock: ManualClock, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    data = write_report(journey.store, "prospect_journey", out, clock=clock)
    page = out.read_text(encoding="utf-8")
    assert data.map_svg is not None and data.map_svg in page
    assert not EXTERNAL.findall(page)
    assert "<link" not in page.lower()
    assert "default-src 'none'" in page  # and the browser is told to fetch nothing
    tree = html.fromstring(page)
    # one script (the in-page filter), inline, allowed by its hash alone, fetching nothing;
    # the data it reads is a JSON block, which browsers never run
    scripts = tree.xpath("//script")
    assert [s.get("type") for s in scripts] == ["application/json", None]
    code = scripts[1].text or ""
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page and "unsafe-inline'" not in page.replace(
        "style-src 'unsafe-inline'", "")
    assert not re.search(r"fetch|XMLHttpRequest|import\(|src\s*=|eval|WebSocket", code)
    json.loads(scripts[0].text or "")
    # Well-formed inline SVG: the map, the funnel and the survival charts parse as XML.
    drawings = tree.xpath("//svg")
    assert len(drawings) >= 3 and {"bpmn-map", "km-chart"} <= {d.get("class") for d in drawings}
    for drawing in drawings:
        etree.fromstring(etree.tostring(drawing))
    etree.fromstring(data.map_svg.encode("utf-8"))


def test_the_pattern_for_external_references_finds_them() -> None:
    assert EXTERNAL.findall('<img src="https://x.test/a.png"><a href=//cdn.test>')
    assert EXTERNAL.findall("<style>b{background:url(http://x.test/i.png)}</style>")
    assert not EXTERNAL.findall('<svg xmlns="http://www.w3.org/2000/svg"></svg>')


def test_what_the_report_shows_is_escaped() -> None:
    hostile = "<script>alert(1)</script>"
    data = ReportData(
        process_id=hostile, process_name=f"{hostile} & co", version=1,
        generated_at=T0, outcome="sale", heat_metric="waiting",
        summary={"instances": 1, "converted": 0, "conversion": 0.0},
        funnel=[{"step_id": "a", "step_name": hostile, "entered": 1, "completed": 0}],
        stuck=[{"step_name": hostile, "distributor_id": hostile, "instances": 1,
                "oldest_since": "2026-01-01T00:00:00+00:00", "limit_hours": 2.0}],
        cohorts=[], indicator_names=[], content=[{"hook": hostile, "shown": 1}],
        map_problem=hostile)
    page = render_html(data)
    assert "<script" not in page
    tree = html.fromstring(page)
    assert tree.findtext(".//h1") == f"{hostile} & co: journey report"
    assert tree.xpath("string(//p[@class='note'][1])") == hostile
    assert "No distributor has enrolled yet." in page


def test_a_map_without_layout_leaves_the_rest_of_the_report(
        engine: Engine, clock: ManualClock, tmp_path: Path) -> None:
    bare = tmp_path / "bare.bpmn"
    bare.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"
    targetNamespace="x">
  <bpmn:process id="bare" isExecutable="true">
    <bpmn:startEvent id="s"/><bpmn:userTask id="t" name="Do it"/><bpmn:endEvent id="e"/>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>""")
    engine.deploy([bare])
    engine.start("bare", "p1", "D")
    data = collect(engine.store, "bare", now=clock.now())
    assert data.map_svg is None
    assert data.map_problem is not None and "no diagram layout (BPMNDI)" in data.map_problem
    page = render_html(data)
    assert "Do it" in page  # the funnel is still there


def test_unknown_process_and_heat_are_clear_errors(journey: Engine, clock: ManualClock) -> None:
    with pytest.raises(DefinitionNotFound, match="did you mean 'prospect_journey'"):
        collect(journey.store, "prospect_journy", now=clock.now())
    with pytest.raises(NextmoveError, match="heat must be one of waiting, dwell"):
        collect(journey.store, "prospect_journey", now=clock.now(), heat="hot")
