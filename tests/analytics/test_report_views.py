"""The report's process-mining and survival views as a reader sees them: a simulated field
force, the report written once, headless Chromium drawing it (and running its filter).
Pixels and the browser's DOM, not just the markup, must show the flow counts and decision
shares, the Kaplan–Meier curves, and a filtered view."""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lxml import html

from analytics import funnel
from analytics._svgtext import hex_rgb
from analytics.report import ReportData, write_report
from analytics.survival_chart import PALETTE
from engine import ManualClock
from nextmove import open_store
from simulator import SimulationConfig, simulate
from tests.analytics.test_report_render import chromium, decode_png

FLOW_INK = hex_rgb("#08519c")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportData]:
    where = tmp_path_factory.mktemp("views")
    config = SimulationConfig(distributors=12, days=24, seed=3)
    store = open_store(f"sqlite:///{where / 'sim.db'}")
    try:
        simulate(store, config)
        clock = ManualClock(config.start + timedelta(days=config.days))
        out = where / "report.html"
        data = write_report(store, "prospect_journey", out, clock=clock, heat="conversion")
    finally:
        store.dispose()
    return out, data


@pytest.fixture(scope="module")
def elements(report: tuple[Path, ReportData]) -> dict[str, dict[str, Any]]:
    """The funnel over every element of the map (the report's table shows people's steps)."""
    store = open_store(f"sqlite:///{report[0].parent / 'sim.db'}")
    try:
        return {s.step_id: s.to_dict() for s in funnel(store, "prospect_journey")}
    finally:
        store.dispose()


def shoot(page: str, png: Path, size: tuple[int, int]) -> np.ndarray:
    subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--force-color-profile=srgb", f"--screenshot={png}",
         f"--window-size={size[0]},{size[1]}", page],
        check=True, capture_output=True, timeout=120)
    return decode_png(png.read_bytes())


def dom(page: str) -> Any:
    """The page as the browser left it after running its script."""
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page],
        check=True, capture_output=True, timeout=120, text=True)
    return html.fromstring(done.stdout)


def flow_ink(image: np.ndarray) -> np.ndarray:
    """Pixels of the flow labels' dark blue, anti-aliased edges included (nothing else on
    the map is that blue: the hatching is lighter, the outlines black, the heat warm)."""
    r, g, b = (image[:, :, i].astype(int) for i in range(3))
    return (r < 70) & (g < 130) & (b > 120) & (b - r > 80)


def pixels(image: np.ndarray, colour: str) -> int:
    return int(np.all(image == hex_rgb(colour), axis=2).sum())


def test_map_shows_flow_counts_and_decision_shares(
        report: tuple[Path, ReportData], elements: dict[str, dict[str, Any]],
        tmp_path: Path) -> None:
    out, data = report
    page = html.fromstring(out.read_text(encoding="utf-8"))
    labels = {t.get("data-flow"): t.text for t in page.xpath("//text[@class='flow-count']")}
    funnel = elements
    # every prospect starts: the first flow carries them all
    assert str(funnel["Event_start"]["instances"]) in labels.values()
    shares: dict[str, list[int]] = {}
    for row in data.decisions:
        shares.setdefault(str(row["decision"]), []).append(round(100 * float(row["share"])))
    assert "Video watched?" in shares and "Where did they land?" in shares
    for decision, parts in shares.items():
        assert 99 <= sum(parts) <= 101, (decision, parts)
    # a decision's flows read "count · share%" on the drawing
    with_share = [t for t in labels.values() if re.fullmatch(r"[\d,]+ · \d+%", t or "")]
    assert len(with_share) == len(data.decisions)
    # the video decision splits exactly the arrivals at its two branches
    video = {str(r["to"]): int(r["taken"]) for r in data.decisions
             if r["decision"] == "Video watched?"}
    assert video == {"Video played": funnel["Event_wait_for_video_video_played"]["entered"],
                     "After 2 days": funnel["Event_wait_for_video_timer"]["entered"]}
    # timers (deliberate waits, stuck flags on a step's border) are hatched, off the scale
    waits = page.xpath("//g[contains(@class,'deliberate-wait')]/@data-element")
    assert set(waits) == {"Event_wait_for_video_timer", "nurture_pause",
                          "Event_share_intro_stuck", "Event_conversation_stuck"}
    for wait in waits:
        (group,) = page.xpath(f"//g[@data-element='{wait}']")
        assert "heated" not in group.get("class")
        assert group.xpath("circle/@fill")[0] == "url(#map-wait)"
    # and the browser draws the labels: the flow ink covers many glyph pixels on the map
    image = shoot(out.as_uri(), tmp_path / "map.png", (1400, 1000))
    drawn = int(flow_ink(image).sum())
    assert drawn >= 10 * len(labels), (drawn, len(labels))  # about 19 a label here
    assert "Conversion after the step" in out.read_text(encoding="utf-8")


def test_survival_chart_is_drawn(report: tuple[Path, ReportData], tmp_path: Path) -> None:
    out, data = report
    assert data.survival is not None
    overall = data.survival["overall"]
    assert overall["subjects"] == 12 and 0 < overall["share_within"] < 1
    image = shoot(out.as_uri(), tmp_path / "km.png", (1400, 3600))
    # each cohort's and variant's step line, in its palette colour, is on the page
    groups = max(len(data.survival["cohorts"]), len(data.survival["variants"]))
    for colour in PALETTE[:groups]:
        assert pixels(image, colour) >= 60, colour
    page = html.fromstring(out.read_text(encoding="utf-8"))
    curves = page.xpath("//figure[@id='km-cohorts']//g[@class='km-curve']/@data-group")
    assert curves == [c["label"] for c in data.survival["cohorts"]]
    assert page.xpath("//h2[@id='survival']")


def test_filtered_view(report: tuple[Path, ReportData], tmp_path: Path) -> None:
    out, data = report
    assert data.survival is not None
    weeks = [c["label"] for c in data.survival["cohorts"]]
    assert len(weeks) >= 2
    chosen = weeks[-1]
    expected = next(c for c in data.survival["cohorts"] if c["label"] == chosen)
    filtered = f"{out.as_uri()}#cohort={chosen}&from=&to="
    after = dom(filtered)
    status = after.xpath("string(//*[@id='f-status'])")
    assert status.startswith(f"{expected['subjects']} of {overall_count(data)} distributors")
    assert f"by day 14: {round(100 * expected['share_within'])}%" in status
    rows = after.xpath("//details[@class='distributors']//tbody/tr")
    visible = [r for r in rows if "none" not in (r.get("style") or "")]
    assert {r.get("data-week") for r in visible} == {chosen}
    hidden = after.xpath("//figure[@id='km-cohorts']//g[@class='km-curve'][contains(@style,"
                         "'none')]/@data-group")
    assert set(hidden) == set(weeks) - {chosen}
    # the pixels agree: the first cohort's curve (palette colour 0) is gone from its chart
    whole = shoot(out.as_uri(), tmp_path / "all.png", (1400, 3600))
    narrowed = shoot(filtered, tmp_path / "filtered.png", (1400, 3600))
    assert pixels(narrowed, PALETTE[0]) < pixels(whole, PALETTE[0]) - 50
    # a date range also filters: nobody enrolled after the last day
    late = dom(f"{out.as_uri()}#cohort=&from=2030-01-01&to=")
    assert late.xpath("string(//*[@id='f-status'])").startswith(
        f"0 of {overall_count(data)} distributors")


def overall_count(data: ReportData) -> int:
    assert data.survival is not None
    return int(data.survival["overall"]["subjects"])


def test_colour_by_names_the_measure(report: tuple[Path, ReportData], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli import app

    out, _ = report
    page = tmp_path / "r.html"
    result = CliRunner().invoke(app, [
        "report", "--process", "prospect_journey", "-o", str(page), "--colour-by", "dropout",
        "--db", str(out.parent / "sim.db"), "--now", "2026-01-29T00:00:00Z", "--json"])
    assert result.exit_code == 0, result.output
    assert '"heat_metric": "dropout"' in result.output
    legend = html.fromstring(page.read_text(encoding="utf-8")).xpath(
        "string(//svg[contains(@class,'bpmn-map')]//g[@class='legend']/text[1])")
    assert legend == "Drop-out rate"
