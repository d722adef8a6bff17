"""The funnel's read model: the SQL behind `analytics.funnel`.

Per step, its events counted — each closing event carries the visit it ended
(`engine.store.visits`), so nothing is paired here — first per instance and step, then per
step; the ended visits' median and 90th-percentile time spent; the instances' last events
(who dropped, who moved on); the converted instances' steps; the totals. Only per-step rows
leave this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, and_, func, select, true
from sqlalchemy.sql.elements import ColumnElement

from analytics._sql import Filters, filtered, of_instances, visit_percentiles
from engine.store import INSTANCE, REACHED_KINDS, STEP_EVENT, VISIT_KINDS, EventKind
from engine.store.database import Store


@dataclass(frozen=True)
class FunnelRows:
    """What the database says about one funnel, per step, before shaping.

    `steps`: (step_id, step_name, distinct instances, closed, entered, paired, completed,
    skipped, varied, active_entered, active_paired), in order of first arrival;
    `times`: step id -> (median, p90) hours; `ended`: step id -> (instances whose last event
    closed a visit there and are over, of them not converted); `wins`: step id -> converted
    instances; `instances`, `converted`: the totals."""

    steps: list[tuple[Any, ...]]
    times: dict[Any, tuple[float, ...]]
    ended: dict[str, tuple[int, int]]
    wins: dict[str, int]
    instances: int
    converted: int


def funnel_rows(store: Store, filters: Filters, outcomes: tuple[str, ...]) -> FunnelRows:
    """The funnel's per-step rows for the instances `filters` selects."""
    parts = funnel_parts(store.dialect, filters, outcomes)
    with store.read() as conn:
        found = {name: part(conn) for name, part in parts.items()}
    instances, converted_ = found["totals"]
    return FunnelRows(found["steps"], found["times"], found["ended"], found["wins"],
                      int(instances), int(converted_ or 0))


def funnel_parts(dialect: str, filters: Filters,
                 outcomes: tuple[str, ...]) -> dict[str, Callable[[Connection], Any]]:
    """The funnel's reads, each one query (`bench.analytics --only part:...` times them
    alone): "steps", "times", "ended", "wins", "totals" (the fields of FunnelRows)."""
    # per step, one pass over its events: arrivals, how they ended, distinct instances
    # (filtered counts cost SQLite about half of sum(CASE ...))
    ev = step_events(dialect, filters).subquery()
    entered, paired = ev.c.kind == EventKind.ENTERED, ev.c.paired.is_(True)
    # an instance in incident is not over: it waits where its step failed, for an operator
    active = ev.c.status != "completed"
    tallies = {
        "closed": ev.c.kind != EventKind.ENTERED, "entered": entered, "paired": paired,
        "completed": ev.c.kind == EventKind.COMPLETED, "skipped": ev.c.kind == EventKind.SKIPPED,
        "varied": ev.c.kind == EventKind.VARIED, "active_entered": and_(active, entered),
        "active_paired": and_(active, paired)}
    counts = (
        select(ev.c.step_id, func.min(ev.c.id).label("first_id"),
               func.max(ev.c.id).label("last_id"),
               func.count(func.distinct(ev.c.instance_id)).label("instances"),
               *(func.count().filter(condition).label(k) for k, condition in tallies.items()))
        .group_by(ev.c.step_id)
        .subquery()
    )
    # the step's name as last logged (a later version may have renamed it)
    name = select(STEP_EVENT.c.step_name).where(STEP_EVENT.c.id == counts.c.last_id) \
        .scalar_subquery()
    per_step = (select(counts.c.step_id, name, counts.c.instances,
                       *(counts.c[k] for k in tallies))
                .order_by(counts.c.first_id))
    # nothing came after an instance's last event: that visit dropped (or ended the journey)
    last = last_events(dialect, filters).c
    over = last.status == "completed"
    ends = (
        select(last.step_id, func.count().filter(and_(over, last.kind != EventKind.ENTERED)),
               func.count().filter(and_(over, ~converted(dialect, last.instance_id, outcomes))))
        .group_by(last.step_id)
    )
    # converted instances per step: only the converted instances' events are read
    e = STEP_EVENT.c
    won = (
        select(e.step_id, func.count(func.distinct(e.instance_id)))
        .join(INSTANCE, of_instances(dialect))
        .where(*filters.where(dialect), e.kind.in_(VISIT_KINDS),
               converted(dialect, INSTANCE.c.id, outcomes))
        .group_by(e.step_id)
    )
    totals = select(func.count(), func.count().filter(
        converted(dialect, INSTANCE.c.id, outcomes))).where(*filters.where(dialect))
    return {
        "steps": lambda conn: [tuple(r) for r in conn.execute(per_step).all()],
        "times": lambda conn: visit_percentiles(conn, filters, (0.5, 0.9)),
        "ended": lambda conn: {r[0]: (int(r[1] or 0), int(r[2] or 0))
                               for r in conn.execute(ends)},
        "wins": lambda conn: {r[0]: int(r[1]) for r in conn.execute(won)},
        "totals": lambda conn: tuple(conn.execute(totals).one()),
    }


def step_events(dialect: str, filters: Filters, *where: Any) -> Select[Any]:
    """The step events (of VISIT_KINDS) of the selected instances with their visits (see
    `engine.store.visits`): id, instance_id, step_id, kind, paired, visit_ms, status (the
    instance's). All read from `ix_step_event_visit`, never from the wide event rows."""
    e = STEP_EVENT.c
    return (select(e.id, e.instance_id, e.step_id, e.kind, e.paired, e.visit_ms,
                   INSTANCE.c.status)
            .join(INSTANCE, of_instances(dialect))
            .where(*filtered(filters, dialect, e.kind.in_(VISIT_KINDS), *where)))


def last_events(dialect: str, filters: Filters) -> Any:
    """Each selected instance's last event of VISIT_KINDS: instance_id, step_id, kind, status. The
    visit it ended (or, for an `entered` event, opened) is the only one of the instance
    nothing came after. One look per instance into its events, newest first: on SQLite a
    scalar subquery, on PostgreSQL a LATERAL join (its planner hashes the whole log for the
    scalar form, and a grouped max over every event spills to disk: 8–20 s against 3 s at a
    million instances)."""
    e = STEP_EVENT.c
    p = STEP_EVENT.alias("p")
    mine = (p.c.instance_id == INSTANCE.c.id, p.c.kind.in_(VISIT_KINDS))
    if dialect != "sqlite":
        newest = (select(p.c.step_id, p.c.kind).where(*mine).order_by(p.c.id.desc()).limit(1)
                  .lateral("newest"))
        return (select(INSTANCE.c.id.label("instance_id"), newest.c.step_id, newest.c.kind,
                       INSTANCE.c.status)
                .select_from(INSTANCE.join(newest, true()))
                .where(*filters.where(dialect))
                .subquery())
    last_id: Any = select(func.max(p.c.id)).where(*mine).scalar_subquery()
    last = (select(INSTANCE.c.id.label("instance_id"), INSTANCE.c.status,
                   last_id.label("last_id"))
            .where(*filters.where(dialect))
            .subquery())
    return (
        select(last.c.instance_id, e.step_id, e.kind, last.c.status)
        .select_from(last.join(STEP_EVENT, e.id == last.c.last_id))
        .subquery()
    )


def converted(dialect: str, instance_id: Any, outcomes: tuple[str, ...]) -> ColumnElement[bool]:
    """Whether the instance reached one of the outcomes (a step that happened or an outcome event).
    SQLite: one seek into `ix_step_event_visit` per instance asked about;
    PostgreSQL: membership in the hashed set of converted instances."""
    p = STEP_EVENT.alias("conv")
    reached = (p.c.step_id.in_(outcomes), p.c.kind.in_(REACHED_KINDS))
    if dialect == "sqlite":
        return select(p.c.id).where(p.c.instance_id == instance_id, *reached).exists()
    found: ColumnElement[bool] = instance_id.in_(select(p.c.instance_id).where(*reached))
    return found
