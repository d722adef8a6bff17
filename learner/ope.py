"""Off-policy evaluation: what a target policy would have earned on data another policy logged.

Every logged decision i has the action shown `a_i`, its reward `r_i` and the exact propensity
`μ_i = μ(a_i | x_i)` the logging policy showed it with. A target policy π gives `π(a_i | x_i)`;
the importance weight is `w_i = π(a_i | x_i) / μ_i`.

* IPW (inverse propensity weighting): `mean(w_i r_i)`: unbiased when every action π can take
  had μ > 0, and high-variance when the weights are large;
* SNIPW (self-normalized IPW): `Σ w_i r_i / Σ w_i`: a little biased, much steadier; equal to
  IPW when the weights average exactly 1;
* DR (doubly robust): `mean(Σ_a π(a|x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i)))` with a reward
  model q: unbiased if either the propensities or q are right, usually the tightest.

    est = ipw(rewards, propensities, target)            # target: π of the logged action
    est.value, est.low, est.high, est.ess
    both = compare(new, old)                            # paired: the same resampled rows

Confidence intervals are percentile bootstrap intervals over decisions (seeded: the same call
gives the same interval). `ess` is Kish's effective sample size of the weights, (Σw)² / Σw²:
how many on-policy decisions the weighted log is worth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

ESTIMATORS = ("ipw", "snipw", "dr")
_CELLS_PER_CHUNK = 4_000_000  # bootstrap indices drawn at once: bounds memory on large logs

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Estimate:
    """A policy value (or a difference of two) with its bootstrap interval."""

    estimator: str  # ipw | snipw | dr
    value: float
    low: float
    high: float
    confidence: float  # of [low, high], e.g. 0.95
    n: int  # logged decisions used
    ess: float  # effective sample size of the importance weights

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Terms:
    """Per-decision terms of one target policy: value = Σ numerator / Σ denominator."""

    estimator: str
    numerator: FloatArray
    denominator: FloatArray
    weights: FloatArray

    @property
    def value(self) -> float:
        """Σ numerator / Σ denominator (0 when no weight falls on the log: SNIPW of a policy
        that never shows what was logged)."""
        den = float(self.denominator.sum())
        return float(self.numerator.sum()) / den if den else 0.0


def importance_weights(target: ArrayLike, propensities: ArrayLike) -> FloatArray:
    """`π(a_i|x_i) / μ(a_i|x_i)`; raises ValueError on a propensity outside (0, 1]."""
    pi = _vector(target, "target")
    mu = _vector(propensities, "propensities")
    if pi.shape != mu.shape:
        raise ValueError(f"target has {pi.size} rows, propensities {mu.size}")
    if np.any(~(mu > 0)) or np.any(mu > 1):
        raise ValueError("logged propensities must be in (0, 1]: a decision logged with "
                         "probability 0 cannot be reweighted")
    if np.any(pi < 0) or np.any(pi > 1):
        raise ValueError("target probabilities must be in [0, 1]")
    return pi / mu


def effective_sample_size(weights: ArrayLike) -> float:
    """Kish's effective sample size (Σw)² / Σw² (0 when every weight is 0)."""
    w = _vector(weights, "weights")
    square = float(np.dot(w, w))
    return float(w.sum()) ** 2 / square if square > 0 else 0.0


def ipw_terms(rewards: ArrayLike, propensities: ArrayLike, target: ArrayLike) -> Terms:
    w = importance_weights(target, propensities)
    r = _rewards(rewards, w.size)
    return Terms("ipw", w * r, np.ones_like(w), w)


def snipw_terms(rewards: ArrayLike, propensities: ArrayLike, target: ArrayLike) -> Terms:
    w = importance_weights(target, propensities)
    r = _rewards(rewards, w.size)
    return Terms("snipw", w * r, w, w)


def dr_terms(actions: ArrayLike, rewards: ArrayLike, propensities: ArrayLike,
             target_all: ArrayLike, predictions: ArrayLike) -> Terms:
    """DR terms: `target_all[i, k]` = π(k | x_i), `predictions[i, k]` = q(x_i, k), and
    `actions[i]` the column of the logged action."""
    pi = _matrix(target_all, "target_all")
    q = _matrix(predictions, "predictions")
    if pi.shape != q.shape:
        raise ValueError(f"target_all is {pi.shape}, predictions {q.shape}")
    a = np.asarray(actions, dtype=np.int64)
    if a.shape != (pi.shape[0],) or np.any(a < 0) or np.any(a >= pi.shape[1]):
        raise ValueError("actions must be one column index per row of target_all")
    rows = np.arange(a.size)
    w = importance_weights(pi[rows, a], propensities)
    r = _rewards(rewards, w.size)
    direct = np.einsum("ij,ij->i", pi, q)
    return Terms("dr", direct + w * (r - q[rows, a]), np.ones_like(w), w)


def ipw(rewards: ArrayLike, propensities: ArrayLike, target: ArrayLike, *,
        n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """IPW estimate of the target policy's mean reward, with a bootstrap interval."""
    return estimate(ipw_terms(rewards, propensities, target), n_boot=n_boot,
                    confidence=confidence, seed=seed)


def snipw(rewards: ArrayLike, propensities: ArrayLike, target: ArrayLike, *,
          n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """Self-normalized IPW estimate, with a bootstrap interval."""
    return estimate(snipw_terms(rewards, propensities, target), n_boot=n_boot,
                    confidence=confidence, seed=seed)


def doubly_robust(actions: ArrayLike, rewards: ArrayLike, propensities: ArrayLike,
                  target_all: ArrayLike, predictions: ArrayLike, *, n_boot: int = 1000,
                  confidence: float = 0.95, seed: int = 0) -> Estimate:
    """Doubly robust estimate (see `dr_terms` for the arrays), with a bootstrap interval."""
    return estimate(dr_terms(actions, rewards, propensities, target_all, predictions),
                    n_boot=n_boot, confidence=confidence, seed=seed)


def evaluate(actions: ArrayLike, rewards: ArrayLike, propensities: ArrayLike,
             target_all: ArrayLike, predictions: ArrayLike | None = None, *,
             n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
             ) -> dict[str, Estimate]:
    """IPW, SNIPW and (with `predictions`) DR of one target policy, keyed by estimator."""
    terms = policy_terms(actions, rewards, propensities, target_all, predictions)
    return {t.estimator: estimate(t, n_boot=n_boot, confidence=confidence, seed=seed)
            for t in terms}


def policy_terms(actions: ArrayLike, rewards: ArrayLike, propensities: ArrayLike,
                 target_all: ArrayLike, predictions: ArrayLike | None = None) -> list[Terms]:
    """The IPW, SNIPW and (with `predictions`) DR terms of one target policy."""
    pi = _matrix(target_all, "target_all")
    a = np.asarray(actions, dtype=np.int64)
    target = pi[np.arange(a.size), a]
    out = [ipw_terms(rewards, propensities, target), snipw_terms(rewards, propensities, target)]
    if predictions is not None:
        out.append(dr_terms(a, rewards, propensities, pi, predictions))
    return out


def estimate(terms: Terms, *, n_boot: int = 1000, confidence: float = 0.95,
             seed: int = 0) -> Estimate:
    """Point estimate and percentile bootstrap interval of one policy's terms."""
    return _estimate(terms, _bootstrap([terms], n_boot, seed)[0], confidence)


def compare(new: Terms, old: Terms, *, n_boot: int = 1000, confidence: float = 0.95,
            seed: int = 0) -> Estimate:
    """`new - old` on the same log, with a paired bootstrap interval (rows resampled once
    for both, so what the two policies share cancels out). `ess` is the new policy's."""
    return paired([new], [old], n_boot=n_boot, confidence=confidence, seed=seed)[2][
        new.estimator]


def paired(new: Sequence[Terms], old: Sequence[Terms], *, n_boot: int = 1000,
           confidence: float = 0.95, seed: int = 0
           ) -> tuple[dict[str, Estimate], dict[str, Estimate], dict[str, Estimate]]:
    """Estimates of two policies and of their difference (`new - old`) for each estimator,
    all from one set of bootstrap resamples of the shared log."""
    return paired_many([(new, old)], n_boot=n_boot, confidence=confidence, seed=seed)[0]


def paired_many(pairs: Sequence[tuple[Sequence[Terms], Sequence[Terms]]], *,
                n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
                ) -> list[tuple[dict[str, Estimate], dict[str, Estimate], dict[str, Estimate]]]:
    """`paired` of each (new, old) over the same log and seed: the same results as one call
    per pair, with the resamples drawn once for all of them."""
    for new, old in pairs:
        if [t.estimator for t in new] != [t.estimator for t in old]:
            raise ValueError("compare terms of one estimator over the same decisions")
    out = []
    sizes: dict[bytes, float] = {}  # a policy's estimators share its weights: one ESS each

    def ess(weights: FloatArray) -> float:
        key = weights.tobytes()
        if key not in sizes:
            sizes[key] = effective_sample_size(weights)
        return sizes[key]

    for (new, old), boots in zip(pairs, _bootstrap_groups(
            [[*new, *old] for new, old in pairs], n_boot, seed), strict=True):
        out_new, out_old, lift = {}, {}, {}
        for i, (a, b) in enumerate(zip(new, old, strict=True)):
            ba, bb = boots[i], boots[len(new) + i]
            out_new[a.estimator] = _estimate(a, ba, confidence, ess(a.weights))
            out_old[b.estimator] = _estimate(b, bb, confidence, ess(b.weights))
            low, high = _interval(ba - bb, confidence, a.value - b.value)
            lift[a.estimator] = Estimate(a.estimator, a.value - b.value, low, high,
                                         confidence, a.weights.size, ess(a.weights))
        out.append((out_new, out_old, lift))
    return out


def _estimate(terms: Terms, boots: FloatArray, confidence: float,
              ess: float | None = None) -> Estimate:
    low, high = _interval(boots, confidence, terms.value)
    return Estimate(terms.estimator, terms.value, low, high, confidence, terms.weights.size,
                    effective_sample_size(terms.weights) if ess is None else ess)


def _bootstrap(terms: Sequence[Terms], n_boot: int, seed: int) -> list[FloatArray]:
    """The statistic of each `terms` on `n_boot` resamples of the rows (shared resamples).

    A resample is n row indices drawn with replacement; its sums are (counts of each row)
    @ (the terms' columns), so all terms cost one matrix product per batch of resamples.
    """
    return _bootstrap_groups([terms], n_boot, seed)[0]


def _bootstrap_groups(groups: Sequence[Sequence[Terms]], n_boot: int, seed: int
                      ) -> list[list[FloatArray]]:
    """`_bootstrap` of each group of terms, the resamples drawn once for all groups: each
    group's sums are the very matrix product its own call would compute."""
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    n = groups[0][0].weights.size
    if n == 0:
        raise ValueError("no logged decisions to evaluate")
    if any(t.weights.size != n for terms in groups for t in terms):
        raise ValueError("compare terms of one estimator over the same decisions")
    columns = [np.column_stack([c for t in terms for c in (t.numerator, t.denominator)])
               for terms in groups]
    rng = np.random.default_rng(seed)
    sums = [np.empty((n_boot, c.shape[1])) for c in columns]
    chunk = max(1, _CELLS_PER_CHUNK // n)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        idx += np.arange(stop - start)[:, None] * n  # one bincount for the whole batch
        counts = np.bincount(idx.ravel(), minlength=(stop - start) * n).reshape(-1, n)
        weights = counts.astype(np.float64)
        for into, c in zip(sums, columns, strict=True):
            into[start:stop] = weights @ c
    with np.errstate(invalid="ignore", divide="ignore"):
        return [[s[:, 2 * i] / s[:, 2 * i + 1] for i in range(len(terms))]
                for s, terms in zip(sums, groups, strict=True)]


def _interval(boots: FloatArray, confidence: float, value: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    finite = boots[np.isfinite(boots)]
    if finite.size == 0:  # SNIPW where no resample holds a weighted row: no spread to show
        return value, value
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high)


def _vector(values: ArrayLike, name: str) -> FloatArray:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite")
    return out


def _matrix(values: ArrayLike, name: str) -> FloatArray:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 2:
        raise ValueError(f"{name} must be a (decisions × actions) matrix")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite")
    return out


def _rewards(rewards: ArrayLike, n: int) -> FloatArray:
    r = _vector(rewards, "rewards")
    if r.size != n:
        raise ValueError(f"rewards has {r.size} rows, expected {n}")
    return r
