"""The learner never ships a policy learned from noise (issue 18): null tests on permuted
logs, calibration of the claimed interval against a known true value, the exploration rate
kept apart from lift, numeric segments, and the power estimate of a hook left alone."""

from __future__ import annotations

import csv
import gzip
from functools import cache

import numpy as np
import pytest

from content_catalog import Catalog, catalog_policy, load_catalog_text
from learner import _gate
from learner._segments import numeric_levels
from learner.rewrite import propose_from
from tests.conftest import FIXTURES
from tests.learner import _sparse_sim as sim

OBD = FIXTURES / "bandit" / "obd" / "random_all.csv.gz"
OBD_HOOK = "recommend"


@cache
def obd_rows() -> list[dict[str, str]]:
    with gzip.open(OBD, "rt", newline="") as handle:
        return list(csv.DictReader(handle))


@cache
def obd_catalog() -> Catalog:
    items = "".join(f"  - {{id: i{k}, kind: message_template, title: i{k}, body: x, "
                    f"hooks: [{OBD_HOOK}]}}\n" for k in range(80))
    return load_catalog_text(f"catalog: obd\nbrand: OBD\nlocale: en-US\nitems:\n{items}")


def obd_log(permute_seed: int) -> dict[str, np.ndarray]:
    """The Open Bandit sample as decisions of one hook, its clicks permuted across rows."""
    rows = obd_rows()
    n = len(rows)
    click = np.array([int(r["click"]) for r in rows], dtype=np.int8)
    return {
        "case_id": np.array([f"c{i}" for i in range(n)], dtype=object),
        "hook": np.full(n, OBD_HOOK, dtype=object),
        "step_id": np.full(n, OBD_HOOK, dtype=object),
        "shown": np.array([f"i{r['item_id']}" for r in rows], dtype=object),
        "propensity": np.array([float(r["propensity_score"]) for r in rows]),
        "reward": np.random.default_rng(permute_seed).permutation(click),
        "step_index": np.zeros(n, dtype=np.int64),
        "hours_since_start": np.zeros(n),
        "position": np.array([r["position"] for r in rows], dtype=object),
        **{f"user_feature_{j}": np.array([r[f"user_feature_{j}"] for r in rows], dtype=object)
           for j in range(4)},
    }


def test_the_obd_fixture_is_the_uniform_random_sample() -> None:
    data = obd_log(0)
    assert data["reward"].size == 10_000 and int(data["reward"].sum()) == 38
    assert set(data["propensity"]) == {1 / 80}
    assert len(set(data["shown"])) == 80


def test_numeric_bins_are_cut_on_the_rows_they_are_fitted_on() -> None:
    visits = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, np.nan])
    fit = np.arange(visits.size) < 10  # 12 is seen only outside the fit rows
    levels, codes = numeric_levels(visits, fit, 4, 100) or ([], np.zeros(0))
    assert [min(v) for v in levels] == [0.0, 3.0, 5.0, 7.0]  # quartiles, between values
    assert levels[0] == (0.0, 1.0, 2.0, False, True)  # a flag sent as a bool matches too
    assert codes.tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3, -1, -1]  # 12: no rule lists it
    flags, flag_codes = numeric_levels(np.array([0.0, 1.0, 1.0]), np.ones(3, bool), 4, 100) \
        or ([], np.zeros(0))
    assert flags == [(0.0, False), (1.0, True)] and flag_codes.tolist() == [0, 1, 1]
    assert numeric_levels(np.arange(500.0), np.ones(500, bool), 4, 100) is None  # an amount
    assert numeric_levels(np.ones(5), np.ones(5, bool), 4, 100) is None  # a constant


def test_a_numeric_attribute_defines_a_segment() -> None:
    """The best offer depends on the tier and on whether `visits` is at least 5."""
    data = sim.log(6000, seed=3, base=0.05, effect=3.0)
    hook = propose_from(data, sim.catalog(), sim.active(), process_id="sparse",
                        outcome="sale", n_boot=200).hook(sim.HOOK)
    assert {"tier", "visits"} <= set(hook.features)  # a noise attribute may ride along
    assert hook.beats
    options = sim.catalog().options_for(sim.HOOK)
    for tier in ("gold", "silver", "bronze"):
        for visits, returning in ((2, True), (7, False)):  # counts sent as ints, flags as bools
            context = {"tier": tier, "visits": visits, "returning": returning,
                       "market": "US", "locale": "en-US"}
            row = {"tier": np.array([tier], dtype=object), "visits": np.array([visits])}
            assert hook.policy.rank(options, context)[0].option_id == sim.OFFERS[
                int(sim.best(row)[0])]
    binned = [r for r in hook.policy.rules if "visits" in r.when]
    assert binned and all(isinstance(r.when["visits"], tuple) for r in binned)
    assert any("visits " in r for r in hook.reasons)  # a bin is named by its range
    truth = sim.true_value(hook.policy, base=0.05, effect=3.0)
    assert hook.new["dr"].low <= truth <= hook.new["dr"].high


def test_a_lower_exploration_rate_is_not_lift() -> None:
    """One offer is best for everyone and the active policy already leads with it at
    epsilon 0.2: the proposal (the same leader at 0.1) earns more, but only by exploring
    less, so it is reported as exploration and nothing is applied."""
    data = sim.log(6000, seed=5, base=0.05, effect=3.0)
    data["tier"] = np.full(data["tier"].size, "gold", dtype=object)
    data["visits"] = np.zeros(data["visits"].size)  # offer_a best everywhere (3x the rest)
    rng = np.random.default_rng(5)
    shown = np.array([sim.OFFERS.index(s) for s in data["shown"]])
    data["reward"] = (rng.random(shown.size) < np.where(shown == 0, 0.2, 0.05)).astype(np.int8)
    hook = propose_from(data, sim.catalog(), sim.active(), process_id="sparse",
                        outcome="sale", n_boot=200).hook(sim.HOOK)
    assert hook.policy.rank(sim.catalog().options_for(sim.HOOK), {})[0].option_id == "offer_a"
    assert hook.features == ()
    assert hook.exploration["dr"].low > 0.005  # 0.1 × 4/5 × 0.15 = 0.012 by exploring less
    assert hook.new["dr"].value - hook.current["dr"].value > 0.005
    assert hook.lift["dr"].value == 0.0 and hook.lift["snipw"].value == 0.0
    assert not hook.beats
    shown_dict = hook.to_dict()
    assert shown_dict["exploration"]["current"] == {"method": "epsilon", "epsilon": 0.2}
    assert shown_dict["exploration"]["new"] == {"method": "epsilon", "epsilon": 0.1}
    assert shown_dict["gate"] == {"estimators": ["dr", "snipw"], "min_lift": 0.001,
                                  "passed": {"dr": False, "snipw": False}}


def test_a_hook_left_alone_says_how_many_decisions_it_would_need() -> None:
    data = sim.log(10_000, seed=7, effect=1.0, permute=True)
    hook = propose_from(data, sim.catalog(), sim.active(), process_id="sparse",
                        outcome="sale", n_boot=200).hook(sim.HOOK)
    assert not hook.beats
    power = hook.to_dict()["power"]
    assert power["base_rate"] == pytest.approx(data["reward"].mean(), rel=0.01)
    # Two leaders logged at 1/5 each: variance ≈ p (5 + 5); z 1.645 (one-sided 95%) + 0.842.
    expected = ((1.645 + 0.842) ** 2) * power["base_rate"] * 10 / 0.001**2
    assert power["needed"] == pytest.approx(expected, rel=0.15)
    assert power["needed"] > 10 * power["decisions"] and power["power"] < 0.2
    why = next(r for r in hook.reasons if "lower bound is not above" in r)
    assert f"{power['needed']:,} decisions are needed" in why
    assert hook.to_dict()["lift"]["dr"]["low"] < 0.001


def test_power_grows_with_the_log_and_is_enough_at_the_size_it_names() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    actions = rng.integers(0, 4, n)
    mu = np.full(n, 0.25)
    rewards = (rng.random(n) < 0.05).astype(float)
    lead_new, lead_old = np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)
    p = _gate.power(actions, rewards, mu, lead_new, lead_old, min_lift=0.01, confidence=0.9)
    assert p.sd == pytest.approx(np.sqrt(p.base_rate * 8), rel=0.1)
    at_needed = _gate.power(actions[: p.needed], rewards[: p.needed], mu[: p.needed],
                            lead_new[: p.needed], lead_old[: p.needed], min_lift=0.01,
                            confidence=0.9)
    assert 0.7 < at_needed.power < 0.9  # sized for 80%


def _applied_on_permuted(make: object, seeds: range) -> list[int]:
    out = []
    for seed in seeds:
        data, catalog, active = make(seed)  # type: ignore[operator]
        hooks = propose_from(data, catalog, active, process_id="null", outcome="sale",
                             n_boot=300, seed=seed).hooks
        out += [seed for h in hooks if h.beats]
    return out


@pytest.mark.slow
def test_permuted_sparse_logs_apply_nothing() -> None:
    """10,000 uniformly logged decisions converting ~0.5%, outcomes permuted: in at least 19
    of 20 seeds nothing is applied (measured: 0 of 20; before issue 18, 1 of 20 with a
    claimed value of 1.4x the truth)."""
    applied = _applied_on_permuted(
        lambda s: (sim.log(10_000, seed=100 + s, effect=1.0, permute=True), sim.catalog(),
                   sim.active()), range(20))
    assert len(applied) <= 1, applied


@pytest.mark.slow
def test_permuted_open_bandit_logs_apply_nothing() -> None:
    """The Open Bandit sample (80 items, 0.38% clicks), clicks permuted 20 ways."""
    catalog = obd_catalog()
    active = {OBD_HOOK: catalog_policy(catalog, OBD_HOOK)}
    applied = _applied_on_permuted(lambda s: (obd_log(s), catalog, active), range(20))
    assert len(applied) <= 1, applied


@pytest.mark.slow
def test_the_claimed_interval_covers_the_true_value_of_the_policy() -> None:
    """Randomized logs with a real segment effect and a known response: the 90% DR interval
    claimed for the proposed policy covers its true value in at least 85% of 40 seeds.

    The claim is of the procedure run on 4/5 of the log (each fold judged by the policy
    learned without it); the policy applied is refitted on all of it. Where learning is
    starved for data the refitted policy is better than claimed (effect 1.5, 4,000 decisions:
    27 of 40 covered, every miss with the truth above the interval). Here (effect 3) the
    segments are found in every fold; measured 35 of 40 at 6,000 decisions and 33 of 40 at
    4,000, the misses from where the refit's quantile bins fall: the bootstrap holds the
    judged policies fixed and leaves out how the refitted policy differs from them."""
    base, effect = 0.05, 3.0
    covered, applied, misses = 0, 0, []
    for seed in range(40):
        data = sim.log(6000, seed=200 + seed, base=base, effect=effect)
        hook = propose_from(data, sim.catalog(), sim.active(), process_id="calibration",
                            outcome="sale", n_boot=300, seed=seed).hook(sim.HOOK)
        truth = sim.true_value(hook.policy, base=base, effect=effect)
        applied += hook.beats
        if hook.new["dr"].contains(truth):
            covered += 1
        else:
            misses.append((seed, round(truth, 4), round(hook.new["dr"].low, 4),
                           round(hook.new["dr"].high, 4)))
    assert covered >= 34, misses
    assert applied >= 20  # the effect is real: most seeds apply
