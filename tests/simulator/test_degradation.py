"""A catalog item stops working halfway: the daily drift watch demotes it and conversion at
its hook recovers (against the same world without the watch)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from simulator import SimulationConfig
from simulator.degradation import degradation_run
from simulator.world import ProspectState, ResponseModel, make_distributors, make_prospect

ITEM = "opportunity_overview_12min"  # the catalog's pick for the presentation hook


def conversions(model: ResponseModel, day: int, item: str) -> int:
    rng = random.Random(5)
    dist = make_distributors(rng, 1, 30)[0]
    count = 0
    for n in range(4000):
        state = ProspectState(make_prospect(rng, dist, n), content={"presentation": item})
        count += model.interest(state, day, rng) != "not_now"
    return count


def test_the_degrade_knob_lowers_conversion_of_prospects_shown_the_item_from_its_day() -> None:
    options = {"presentation": [ITEM, "opportunity_overview_5min"]}
    steady = ResponseModel(2018, options)
    degraded = ResponseModel(2018, options, degrade={"item": ITEM, "at_day": 30,
                                                     "factor": 0.4})
    assert conversions(degraded, 29, ITEM) == conversions(steady, 29, ITEM)
    assert conversions(degraded, 30, "opportunity_overview_5min") == conversions(
        steady, 30, "opportunity_overview_5min")
    after, before = conversions(degraded, 30, ITEM), conversions(steady, 30, ITEM)
    assert after < 0.55 * before  # 0.4 of the rate, with sampling noise


@pytest.mark.slow
def test_a_degraded_item_is_demoted_and_conversion_recovers(tmp_path: Path) -> None:
    config = SimulationConfig(distributors=300, days=90, seed=7,
                              degrade={"item": ITEM, "at_day": 30, "factor": 0.4})
    found = degradation_run(tmp_path / "degrade.db", config)
    print("\n", found.to_dict())
    assert found.demoted_day is not None and found.demoted_day > 30
    before, dropped, after = found.periods
    assert after.item_share < 0.25 < dropped.item_share  # the cards stopped leading with it
    assert after.conversion > dropped.conversion
    assert after.conversion > found.without_watch[2].conversion
