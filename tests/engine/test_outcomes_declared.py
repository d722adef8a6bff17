"""A map declares its outcomes, which of them convert, and its first-sale indicator; YAML
and BPMN carry the same declaration and the analytics read it (`engine.definitions.outcomes`)."""

from __future__ import annotations

from pathlib import Path

import pytest

import analytics
from engine.definitions import load, load_definitions
from engine.definitions.outcomes import DEFAULT_MEASURES, FirstWithin, Outcome, measures_from
from nextmove import open_store
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"


def journey_map(steps_yaml: str, extra: str) -> str:
    return f"process: p\n{extra}\nsteps:\n{steps_yaml}"


ONE_STEP = "  - id: a\n    hook: h\n"


def test_the_lifevantage_journey_declares_orders_and_enrollments_as_conversion() -> None:
    (journey,) = [d for d in load_definitions([LIFEVANTAGE])
                  if d.process_id == "prospect_journey"]
    measures = journey.map.measures
    assert measures is not None
    assert measures.converting == ("customer_order", "distributor_enrolled")
    assert measures.first_sale == FirstWithin("first_sale_within_14_days", "sale", "P14D")
    assert measures.first_sale.days == 14


def test_the_declaration_survives_the_compiled_bpmn(tmp_path: Path) -> None:
    source = tmp_path / "p.yaml"
    source.write_text(journey_map(ONE_STEP, "outcomes:\n  won: {converts: true}\n  lost: {}\n"
                                  "indicators:\n  first_win: {first: won, within: P7D}\n"))
    from engine.definitions.compile import export_bpmn

    export_bpmn(source, tmp_path / "p.bpmn")
    (yaml_def,) = load_definitions([source])
    (bpmn_def,) = load_definitions([tmp_path / "p.bpmn"])
    assert yaml_def.map.measures == bpmn_def.map.measures
    assert bpmn_def.map.measures is not None
    assert bpmn_def.map.measures.outcomes == (Outcome("won", True), Outcome("lost", False))


@pytest.mark.parametrize(("extra", "message"), [
    ("outcomes:\n  won: {converts: yes please}\n", "outcome"),
    ("outcomes:\n  lost: {}\n", "no declared outcome converts"),
    ("outcomes:\n  won: {converts: true}\nindicators:\n  x: {first: lost, within: P7D}\n",
     "not a declared outcome"),
    ("outcomes:\n  won: {converts: true}\nindicators:\n  x: {first: won, within: P1M}\n",
     "within"),
])
def test_a_bad_declaration_is_a_problem_with_its_place(tmp_path: Path, extra: str,
                                                       message: str) -> None:
    source = tmp_path / "p.yaml"
    source.write_text(journey_map(ONE_STEP, extra))
    report = load([source])
    assert not report.ok
    assert any(message in p.message for p in report.problems), report.problems


def test_a_map_that_declares_nothing_keeps_the_sale_outcome(tmp_path: Path) -> None:
    assert measures_from(None, None) == (None, [])
    assert DEFAULT_MEASURES.converting == ("sale",)
    store = open_store(tmp_path / "n.db")
    try:
        assert analytics.measures(store, "nothing_deployed") == DEFAULT_MEASURES
        assert analytics.first_sale_rule(store).within == "P14D"
    finally:
        store.dispose()
