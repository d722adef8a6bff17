"""The stuck view's read model: the SQL behind `analytics.stuck`.

Open arrivals (an `entered` event nothing closed yet) on active instances, past the limit
their step's arrivals must pass; the step's usual time (a percentile of past visits); and
the open arrivals at steps that wait on purpose.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, false, func, or_, select

from analytics._sql import Filters, filtered, naive, of_instances, percentiles, visit_hours
from engine.store import INSTANCE, STEP_EVENT, VISIT_KINDS, EventKind
from engine.store.database import Store


def usual_hours(store: Store, filters: Filters, usual: float) -> dict[str, float]:
    """Per step, the `usual` percentile of its ended visits' hours."""
    with store.read() as conn:
        return {step: value for step, (value,) in percentiles(
            conn, visit_hours(store.dialect, filters), (usual,)).items()}


def open_steps(store: Store, filters: Filters) -> list[str]:
    """The steps with an open arrival."""
    with store.read() as conn:
        return list(conn.execute(select(open_arrivals(store.dialect, filters).c.step_id)
                                 .distinct()).scalars().all())


def stuck_rows(store: Store, filters: Filters, now: datetime,
               limits: dict[str, float]) -> list[tuple[Any, ...]]:
    """Per step and distributor, the open arrivals on active instances past their step's
    limit (hours) at `now`: (step_id, step_name, distributor_id, count, oldest arrival,
    first event id)."""
    dialect = store.dialect
    moment = naive(now)
    # only active instances can be stuck: narrow to them before looking for open visits
    visit = open_arrivals(dialect, filters, INSTANCE.c.status == "active",
                          extra=(INSTANCE.c.distributor_id,))
    # At exactly its limit an arrival is stuck: the engine's stuck timer fires when due <= now.
    past = [and_(visit.c.step_id == step, visit.c.arrived_at
                 <= moment - timedelta(hours=hours_))
            for step, hours_ in limits.items()]
    query = (
        select(visit.c.step_id, func.max(visit.c.step_name), visit.c.distributor_id,
               func.count(), func.min(visit.c.arrived_at), func.min(visit.c.id))
        .where(or_(*past) if past else false())
        .group_by(visit.c.step_id, visit.c.distributor_id)
    )
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(query).all()]


def waiting_rows(store: Store, filters: Filters, steps: list[str]) -> list[tuple[Any, ...]]:
    """Per step of `steps`, the open arrivals on active instances: (step_id, step_name,
    count, oldest arrival), in order of first arrival."""
    if not steps:
        return []
    visit = open_arrivals(store.dialect, filters, INSTANCE.c.status == "active",
                          STEP_EVENT.c.step_id.in_(steps))
    query = (select(visit.c.step_id, func.max(visit.c.step_name), func.count(),
                    func.min(visit.c.arrived_at))
             .group_by(visit.c.step_id).order_by(func.min(visit.c.id)))
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(query).all()]


def next_kind_at_step(event: Any) -> Any:
    """The kind of the instance's next event (of VISIT_KINDS) at `event`'s step: one seek into
    `ix_step_event_visit`, not a window over every event."""
    p = STEP_EVENT.alias("p")
    return (select(p.c.kind)
            .where(p.c.instance_id == event.instance_id, p.c.step_id == event.step_id,
                   p.c.id > event.id, p.c.kind.in_(VISIT_KINDS))
            .order_by(p.c.id.asc()).limit(1).scalar_subquery())


def open_arrivals(dialect: str, filters: Filters, *where: Any,
                  extra: tuple[Any, ...] = ()) -> Any:
    """Step visits still open: `entered` events not followed at their step by a closing
    event (nothing came after, or the step was entered again). Columns: id, instance_id,
    step_id, step_name, arrived_at, status, plus `extra`; `where` narrows the events first
    (e.g. to active instances)."""
    e = STEP_EVENT.c
    after = next_kind_at_step(e)
    return (
        select(e.id, e.instance_id, e.step_id, e.step_name, e.at.label("arrived_at"),
               INSTANCE.c.status, *extra)
        .join(INSTANCE, of_instances(dialect))
        .where(*filtered(filters, dialect, e.kind == EventKind.ENTERED, *where),
               func.coalesce(after, EventKind.ENTERED) == EventKind.ENTERED)
        .subquery()
    )
