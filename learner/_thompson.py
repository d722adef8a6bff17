"""Thompson sampling with partial pooling, as a table of exact probabilities.

Per hook, option k and segment s (a combination of the catalog's `segments` attributes), the
censored counts are successes s_ks and exposure n_ks (`_read_online`). The model is
hierarchical Beta-Binomial: the segment rates of option k scatter around the hook-wide rate
m_k with prior strength κ (a prior of κ m_k successes in κ decisions), so

    θ_ks ~ Beta(1 + κ_k m_k + s_ks, 1 + κ_k (1 - m_k) + n_ks - s_ks),   κ_k = min(κ, n_k / S_k)

with m_k = (s_k + 1/2) / (n_k + 1) from the hook's counts and S_k the number of segments that
have seen option k. κ_k never exceeds the average segment's own exposure to the option, so the
hook-wide rate never outweighs a segment with its share of the data: early on, when the spread
between segments is still invisible and the estimate below says "pool fully", a segment's own
decisions still count as much as the prior (with κ_k = min(κ, n_k), as before, a segment of 8
saw its own data outweighed 8 to 1, and the policy learned the hook-wide best option rather
than each segment's; measured in issue 19's hook-level simulation, the share of the oracle's
lift captured on first_contact_message rose from 34% to 47%, seeds 1-3). κ is
estimated by the method of moments over every option's segments: the between-segment variance
τ² = (Σ n (r - m)² - (S - 1) m (1 - m)) / (n - Σ n² / n), pooled over options, and
κ = m̄ (1 - m̄) / τ² - 1, kept in [`KAPPA_MIN`, `KAPPA_MAX`] (no visible spread: `KAPPA_MAX`,
near full pooling). A stated `prior_strength` replaces the estimate.

**Lead probabilities.** Thompson sampling leads with option k with probability
P(θ_k is the largest draw). There is no closed form for more than two options, so it is
computed by Monte Carlo with `draws` joint draws per segment: the standard error of each
probability is at most 1/(2 √draws) (0.0079 at 4,000 draws; the suite checks the estimate
against numerical integration). The table that is *stored* is what the recommender samples
from, so the propensity it logs is exact whatever the Monte Carlo error: that error only
measures how far the stored table is from ideal Thompson sampling.

**Guard rails.** The table is mixed with a floor (each option ≥ `floor`:
p = floor + (1 - K floor) p_TS) so every option stays observable and off-policy evaluation
stays possible, then moved from the live policy's probabilities by at most `max_step` per
option per refresh (p = live + t (target - live), the largest t ≤ 1 that keeps every change
within `max_step`: a convex mix, so it still sums to 1). Where the live policy gives an
option less than the floor the floor wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

DRAWS = 4_000
FLOOR = 0.02
MAX_STEP = 0.25
KAPPA_MIN, KAPPA_MAX = 2.0, 1_000.0

Array = NDArray[Any]


@dataclass(frozen=True)
class Settings:
    """How continuous learning refreshes a hook's policy (see the module docstring)."""

    draws: int = DRAWS
    floor: float = FLOOR  # each option's least probability
    max_step: float = MAX_STEP  # the most any probability moves per refresh
    prior_strength: float | None = None  # None: estimated from the log
    seed: int = 0

    def __post_init__(self) -> None:
        if self.draws < 100:
            raise ValueError("draws must be at least 100")
        if not 0 <= self.floor < 1:
            raise ValueError("floor must be from 0 to below 1")
        if not 0 < self.max_step <= 1:
            raise ValueError("max_step must be above 0 and at most 1")
        if self.prior_strength is not None and self.prior_strength < 0:
            raise ValueError("prior_strength must be at least 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mc_standard_error(draws: int) -> float:
    """The largest standard error of a lead probability estimated from `draws` draws."""
    return 0.5 / math.sqrt(draws)


def lead_probabilities(alpha: Array, beta: Array, draws: int, rng: np.random.Generator,
                       available: Array | None = None) -> Array:
    """(rows, K): per row, the Monte Carlo share of `draws` joint Beta draws in which each
    option's draw is the largest (of the options `available` in that row: others get 0)."""
    alpha, beta = np.atleast_2d(alpha), np.atleast_2d(beta)
    rows, k = alpha.shape
    out = np.zeros((rows, k))
    for r in range(rows):
        theta = rng.beta(alpha[r], beta[r], size=(draws, k))
        if available is not None:
            theta[:, ~available[r]] = -1.0
        out[r] = np.bincount(theta.argmax(axis=1), minlength=k) / draws
    return out


def prior_strength(successes: Array, exposure: Array) -> float:
    """κ by the method of moments (module docstring); `successes` and `exposure` are
    (segments, K) counts."""
    num = den = 0.0
    m_all = []
    for j in range(successes.shape[1]):
        n, s = exposure[:, j], successes[:, j]
        keep = n > 0
        total = float(n[keep].sum())
        if int(keep.sum()) < 2 or total <= 0:
            continue
        m = float(s[keep].sum()) / total
        r = s[keep] / n[keep]
        spread = float((n[keep] * (r - m) ** 2).sum()) - (keep.sum() - 1) * m * (1 - m)
        num += spread
        den += total - float((n[keep] ** 2).sum()) / total
        m_all.append(m)
    if den <= 0 or not m_all:
        return KAPPA_MAX
    tau2 = num / den
    mbar = float(np.mean(m_all))
    if tau2 <= 0 or mbar <= 0:
        return KAPPA_MAX
    return float(min(KAPPA_MAX, max(KAPPA_MIN, mbar * (1 - mbar) / tau2 - 1)))


def posterior(successes: Array, exposure: Array, kappa: float) -> tuple[Array, Array]:
    """(alpha, beta) of every segment row (S, K) and, in a last row, the hook-wide one."""
    successes, exposure = np.maximum(successes, 0.0), np.maximum(exposure, 0.0)
    s_k, n_k = successes.sum(axis=0), exposure.sum(axis=0)
    # seen successes can outrun a pending exposure: a rate is kept below 1 all the same
    m = np.clip((s_k + 0.5) / (n_k + 1.0), 0.0, 1.0)
    seen = np.maximum((exposure > 0).sum(axis=0), 1)
    strength = np.minimum(kappa, n_k / seen)
    failures = np.maximum(exposure - successes, 0.0)
    alpha = 1.0 + strength * m + successes
    beta = 1.0 + strength * (1 - m) + failures
    wide_a = 1.0 + s_k
    wide_b = 1.0 + np.maximum(n_k - s_k, 0.0)
    return np.vstack([alpha, wide_a]), np.vstack([beta, wide_b])


def guard(target: Array, live: Array, floor: float, max_step: float,
          available: Array | None = None) -> Array:
    """`target` (rows, K) lead probabilities with the floor mixed in, moved from `live` by at
    most `max_step` per option (module docstring); options not `available` in a row stay 0."""
    mask = np.ones(target.shape, dtype=bool) if available is None else available
    k = mask.sum(axis=1, keepdims=True)
    floor_k = np.minimum(floor, 1.0 / k)
    floored = np.where(mask, floor_k + (1 - k * floor_k) * target, 0.0)
    live = np.where(mask, live, 0.0)
    total = live.sum(axis=1, keepdims=True)
    live = np.where(total > 0, live / np.where(total > 0, total, 1.0), floored)
    gap = np.abs(floored - live).max(axis=1, keepdims=True)
    t = np.where(gap > max_step, max_step / np.maximum(gap, 1e-300), 1.0)
    out = live + t * (floored - live)
    low = mask & (out < floor_k)
    if low.any():  # the live policy gave an option less than the floor: lift it
        out = np.where(mask, np.maximum(out, floor_k), 0.0)
        out /= out.sum(axis=1, keepdims=True)
    result: Array = out
    return result


def table_dict(ids: list[str], row: Array) -> Mapping[str, float]:
    return {o: float(p) for o, p in zip(ids, row, strict=True)}
