"""The leading indicators' read model: the SQL behind `analytics.indicators` and
`analytics.cohorts`.

One row per distributor: enrollment (the start of their onboarding instance, else their first
instance), weeks observed, the counted events of each indicator, days to the first sale and
whether it came within the window; and the same grouped by enrollment week.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Float, and_, case, cast, func, literal, or_, select, union_all
from sqlalchemy.sql.elements import ColumnElement

from analytics._sql import Percentiles, hours, week_start
from engine.store import INSTANCE, REACHED_KINDS, STEP_EVENT, EventKind
from engine.store.database import Store


class Counted(Protocol):
    """Which logged events count towards one indicator (see `analytics.Indicator`)."""

    @property
    def steps(self) -> tuple[str, ...]: ...
    @property
    def hooks(self) -> tuple[str, ...]: ...
    @property
    def kinds(self) -> tuple[str, ...]: ...


def newest_event_at(store: Store) -> datetime | None:
    """When the newest step event happened (naive UTC), or None on an empty log."""
    with store.read() as conn:
        newest: datetime | None = conn.execute(select(func.max(STEP_EVENT.c.at))).scalar()
    return newest


def distributor_rows(store: Store, definitions: Sequence[Counted], as_of: datetime,
                     onboarding: str, window_days: int, process_id: str | None,
                     sales: Sequence[str] = ("sale",),
                     people: Collection[str] | None = None) -> list[tuple[Any, ...]]:
    """Per distributor (of `people`, when given), by enrollment then id: (distributor_id,
    enrolled_at, weeks, count per definition..., days_to_sale, within)."""
    per = _per_distributor(store, definitions, as_of, onboarding, window_days, process_id,
                           sales, people)
    query = select(per).order_by(per.c.enrolled_at, per.c.distributor_id)
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(query).all()]


def cohort_rows(store: Store, definitions: Sequence[Counted], as_of: datetime,
                onboarding: str, window_days: int, process_id: str | None,
                sales: Sequence[str] = ("sale",),
                people: Collection[str] | None = None) -> list[tuple[Any, ...]]:
    """Per enrollment week (Monday), in order: (week, distributors, mean rate per
    definition..., observed, first sales within the window, median days to first sale)."""
    dialect = store.dialect
    per = _per_distributor(store, definitions, as_of, onboarding, window_days, process_id,
                           sales, people)
    weekly = select(per, week_start(dialect, per.c.enrolled_at).label("week")).subquery()
    pct = Percentiles(dialect, weekly, "week", "days_to_sale")
    w = pct.source.c
    query = (
        select(
            w.week, func.count(),
            *(func.avg(cast(w[f"c_{n}"], Float) / w.weeks) for n in range(len(definitions))),
            func.count(w.within), func.coalesce(func.sum(w.within), 0), pct.of(0.5),
        )
        .group_by(w.week)
        .order_by(w.week)
    )
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(query).all()]


def _per_distributor(store: Store, definitions: Sequence[Counted], as_of: datetime,
                     onboarding: str, window_days: int, process_id: str | None,
                     sales: Sequence[str], people: Collection[str] | None) -> Any:
    """A subquery: one row per distributor with enrollment, weeks, counts, first sale."""
    dialect = store.dialect
    i, e = INSTANCE.c, STEP_EVENT.c
    mine = [] if people is None else [i.distributor_id.in_(list(people))]
    enrolled = union_all(
        select(i.prospect_id.label("d"), func.min(i.created_at).label("t"),
               literal(0).label("pri")).where(
            i.process_id == onboarding,
            *([] if people is None else [i.prospect_id.in_(list(people))]))
        .group_by(i.prospect_id),
        select(i.distributor_id.label("d"), func.min(i.created_at).label("t"),
               literal(1).label("pri")).where(*mine).group_by(i.distributor_id),
    ).subquery()
    # the onboarding start when there is one (priority 0), else the first instance
    ranked = select(enrolled.c.d, enrolled.c.t, func.row_number().over(
        partition_by=enrolled.c.d, order_by=(enrolled.c.pri, enrolled.c.t)).label("rn")
    ).subquery()
    only: list[ColumnElement[bool]] = [] if people is None else [
        ranked.c.d.in_(list(people))]
    if process_id:  # the process picks its distributors (onboarding: those it enrolled)
        picked: ColumnElement[bool] = ranked.c.d.in_(
            select(i.distributor_id).where(i.process_id == process_id))
        if process_id == onboarding:
            picked = or_(picked, ranked.c.d.in_(
                select(i.prospect_id).where(i.process_id == process_id)))
        only.append(picked)
    start = select(ranked.c.d, ranked.c.t).where(ranked.c.rn == 1, ranked.c.t <= as_of,
                                                *only).subquery()
    # the process limits what is counted, not the first sale: a distributor's sale is recorded
    # on a prospect's journey whichever process picked the distributor
    here = [i.process_id == process_id] if process_id else []
    counted: list[Any] = []
    for ind in definitions:
        matches = []
        if ind.steps:
            matches.append(e.step_id.in_(ind.steps))
        if ind.hooks:
            matches.append(e.hook.in_(ind.hooks))
        counted.append(func.sum(case((and_(or_(*matches), e.kind.in_(ind.kinds), *here), 1),
                                     else_=0)).label(f"c_{len(counted)}"))
    is_sale = and_(e.kind == EventKind.OUTCOME, e.step_id.in_(sales))
    activity = (
        select(i.distributor_id.label("d"), *counted,
               func.min(case((is_sale, e.at))).label("first_sale"))
        .select_from(STEP_EVENT.join(INSTANCE, INSTANCE.c.id == e.instance_id))
        .where(e.at <= as_of, *mine)
        .group_by(i.distributor_id)
        .subquery()
    )
    days_observed = hours(dialect, start.c.t, literal(as_of, type_=e.at.type)) / 24.0
    to_sale = hours(dialect, start.c.t, activity.c.first_sale) / 24.0
    observed = days_observed >= window_days
    return select(
        start.c.d.label("distributor_id"), start.c.t.label("enrolled_at"),
        case((days_observed / 7.0 > 1.0, days_observed / 7.0), else_=1.0).label("weeks"),
        *(func.coalesce(activity.c[f"c_{n}"], 0).label(f"c_{n}")
          for n in range(len(definitions))),
        case((activity.c.first_sale >= start.c.t, to_sale)).label("days_to_sale"),
        case((observed, case((and_(activity.c.first_sale >= start.c.t,
                                   to_sale <= window_days), 1), else_=0))).label("within"),
    ).select_from(start.outerjoin(activity, activity.c.d == start.c.d)).subquery()


def prospect_rows(store: Store, journey: str, outcomes: Sequence[str],
                  as_of: datetime, people: Collection[str] | None = None
                  ) -> dict[str, tuple[int, int]]:
    """Per distributor (of `people`, when given): (their instances of `journey` started by
    `as_of`, of them how many reached one of `outcomes` by then)."""
    i, p = INSTANCE.c, STEP_EVENT.alias("conv")
    reached = (select(p.c.id).where(p.c.instance_id == i.id, p.c.step_id.in_(list(outcomes)),
                                    p.c.kind.in_(REACHED_KINDS), p.c.at <= as_of).exists())
    query = (select(i.distributor_id, func.count(), func.count().filter(reached))
             .where(i.process_id == journey, i.created_at <= as_of,
                    *([] if people is None else [i.distributor_id.in_(list(people))]))
             .group_by(i.distributor_id))
    with store.read() as conn:
        return {d: (int(n), int(c or 0)) for d, n, c in conn.execute(query)}

