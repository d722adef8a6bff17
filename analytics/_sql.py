"""SQL building blocks shared by the analytics: instance filters, durations, percentiles,
and step visits (an arrival at a step paired with what ended it), for SQLite and PostgreSQL.

Everything here builds SQLAlchemy Core expressions; the database does the work and only the
aggregated rows reach Python.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    Numeric,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from engine.clock import as_utc
from engine.errors import NextmoveError, did_you_mean
from engine.runtime.queries import DEFINITION, INSTANCE, STEP_EVENT
from engine.store.database import Store

# What closes a visit to a step: a person acted, a timer or a prospect event fired there.
CLOSING = ("completed", "skipped", "varied", "cancelled", "timer", "message")
DONE = ("completed", "varied")  # the step was done (as suggested or the person's own way)
# Kinds whose step id can name an outcome: the step happened (not merely entered or skipped).
OUTCOME_KINDS = ("completed", "varied", "timer", "message", "outcome")


@dataclass(frozen=True)
class Filters:
    """Which instances count: one process, started since a time, of one distributor, in one
    market (the `market` key of the instance context)."""

    process_id: str | None = None
    since: datetime | None = None
    distributor: str | None = None
    market: str | None = None

    def where(self, dialect: str) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.process_id is not None:
            out.append(INSTANCE.c.process_id == self.process_id)
        if self.since is not None:
            out.append(INSTANCE.c.created_at >= naive(self.since))
        if self.distributor is not None:
            out.append(INSTANCE.c.distributor_id == self.distributor)
        if self.market is not None:
            out.append(context_value(dialect, "market") == self.market)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"process_id": self.process_id,
                "since": as_utc(self.since).isoformat() if self.since else None,
                "distributor": self.distributor, "market": self.market}


def naive(moment: datetime) -> datetime:
    """The store keeps naive UTC."""
    return as_utc(moment).replace(tzinfo=None)


def context_value(dialect: str, key: str) -> ColumnElement[Any]:
    """One top-level text value of the instance's JSON context."""
    if dialect == "sqlite":
        return func.json_extract(INSTANCE.c.context, f"$.{key}")
    return cast(INSTANCE.c.context, JSONB)[key].astext


def hours(dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    """end - start in hours, to the millisecond, computed by the database (SQLite's Julian
    day numbers carry float noise below that; both databases round alike)."""
    if dialect == "sqlite":
        ms = func.round((func.julianday(end) - func.julianday(start)) * 86_400_000.0)
    else:
        ms = func.round(cast(func.extract("epoch", end - start) * 1000, Numeric))
    return cast(ms, Float) / 3_600_000.0


def week_start(dialect: str, moment: Any) -> ColumnElement[Any]:
    """The Monday (ISO week start) of a timestamp, as a date."""
    if dialect == "sqlite":
        return func.date(moment, "-6 days", "weekday 1")
    return cast(func.date_trunc("week", moment), type_=DEFINITION.c.deployed_at.type)


class Percentiles:
    """Continuous percentiles (as PostgreSQL's `percentile_cont`) of `value` per group.

    PostgreSQL computes them as ordered-set aggregates. SQLite has none: every row gets its
    rank among its group's non-null values (a window function), and the aggregate picks the
    ranks around p·(n−1) and interpolates, so both databases give the same figures.
    `source` is what to select from; `of(p)` is the aggregate for one percentile.
    """

    def __init__(self, dialect: str, source: Any, group: str, value: str) -> None:
        self.dialect = dialect
        if dialect == "sqlite":
            col, key = source.c[value], source.c[group]
            ranked = select(
                source,
                func.row_number().over(partition_by=key, order_by=col.asc().nulls_last())
                .label("_rn"),
                func.count(col).over(partition_by=key).label("_n"),
            ).subquery()
            self.source = ranked
        else:
            self.source = source
        self.value = value

    def of(self, p: float) -> ColumnElement[Any]:
        src = self.source
        if self.dialect != "sqlite":
            return func.percentile_cont(p).within_group(src.c[self.value].asc())
        pos = literal(p, Float) * (src.c._n - 1)
        low = cast(pos, Integer)  # pos >= 0, so the cast floors it
        value = src.c[self.value]
        first = func.max(case((src.c._rn == low + 1, value)))
        second = func.max(case((src.c._rn == low + 2, value)))
        frac = func.max(pos - low)
        return first + func.coalesce(second - first, 0.0) * frac


KINDS = ("entered", *CLOSING)  # the events that make up step visits


def _filtered(filters: Filters, dialect: str, *where: Any) -> list[ColumnElement[bool]]:
    return [*filters.where(dialect), *where]


def _prev(event: Any, column: Any, *, same_step: bool, after: bool = False) -> Any:
    """`column` of the instance's event (of KINDS) just before `event` — at the same step or
    at any — or just after it: one seek into `ix_step_event_instance_step` /
    `ix_step_event_instance`, not a window over every event."""
    p = STEP_EVENT.alias("p")
    near = p.c.id > event.id if after else p.c.id < event.id
    query = select(column(p.c) if callable(column) else p.c[column]).where(
        p.c.instance_id == event.instance_id, near, p.c.kind.in_(KINDS),
        *([p.c.step_id == event.step_id] if same_step else []))
    return query.order_by(p.c.id.asc() if after else p.c.id.desc()).limit(1).scalar_subquery()


def step_events(dialect: str, filters: Filters) -> Any:
    """One row per event of the selected instances that enters or closes a step (KINDS),
    with `prev_kind`: the kind of the instance's previous such event at the same step (NULL
    for its first). Columns: id, instance_id, step_id, step_name, kind, status, prev_kind.

    A step visit is an `entered` event, or a closing event whose previous event at the step
    is not `entered` (imported logs, start and end events, timers, messages); a closing event
    right after an `entered` one ends that visit. So per step: visits = closing events +
    entered − paired, and an instance's first event there counts the instance once.
    """
    e = STEP_EVENT.c
    if dialect == "sqlite":
        prev_kind: Any = _prev(e, "kind", same_step=True)
    else:
        prev_kind = func.lag(e.kind).over(partition_by=(e.instance_id, e.step_id),
                                          order_by=e.id)
    return (
        select(e.id, e.instance_id, e.step_id, e.step_name, e.kind, INSTANCE.c.status,
               prev_kind.label("prev_kind"))
        .join(INSTANCE, INSTANCE.c.id == e.instance_id)
        .where(*_filtered(filters, dialect, e.kind.in_(KINDS)))
        .subquery()
    )


def closed_visits(dialect: str, filters: Filters, *, extra: tuple[Any, ...] = ()) -> Any:
    """One row per ended step visit — per closing event: when the visit began, when and how
    it ended, the hours it took. The visit began at the `entered` event right before the
    closing one at the same step, else (a step whose action was logged without one) at the
    instance's previous event (process-mining tools measure time between completions the same
    way), else at the event itself. Columns: id, instance_id, step_id, kind, arrived_at,
    closed_at, hours, plus `extra`."""
    e = STEP_EVENT.c
    if dialect == "sqlite":
        # one index seek per closing event; the instance's previous event only when needed
        entered_at: Any = _prev(e, lambda p: case((p.kind == "entered", p.at)), same_step=True)
        before: Any = _prev(e, "at", same_step=False)
        events = (
            select(e.id, e.instance_id, e.step_id, e.kind, e.at, *extra,
                   entered_at.label("entered_at"), literal(None).label("before"))
            .join(INSTANCE, INSTANCE.c.id == e.instance_id)
            .where(*_filtered(filters, dialect, e.kind.in_(CLOSING)))
            .subquery()
        )
        arrived: Any = func.coalesce(events.c.entered_at, before.params(), events.c.at)
        # the correlated seek above refers to step_event: re-point it at this subquery's row
        arrived = func.coalesce(events.c.entered_at, _prev(events.c, "at", same_step=False),
                                events.c.at)
    else:
        per_step = {"partition_by": (e.instance_id, e.step_id), "order_by": e.id}
        events = (
            select(e.id, e.instance_id, e.step_id, e.kind, e.at, *extra,
                   func.lag(e.kind).over(**per_step).label("prev_kind"),
                   func.lag(e.at, type_=e.at.type).over(**per_step).label("prev_step_at"),
                   func.lag(e.at, type_=e.at.type).over(partition_by=e.instance_id,
                                                        order_by=e.id).label("before"))
            .join(INSTANCE, INSTANCE.c.id == e.instance_id)
            .where(*_filtered(filters, dialect, e.kind.in_(KINDS)))
            .subquery()
        )
        arrived = func.coalesce(case((events.c.prev_kind == "entered", events.c.prev_step_at)),
                                events.c.before, events.c.at)
    ev = events.c
    query = select(ev.id, ev.instance_id, ev.step_id, ev.kind, arrived.label("arrived_at"),
                   ev.at.label("closed_at"), hours(dialect, arrived, ev.at).label("hours"),
                   *(ev[c.name] for c in extra))
    if dialect != "sqlite":
        query = query.where(ev.kind != "entered")
    return query.subquery()


def open_arrivals(dialect: str, filters: Filters, *where: Any,
                  extra: tuple[Any, ...] = ()) -> Any:
    """Step visits still open: `entered` events not followed at their step by a closing
    event (nothing came after, or the step was entered again). Columns: id, instance_id,
    step_id, step_name, arrived_at, status, plus `extra`; `where` narrows the events first
    (e.g. to active instances)."""
    e = STEP_EVENT.c
    after = _prev(e, "kind", same_step=True, after=True)
    return (
        select(e.id, e.instance_id, e.step_id, e.step_name, e.at.label("arrived_at"),
               INSTANCE.c.status, *extra)
        .join(INSTANCE, INSTANCE.c.id == e.instance_id)
        .where(*_filtered(filters, dialect, e.kind == "entered", *where),
               func.coalesce(after, "entered") == "entered")
        .subquery()
    )


def last_events(dialect: str, filters: Filters) -> Any:
    """Each selected instance's last event of KINDS: instance_id, step_id, kind, status. The
    visit it ended (or, for an `entered` event, opened) is the only one of the instance
    nothing came after."""
    e = STEP_EVENT.c
    last = (
        select(e.instance_id, func.max(e.id).label("last_id"))
        .join(INSTANCE, INSTANCE.c.id == e.instance_id)
        .where(*_filtered(filters, dialect, e.kind.in_(KINDS)))
        .group_by(e.instance_id)
        .subquery()
    )
    return (
        select(last.c.instance_id, e.step_id, e.kind, INSTANCE.c.status)
        .select_from(last.join(STEP_EVENT, e.id == last.c.last_id)
                     .join(INSTANCE, INSTANCE.c.id == last.c.instance_id))
        .subquery()
    )


def check_outcome(store: Store, process_id: str, outcome: str) -> None:
    """Raise UnknownOutcome unless the process has such a step or such outcome events."""
    with store.read() as conn:
        docs = conn.execute(select(DEFINITION.c.steps)
                            .where(DEFINITION.c.process_id == process_id)).scalars().all()
        steps = {s["id"] for doc in docs for s in json.loads(doc)}
        if outcome in steps:
            return
        names = set(conn.execute(
            select(STEP_EVENT.c.step_id).distinct()
            .join(INSTANCE, INSTANCE.c.id == STEP_EVENT.c.instance_id)
            .where(INSTANCE.c.process_id == process_id, STEP_EVENT.c.kind == "outcome")
        ).scalars())
    if outcome not in names:
        raise UnknownOutcome(process_id, outcome, sorted(steps | names))


class UnknownOutcome(NextmoveError):
    """The outcome names neither a step of the process nor an outcome event recorded for it."""

    def __init__(self, process_id: str, outcome: str, known: list[str]) -> None:
        self.process_id, self.outcome, self.known = process_id, outcome, known
        hint = did_you_mean(outcome, known)
        self.suggestion = hint
        super().__init__(f"process {process_id!r} has no step and no outcome event named "
                         f"{outcome!r}" + (f" (did you mean '{hint}'?)" if hint else ""))


def converted_instances(outcome: str) -> Select[Any]:
    """Ids of instances that reached the outcome (a step that happened or an outcome event)."""
    return (select(STEP_EVENT.c.instance_id).distinct()
            .where(STEP_EVENT.c.step_id == outcome, STEP_EVENT.c.kind.in_(OUTCOME_KINDS)))
