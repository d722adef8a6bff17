"""Off-policy estimators on synthetic logs with known answers and on the Open Bandit Dataset.

OBD (ZOZOTOWN, small sample of the uniform-random campaign "all"): 10,000 impressions of 80
items in 3 positions, each logged with its true propensity 1/80. Simplification: the action
is the item; the position is context (OBD's propensity is the item's chance to be shown at the
position the row records, which is what we reweight by).
"""

from __future__ import annotations

import csv
import gzip
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from learner import ope
from learner.model import OutcomeModel
from tests.conftest import CORPORA

OBD = CORPORA / "bandit" / "obd" / "random" / "all"  # all.csv is stored gzipped


@cache
def obd() -> dict[str, np.ndarray]:
    """The log as arrays: item, click, propensity, position, user features, affinities."""
    with gzip.open(OBD / "all.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with Path(OBD / "item_context.csv").open(newline="") as handle:
        items = {int(r["item_id"]): float(r["item_feature_0"]) for r in csv.DictReader(handle)}
    n_items = len(items)
    return {
        "item": np.array([int(r["item_id"]) for r in rows]),
        "click": np.array([int(r["click"]) for r in rows], dtype=np.float64),
        "propensity": np.array([float(r["propensity_score"]) for r in rows]),
        "position": np.array([r["position"] for r in rows], dtype=object),
        **{f"user_feature_{j}": np.array([r[f"user_feature_{j}"] for r in rows], dtype=object)
           for j in range(4)},
        "affinity": np.array([[float(r[f"user-item_affinity_{k}"]) for k in range(n_items)]
                              for r in rows]),
        "item_feature_0": np.array([items[k] for k in range(n_items)]),
    }


def obd_rows(data: dict[str, np.ndarray], rows: np.ndarray, item: np.ndarray
             ) -> dict[str, np.ndarray]:
    """Model features of `rows` had item `item[i]` been shown (action-dependent columns too)."""
    return {
        "item": np.array([f"i{k}" for k in item], dtype=object),
        "position": data["position"][rows],
        **{f"user_feature_{j}": data[f"user_feature_{j}"][rows] for j in range(4)},
        "affinity": data["affinity"][rows, item],
        "item_feature_0": data["item_feature_0"][item],
        "reward": data["click"][rows],
    }


def test_ipw_of_the_logging_policy_is_the_observed_click_rate_exactly() -> None:
    data = obd()
    n_items = data["affinity"].shape[1]
    uniform = np.full(data["item"].size, 1 / n_items)  # π(logged item) of the uniform policy
    est = ope.ipw(data["click"], data["propensity"], uniform, n_boot=200)
    observed = data["click"].sum() / data["click"].size
    assert abs(est.value - observed) < 1e-12
    assert abs(ope.snipw(data["click"], data["propensity"], uniform).value - observed) < 1e-12
    assert est.ess == pytest.approx(data["click"].size)
    assert est.low <= observed <= est.high


def test_learned_click_model_policy_on_obd_with_ipw_snipw_dr() -> None:
    """A LightGBM click model fitted on the first half (by time) gives an epsilon-greedy
    policy over the 80 items; all three estimators judge it on the second half."""
    data = obd()
    n, n_items = data["item"].size, data["affinity"].shape[1]
    train, test = np.arange(n // 2), np.arange(n // 2, n)
    model = OutcomeModel(action="item", n_estimators=100, learning_rate=0.05, num_leaves=7,
                         min_child_samples=200, reg_lambda=10.0, seed=0)
    model.fit(obd_rows(data, train, data["item"][train]))
    q = np.column_stack([
        model.predict_proba(obd_rows(data, test, np.full(test.size, k)))[:, 1]
        for k in range(n_items)])
    epsilon = 0.1
    target = np.full((test.size, n_items), epsilon / n_items)
    target[np.arange(test.size), q.argmax(axis=1)] += 1 - epsilon
    results = ope.evaluate(data["item"][test], data["click"][test], data["propensity"][test],
                           target, q, n_boot=500, seed=1)
    assert set(results) == {"ipw", "snipw", "dr"}
    for est in results.values():
        assert est.low <= est.value <= est.high
        assert abs(est.value) < 0.1  # a click rate (OBD's is 0.38%); DR may dip below 0
        assert 0 < est.ess < test.size  # a greedy policy reweights the log heavily
    assert results["ipw"].value >= 0 and results["snipw"].value >= 0
    # The same call gives the same intervals: the bootstrap is seeded.
    again = ope.evaluate(data["item"][test], data["click"][test], data["propensity"][test],
                         target, q, n_boot=500, seed=1)
    assert again == results
    # Against the logging policy on the same rows (paired): the difference and its interval.
    uniform = np.full((test.size, n_items), 1 / n_items)
    terms = ope.policy_terms(data["item"][test], data["click"][test], data["propensity"][test],
                             target, q)
    base = ope.policy_terms(data["item"][test], data["click"][test], data["propensity"][test],
                            uniform, q)
    lift = ope.compare(terms[2], base[2], n_boot=500, seed=1)
    assert lift.low <= lift.value <= lift.high
    assert lift.value == pytest.approx(results["dr"].value - base[2].value)


def test_snipw_equals_ipw_when_the_weights_average_one() -> None:
    rng = np.random.default_rng(3)
    n = 1000
    mu = np.full(n, 0.5)
    target = np.where(np.arange(n) % 2 == 0, 0.25, 0.75)  # weights 0.5 and 1.5: mean exactly 1
    rewards = (rng.random(n) < 0.3).astype(float)
    assert ope.importance_weights(target, mu).mean() == 1.0
    a = ope.ipw(rewards, mu, target, n_boot=300)
    b = ope.snipw(rewards, mu, target, n_boot=300)
    assert b.value == pytest.approx(a.value, abs=1e-15)
    assert a.low <= a.value <= a.high and b.low <= b.value <= b.high
    # Weights that do not average one: the two differ.
    skewed = np.where(np.arange(n) % 2 == 0, 0.1, 0.75)
    assert ope.snipw(rewards, mu, skewed).value != pytest.approx(
        ope.ipw(rewards, mu, skewed).value)


def synthetic(n: int, seed: int) -> dict[str, np.ndarray]:
    """A 3-action contextual bandit logged by a known stochastic policy, with true values."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, n)
    truth = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])  # P(reward | x, action)
    logging = np.array([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]])
    actions = np.array([rng.choice(3, p=logging[xi]) for xi in x])
    rewards = (rng.random(n) < truth[x, actions]).astype(float)
    return {"x": x, "truth": truth, "actions": actions, "rewards": rewards,
            "propensities": logging[x, actions], "q": truth[x]}


def test_estimators_recover_a_known_policy_value() -> None:
    log = synthetic(20_000, seed=5)
    greedy = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])[log["x"]]  # best action per context
    true_value = float(np.mean([0.5 if xi == 0 else 0.6 for xi in log["x"]]))
    results = ope.evaluate(log["actions"], log["rewards"], log["propensities"], greedy,
                           log["q"], n_boot=300)
    for est in results.values():
        assert est.contains(true_value), est
        assert abs(est.value - true_value) < 0.02
    # DR with the true reward model has much less variance than IPW.
    assert (results["dr"].high - results["dr"].low) < (results["ipw"].high - results["ipw"].low)
    # DR with a zero reward model is IPW.
    zero = ope.doubly_robust(log["actions"], log["rewards"], log["propensities"], greedy,
                             np.zeros_like(greedy), n_boot=10)
    assert zero.value == pytest.approx(results["ipw"].value)


def test_paired_comparisons_sharing_resamples_equal_one_call_each() -> None:
    log = synthetic(60_000, seed=8)  # 67 resamples per batch: 200 take three batches
    greedy = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])[log["x"]]
    uniform = np.full_like(greedy, 1 / 3)
    mixed = 0.9 * greedy + 0.1 * uniform
    terms = [ope.policy_terms(log["actions"], log["rewards"], log["propensities"], pi, log["q"])
             for pi in (greedy, mixed, uniform)]
    pairs = [(terms[0], terms[1]), (terms[1], terms[2])]
    shared = ope.paired_many(pairs, n_boot=200, confidence=0.9, seed=3)
    assert shared == [ope.paired(new, old, n_boot=200, confidence=0.9, seed=3)
                      for new, old in pairs]
    assert shared[0][2] != ope.paired(*pairs[0], n_boot=200, confidence=0.9, seed=4)[2]
    for (new, old), (to_new, to_old, lift) in zip(pairs, shared, strict=True):
        for a, b in zip(new, old, strict=True):  # each one's own weights' ESS
            assert to_new[a.estimator].ess == ope.effective_sample_size(a.weights)
            assert lift[a.estimator].ess == ope.effective_sample_size(a.weights)
            assert to_old[b.estimator].ess == ope.effective_sample_size(b.weights)


def test_intervals_cover_the_truth_at_about_their_confidence() -> None:
    greedy = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    covered = 0
    for seed in range(40):
        log = synthetic(800, seed=100 + seed)
        true_value = float(np.mean(np.where(log["x"] == 0, 0.5, 0.6)))
        est = ope.ipw(log["rewards"], log["propensities"],
                      greedy[log["x"], log["actions"]], n_boot=300, seed=seed)
        covered += est.contains(true_value)
    assert covered >= 34  # 95% intervals: 38 of 40 expected; 34 is far in the tail


def test_effective_sample_size() -> None:
    assert ope.effective_sample_size(np.ones(50)) == pytest.approx(50)
    assert ope.effective_sample_size(np.r_[np.zeros(49), 5.0]) == pytest.approx(1)
    assert ope.effective_sample_size(np.zeros(3)) == 0.0


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="propensities"):
        ope.ipw([1.0, 0.0], [0.5, 0.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="target"):
        ope.ipw([1.0, 0.0], [0.5, 0.5], [0.5, 1.5])
    with pytest.raises(ValueError, match="rows"):
        ope.ipw([1.0], [0.5, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="actions"):
        ope.doubly_robust([0, 3], [1.0, 0.0], [0.5, 0.5], np.full((2, 3), 1 / 3),
                          np.zeros((2, 3)))
    with pytest.raises(ValueError, match="same decisions"):
        a = ope.ipw_terms([1.0, 0.0], [0.5, 0.5], [0.5, 0.5])
        ope.compare(a, ope.snipw_terms([1.0, 0.0], [0.5, 0.5], [0.5, 0.5]))
