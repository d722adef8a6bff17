"""The stuck view's read model: the SQL behind `analytics.stuck`.

Open arrivals (an `entered` event nothing closed yet) on active instances, with the limit
each step's arrivals must pass: the step's own p90 of past visits, or a given age.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, false, func, or_, select

from analytics._sql import Filters, filtered, naive, of_instances, percentiles, visit_hours
from engine.store import INSTANCE, STEP_EVENT, VISIT_KINDS, EventKind
from engine.store.database import Store


def stuck_rows(store: Store, filters: Filters, now: datetime, *, usual: float,
               older_than: timedelta | None) -> tuple[dict[str, float], list[tuple[Any, ...]]]:
    """(limits, rows): each step's limit in hours (its `usual` percentile of past visits, or
    `older_than` for every step with an open arrival) and, per step and distributor, the open
    arrivals on active instances past their limit at `now`: (step_id, step_name,
    distributor_id, count, oldest arrival, first event id)."""
    dialect = store.dialect
    with store.read() as conn:
        if older_than is None:
            limits = {step: p90 for step, (p90,) in percentiles(
                conn, visit_hours(dialect, filters), (usual,)).items()}
        else:
            steps = conn.execute(select(open_arrivals(dialect, filters).c.step_id)
                                 .distinct()).scalars().all()
            limits = {step: older_than.total_seconds() / 3600 for step in steps}
        moment = naive(now)
        # only active instances can be stuck: narrow to them before looking for open visits
        visit = open_arrivals(dialect, filters, INSTANCE.c.status == "active",
                              extra=(INSTANCE.c.distributor_id,))
        past = [and_(visit.c.step_id == step, visit.c.arrived_at
                     < moment - timedelta(hours=hours_))
                for step, hours_ in limits.items()]
        query = (
            select(visit.c.step_id, func.max(visit.c.step_name), visit.c.distributor_id,
                   func.count(), func.min(visit.c.arrived_at), func.min(visit.c.id))
            .where(or_(*past) if past else false())
            .group_by(visit.c.step_id, visit.c.distributor_id)
        )
        rows = [tuple(r) for r in conn.execute(query).all()]
    return limits, rows


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
