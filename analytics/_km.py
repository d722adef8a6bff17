"""Kaplan–Meier estimates with Greenwood confidence bands, and the log-rank test.

Small and exact, in plain Python: the inputs are one row per subject (a duration and whether
the event happened), already aggregated by the database. lifelines would do the same, but it
pins pandas below 3 (this project is on pandas 3), so the three formulas live here, checked
against textbook values in tests/analytics/test_km.py:

* S(t) = Π (1 − d_i / n_i) over event times t_i ≤ t;
* Var S(t) by Greenwood, Σ d_i / (n_i (n_i − d_i)); the band uses the log(−log) transform
  (as lifelines and R's `conf.type = "log-log"` do), so it stays inside [0, 1];
  before any event, the exact (Clopper–Pearson) bound for 0 events in the n at risk;
* log-rank: Σ (O − E) over the groups with the hypergeometric covariance, χ² on k − 1
  degrees of freedom (Peto & Peto; R's `survdiff`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Step:
    """The estimate just after `time`."""

    time: float
    at_risk: int
    events: int
    censored: int
    survival: float
    se: float  # Greenwood standard error of survival
    lower: float
    upper: float


def kaplan_meier(durations: Sequence[float], events: Sequence[bool], *,
                 z: float = Z95) -> list[Step]:
    """One step per distinct time at which something happened (an event or a censoring)."""
    pairs = sorted(zip(durations, events, strict=True))
    at_risk = len(pairs)
    survival, greenwood = 1.0, 0.0
    out: list[Step] = []
    i = 0
    while i < len(pairs):
        time = pairs[i][0]
        died = censored = 0
        while i < len(pairs) and pairs[i][0] == time:
            died += 1 if pairs[i][1] else 0
            censored += 0 if pairs[i][1] else 1
            i += 1
        if died:
            survival *= 1.0 - died / at_risk
            greenwood = (greenwood + died / (at_risk * (at_risk - died))
                         if at_risk > died else math.inf)
        lower, upper = _band(survival, greenwood, z, at_risk)
        out.append(Step(time, at_risk, died, censored, survival,
                        survival * math.sqrt(greenwood) if math.isfinite(greenwood) else 0.0,
                        lower, upper))
        at_risk -= died + censored
    return out


def _band(survival: float, greenwood: float, z: float, at_risk: int) -> tuple[float, float]:
    """log(−log) transformed interval: exp(−exp(log(−log S) ± z σ)), σ² = V / (log S)²."""
    if survival >= 1.0:
        # no event yet: Greenwood's variance is 0, yet 0 of n is no proof the rate is 0; the
        # exact (Clopper–Pearson) bound for 0 events in the n still at risk: (α/2)^(1/n)
        tail = 0.5 * math.erfc(z / math.sqrt(2.0))
        return tail ** (1.0 / at_risk), 1.0
    if greenwood == 0.0:
        return survival, survival
    if survival <= 0.0 or not math.isfinite(greenwood):
        return 0.0, 0.0
    log_s = math.log(survival)
    sigma = math.sqrt(greenwood) / abs(log_s)
    centre = math.log(-log_s)
    return math.exp(-math.exp(centre + z * sigma)), math.exp(-math.exp(centre - z * sigma))


def survival_at(steps: Sequence[Step], time: float) -> Step | None:
    """The estimate at `time` (the last step at or before it), None before the first."""
    found = None
    for step in steps:
        if step.time > time:
            break
        found = step
    return found


def median_time(steps: Sequence[Step]) -> float | None:
    """The first time the survival reaches 0.5 or below, None if it never does."""
    return next((s.time for s in steps if s.survival <= 0.5), None)


@dataclass(frozen=True)
class LogRank:
    chi2: float
    df: int
    p: float
    observed: tuple[int, ...]
    expected: tuple[float, ...]


def logrank(groups: Sequence[tuple[Sequence[float], Sequence[bool]]]) -> LogRank | None:
    """The k-group log-rank test; None with fewer than two groups or no event at all."""
    groups = [g for g in groups if len(g[0])]
    k = len(groups)
    if k < 2:
        return None
    times = sorted({t for durations, events in groups
                    for t, e in zip(durations, events, strict=True) if e})
    if not times:
        return None
    index = {t: n for n, t in enumerate(times)}
    deaths = np.zeros((k, len(times)))
    at_risk = np.zeros((k, len(times)))
    for g, (durations, events) in enumerate(groups):
        ordered = np.sort(np.asarray(durations, dtype=float))
        # subjects still at risk at each event time: duration ≥ t
        at_risk[g] = len(ordered) - np.searchsorted(ordered, np.asarray(times), side="left")
        for t, e in zip(durations, events, strict=True):
            if e:
                deaths[g, index[t]] += 1
    n = at_risk.sum(axis=0)
    d = deaths.sum(axis=0)
    expected = (at_risk * d / n).sum(axis=1)
    observed = deaths.sum(axis=1)
    # hypergeometric covariance of the O − E vector; drop one group (it is singular)
    factor = np.where(n > 1, d * (n - d) / (n * n * np.maximum(n - 1, 1)), 0.0)
    cov = np.zeros((k, k))
    for a in range(k):
        for b in range(k):
            cov[a, b] = (factor * at_risk[a] * ((n if a == b else 0) - at_risk[b])).sum()
    diff = (observed - expected)[:-1]
    chi2 = float(diff @ np.linalg.pinv(cov[:-1, :-1]) @ diff)
    df = k - 1
    return LogRank(chi2, df, float(stats.chi2.sf(chi2, df)),
                   tuple(int(o) for o in observed), tuple(float(e) for e in expected))
