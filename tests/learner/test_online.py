"""Continuous learning (issue 19): Thompson sampling with partial pooling, exact propensities,
guard rails, censored outcomes, and no rollout from noise."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from scipy import integrate, stats

from learner import _thompson, ope
from learner._read_online import OnlineLog, exposure
from learner._thompson import Settings
from learner.rewrite import propose_from
from tests.learner import _bandit_world as world


def exact_lead(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """P(option k's draw is the largest) by numerical integration."""
    out = []
    for k in range(alpha.size):
        def f(x: float, k: int = k) -> float:
            value = float(stats.beta.pdf(x, alpha[k], beta[k]))
            for j in range(alpha.size):
                if j != k:
                    value *= float(stats.beta.cdf(x, alpha[j], beta[j]))
            return value
        out.append(integrate.quad(f, 0, 1, limit=200)[0])
    return np.array(out)


@pytest.mark.parametrize("alpha,beta", [
    ([3.0, 4.0, 2.5], [30.0, 31.0, 20.0]),
    ([1.0, 1.0], [1.0, 1.0]),
    ([12.0, 15.0, 9.0, 11.0], [88.0, 90.0, 70.0, 95.0]),
    ([40.0, 2.0, 5.0], [60.0, 90.0, 50.0]),
])
def test_monte_carlo_lead_probabilities_are_within_their_stated_error(
        alpha: list[float], beta: list[float]) -> None:
    """4,000 draws: each estimate within 4 binomial standard errors of the integral, and that
    error never above the stated bound 1/(2 √draws) = 0.0079."""
    a, b = np.array(alpha), np.array(beta)
    truth = exact_lead(a, b)
    assert truth.sum() == pytest.approx(1.0, abs=1e-6)
    draws = _thompson.DRAWS
    for seed in range(3):
        got = _thompson.lead_probabilities(a, b, draws, np.random.default_rng(seed))[0]
        se = np.sqrt(truth * (1 - truth) / draws)
        assert np.all(se <= _thompson.mc_standard_error(draws) + 1e-12)
        assert np.all(np.abs(got - truth) <= 4 * se + 1e-9), (got, truth)


def test_the_floor_and_the_step_cap_hold() -> None:
    target = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    live = np.array([[0.2, 0.4, 0.4], [1 / 3, 1 / 3, 1 / 3]])
    out = _thompson.guard(target, live, floor=0.05, max_step=0.25)
    assert np.allclose(out.sum(axis=1), 1.0)
    assert out.min() >= 0.05 - 1e-12
    assert np.abs(out - live).max() <= 0.25 + 1e-12
    moved = _thompson.guard(target, live, floor=0.05, max_step=1.0)  # no cap: floor mix only
    assert moved[0].tolist() == pytest.approx([0.9, 0.05, 0.05])


def test_a_small_segment_borrows_from_the_hook() -> None:
    """One segment with 5 decisions, the others with hundreds: its posterior mean sits near
    the hook-wide rate, not at its own 0 of 5."""
    succ = np.array([[30.0, 10.0], [28.0, 11.0], [0.0, 0.0]])
    expo = np.array([[100.0, 100.0], [100.0, 100.0], [5.0, 5.0]])
    kappa = _thompson.prior_strength(succ, expo)
    assert _thompson.KAPPA_MIN <= kappa <= _thompson.KAPPA_MAX
    alpha, beta = _thompson.posterior(succ, expo, kappa)
    mean = alpha / (alpha + beta)
    assert mean[2, 0] > 0.2 and mean[2, 1] < mean[2, 0]  # option 0 still leads there
    assert mean.shape == (4, 2)  # three segments and the hook-wide row


def test_the_prior_strength_follows_the_spread_between_segments() -> None:
    rng = np.random.default_rng(0)
    n = np.full((200, 1), 2_000.0)
    for sd, lo, hi in ((0.02, 300, 900), (0.1, 12, 32)):
        rate = np.clip(0.3 + sd * rng.standard_normal((200, 1)), 0.01, 0.99)
        kappa = _thompson.prior_strength(rng.binomial(2000, rate).astype(float), n)
        # the truth: 0.21 / sd² - 1 (about 524 and 20)
        assert lo < kappa < hi, (sd, kappa)


def _pending_log(n: int, seed: int) -> tuple[OnlineLog, np.ndarray]:
    rng = np.random.default_rng(seed)
    start = np.datetime64(world.START, "us")
    acted = start + (rng.uniform(0, 30, n) * 86_400e6).astype("timedelta64[us]")
    hit = rng.random(n) < 0.2
    delay = (rng.exponential(3, n).clip(0, 13.9) * 86_400e6).astype("timedelta64[us]")
    outcome = np.where(hit, acted + delay, np.datetime64("NaT", "us"))
    obj = np.empty(n, dtype=object)
    obj[:] = "a"
    log = OnlineLog(obj, obj, np.ones(n), np.ones(n, dtype=np.int64), acted,
                    acted + np.timedelta64(14, "D"), outcome)
    return log, hit


def test_an_outcome_not_seen_yet_is_pending_not_a_failure() -> None:
    """Rate 0.2 with outcomes 0-14 days late, looked at on day 30: counting pending
    decisions as failures says about 0.15; the censored count says 0.2."""
    log, _ = _pending_log(20_000, 1)
    now = world.START + timedelta(days=30)
    success, weight = exposure(log, now)
    assert success.sum() / weight.sum() == pytest.approx(0.2, abs=0.01)
    assert success.sum() / len(log) < 0.18  # the naive rate, biased down
    settled = log.settles_at <= np.datetime64(now, "us")
    assert np.all(weight[settled] == 1.0) and np.all(weight[~settled] <= 1.0)
    assert np.mean(weight[~settled]) < 0.9
    fresh = log.acted_at > np.datetime64(now - timedelta(hours=1), "us")
    assert weight[fresh].max() < 0.05  # an hour-old decision is hardly exposed yet
    later = exposure(log, world.START)  # before any decision: nothing counted
    assert later[1].sum() == 0


def test_continuous_learning_moves_towards_the_best_offer() -> None:
    run = world.run(30, 150, seed=1)
    early, late = run.true_rate[:150 * 5].mean(), run.true_rate[-150 * 10:].mean()
    assert late > early
    assert late > world.uniform_rate() + 0.3 * (world.best_rate() - world.uniform_rate())
    assert run.log.propensity.min() >= Settings().floor - 1e-12
    explain = run.policies[-1].explain["online"]
    assert explain["draws"] == _thompson.DRAWS and explain["prior_strength_estimated"]


@pytest.mark.slow
def test_ipw_of_the_uniform_policy_on_a_continuous_log_recovers_its_value() -> None:
    """The logged propensities are exact: IPW of uniform over the continuous policy's log
    covers uniform's true value (0.1167) in 18 of 20 seeds or more (95% intervals; measured:
    19 of 20)."""
    truth = world.uniform_rate()
    covered = 0
    for seed in range(20):
        run = world.run(20, 120, seed=100 + seed)
        pi = np.full(len(run.log), 1 / len(world.OFFERS))
        est = ope.ipw(run.reward, run.log.propensity, pi, n_boot=400, seed=seed)
        covered += est.contains(truth)
    assert covered >= 18, covered


@pytest.mark.slow
def test_a_permuted_continuous_log_rolls_out_nothing() -> None:
    """The honesty test (tests/learner/test_honesty.py) on continuous-learning logs: the
    rewards permuted across decisions, the batch learner's gate applies nothing in at least
    7 of 8 seeds (measured: none applied in 8)."""
    catalog = world.catalog()
    from content_catalog import catalog_policy

    active = {world.HOOK: catalog_policy(catalog, world.HOOK)}
    applied = []
    for seed in range(8):
        run = world.run(20, 150, seed=300 + seed, permute=True)
        n = len(run.log)
        data = {
            "case_id": np.array([f"c{seed}_{i}" for i in range(n)], dtype=object),
            "hook": run.log.hook, "step_id": run.log.hook, "shown": run.log.shown,
            "propensity": run.log.propensity, "reward": run.reward.astype(np.int8),
            "step_index": np.zeros(n, dtype=np.int64), "hours_since_start": np.zeros(n),
            "tier": run.log.segment["tier"], "channel": run.log.segment["channel"],
        }
        hooks = propose_from(data, catalog, active, process_id="null", outcome="sale",
                             n_boot=300, seed=seed).hooks
        applied += [seed for h in hooks if h.beats]
    assert len(applied) <= 1, applied
