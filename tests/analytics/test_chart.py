"""The funnel chart: bar lengths proportional to the counts, the series the rows carry, the
conversion at the right, names escaped."""

from __future__ import annotations

from lxml import etree

from analytics.chart import SERIES, funnel_chart

NS = {"s": "http://www.w3.org/2000/svg"}
ROWS = [
    {"step_id": "add_contact", "step_name": "Add a prospect", "entered": 80, "completed": 60,
     "dropped": 10, "conversion": 0.25},
    {"step_id": "share_intro", "step_name": "Share the intro video", "entered": 40,
     "completed": 20, "dropped": 0, "conversion": 0.5},
]


def chart(rows: list[dict[str, object]], **kwargs: object) -> etree._Element:
    return etree.fromstring(funnel_chart(rows, **kwargs).encode("utf-8"))  # type: ignore[arg-type]


def bar(tree: etree._Element, step: str, series: str) -> float:
    (found,) = tree.xpath("//s:g[@data-step=$step]/s:rect[contains(@class, $series)]",
                          namespaces=NS, step=step, series=series)
    return float(found.get("width"))


def test_bars_are_proportional_to_the_largest_count() -> None:
    tree = chart(ROWS, outcome="sale")
    full = bar(tree, "add_contact", "entered")
    assert full == 440
    assert bar(tree, "add_contact", "completed") == full * 60 / 80
    assert bar(tree, "add_contact", "dropped") == full * 10 / 80
    assert bar(tree, "share_intro", "entered") == full / 2
    assert bar(tree, "share_intro", "dropped") == 0
    colours = {r.get("fill") for r in tree.xpath("//s:g[@data-step]/s:rect", namespaces=NS)}
    assert colours == {colour for _, _, colour in SERIES}


def test_each_step_shows_its_name_counts_and_conversion() -> None:
    tree = chart(ROWS, outcome="sale")
    (step,) = tree.xpath("//s:g[@data-step='share_intro']", namespaces=NS)
    texts = [" ".join(t.itertext()) for t in step.xpath("s:text", namespaces=NS)]
    assert texts == ["Share the intro video", "40", "20", "0", "50%"]
    assert step.find("{http://www.w3.org/2000/svg}title").text == (
        "Share the intro video\nEntered: 40\nCompleted: 20\nDropped out: 0\n"
        "Reached the outcome: 50.0%")
    legend = " ".join(tree.xpath("//s:g[@class='legend']//text()", namespaces=NS))
    assert legend == "Entered Completed Dropped out reached sale"


def test_only_the_series_the_rows_carry_are_drawn() -> None:
    rows = [{"step_id": "a", "step_name": "A", "entered": 5, "completed": 2}]
    tree = chart(rows)
    assert not tree.xpath("//s:rect[contains(@class, 'dropped')]", namespaces=NS)
    legend = " ".join(tree.xpath("//s:g[@class='legend']//text()", namespaces=NS))
    assert legend == "Entered Completed reached the outcome"
    assert len(tree.xpath("//s:g[@data-step='a']/s:text", namespaces=NS)) == 3  # no conversion


def test_names_are_escaped_and_an_empty_funnel_says_so() -> None:
    rows = [{"step_id": 'x"><script>', "step_name": "<b>Evil</b> & co", "entered": 1}]
    markup = funnel_chart(rows)
    assert "<script" not in markup and "<b>" not in markup
    tree = etree.fromstring(markup.encode("utf-8"))
    (step,) = tree.xpath("//s:g[@data-step]", namespaces=NS)
    assert step.get("data-step") == 'x"><script>'
    assert "".join(step.xpath("s:text[1]//text()", namespaces=NS)) == "<b>Evil</b> & co"
    empty = etree.fromstring(funnel_chart([]).encode("utf-8"))
    assert "No arrivals recorded yet." in "".join(empty.itertext())


def test_the_outcome_header_stays_inside_the_chart() -> None:
    """Several outcomes (the map's conversion: customer_order+distributor_enrolled) used to
    run off the right edge as one 45-character line."""
    tree = chart(ROWS, outcome="customer_order+distributor_enrolled")
    width = float(tree.get("width"))
    (legend,) = tree.xpath("//s:g[@class='legend']", namespaces=NS)
    lines = [str(t.text) for t in legend.xpath(".//s:tspan", namespaces=NS)]
    assert " ".join(lines).replace(" + ", "+") == "reached customer_order+distributor_enrolled"
    x = float(legend.xpath(".//s:tspan/@x", namespaces=NS)[0])
    assert all(x + len(line) * 12 * 0.6 <= width for line in lines)  # bold, generously
