"""The stuck view's read model: the SQL behind `analytics.stuck`.

Open arrivals (an `entered` event nothing closed yet) on active instances, past the limit
their step's arrivals must pass; the step's usual time (a percentile of past visits); and
the open arrivals at steps that wait on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, false, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from analytics._sql import Filters, filtered, naive, of_instances, visit_percentiles
from engine.store import INSTANCE, STEP_EVENT, VISIT_KINDS, EventKind
from engine.store.database import Store

USUAL = 0.9  # the percentile of a step's past times that counts as "longer than usual"


def usual_hours(store: Store, filters: Filters, usual: float) -> dict[str, float]:
    """Per step, the `usual` percentile of its ended visits' hours."""
    with store.read() as conn:
        return {step: value for step, (value,) in visit_percentiles(
            conn, filters, (usual,)).items()}


def open_steps(store: Store, filters: Filters) -> list[str]:
    """The steps with an open arrival."""
    with store.read() as conn:
        return list(conn.execute(select(open_arrivals(store.dialect, filters).c.step_id)
                                 .distinct()).scalars().all())


@dataclass(frozen=True)
class OpenRows:
    """What `open_rows` found. `stuck`: per step and distributor, the open arrivals past their
    step's limit: (step_id, step_name, distributor_id, count, oldest arrival, first event
    id). `waiting`: per timer step, every open arrival: (step_id, step_name, count, oldest
    arrival), in order of first arrival."""

    stuck: list[tuple[Any, ...]]
    waiting: list[tuple[Any, ...]]


def open_rows(store: Store, filters: Filters, now: datetime, limits: dict[str, float],
              timers: Collection[str] = ()) -> OpenRows:
    """The open arrivals (made by `now`) on active instances, in one pass: those past their step's
    limit (hours; steps without one are left out), and all of those at the `timers` steps
    (deliberate waits). A step's name is the one logged with its newest arrival found."""
    if not limits and not timers:
        return OpenRows([], [])
    moment = naive(now)
    # only active instances can be stuck: narrow to them before looking for open visits;
    # an arrival after `now` did not exist yet at `now` (it would wait a negative time)
    visit = open_arrivals(store.dialect, filters, INSTANCE.c.status == "active",
                          STEP_EVENT.c.at <= moment, extra=(INSTANCE.c.distributor_id,))
    kept: ColumnElement[bool] = visit.c.step_id.in_(list(timers)) if timers else false()
    if limits:
        # At exactly its limit an arrival is stuck: the engine's stuck timer fires when
        # due <= now. One lookup of the arrival's cut-off, not a test per step for each.
        cutoff = case({step: literal(moment - timedelta(hours=hours_))
                       for step, hours_ in limits.items()}, value=visit.c.step_id)
        kept = or_(kept, visit.c.arrived_at <= cutoff)
    query = (
        select(visit.c.step_id, visit.c.distributor_id, func.count(),
               func.min(visit.c.arrived_at), func.min(visit.c.id), func.max(visit.c.id))
        .where(kept)
        .group_by(visit.c.step_id, visit.c.distributor_id)
    )
    with store.read() as conn:
        rows = conn.execute(query).all()
        newest: dict[str, int] = {}
        for step, _person, _n, _oldest, _first, last in rows:
            newest[step] = max(newest.get(step, last), last)
        # the names from one event per step, not from every arrival's wide row
        names = dict(conn.execute(select(STEP_EVENT.c.id, STEP_EVENT.c.step_name)
                                  .where(STEP_EVENT.c.id.in_(list(newest.values())))).all())
    waits: dict[str, list[Any]] = {}  # step -> [count, oldest, first]
    for step, _person, n, oldest, first, _last in rows:
        if step in timers:
            found = waits.setdefault(step, [0, oldest, first])
            found[0] += n
            found[1], found[2] = min(found[1], oldest), min(found[2], first)
    return OpenRows(
        [(step, names[newest[step]], person, n, oldest, first)
         for step, person, n, oldest, first, _last in rows if step not in timers],
        [(step, names[newest[step]], n, oldest)
         for step, (n, oldest, _first) in sorted(waits.items(), key=lambda item: item[1][2])])


def incident_rows(store: Store, filters: Filters) -> list[tuple[Any, ...]]:
    """The selected instances in incident (a step failed: they wait for an operator's retry),
    by id: (instance id, prospect, distributor, step id, since, error) from each one's last
    incident event."""
    with store.read() as conn:
        broken = conn.execute(select(INSTANCE.c.id, INSTANCE.c.prospect_id,
                                     INSTANCE.c.distributor_id)
                              .where(*filters.where(store.dialect),
                                     INSTANCE.c.status == "incident")
                              .order_by(INSTANCE.c.id)).all()
        last: dict[int, Any] = {}
        if broken:
            for row in conn.execute(select(STEP_EVENT.c.instance_id, STEP_EVENT.c.step_id,
                                           STEP_EVENT.c.at, STEP_EVENT.c.data)
                                    .where(STEP_EVENT.c.instance_id.in_([b[0] for b in broken]),
                                           STEP_EVENT.c.kind == EventKind.INCIDENT)
                                    .order_by(STEP_EVENT.c.id)):
                last[row[0]] = row
    out = []
    for iid, prospect, distributor in broken:
        event = last.get(iid)
        data = json.loads(event[3]) if event is not None and event[3] else {}
        out.append((iid, prospect, distributor, event[1] if event else None,
                    event[2] if event else None, data.get("error")))
    return out


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
    step_id, arrived_at, status, plus `extra`; `where` narrows the events first (e.g. to
    active instances). Only columns of `ix_step_event_visit`: no wide event row is read."""
    e = STEP_EVENT.c
    after = next_kind_at_step(e)
    return (
        select(e.id, e.instance_id, e.step_id, e.at.label("arrived_at"), INSTANCE.c.status,
               *extra)
        .join(INSTANCE, of_instances(dialect))
        .where(*filtered(filters, dialect, e.kind == EventKind.ENTERED, *where),
               func.coalesce(after, EventKind.ENTERED) == EventKind.ENTERED)
        .subquery()
    )
