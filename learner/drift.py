"""Drift: per content item, did its outcome rate drop? A one-sided Bernoulli CUSUM, in time order.

    for alert in detect(store, "prospect_journey", outcome="customer_order",
                        horizon=timedelta(days=14)):
        print(alert.option_id, alert.since, alert.detected_at, alert.p_value)
    detect_stream([1, 0, 0, 1, ...])          # one item's outcomes, oldest first

**Method.** Page's CUSUM (Page 1954) for a drop in a Bernoulli rate, in the integer form of
Reynolds & Stoumbos (1999). Per item, the decisions that showed it, in the order they were
offered, are a 0/1 stream x_1, x_2, ... After `warmup` observations, with reference rate p0
and designed drop δ (p1 = (1 - δ)·p0), the statistic is

    S_t = max(0, S_{t-1} + λ(x_t)),  λ(x) = log of the likelihood ratio of p1 to p0 for x,

with λ rounded to a multiple of a small unit (so the statistic is exactly the Markov chain
whose run length is computed below). The alarm is raised at the first t with S_t ≥ h; the
change is dated at the start of that excursion (the observation after the last t' with
S_t' = 0), so the change is never later than the alarm. Every quantity at t uses x_1..x_t
only: the detector is sequential, and re-running it on a shorter log gives the same path.

**Threshold and guarantee.** h is the smallest threshold whose in-control average run length
(ARL, observations until a false alarm when the rate stays p0) is at least `arl`, computed
exactly for the integer statistic by the Markov chain of Brook & Evans (1972). With the
default `arl` = 150,000 a steady item raises a false alarm in about 1 of 50 runs of 3,000
monitored decisions (1 - exp(-3,000/150,000)) when p0 is known. The target is at most one
false alarm per 20 stationary item-quarters (three items, 9,000 prospects, 90 days). The
reference p0 is not known: it is re-estimated, at each excursion start, from every
observation before it, and lowered by `z` standard errors (an over-estimated reference is
what makes estimated-parameter CUSUMs alarm too often: Jones, Champ & Rigdon 2004). The
suite measures the resulting rate on seeded stationary logs (tests/learner/test_drift*.py).

**Reported figures** are those of the decision: the statistic S at the alarm, the threshold
h, the ARL at h, and `p_value`: the probability, computed on the same chain, that a stream
whose rate stayed at the reference reaches S within as many monitored decisions.

**Time.** A decision's outcome is known only once its horizon has passed (`horizon`: the
case's start + horizon; without one, when it was offered). The stream a monitor could have
seen at a time T is the longest prefix, in offer order, whose outcomes were all known by T:
so `detected_at` is the moment the evidence through the alarm was complete, never before
`since` (the offer of the first decision of the excursion), and `detect(observed_until=T)`
raises exactly the alerts with `detected_at` <= T.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csc_matrix
from scipy.sparse import identity as sparse_identity
from scipy.sparse.linalg import spsolve

from engine.store.database import Store
from learner.model import as_columns

DROP = 0.3  # the relative drop the CUSUM is tuned to detect fastest
ARL = 150_000.0  # in-control average run length, in monitored decisions
WARMUP = 300  # decisions before monitoring starts (the first reference rate)
Z = 1.0  # standard errors the reference rate is lowered by
_GRID = 0.02  # reference rates are rounded down on a log grid this fine (cached designs)
_MIN_STEPS = 20  # a success's step is at least this many units: rounding error <= 2.5%


@dataclass(frozen=True)
class Design:
    """The integer CUSUM for a reference rate: +up per failure, -down per success, alarm at
    `limit`; `unit` converts the integers to log-likelihood-ratio units."""

    reference_rate: float
    drop: float
    up: int
    down: int
    limit: int
    unit: float
    arl: float  # the in-control ARL at `limit` (>= the target)

    @property
    def threshold(self) -> float:
        return self.limit * self.unit


@dataclass(frozen=True)
class StreamAlert:
    """A drop found in one 0/1 stream (indices count observations from 0)."""

    change: int  # first observation of the excursion that crossed the threshold
    detected: int  # the observation at which the statistic crossed it
    rate_before: float  # observed rate before `change`
    rate_after: float  # observed rate from `change` through `detected`: the evidence
    reference_rate: float  # p0 the statistic compared against (lowered by z SEs)
    statistic: float  # S at `detected`, log-likelihood-ratio units
    threshold: float
    arl: float
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
    since: datetime | None  # when the first decision of the excursion was offered
    detected_at: datetime | None  # when the evidence through the alarm was complete
    change_index: int  # in the item's monitored decisions, oldest first
    rate_before: float
    rate_after: float
    drop: float
    statistic: float
    threshold: float
    arl: float
    p_value: float
    confidence: float  # 1 - p_value
    n_before: int
    n_after: int

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("since", "detected_at"):
            out[key] = None if out[key] is None else out[key].isoformat()
        return out


def design(reference_rate: float, *, drop: float = DROP, arl: float = ARL) -> Design:
    """The CUSUM for rate `reference_rate` whose in-control ARL is at least `arl`."""
    if not 0 < reference_rate < 1:
        raise ValueError("reference_rate must be between 0 and 1")
    if not 0 < drop < 1:
        raise ValueError("drop must be between 0 and 1 (a share of the rate)")
    if arl < 2:
        raise ValueError("arl must be at least 2")
    return _design(float(reference_rate), float(drop), float(arl))


@lru_cache(maxsize=512)
def _design(p0: float, drop: float, target: float) -> Design:
    p1 = (1 - drop) * p0
    a = math.log((1 - p1) / (1 - p0))  # a failure's step
    b = -math.log(1 - drop)  # a success's step (down)
    up = max(2, math.ceil(_MIN_STEPS * a / b))
    unit = a / up
    down = max(1, round(b / unit))
    low, high = up, up
    while _arl(p0, up, down, high) < target:
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        if _arl(p0, up, down, mid) >= target:
            high = mid
        else:
            low = mid
    return Design(p0, drop, up, down, high, unit, _arl(p0, up, down, high))


@lru_cache(maxsize=4096)
def _arl(p0: float, up: int, down: int, limit: int) -> float:
    """Expected observations from S = 0 to S >= limit at rate p0 (Brook & Evans 1972):
    solve (I - Q) L = 1 over the transient states 0..limit-1."""
    states = np.arange(limit)
    rises = states + up < limit
    rows = np.r_[states[rises], states]
    cols = np.r_[states[rises] + up, np.maximum(states - down, 0)]
    values = np.r_[np.full(int(rises.sum()), 1 - p0), np.full(limit, p0)]
    q = csc_matrix((values, (rows, cols)), shape=(limit, limit))
    runs = spsolve((sparse_identity(limit, format="csc") - q).tocsc(), np.ones(limit))
    return float(runs[0])


def false_alarm_probability(chain: Design, level: int, n: int) -> float:
    """P(S reaches `level` (integer units) within `n` observations | rate = the reference)."""
    p = chain.reference_rate
    v = np.zeros(level)
    v[0] = 1.0
    reached = 0.0
    for _ in range(n):
        nxt = np.zeros(level)
        if level > chain.up:
            nxt[chain.up:] = (1 - p) * v[:-chain.up]
        reached += (1 - p) * float(v[max(0, level - chain.up):].sum())
        nxt[0] += p * float(v[:chain.down].sum())
        if level > chain.down:
            nxt[:level - chain.down] += p * v[chain.down:]
        v = nxt
        if reached > 0.999:
            break
    return min(1.0, reached)


def detect_stream(outcomes: Sequence[int] | NDArray[Any], *, drop: float = DROP,
                  arl: float = ARL, warmup: int = WARMUP, z: float = Z) -> StreamAlert | None:
    """The first alarm in one 0/1 stream (oldest first), or None."""
    x = np.asarray(outcomes, dtype=np.int64)
    if x.ndim != 1 or not np.all((x == 0) | (x == 1)):
        raise ValueError("outcomes must be a sequence of 0 and 1")
    if warmup < 1:
        raise ValueError("warmup must be at least 1")
    design(0.5, drop=drop, arl=arl)  # checks drop and arl
    ones = np.r_[0, np.cumsum(x)]
    level, start, chain = 0, warmup, None
    for t in range(warmup, x.size):
        if level == 0:  # a new excursion: re-estimate the reference from everything before
            start = t
            reference = _reference(int(ones[t]), t, z)
            chain = None if reference is None else _design(reference, drop, arl)
        if chain is None:
            continue
        level = max(0, level + (-chain.down if x[t] else chain.up))
        if level >= chain.limit:
            n_after = t + 1 - start
            return StreamAlert(
                start, t, float(ones[start] / start),
                float((ones[t + 1] - ones[start]) / n_after), chain.reference_rate,
                level * chain.unit, chain.threshold, chain.arl,
                false_alarm_probability(chain, level, t + 1 - warmup), start, n_after)
    return None


def _reference(successes: int, n: int, z: float) -> float | None:
    """The reference rate: the estimate lowered by z standard errors, rounded down on a log
    grid (a cached design each); None when it leaves nothing to drop from."""
    rate = successes / n
    low = rate - z * math.sqrt(rate * (1 - rate) / n)
    if low <= 1e-3:
        return None
    return min(0.99, math.exp(math.floor(math.log(low) / _GRID) * _GRID))


def detect(store: Store, process_id: str, *, outcome: str, horizon: timedelta | None = None,
           observed_until: datetime | None = None,
           monitor_from: Mapping[tuple[str, str], datetime] | None = None,
           drop: float = DROP, arl: float = ARL, warmup: int = WARMUP,
           z: float = Z) -> list[Alert]:
    """Alerts for the content items of the process whose outcome rate dropped, largest drop
    first. See `detect_table` for the arguments."""
    from learner.dataset import decisions

    table = decisions(store, process_id, outcome=outcome, horizon=horizon,
                      observed_until=observed_until)
    return detect_table(table, horizon=horizon, observed_until=observed_until,
                        monitor_from=monitor_from, drop=drop, arl=arl, warmup=warmup, z=z)


def detect_table(table: Any, *, horizon: timedelta | None = None,
                 observed_until: datetime | None = None,
                 monitor_from: Mapping[tuple[str, str], datetime] | None = None,
                 drop: float = DROP, arl: float = ARL, warmup: int = WARMUP,
                 z: float = Z) -> list[Alert]:
    """`detect` on a decision table: one stream per (hook, shown option), in offer order.

    Only what a monitor could have known by `observed_until` (default: the last offer in the
    table) is used: see the module docstring. `monitor_from` starts an item's stream at the
    given time (e.g. after a reviewer restored it); `arl` is per item.
    """
    columns = as_columns(table)
    at = np.asarray(columns["at"], dtype="datetime64[us]")
    shown = columns["shown"]
    keep = np.array([s is not None for s in shown], dtype=bool)
    if not keep.any():
        return []
    settled = at.copy()
    if horizon is not None:
        started = at - (np.asarray(columns["hours_since_start"], dtype=np.float64)
                        * 3_600_000_000).astype("timedelta64[us]")
        settled = started + np.timedelta64(horizon, "us")
    until = _naive(observed_until) if observed_until is not None else at[keep].max()
    rewards = np.asarray(columns["reward"], dtype=np.int64)
    items: dict[tuple[str, str], list[int]] = {}
    for i in np.flatnonzero(keep):
        items.setdefault((str(columns["hook"][i]), str(shown[i])), []).append(int(i))
    alerts = []
    for key, rows in sorted(items.items()):
        order = np.asarray(rows)[np.argsort(at[rows], kind="stable")]
        if monitor_from is not None and key in monitor_from:
            order = order[at[order] >= _naive(monitor_from[key])]
        known = np.maximum.accumulate(settled[order]) if order.size else settled[order]
        order, known = order[known <= until], known[known <= until]
        found = detect_stream(rewards[order], drop=drop, arl=arl, warmup=warmup, z=z)
        if found is None:
            continue
        alerts.append(Alert(
            key[0], key[1], _when(at[order[found.change]]), _when(known[found.detected]),
            found.change, found.rate_before, found.rate_after, found.drop, found.statistic,
            found.threshold, found.arl, found.p_value, 1 - found.p_value, found.n_before,
            found.n_after))
    alerts.sort(key=lambda a: -a.drop)
    return alerts


def _naive(moment: datetime) -> np.datetime64:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return np.datetime64(moment, "us")


def _when(value: np.datetime64) -> datetime | None:
    if np.isnat(value):
        return None
    moment: datetime = value.astype("datetime64[us]").astype(datetime)
    return moment.replace(tzinfo=UTC)
