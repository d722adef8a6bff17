"""The funnel: per step, who arrived, what they did there, how long it took, who converted.

Aggregates in the database: per step, its events counted — each closing event carries the
visit it ended (`engine.store.visits`), so nothing is paired here — first per instance and
step, then per step; the ended visits' median and 90th-percentile time spent; the instances'
last events (who dropped, who moved on); the converted instances' steps; the totals. Only
per-step rows reach Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select

from analytics._sql import (
    Filters,
    check_outcome,
    converted,
    last_events,
    of_instances,
    percentiles,
    step_events,
    visit_hours,
)
from engine.store import INSTANCE, STEP_EVENT, VISIT_KINDS, EventKind
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

    # per step, one pass over its events: arrivals, how they ended, distinct instances
    # (filtered counts cost SQLite about half of sum(CASE ...))
    ev = step_events(dialect, filters).subquery()
    entered, paired = ev.c.kind == EventKind.ENTERED, ev.c.paired.is_(True)
    active = ev.c.status == "active"
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
    sums = tuple(tallies)
    # the step's name as last logged (a later version may have renamed it)
    name = select(STEP_EVENT.c.step_name).where(STEP_EVENT.c.id == counts.c.last_id) \
        .scalar_subquery()
    per_step = (select(counts.c.step_id, name, counts.c.instances,
                       *(counts.c[k] for k in sums))
                .order_by(counts.c.first_id))
    # nothing came after an instance's last event: that visit dropped (or ended the journey)
    last = last_events(dialect, filters).c
    over = last.status != "active"
    ends = (
        select(last.step_id, func.count().filter(and_(over, last.kind != EventKind.ENTERED)),
               func.count().filter(and_(over, ~converted(dialect, last.instance_id, outcome))))
        .group_by(last.step_id)
    )
    # converted instances per step: only the converted instances' events are read
    e = STEP_EVENT.c
    won = (
        select(e.step_id, func.count(func.distinct(e.instance_id)))
        .join(INSTANCE, of_instances(dialect))
        .where(*filters.where(dialect), e.kind.in_(VISIT_KINDS),
               converted(dialect, INSTANCE.c.id, outcome))
        .group_by(e.step_id)
    )
    totals = select(func.count(), func.count().filter(
        converted(dialect, INSTANCE.c.id, outcome))).where(*filters.where(dialect))
    with store.read() as conn:
        rows = conn.execute(per_step).all()
        times = percentiles(conn, visit_hours(dialect, filters), (0.5, 0.9))
        ended = {r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in conn.execute(ends)}
        wins = {r[0]: int(r[1]) for r in conn.execute(won)}
        instances, converted_ = conn.execute(totals).one()
    steps = []
    for (step_id, name_, distinct, closed, entered, paired_, completed, skipped, varied,
         active_entered, active_paired) in rows:
        closed, paired_ = int(closed or 0), int(paired_ or 0)
        ended_closed, dropped = ended.get(step_id, (0, 0))
        median, p90 = times.get(step_id, (None, None))
        steps.append(FunnelStep(
            step_id, name_, instances=int(distinct or 0),
            entered=closed + int(entered or 0) - paired_,
            completed=int(completed or 0), skipped=int(skipped or 0), varied=int(varied or 0),
            moved_on=closed - ended_closed,
            waiting=int(active_entered or 0) - int(active_paired or 0),
            dropped=dropped, median_hours=median, p90_hours=p90,
            converted=wins.get(step_id, 0)))
    return Funnel(filters, outcome, int(instances), int(converted_ or 0), tuple(steps))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
