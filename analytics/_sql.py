"""SQL building blocks shared by the analytics: instance filters, durations, percentiles,
and step visits (recorded with the events, see `engine.store.visits`), for SQLite and
PostgreSQL.

Everything here builds SQLAlchemy Core expressions; the database does the work and only the
aggregated rows reach Python.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Float,
    Integer,
    MetaData,
    Select,
    Table,
    case,
    cast,
    func,
    insert,
    literal,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from engine.clock import as_utc
from engine.store import DEFINITION, INSTANCE, REACHED_KINDS, STEP_EVENT, VISIT_KINDS, EventKind
from engine.store.steplog import UnknownOutcome, check_outcome, hours

__all__ = ["UnknownOutcome", "check_outcome", "hours"]  # re-exported for analytics


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
    text: ColumnElement[Any] = cast(INSTANCE.c.context, JSONB)[key].astext
    return text


def week_start(dialect: str, moment: Any) -> ColumnElement[Any]:
    """The Monday (ISO week start) of a timestamp, as a date."""
    if dialect == "sqlite":
        return func.date(moment, "-6 days", "weekday 1")
    return cast(func.date_trunc("week", moment), type_=DateTime())


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


def percentiles(conn: Connection, source: Select[Any],
                ps: tuple[float, ...]) -> dict[Any, tuple[float, ...]]:
    """Per group, continuous percentiles (as PostgreSQL's `percentile_cont`) of the non-null
    values of `source`, a SELECT of (group, value).

    PostgreSQL computes them as ordered-set aggregates. SQLite has none, and ranking rows
    with a window function costs more than sorting them: its rows are sorted once into a
    temporary table, whose row ids then are their ranks, and only the rows around each
    p·(n−1) are read back to interpolate.
    """
    rows = source.subquery()
    g, v = list(rows.c)[:2]
    if conn.dialect.name != "sqlite":  # one sort per group for all of `ps`
        query = (select(g, func.percentile_cont(postgresql.array(ps)).within_group(v.asc()))
                 .where(v.is_not(None)).group_by(g))
        return {r[0]: tuple(float(x) for x in r[1]) for r in conn.execute(query)}
    ranked = Table(f"nextmove_ranked_{uuid.uuid4().hex[:12]}", MetaData(),
                   Column("g", g.type), Column("v", v.type), prefixes=["TEMPORARY"])
    ranked.create(conn)
    try:
        conn.execute(insert(ranked).from_select(
            ["g", "v"], select(g, v).where(v.is_not(None)).order_by(g, v)))
        r = ranked.c
        rowid: ColumnElement[int] = literal_column(f"{ranked.name}.rowid")
        spans = conn.execute(select(r.g, func.min(rowid), func.count()).group_by(r.g)).all()
        wanted: dict[Any, list[tuple[int, int, float]]] = {}
        for group, first, n in spans:
            for p in ps:
                pos = p * (n - 1)
                low = int(pos)
                wanted.setdefault(group, []).append(
                    (first + low, first + min(low + 1, n - 1), pos - low))
        ids = sorted({i for picks in wanted.values() for a, b, _ in picks for i in (a, b)})
        values: dict[int, float] = {}
        for start in range(0, len(ids), 500):
            values.update(conn.execute(select(rowid, r.v).where(
                rowid.in_(ids[start:start + 500]))).all())
        return {group: tuple(values[a] + (values[b] - values[a]) * frac
                             for a, b, frac in picks) for group, picks in wanted.items()}
    finally:
        ranked.drop(conn)


def latest_definition(conn: Connection, process_id: str) -> dict[str, Any] | None:
    """The name, version, documents and source format of the process's newest version."""
    query = (select(DEFINITION.c.name, DEFINITION.c.version, DEFINITION.c.documents,
                    DEFINITION.c.source_format)
             .where(DEFINITION.c.process_id == process_id)
             .order_by(DEFINITION.c.version.desc()).limit(1))
    row = conn.execute(query).mappings().first()
    return None if row is None else dict(row)


def process_ids(conn: Connection) -> list[str]:
    """Every process with a deployed definition."""
    return list(conn.execute(select(DEFINITION.c.process_id).distinct()).scalars())


def of_instances(dialect: str) -> ColumnElement[bool]:
    """The join of step events to their instance. On SQLite the instance side is written
    `instance.id + 0` so the planner cannot look instances up by id once per event (their
    rows hold the state documents: most of the database) and instead walks the selected
    instances through `ix_instance_process_status`, reading each one's events from
    `ix_step_event_visit`."""
    if dialect == "sqlite":
        return INSTANCE.c.id + 0 == STEP_EVENT.c.instance_id
    return INSTANCE.c.id == STEP_EVENT.c.instance_id


def _filtered(filters: Filters, dialect: str, *where: Any) -> list[ColumnElement[bool]]:
    return [*filters.where(dialect), *where]


def _next_kind_at_step(event: Any) -> Any:
    """The kind of the instance's next event (of VISIT_KINDS) at `event`'s step: one seek into
    `ix_step_event_visit`, not a window over every event."""
    p = STEP_EVENT.alias("p")
    return (select(p.c.kind)
            .where(p.c.instance_id == event.instance_id, p.c.step_id == event.step_id,
                   p.c.id > event.id, p.c.kind.in_(VISIT_KINDS))
            .order_by(p.c.id.asc()).limit(1).scalar_subquery())


def step_events(dialect: str, filters: Filters, *where: Any) -> Select[Any]:
    """The step events (of VISIT_KINDS) of the selected instances with their visits (see
    `engine.store.visits`): id, instance_id, step_id, kind, paired, visit_ms, status (the
    instance's). All read from `ix_step_event_visit`, never from the wide event rows."""
    e = STEP_EVENT.c
    return (select(e.id, e.instance_id, e.step_id, e.kind, e.paired, e.visit_ms,
                   INSTANCE.c.status)
            .join(INSTANCE, of_instances(dialect))
            .where(*_filtered(filters, dialect, e.kind.in_(VISIT_KINDS), *where)))


def visit_hours(dialect: str, filters: Filters) -> Select[Any]:
    """(step_id, hours) of every ended visit of the selected instances."""
    e = STEP_EVENT.c
    return (select(e.step_id, cast(e.visit_ms, Float) / 3_600_000.0)
            .join(INSTANCE, of_instances(dialect))
            .where(*_filtered(filters, dialect, e.visit_ms.is_not(None))))


def open_arrivals(dialect: str, filters: Filters, *where: Any,
                  extra: tuple[Any, ...] = ()) -> Any:
    """Step visits still open: `entered` events not followed at their step by a closing
    event (nothing came after, or the step was entered again). Columns: id, instance_id,
    step_id, step_name, arrived_at, status, plus `extra`; `where` narrows the events first
    (e.g. to active instances)."""
    e = STEP_EVENT.c
    after = _next_kind_at_step(e)
    return (
        select(e.id, e.instance_id, e.step_id, e.step_name, e.at.label("arrived_at"),
               INSTANCE.c.status, *extra)
        .join(INSTANCE, of_instances(dialect))
        .where(*_filtered(filters, dialect, e.kind == EventKind.ENTERED, *where),
               func.coalesce(after, EventKind.ENTERED) == EventKind.ENTERED)
        .subquery()
    )


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


def converted(dialect: str, instance_id: Any, outcome: str) -> ColumnElement[bool]:
    """Whether the instance reached the outcome (a step that happened or an outcome event).
    SQLite: one seek into `ix_step_event_visit` per instance asked about;
    PostgreSQL: membership in the hashed set of converted instances."""
    p = STEP_EVENT.alias("conv")
    reached = (p.c.step_id == outcome, p.c.kind.in_(REACHED_KINDS))
    if dialect == "sqlite":
        return select(p.c.id).where(p.c.instance_id == instance_id, *reached).exists()
    found: ColumnElement[bool] = instance_id.in_(select(p.c.instance_id).where(*reached))
    return found
