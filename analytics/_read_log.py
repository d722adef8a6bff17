"""The older summaries' read model: the SQL behind `analytics.log` (the first funnel,
waits, first sales, content use)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select

from engine.store import (
    DONE_KINDS,
    INSTANCE,
    SETTLED_KINDS,
    STEP_EVENT,
    VISIT_KINDS,
    EventKind,
)
from engine.store.database import Store


def _process_filter(process_id: str | None) -> Any:
    return INSTANCE.c.process_id == process_id if process_id else True


def step_tallies(store: Store, process_id: str | None) -> list[tuple[Any, ...]]:
    """Per step, in order of first arrival: (step_id, step_name, entered, completed, skipped,
    varied, distinct instances, first event id)."""
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
    return [tuple(r) for r in rows]


def arrivals_and_next(store: Store, process_id: str | None) -> Iterator[tuple[Any, ...]]:
    """Every arrival (`entered` event): (step_id, step_name, at, the next event's time at that
    step or None)."""
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
    with store.read() as conn:
        yield from conn.execute(query)


def enrollments_and_first_sales(store: Store, cutoff: datetime, onboarding: str,
                                sale_steps: tuple[str, ...] = ("sale",)) -> list[tuple[Any, ...]]:
    """(onboarding start, first sale or None) of each distributor whose onboarding started
    by `cutoff` (naive UTC)."""
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
        .where(STEP_EVENT.c.kind == EventKind.OUTCOME, STEP_EVENT.c.step_id.in_(sale_steps))
        .group_by(INSTANCE.c.distributor_id)
        .subquery()
    )
    query = (
        select(enrolled.c.since, sales.c.first_sale)
        .select_from(enrolled.outerjoin(sales, sales.c.distributor == enrolled.c.distributor))
        .where(enrolled.c.since <= cutoff)
    )
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(query).all()]


def content_use_rows(store: Store, process_id: str | None,
                     people: Collection[str] | None = None) -> list[tuple[Any, ...]]:
    """Per hook: (hook, shown, used the suggestion, used other, skipped, varied), over the
    instances of `people` (distributor ids) when given."""
    only = [] if people is None else [INSTANCE.c.distributor_id.in_(list(people))]
    shown = func.lag(STEP_EVENT.c.content_shown).over(
        partition_by=(STEP_EVENT.c.instance_id, STEP_EVENT.c.step_id), order_by=STEP_EVENT.c.id)
    paired = (
        select(STEP_EVENT.c.hook, STEP_EVENT.c.kind, STEP_EVENT.c.content_shown,
               STEP_EVENT.c.content_used, shown.label("offered"))
        .join(INSTANCE, INSTANCE.c.id == STEP_EVENT.c.instance_id)
        .where(_process_filter(process_id), STEP_EVENT.c.hook.is_not(None),
               STEP_EVENT.c.kind.in_((EventKind.ENTERED, *SETTLED_KINDS)), *only)
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
        return [tuple(r) for r in conn.execute(query)]
