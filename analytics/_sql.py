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
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from engine.clock import as_utc
from engine.store import INSTANCE, STEP_EVENT
from engine.store.steplog import UnknownOutcome, check_outcome, hours

__all__ = ["UnknownOutcome", "check_outcome", "hours"]  # re-exported for analytics


@dataclass(frozen=True)
class Filters:
    """Which instances count: one process, started since a time, of one distributor, in one
    market (the `market` key of the instance context), of a set of distributors (`people`,
    e.g. a sponsor's downline: `analytics.people`)."""

    process_id: str | None = None
    since: datetime | None = None
    distributor: str | None = None
    market: str | None = None
    people: tuple[str, ...] | None = None

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
        if self.people is not None:
            out.append(INSTANCE.c.distributor_id.in_(self.people))
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
    temporary table, whose row ids then are their ranks; each group's span of row ids is
    found by probing (no second sort), and only the rows around each p·(n−1) are read back
    to interpolate.
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
        spans = _spans(conn, select(r.g).where(rowid == bindparam("at")),
                       conn.execute(select(func.max(rowid)).select_from(ranked)).scalar() or 0)
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


def _spans(conn: Connection, group_at: Select[Any], rows: int) -> list[tuple[Any, int, int]]:
    """(group, first row id, rows) of a table of `rows` rows sorted by group, row ids 1..rows:
    each group's end found by probing row ids (a galloping search), so the rows are not
    sorted again to be grouped. `group_at` selects the group of row id `at`."""
    def group(at: int) -> Any:
        return conn.execute(group_at, {"at": at}).scalar_one()

    spans: list[tuple[Any, int, int]] = []
    first = 1
    while first <= rows:
        current = group(first)
        low, step = first, 1  # the group holds `low`; find its last row
        while low + step <= rows and group(low + step) == current:
            low, step = low + step, step * 2
        high = min(low + step, rows + 1)  # first row past the group, or past the end
        while high - low > 1:
            middle = (low + high) // 2
            if group(middle) == current:
                low = middle
            else:
                high = middle
        spans.append((current, first, low - first + 1))
        first = low + 1
    return spans


def of_instances(dialect: str) -> ColumnElement[bool]:
    """The join of step events to their instance. On SQLite the instance side is written
    `instance.id + 0` so the planner cannot look instances up by id once per event (their
    rows hold the state documents: most of the database) and instead walks the selected
    instances through `ix_instance_process_status`, reading each one's events from
    `ix_step_event_visit`."""
    if dialect == "sqlite":
        return INSTANCE.c.id + 0 == STEP_EVENT.c.instance_id
    return INSTANCE.c.id == STEP_EVENT.c.instance_id


def filtered(filters: Filters, dialect: str, *where: Any) -> list[ColumnElement[bool]]:
    return [*filters.where(dialect), *where]


def visit_hours(dialect: str, filters: Filters) -> Select[Any]:
    """(step_id, hours) of every ended visit of the selected instances."""
    e = STEP_EVENT.c
    return (select(e.step_id, cast(e.visit_ms, Float) / 3_600_000.0)
            .join(INSTANCE, of_instances(dialect))
            .where(*filtered(filters, dialect, e.visit_ms.is_not(None))))
