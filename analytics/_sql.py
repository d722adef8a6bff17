"""SQL building blocks shared by the analytics: instance filters, durations, percentiles,
and step visits (an arrival at a step paired with what ended it), for SQLite and PostgreSQL.

Everything here builds SQLAlchemy Core expressions; the database does the work and only the
aggregated rows reach Python.
"""

from __future__ import annotations

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
from engine.runtime.queries import DEFINITION, INSTANCE, STEP_EVENT
from learner._log import OUTCOME_KINDS, UnknownOutcome, check_outcome

__all__ = ["OUTCOME_KINDS", "UnknownOutcome", "check_outcome"]  # re-exported for analytics

# What closes a visit to a step: a person acted, a timer or a prospect event fired there.
CLOSING = ("completed", "skipped", "varied", "cancelled", "timer", "message")
DONE = ("completed", "varied")  # the step was done (as suggested or the person's own way)
# Kinds whose step id can name an outcome: the step happened (not merely entered or skipped).


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


def percentiles(dialect: str, source: Any, group: str, value: str,
                ps: tuple[float, ...]) -> Select[Any]:
    """Rows (group, one continuous percentile per `ps`) of `value`'s non-null values, as
    PostgreSQL's `percentile_cont`.

    On SQLite every value gets its rank in its group (one window function over just the
    group and the value, materialized once), the group's size is its highest rank, and only
    the ranks around p·(n−1) reach the aggregate that interpolates. Cheaper than
    `Percentiles` (whose whole-partition count window costs as much again) when the
    percentiles are all a query needs.
    """
    g, v = source.c[group], source.c[value]
    if dialect != "sqlite":
        return (select(g, *(func.percentile_cont(p).within_group(v.asc()) for p in ps))
                .where(v.is_not(None)).group_by(g))
    ranked = (select(g.label("g"), v.label("v"),
                     func.row_number().over(partition_by=g, order_by=v).label("rn"))
              .where(v.is_not(None)).cte("ranked").prefix_with("MATERIALIZED"))
    r = ranked.c
    sizes = select(r.g, func.max(r.rn).label("n")).group_by(r.g).subquery()
    cols, near = [], []
    for p in ps:
        pos = literal(p, Float) * (sizes.c.n - 1)
        low = cast(pos, Integer)  # pos >= 0, so the cast floors it
        first = func.max(case((r.rn == low + 1, r.v)))
        second = func.max(case((r.rn == low + 2, r.v)))
        cols.append(first + func.coalesce(second - first, 0.0) * func.max(pos - low))
        near += [r.rn == low + 1, r.rn == low + 2]
    return (select(r.g, *cols).select_from(ranked.join(sizes, sizes.c.g == r.g))
            .where(or_(*near)).group_by(r.g))


KINDS = ("entered", *CLOSING)  # the events that make up step visits


def of_instances(dialect: str) -> ColumnElement[bool]:
    """The join of step events to their instance. On SQLite the instance side is written
    `instance.id + 0` so the planner cannot look instances up by id once per event (their
    rows hold the state documents: most of the database) and instead walks the selected
    instances through `ix_instance_process_status`, reading each one's events from
    `ix_step_event_instance_step`."""
    if dialect == "sqlite":
        return INSTANCE.c.id + 0 == STEP_EVENT.c.instance_id
    return INSTANCE.c.id == STEP_EVENT.c.instance_id


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


def visit_events(dialect: str, filters: Filters, *, closing_only: bool = False) -> Any:
    """One row per event of the selected instances that enters or closes a step (KINDS).

    A step visit is an `entered` event, or a closing event whose previous event at the step
    is not `entered` (imported logs, start and end events, timers, messages); a closing event
    right after an `entered` one ends that visit. So per step: visits = closing events +
    entered − paired, and an instance's first event there counts the instance once.

    Columns: id, instance_id, step_id, kind, status (the instance's), first (the instance's
    first such event at the step), paired (a closing event right after an `entered` one),
    hours (closing events: the visit's time, from the `entered` event, else
    from the instance's previous event — process-mining tools measure time between
    completions the same way — else 0). `closing_only`: only closing events.

    SQLite: an index seek into `ix_step_event_instance_step` (which covers every column read
    here) per event, not windows: SQLite's window functions cost microseconds per row and
    function, a seek about one. PostgreSQL: window functions.
    """
    e = STEP_EVENT.c
    kinds = CLOSING if closing_only else KINDS
    if dialect == "sqlite":
        # a closing event: was the event just before it at its step an `entered` one?
        entered_at = case((e.kind != "entered", _prev(
            e, lambda p: case((p.kind == "entered", p.at)), same_step=True)))
        events = (
            select(e.id, e.instance_id, e.step_id, e.kind, e.at, INSTANCE.c.status,
                   entered_at.label("entered_at"))
            .join(INSTANCE, of_instances(dialect))
            .where(*_filtered(filters, dialect, e.kind.in_(kinds)))
            .offset(0)  # not flattened into its users: each seek runs once per event
            .subquery()
        )
        ev = events.c
        paired = ev.entered_at.is_not(None)
        # the instance's previous event, only for a closing event without its `entered`
        began = func.coalesce(ev.entered_at, _prev(ev, "at", same_step=False), ev.at)
        # the instance's first event at the step: a closing one right after its `entered`
        # one is not; others ask the index (cheaper than counting distinct instances)
        first = literal(None) if closing_only else case((paired, False),
                                                        else_=~earlier_of(ev))
        return (
            select(ev.id, ev.instance_id, ev.step_id, ev.kind, ev.status, first.label("first"),
                   paired.label("paired"),
                   case((ev.kind != "entered", hours(dialect, began, ev.at))).label("hours"))
            .offset(0)
            .subquery()
        )
    per_step = {"partition_by": (e.instance_id, e.step_id), "order_by": e.id}
    events = (
        select(e.id, e.instance_id, e.step_id, e.kind, e.at, INSTANCE.c.status,
               func.lag(e.kind).over(**per_step).label("prev_kind"),
               func.lag(e.at, type_=e.at.type).over(**per_step).label("prev_step_at"),
               func.lag(e.at, type_=e.at.type).over(partition_by=e.instance_id,
                                                    order_by=e.id).label("before"))
        .join(INSTANCE, of_instances(dialect))
        .where(*_filtered(filters, dialect, e.kind.in_(KINDS)))
        .subquery()
    )
    ev = events.c
    is_closing = ev.kind != "entered"
    paired_ = and_(is_closing, ev.prev_kind == "entered")
    began = func.coalesce(case((paired_, ev.prev_step_at)), ev.before, ev.at)
    return (
        select(ev.id, ev.instance_id, ev.step_id, ev.kind, ev.status,
               ev.prev_kind.is_(None).label("first"), paired_.label("paired"),
               case((is_closing, hours(dialect, began, ev.at))).label("hours"))
        .where(*([is_closing] if closing_only else []))
        .subquery()
    )


def earlier_of(event: Any) -> ColumnElement[bool]:
    """Whether the instance has an event (of KINDS) at `event`'s step before it."""
    p = STEP_EVENT.alias("p")
    return select(p.c.id).where(
        p.c.instance_id == event.instance_id, p.c.step_id == event.step_id,
        p.c.id < event.id, p.c.kind.in_(KINDS)).exists()


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
        .join(INSTANCE, of_instances(dialect))
        .where(*_filtered(filters, dialect, e.kind == "entered", *where),
               func.coalesce(after, "entered") == "entered")
        .subquery()
    )


def last_events(dialect: str, filters: Filters) -> Any:
    """Each selected instance's last event of KINDS: instance_id, step_id, kind, status. The
    visit it ended (or, for an `entered` event, opened) is the only one of the instance
    nothing came after. SQLite: one look per instance into its events; PostgreSQL: a hash
    aggregate over them."""
    e = STEP_EVENT.c
    if dialect == "sqlite":
        p = STEP_EVENT.alias("p")
        last_id: Any = (select(func.max(p.c.id))
                        .where(p.c.instance_id == INSTANCE.c.id, p.c.kind.in_(KINDS))
                        .scalar_subquery())
        last = (select(INSTANCE.c.id.label("instance_id"), INSTANCE.c.status,
                       last_id.label("last_id"))
                .where(*filters.where(dialect))
                .subquery())
    else:
        last = (select(e.instance_id, INSTANCE.c.status, func.max(e.id).label("last_id"))
                .join(INSTANCE, of_instances(dialect))
                .where(*_filtered(filters, dialect, e.kind.in_(KINDS)))
                .group_by(e.instance_id, INSTANCE.c.status)
                .subquery())
    return (
        select(last.c.instance_id, e.step_id, e.kind, last.c.status)
        .select_from(last.join(STEP_EVENT, e.id == last.c.last_id))
        .subquery()
    )


def converted(dialect: str, instance_id: Any, outcome: str) -> ColumnElement[bool]:
    """Whether the instance reached the outcome (a step that happened or an outcome event).
    SQLite: one seek into `ix_step_event_instance_step` per instance asked about;
    PostgreSQL: membership in the hashed set of converted instances."""
    p = STEP_EVENT.alias("conv")
    reached = (p.c.step_id == outcome, p.c.kind.in_(OUTCOME_KINDS))
    if dialect == "sqlite":
        return select(p.c.id).where(p.c.instance_id == instance_id, *reached).exists()
    return instance_id.in_(select(p.c.instance_id).where(*reached))
