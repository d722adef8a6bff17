"""The read model continuous learning runs on: one row per content decision, with when its
outcome was seen (if it was) and when its horizon passes; and the censored counts built on it.

**Censoring.** A decision's outcome is known only once its horizon has passed (the case's
start + horizon, as everywhere in the learner). Before that, an outcome not yet seen is
*pending*, not a failure. `counts` gives every decision an exposure: 1 once its horizon has
passed, else g = G(now - acted) / G(settles - acted), the chance that an outcome which will
happen within the horizon has already been seen, with G the empirical distribution of the
delay from decision to outcome (of the settled successes, or of every success seen while
fewer than `_MIN_DELAYS` are settled). Successes count as seen. Then E[successes] = p Σ g =
p · exposure, so successes / exposure estimates the rate without the downward bias that
counting pending decisions as failures would add (the effective-exposure estimator of delayed
feedback, e.g. Chapelle 2014). A decision whose horizon has passed counts with exposure 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select

from engine.store import ACTED_KINDS, INSTANCE, REACHED_KINDS, STEP_EVENT, EventKind
from engine.store.database import Store
from engine.store.steplog import check_horizon, check_outcome, instances, outcome_names

_MIN_DELAYS = 50  # settled successes before their delays alone give G
_NAT = np.datetime64("NaT", "us")

Array = NDArray[Any]


@dataclass(frozen=True)
class OnlineLog:
    """Content decisions with propensities, as numpy arrays of equal length.

    hook, shown        str: the content slot and the option the card led with
    propensity         float64: the logging policy's probability of `shown`
    policy_version     int64: the version that ranked the card (-1: unknown)
    acted_at           datetime64[us] naive UTC: when the step was done (the outcome clock)
    settles_at         datetime64[us]: the case's start + horizon (NaT: no horizon)
    outcome_at         datetime64[us]: the first outcome at or after the decision within
                       the horizon (NaT: none seen)
    segment            one object array per segment key (None: the context lacks it)
    """

    hook: Array
    shown: Array
    propensity: Array
    policy_version: Array
    acted_at: Array
    settles_at: Array
    outcome_at: Array
    segment: dict[str, Array] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.hook.shape[0])

    def select(self, mask: Array) -> OnlineLog:
        return OnlineLog(self.hook[mask], self.shown[mask], self.propensity[mask],
                         self.policy_version[mask], self.acted_at[mask], self.settles_at[mask],
                         self.outcome_at[mask], {k: v[mask] for k, v in self.segment.items()})


def online_log(store: Store, process_id: str, *, outcome: str, horizon: timedelta | None,
               segments: Sequence[str] = ()) -> OnlineLog:
    """Read the process's decisions that carry a shown option and its propensity."""
    check_horizon(horizon)
    check_outcome(store, process_id, outcome)
    names = outcome_names(outcome)
    hook: list[str] = []
    shown: list[str] = []
    mu: list[float] = []
    version: list[int] = []
    acted: list[datetime] = []
    settles: list[datetime | None] = []
    seen: list[datetime | None] = []
    seg: list[tuple[Any, ...]] = []
    for header, rows in instances(store, process_id):
        started = header.started_at
        limit = None if horizon is None else started + horizon
        hits = [r[2] for r in rows if r[0] in names and r[1] in REACHED_KINDS
                and r[2] >= started and (limit is None or r[2] <= limit)]
        entered: dict[str, Any] = {}
        key = tuple(_scalar(header.context.get(k)) for k in segments)
        for row in rows:
            step_id, kind, at, row_hook = row[0], row[1], row[2], row[3]
            if kind == EventKind.ENTERED:
                if row_hook is not None:
                    entered[step_id] = row
                continue
            if kind not in ACTED_KINDS or row_hook is None:
                continue
            offer = entered.pop(step_id, None) or row
            propensity = offer[6] if offer[6] is not None else row[6]
            if offer[4] is None or propensity is None:
                continue
            hook.append(row_hook)
            shown.append(offer[4])
            mu.append(float(propensity))
            v = offer[7] if offer[7] is not None else row[7]
            version.append(-1 if v is None else int(v))
            acted.append(at)
            settles.append(limit)
            seen.append(next((h for h in hits if h >= at), None))
            seg.append(key)
    out = OnlineLog(_objects(hook), _objects(shown), np.array(mu, dtype=np.float64),
                    np.array(version, dtype=np.int64), _times(acted), _times(settles),
                    _times(seen))
    for j, name in enumerate(segments):
        out.segment[name] = _objects([k[j] for k in seg])
    return out


def outcome_count(store: Store, process_id: str, outcome: str) -> int:
    """How many `outcome` events the process has recorded (one cheap count: the worker
    looks at it to refresh once enough new outcomes came in)."""
    of_process = select(INSTANCE.c.id).where(INSTANCE.c.process_id == process_id)
    query = select(func.count()).select_from(STEP_EVENT).where(
        STEP_EVENT.c.step_id.in_(sorted(outcome_names(outcome))),
        STEP_EVENT.c.kind.in_([str(k) for k in REACHED_KINDS]),
        STEP_EVENT.c.instance_id.in_(of_process.scalar_subquery()))
    with store.read() as conn:
        return int(conn.execute(query).scalar_one())


def exposure(log: OnlineLog, now: datetime) -> tuple[Array, Array]:
    """(success, exposure) per decision as known at `now`: see the module docstring.
    Decisions done after `now` get exposure 0."""
    t = _naive(now)
    done = log.acted_at <= t
    settled = done & (~np.isnat(log.settles_at)) & (log.settles_at <= t)
    no_horizon = np.isnat(log.settles_at)
    success = done & ~np.isnat(log.outcome_at) & (log.outcome_at <= t)
    delays = _delays(log, success, settled)
    g = np.ones(len(log))
    pending = done & ~settled & ~no_horizon
    if pending.any():
        elapsed = _seconds(t - log.acted_at[pending])
        window = _seconds(log.settles_at[pending] - log.acted_at[pending])
        scale = float(window.max())
        seen_by_now, seen_by_end = _cdf(delays, elapsed, scale), _cdf(delays, window, scale)
        g[pending] = np.where(seen_by_end > 0, np.minimum(1.0, seen_by_now / np.maximum(
            seen_by_end, 1e-12)), 0.0)
    g[~done] = 0.0
    return success.astype(np.float64), g


def _delays(log: OnlineLog, success: Array, settled: Array) -> Array:
    pick = success & settled
    if int(pick.sum()) < _MIN_DELAYS:
        pick = success
    return np.sort(np.maximum(_seconds(log.outcome_at[pick] - log.acted_at[pick]), 0.0))


def _seconds(gap: Array) -> Array:
    out: Array = gap.astype("timedelta64[us]").astype(np.int64).astype(np.float64) / 1e6
    return out


def _cdf(sorted_delays: Array, x: Array, scale: float) -> Array:
    """The empirical CDF at x; with no delay seen yet, uniform over [0, scale]."""
    if sorted_delays.size == 0:
        return np.clip(x / max(scale, 1.0), 0.0, 1.0)
    return np.searchsorted(sorted_delays, x, side="right") / sorted_delays.size


def _objects(values: list[Any]) -> Array:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _times(values: Sequence[datetime | None]) -> Array:
    out = np.full(len(values), _NAT, dtype="datetime64[us]")
    for i, v in enumerate(values):
        if v is not None:
            out[i] = np.datetime64(v, "us")
    return out


def _naive(moment: datetime) -> np.datetime64:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return np.datetime64(moment, "us")


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)
