"""Small exact statistics for rates: Wilson intervals, Fisher / z tests, Holm's correction."""

from __future__ import annotations

import math
from statistics import NormalDist

_NORMAL = NormalDist()


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (good at small n and near 0/1)."""
    if n == 0:
        return (0.0, 1.0)
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def _log_hypergeom(k: int, row1: int, row2: int, col1: int) -> float:
    """log P(X = k) for the first cell of a 2×2 table with fixed margins."""
    return (_log_comb(row1, k) + _log_comb(row2, col1 - k) - _log_comb(row1 + row2, col1))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(a: int, n1: int, b: int, n2: int) -> float:
    """Two-sided Fisher exact p-value for a/n1 against b/n2 (sum of tables no likelier)."""
    col1 = a + b
    low, high = max(0, col1 - n2), min(n1, col1)
    observed = _log_hypergeom(a, n1, n2, col1)
    total = 0.0
    for k in range(low, high + 1):
        logp = _log_hypergeom(k, n1, n2, col1)
        if logp <= observed + 1e-7:
            total += math.exp(logp)
    return min(1.0, total)


def two_proportion_z(a: int, n1: int, b: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test."""
    pooled = (a + b) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance == 0:
        return 1.0
    z = (a / n1 - b / n2) / math.sqrt(variance)
    return 2 * (1 - _NORMAL.cdf(abs(z)))


def compare(a: int, n1: int, b: int, n2: int) -> tuple[float, str]:
    """p-value and test name: Fisher exact while any expected cell count is below 5 (where the
    normal approximation is poor), the z-test otherwise."""
    pooled = (a + b) / (n1 + n2)
    expected = min(n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled))
    if expected < 5:
        return fisher_exact(a, n1, b, n2), "fisher"
    return two_proportion_z(a, n1, b, n2), "z"


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error control, in the input order)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    m = len(p_values)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
