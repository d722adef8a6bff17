"""Aggregates over `step_event` joined with `instance` (read by `analytics._read_log`)."""

from __future__ import annotations

import statistics
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from analytics._read_log import (
    arrivals_and_next,
    content_use_rows,
    enrollments_and_first_sales,
    step_tallies,
)
from engine.clock import as_utc
from engine.store.database import Store


@dataclass(frozen=True)
class FunnelStep:
    step_id: str
    step_name: str
    entered: int
    completed: int
    skipped: int
    varied: int
    instances: int  # distinct instances that reached the step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepWait:
    step_id: str
    step_name: str
    count: int  # arrivals that were followed by an action
    waiting_now: int  # arrivals with nothing after them yet
    median_hours: float
    p90_hours: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FirstSales:
    distributors: int  # enrolled long enough ago to be judged
    within: int  # of them, with a first sale inside the window
    days: int

    @property
    def share(self) -> float:
        return self.within / self.distributors if self.distributors else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "share": self.share}


@dataclass(frozen=True)
class ContentUse:
    hook: str
    shown: int  # cards that offered content for the hook
    used_suggestion: int
    used_other: int
    skipped: int
    varied: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def funnel(store: Store, process_id: str | None = None) -> list[FunnelStep]:
    """Per step: arrivals and what people did there, in order of first arrival."""
    rows = step_tallies(store, process_id)
    return [FunnelStep(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]))
            for r in rows if r[2]]


def waits(store: Store, process_id: str | None = None) -> list[StepWait]:
    """How long steps waited before something happened there (a person acted, a timer or a
    prospect event fired), longest median first."""
    durations: dict[str, list[float]] = {}
    names: dict[str, str] = {}
    open_now: dict[str, int] = {}
    for step_id, name, at, next_at in arrivals_and_next(store, process_id):
        names[step_id] = name
        if next_at is None:
            open_now[step_id] = open_now.get(step_id, 0) + 1
            durations.setdefault(step_id, [])
        else:
            durations.setdefault(step_id, []).append(_hours(next_at - at))
    out = []
    for step_id, values in durations.items():
        ordered = sorted(values)
        out.append(StepWait(
            step_id, names[step_id], len(values), open_now.get(step_id, 0),
            statistics.median(ordered) if ordered else 0.0,
            ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] if ordered else 0.0))
    out.sort(key=lambda w: w.median_hours, reverse=True)
    return out


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600.0


def first_sales(
    store: Store, now: datetime, *, days: int = 14, onboarding: str = "distributor_onboarding"
) -> FirstSales:
    """Of the distributors who started onboarding at least `days` ago, how many sold by then.

    A distributor's start is their onboarding instance's start; a sale is an `outcome` event
    of kind `sale` on any instance they run.
    """
    cutoff = as_utc(now).replace(tzinfo=None) - timedelta(days=days)
    rows = enrollments_and_first_sales(store, cutoff, onboarding)
    window = timedelta(days=days)
    within = sum(1 for since, sale in rows if sale is not None and sale - since <= window)
    return FirstSales(len(rows), within, days)


def content_use(store: Store, process_id: str | None = None,
                people: Collection[str] | None = None) -> list[ContentUse]:
    """Per hook: how often cards offered content, and what people did with the offer (on the
    instances of `people`, distributor ids, when given)."""
    return [ContentUse(r[0], *(int(v or 0) for v in r[1:]))
            for r in content_use_rows(store, process_id, people)]
