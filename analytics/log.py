"""Aggregates over `step_event` joined with `instance`."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select

from engine.clock import as_utc
from engine.store import (
    DONE_KINDS,
    INSTANCE,
    SETTLED_KINDS,
    STEP_EVENT,
    VISIT_KINDS,
    EventKind,
)
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


def _process_filter(process_id: str | None) -> Any:
    return INSTANCE.c.process_id == process_id if process_id else True


def funnel(store: Store, process_id: str | None = None) -> list[FunnelStep]:
    """Per step: arrivals and what people did there, in order of first arrival."""
    kind = STEP_EVENT.c.kind
    query = (
        select(
            STEP_EVENT.c.step_id, func.max(STEP_EVENT.c.step_name),
            func.sum(case((kind == EventKind.ENTERED, 1), else_=0)),
            func.sum(case((kind == EventKind.COMPLETED, 1), else_=0)),
            func.sum(case((kind == EventKind.SKIPPED, 1), else_=0)),
            func.sum(case((kind == EventKind.VARIED, 1), else_=0)),
            func.count(func.distinct(STEP_EVENT.c.instance_id)),
            func.min(STEP_EVENT.c.id),
        )
        .join(INSTANCE, INSTANCE.c.id == STEP_EVENT.c.instance_id)
        .where(_process_filter(process_id), kind.in_((EventKind.ENTERED, *SETTLED_KINDS)))
        .group_by(STEP_EVENT.c.step_id)
        .order_by(func.min(STEP_EVENT.c.id))
    )
    with store.read() as conn:
        rows = conn.execute(query).all()
    return [FunnelStep(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]))
            for r in rows if r[2]]


def waits(store: Store, process_id: str | None = None) -> list[StepWait]:
    """How long steps waited before something happened there (a person acted, a timer or a
    prospect event fired), longest median first."""
    nxt = func.lead(STEP_EVENT.c.at, type_=STEP_EVENT.c.at.type).over(
        partition_by=(STEP_EVENT.c.instance_id, STEP_EVENT.c.step_id), order_by=STEP_EVENT.c.id)
    nxt_kind = func.lead(STEP_EVENT.c.kind).over(
        partition_by=(STEP_EVENT.c.instance_id, STEP_EVENT.c.step_id), order_by=STEP_EVENT.c.id)
    paired = (
        select(STEP_EVENT.c.step_id, STEP_EVENT.c.step_name, STEP_EVENT.c.kind,
               STEP_EVENT.c.at, nxt.label("next_at"), nxt_kind.label("next_kind"))
        .join(INSTANCE, INSTANCE.c.id == STEP_EVENT.c.instance_id)
        .where(_process_filter(process_id),
               STEP_EVENT.c.kind.in_(VISIT_KINDS))
        .subquery()
    )
    query = select(paired.c.step_id, paired.c.step_name, paired.c.at, paired.c.next_at).where(
        paired.c.kind == EventKind.ENTERED)
    durations: dict[str, list[float]] = {}
    names: dict[str, str] = {}
    open_now: dict[str, int] = {}
    with store.read() as conn:
        for step_id, name, at, next_at in conn.execute(query):
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
    enrolled = (
        select(INSTANCE.c.prospect_id.label("distributor"),
               func.min(INSTANCE.c.created_at).label("since"))
        .where(INSTANCE.c.process_id == onboarding)
        .group_by(INSTANCE.c.prospect_id)
        .subquery()
    )
    sales = (
        select(INSTANCE.c.distributor_id.label("distributor"),
               func.min(STEP_EVENT.c.at).label("first_sale"))
        .join(INSTANCE, INSTANCE.c.id == STEP_EVENT.c.instance_id)
        .where(STEP_EVENT.c.kind == EventKind.OUTCOME, STEP_EVENT.c.step_id == "sale")
        .group_by(INSTANCE.c.distributor_id)
        .subquery()
    )
    query = (
        select(enrolled.c.since, sales.c.first_sale)
        .select_from(enrolled.outerjoin(sales, sales.c.distributor == enrolled.c.distributor))
        .where(enrolled.c.since <= cutoff)
    )
    window = timedelta(days=days)
    with store.read() as conn:
        rows = conn.execute(query).all()
    within = sum(1 for since, sale in rows if sale is not None and sale - since <= window)
    return FirstSales(len(rows), within, days)


def content_use(store: Store, process_id: str | None = None) -> list[ContentUse]:
    """Per hook: how often cards offered content, and what people did with the offer."""
    shown = func.lag(STEP_EVENT.c.content_shown).over(
        partition_by=(STEP_EVENT.c.instance_id, STEP_EVENT.c.step_id), order_by=STEP_EVENT.c.id)
    paired = (
        select(STEP_EVENT.c.hook, STEP_EVENT.c.kind, STEP_EVENT.c.content_shown,
               STEP_EVENT.c.content_used, shown.label("offered"))
        .join(INSTANCE, INSTANCE.c.id == STEP_EVENT.c.instance_id)
        .where(_process_filter(process_id), STEP_EVENT.c.hook.is_not(None),
               STEP_EVENT.c.kind.in_((EventKind.ENTERED, *SETTLED_KINDS)))
        .subquery()
    )
    acted = paired.c.kind.in_(DONE_KINDS)
    query = (
        select(
            paired.c.hook,
            func.sum(case((and_(paired.c.kind == EventKind.ENTERED,
                                paired.c.content_shown.is_not(None)), 1), else_=0)),
            func.sum(case((and_(acted, paired.c.content_used == paired.c.offered), 1), else_=0)),
            func.sum(case((and_(acted, paired.c.content_used.is_not(None),
                                paired.c.content_used != paired.c.offered), 1), else_=0)),
            func.sum(case((paired.c.kind == EventKind.SKIPPED, 1), else_=0)),
            func.sum(case((paired.c.kind == EventKind.VARIED, 1), else_=0)),
        )
        .group_by(paired.c.hook)
        .order_by(paired.c.hook)
    )
    with store.read() as conn:
        return [ContentUse(r[0], *(int(v or 0) for v in r[1:])) for r in conn.execute(query)]
