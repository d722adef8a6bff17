"""Drift: per content item, has the outcome rate after it was shown dropped?

    for alert in detect(store, "prospect_journey", outcome="Event_end",
                        horizon=timedelta(days=14)):
        print(alert.hook, alert.option_id, alert.rate_before, alert.rate_after, alert.p_value)
    detect_stream([1, 0, 0, 1, ...])          # one item's outcomes, oldest first

The test, per item: the decisions that showed it, oldest first, are a 0/1 stream. The scan
statistic at time t is the largest one-sided (drop only) Bernoulli log-likelihood ratio of
"rate p1 before k, lower rate p2 from k to t" against "one rate", over change points k with at
least `min_segment` observations on either side. Monitoring the stream, an alarm is raised
the first time the statistic crosses the threshold h; the change point is the k that
maximizes it then.

The threshold is calibrated by permutation: under "no change" the stream's order is
exchangeable, so h is the (1 - alpha) quantile of the statistic's maximum over the whole
horizon on `n_perm` shuffles of the stream itself (precisely: the m-th largest of them,
m = floor(alpha · (n_perm + 1))). The chance that a stream without a drop raises an alarm
anywhere in its horizon is then at most alpha, whatever the base rate and without assuming
one. The p-value is the permutation p-value of the stream's maximum (<= alpha on an alarm).

Times and change points are checked on a grid of at most `max_points` positions, which bounds
the work to O(n_perm · max_points²) per item; the change point is accurate to one grid step
(the stream's length / max_points).

Rewards of recent decisions are incomplete (the outcome may still come), which looks like a
drop. Give `horizon`: decisions of cases whose horizon has not passed by the end of the log
(or `observed_until`) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from engine.store.database import Store
from learner.model import as_columns

_CELLS = 2_000_000  # (stream, time, change point) cells scanned at once: bounds memory


@dataclass(frozen=True)
class StreamAlert:
    """A drop found in one 0/1 stream (indices count observations from 0)."""

    change: int  # first observation at the lower rate
    detected: int  # observation at which the alarm was raised
    rate_before: float
    rate_after: float  # from the change point to the end of the stream
    statistic: float
    threshold: float
    p_value: float
    n_before: int
    n_after: int

    @property
    def drop(self) -> float:
        return self.rate_before - self.rate_after


@dataclass(frozen=True)
class Alert:
    """A content item whose outcome rate dropped."""

    hook: str
    option_id: str
    since: datetime | None  # when the first decision at the lower rate was offered
    detected_at: datetime | None  # when the alarm would have been raised
    change_index: int  # in the item's decisions, oldest first
    rate_before: float
    rate_after: float
    drop: float
    p_value: float
    confidence: float  # 1 - p_value
    n_before: int
    n_after: int

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("since", "detected_at"):
            out[key] = None if out[key] is None else out[key].isoformat()
        return out


def detect_stream(outcomes: Sequence[int] | NDArray[Any], *, alpha: float = 0.05,
                  min_segment: int = 30, min_drop: float = 0.0, n_perm: int = 199,
                  max_points: int = 100, seed: int = 0) -> StreamAlert | None:
    """The drop in one 0/1 stream (oldest first), or None if there is no significant one."""
    x = np.asarray(outcomes, dtype=np.float64)
    if x.ndim != 1 or not np.all((x == 0) | (x == 1)):
        raise ValueError("outcomes must be a sequence of 0 and 1")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")
    if min_segment < 1 or n_perm < 1:
        raise ValueError("min_segment and n_perm must be at least 1")
    n = x.size
    if n < 2 * min_segment or x.sum() in (0, n):
        return None  # too short, or constant: nothing can have dropped
    # Rejecting when more than the m-th largest shuffle's maximum keeps P(alarm) <= alpha.
    m = int(np.floor(alpha * (n_perm + 1) + 1e-9))
    if m < 1:
        raise ValueError(f"n_perm={n_perm} is too few for alpha={alpha}: use at least "
                         f"{int(np.ceil(1 / alpha)) - 1}")
    grid = _grid(n, min_segment, max_points)
    rng = np.random.default_rng(seed)
    llr, t_idx, k_idx = _scan(x[None, :], grid, min_segment)
    observed = float(llr.max())
    null_max = np.empty(n_perm)
    chunk = max(1, _CELLS // llr.shape[1])
    for start in range(0, n_perm, chunk):
        stop = min(n_perm, start + chunk)
        shuffled = np.array([rng.permutation(x) for _ in range(stop - start)])
        null_max[start:stop] = _scan(shuffled, grid, min_segment)[0].max(axis=1)
    threshold = float(np.sort(null_max)[::-1][m - 1])
    p_value = float((1 + np.sum(null_max >= observed)) / (1 + n_perm))
    if observed <= threshold:
        return None
    # Raised at the first time any change point crosses the threshold; the change point is
    # then estimated with every observation: the best split of the whole stream.
    detected = int(grid[t_idx[llr[0] > threshold].min()])
    last = t_idx == len(grid) - 1
    change = int(grid[k_idx[last][np.argmax(llr[0][last])]])
    before, after = float(x[:change].mean()), float(x[change:].mean())
    if before - after < min_drop:
        return None
    return StreamAlert(change, detected, before, after, float(observed), threshold, p_value,
                       change, n - change)


def detect(store: Store, process_id: str, *, outcome: str, horizon: timedelta | None = None,
           observed_until: datetime | None = None, alpha: float = 0.05,
           min_segment: int = 30, min_drop: float = 0.0, n_perm: int = 199,
           max_points: int = 100, seed: int = 0) -> list[Alert]:
    """Alerts for the content items of the process whose outcome rate dropped, largest
    drop first. See `detect_table` for the arguments."""
    from learner.dataset import decisions

    table = decisions(store, process_id, outcome=outcome, horizon=horizon)
    return detect_table(table, horizon=horizon, observed_until=observed_until, alpha=alpha,
                        min_segment=min_segment, min_drop=min_drop, n_perm=n_perm,
                        max_points=max_points, seed=seed)


def detect_table(table: Any, *, horizon: timedelta | None = None,
                 observed_until: datetime | None = None, alpha: float = 0.05,
                 min_segment: int = 30, min_drop: float = 0.0, n_perm: int = 199,
                 max_points: int = 100, seed: int = 0) -> list[Alert]:
    """`detect` on a decision table: one stream per (hook, shown option), by offer time.

    With `horizon`, decisions whose case started less than `horizon` before `observed_until`
    (default: the last offer in the table) are left out: their outcome is not known yet.
    `alpha` is per item.
    """
    columns = as_columns(table)
    at = np.asarray(columns["at"], dtype="datetime64[us]")
    keep = np.array([s is not None for s in columns["shown"]], dtype=bool)
    if horizon is not None and keep.any():
        until = np.datetime64(observed_until.replace(tzinfo=None), "us") \
            if observed_until is not None else at[keep].max()
        started = at - (np.asarray(columns["hours_since_start"], dtype=np.float64)
                        * 3_600_000_000).astype("timedelta64[us]")
        keep &= started + np.timedelta64(horizon, "us") <= until
    rewards = np.asarray(columns["reward"], dtype=np.float64)
    items: dict[tuple[str, str], list[int]] = {}
    for i in np.flatnonzero(keep):
        items.setdefault((str(columns["hook"][i]), str(columns["shown"][i])), []).append(int(i))
    alerts = []
    for (hook, option), rows in sorted(items.items()):
        order = np.asarray(rows)[np.argsort(at[rows], kind="stable")]
        found = detect_stream(rewards[order], alpha=alpha, min_segment=min_segment,
                              min_drop=min_drop, n_perm=n_perm, max_points=max_points,
                              seed=seed)
        if found is None:
            continue
        alerts.append(Alert(
            hook, option, _when(at[order[found.change]]), _when(at[order[found.detected - 1]]),
            found.change, found.rate_before, found.rate_after, found.drop, found.p_value,
            1 - found.p_value, found.n_before, found.n_after))
    alerts.sort(key=lambda a: -a.drop)
    return alerts


def _grid(n: int, min_segment: int, max_points: int) -> NDArray[np.int64]:
    """Positions (stream lengths) where times and change points are checked."""
    step = max(1, -(-n // max_points))
    return np.unique(np.r_[np.arange(min_segment, n + 1, step), n]).astype(np.int64)


def _scan(streams: NDArray[np.float64], grid: NDArray[np.int64],
          min_segment: int) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """The drop log-likelihood ratio of each stream for every (time t, change point k) pair of
    the grid with at least `min_segment` observations on both sides of k: (streams, pairs),
    and each pair's time and change point positions in the grid.

    With integer counts the log-likelihoods are sums of v·log v looked up in a table:
    LLR = L(s1, n1) + L(s2, n2) - L(s, n), L(s, n) = s log s + (n-s) log(n-s) - n log n.
    """
    t_idx, k_idx = np.nonzero((grid[None, :] >= min_segment)
                              & (grid[:, None] - grid[None, :] >= min_segment))
    nt, n1 = grid[t_idx], grid[k_idx]
    n2 = nt - n1
    vlogv = np.zeros(int(grid[-1]) + 1)
    v = np.arange(1, vlogv.size)
    vlogv[1:] = v * np.log(v)
    ones = np.concatenate([np.zeros((len(streams), 1), dtype=np.int64),
                           np.cumsum(streams, axis=1).astype(np.int64)], axis=1)[:, grid]
    st, s1 = ones[:, t_idx], ones[:, k_idx]
    s2 = st - s1
    llr = (vlogv[s1] + vlogv[n1 - s1] + vlogv[s2] + vlogv[n2 - s2] - vlogv[st] - vlogv[nt - st]
           + (vlogv[nt] - vlogv[n1] - vlogv[n2]))
    drop = s2 * n1 < s1 * n2  # the rate after k is lower than before it
    return np.where(drop, np.maximum(llr, 0.0), 0.0), t_idx, k_idx


def _when(value: np.datetime64) -> datetime | None:
    if np.isnat(value):
        return None
    moment: datetime = value.astype("datetime64[us]").astype(datetime)
    return moment.replace(tzinfo=UTC)
