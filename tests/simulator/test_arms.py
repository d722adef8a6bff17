"""Continuous learning at the calibrated strength (issue 19): against the catalog default and
an oracle that knows the hidden model, on the same world and field force."""

from __future__ import annotations

from pathlib import Path

import pytest

import analytics
from engine.store.recorded_clock import simulated_clock
from nextmove import open_store
from simulator import SimulationConfig
from simulator.arms import ARMS, Rate, run_arm, run_arms

SEED = 7  # the population (the demo's default); the hidden world is 2018


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.xfail(strict=True, reason=(
    "issue 19's target is not met: measured at 300 distributors x 60 days, strength 1.0, with "
    "the intro video learning from its being played and the prior worth at most a segment's "
    "own exposure, continuous learning captured 28.5% of the oracle's conversion lift with "
    "seed 7 (95% CI 1% to 54%; 17.5% before), 29.5% with seed 11 (9% to 49%; 6% before) and "
    "18.9% with seed 13 (-7% to 42%). A segment sees about 300 decisions of a hook in 60 days "
    "and about 25 conversions within the horizon: the presentation (a third of the lift, four "
    "options) is never learned at this volume."))
def test_continuous_learning_captures_half_the_oracles_lift(tmp_path: Path) -> None:
    """One 60-day run of 300 distributors at content strength 1.0 (seed 7, world 2018): the
    continuous arm's conversion gain over the catalog default is at least half the oracle's.
    The three arms run in parallel processes (about 17 minutes on two cores shared with a
    load of 10-16; well over the ~90 s a slow test should take)."""
    found = run_arms(tmp_path / "arms.db", SimulationConfig(
        distributors=300, days=60, seed=SEED, content_strength=1.0))
    assert set(found.arms) == set(ARMS)
    captured = found.captured
    assert captured is not None, found.to_dict()
    share, low, high = captured
    assert low <= share <= high
    assert share >= 0.5, found.to_dict()


def test_a_rate_has_a_wilson_interval() -> None:
    r = Rate(30, 200)
    low, high = r.interval
    assert low < r.value < high and low == pytest.approx(0.1071, abs=1e-3)
    assert Rate(0, 0).interval == (0.0, 0.0) and Rate(0, 10).interval[0] == pytest.approx(0)


def test_an_arms_first_sales_are_the_indicator_every_command_reads(tmp_path: Path) -> None:
    """Sales within 14 days of enrolment as `indicators` counts them (times, not whole
    simulated days: a sale 14 days and 14 hours after enrolment is not within 14 days). This
    seed has such a sale: counted by days, the catalog arm had 14 first sales, not 13."""
    arm = run_arm(tmp_path / "catalog.db", SimulationConfig(distributors=40, days=30, seed=5),
                  "catalog")
    store = open_store(tmp_path / "catalog.db")
    try:
        found = analytics.indicators(store, as_of=simulated_clock(store))
    finally:
        store.dispose()
    within = sum(1 for d in found.distributors if d.first_sale_within)
    assert (arm.first_sale.hits, arm.first_sale.n) == (within, found.observed) == (13, 40)
