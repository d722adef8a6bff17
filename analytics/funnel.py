"""The funnel: per step, who arrived, what they did there, how long it took, who converted.

One SQL statement: step visits (see `analytics._sql.visits`) grouped by step, with the median
and 90th-percentile time spent computed by the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select

from analytics._sql import (
    DONE,
    Filters,
    Percentiles,
    check_outcome,
    converted_instances,
    visits,
)
from engine.runtime.queries import INSTANCE
from engine.store.database import Store

DEFAULT_OUTCOME = "sale"  # the outcome event the engine and the simulator record for a sale


@dataclass(frozen=True)
class FunnelStep:
    """One step of the funnel. Counts are arrivals (a step visited twice counts twice) except
    `instances` and `converted`, which count distinct instances."""

    step_id: str
    step_name: str
    instances: int  # distinct instances that arrived here
    entered: int  # arrivals
    completed: int  # arrivals ended by the person doing the step as suggested
    skipped: int
    varied: int  # ended by the person doing something else instead
    moved_on: int  # ended, and the journey went on (a later event, or it is still active)
    waiting: int  # still open on an active instance
    dropped: int  # nothing came after, the instance is over, and it did not convert
    median_hours: float | None  # time spent here, arrival to end, over ended arrivals
    p90_hours: float | None
    converted: int  # of `instances`, how many reached the outcome

    @property
    def conversion(self) -> float:
        return self.converted / self.instances if self.instances else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "conversion": self.conversion}


@dataclass(frozen=True)
class Funnel:
    """A process's funnel for the instances the filters select; iterating gives the steps
    in order of first arrival."""

    filters: Filters
    outcome: str
    instances: int
    converted: int
    steps: tuple[FunnelStep, ...]

    @property
    def conversion(self) -> float:
        return self.converted / self.instances if self.instances else 0.0

    def __iter__(self) -> Iterator[FunnelStep]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def step(self, step_id: str) -> FunnelStep:
        for found in self.steps:
            if found.step_id == step_id:
                return found
        raise KeyError(step_id)

    def to_dict(self) -> dict[str, Any]:
        return {**self.filters.to_dict(), "outcome": self.outcome,
                "instances": self.instances, "converted": self.converted,
                "conversion": self.conversion, "steps": [s.to_dict() for s in self.steps]}


def funnel(
    store: Store, process_id: str, *, since: datetime | None = None,
    distributor: str | None = None, market: str | None = None,
    outcome: str = DEFAULT_OUTCOME,
) -> Funnel:
    """The funnel of `process_id` over instances started at or after `since`, of one
    distributor, in one market (each filter optional).

    `outcome` is a step id or an outcome event name (default `sale`, which the engine's
    `outcome()` records as an `outcome` event with step id `sale`). An outcome other than
    the default that the process has never seen raises UnknownOutcome.
    """
    if outcome != DEFAULT_OUTCOME:
        check_outcome(store, process_id, outcome)
    filters = Filters(process_id, since, distributor, market)
    dialect = store.dialect
    conv = converted_instances(outcome).subquery()
    visit, _ = visits(dialect, filters)
    flagged = (
        select(visit, (conv.c.instance_id.is_not(None)).label("conv"))
        .select_from(visit.outerjoin(conv, conv.c.instance_id == visit.c.instance_id))
        .subquery()
    )
    pct = Percentiles(dialect, flagged, "step_id", "hours")
    v = pct.source.c
    kind = v.closed_kind
    is_active = v.status == "active"

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    query = (
        select(
            v.step_id, func.max(v.step_name),
            func.count(func.distinct(v.instance_id)),
            func.count(),
            count(kind == DONE[0]), count(kind == "skipped"), count(kind == DONE[1]),
            count(and_(kind.is_not(None), or_(v.later, is_active))),
            count(and_(kind.is_(None), is_active)),
            count(and_(~v.later, ~is_active, ~v.conv)),
            pct.of(0.5), pct.of(0.9),
            func.count(func.distinct(case((v.conv, v.instance_id)))),
        )
        .group_by(v.step_id)
        .order_by(func.min(v.first_id))
    )
    totals = select(
        func.count(),
        func.count(conv.c.instance_id),
    ).select_from(INSTANCE.outerjoin(conv, conv.c.instance_id == INSTANCE.c.id)).where(
        *filters.where(dialect))
    with store.read() as conn:
        rows = conn.execute(query).all()
        instances, converted = conn.execute(totals).one()
    steps = tuple(
        FunnelStep(r[0], r[1], instances=int(r[2]), entered=int(r[3]),
                   completed=int(r[4] or 0), skipped=int(r[5] or 0), varied=int(r[6] or 0),
                   moved_on=int(r[7] or 0), waiting=int(r[8] or 0), dropped=int(r[9] or 0),
                   median_hours=_float(r[10]), p90_hours=_float(r[11]),
                   converted=int(r[12] or 0))
        for r in rows)
    return Funnel(filters, outcome, int(instances), int(converted), steps)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
