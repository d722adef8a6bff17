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
from engine.errors import NotInData
from engine.store import INSTANCE, STEP_EVENT
from engine.store.database import Store
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

    def check(self, store: Store) -> None:
        """Raise NotInData for a distributor or market no instance has (`check_people`)."""
        check_people(store, distributor=self.distributor, market=self.market)

    def to_dict(self) -> dict[str, Any]:
        return {"process_id": self.process_id,
                "since": as_utc(self.since).isoformat() if self.since else None,
                "distributor": self.distributor, "market": self.market}


def check_people(store: Store, *, distributor: str | None = None,
                 sponsor: str | None = None, market: str | None = None) -> None:
    """Raise NotInData (with the nearest value) unless some instance names `distributor` or
    `sponsor` (as its distributor or its sponsor) and some instance's context has `market`:
    a mistyped filter must not read as a person or a market with no data. Each is a probe
    that stops at the first matching row; the known values are read only to name the nearest."""
    i = INSTANCE.c
    with store.read() as conn:
        for what, person in (("distributor", distributor), ("sponsor", sponsor)):
            if person is None:
                continue
            if not any(conn.execute(select(i.id).where(column == person).limit(1)).first()
                       for column in (i.distributor_id, i.sponsor_id)):
                known = {*conn.execute(select(i.distributor_id).distinct()).scalars(),
                         *conn.execute(select(i.sponsor_id).distinct()).scalars()}
                raise NotInData(what, person, (str(k) for k in known if k is not None))
        if market is not None:
            value = context_value(store.dialect, "market")
            if conn.execute(select(i.id).where(value == market).limit(1)).first() is None:
                markets = conn.execute(select(value).distinct()).scalars()
                raise NotInData("market", market, (str(k) for k in markets if k is not None),
                                list_known=True)


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


TEMP_CACHE_KIB = -65536  # SQLite's cache_size in KiB when negative


def visit_percentiles(conn: Connection, filters: Filters,
                      ps: tuple[float, ...]) -> dict[str, tuple[float, ...]]:
    """Per step, continuous percentiles (as `percentiles`) of the hours of the ended visits of
    the instances `filters` selects: the same figures, found more cheaply.

    On SQLite each step's ended visits lie in `ix_step_event_visit_ms` in order of their
    time, so nothing is sorted: the selected instances go into a temporary table (keyed by
    id), one pass over the index counts each step's visits of theirs, and each wanted rank
    is reached by stepping along the step's part of the index, from its shorter end
    (`OFFSET`); only the values around each p·(n−1) reach Python. PostgreSQL sorts them
    (`percentiles`): its planner does not keep the index's order under the instance filter.
    """
    if conn.dialect.name != "sqlite":
        return percentiles(conn, visit_hours(conn.dialect.name, filters), ps)
    chosen = Table(f"nextmove_chosen_{uuid.uuid4().hex[:12]}", MetaData(),
                   Column("id", Integer, primary_key=True), prefixes=["TEMPORARY"])
    # every visit probes the chosen ids: let their pages stay in memory (up to 64 MiB, taken
    # as needed) instead of SQLite's 2 MiB default for temporary tables (2× faster at a
    # million instances)
    cache = conn.exec_driver_sql("PRAGMA temp.cache_size").scalar_one()
    conn.exec_driver_sql(f"PRAGMA temp.cache_size = {TEMP_CACHE_KIB}")
    chosen.create(conn)
    try:
        conn.execute(insert(chosen).from_select(
            ["id"], select(INSTANCE.c.id).where(*filters.where("sqlite"))))
        e = STEP_EVENT.c
        # `+ 0`: never by instance through `ix_step_event_visit` (a seek per chosen instance,
        # then a sort), which SQLite's planner may prefer when many instances are chosen
        ours = (e.instance_id + 0).in_(select(chosen.c.id))
        counts = conn.execute(
            select(e.step_id, func.count()).where(e.visit_ms.is_not(None), ours)
            .group_by(e.step_id)).all()
        ranks = (select(e.visit_ms)
                 .where(e.step_id == bindparam("step"), e.visit_ms.is_not(None), ours)
                 .limit(2).offset(bindparam("skip")))
        up, down = ranks.order_by(e.visit_ms.asc()), ranks.order_by(e.visit_ms.desc())
        out: dict[str, tuple[float, ...]] = {}
        for step, n in counts:
            values: list[float] = []
            for p in ps:
                pos = p * (n - 1)
                low = int(pos)
                if low < n // 2:  # ranks low and low + 1, walking up from the smallest
                    got = conn.execute(up, {"step": step, "skip": low}).scalars().all()
                else:  # the same two ranks, walking down from the largest
                    got = conn.execute(down, {"step": step,
                                              "skip": max(n - 2 - low, 0)}).scalars().all()
                    got = got[::-1] if n - 2 - low >= 0 else got[:1]
                first = float(got[0]) / 3_600_000.0
                second = float(got[1]) / 3_600_000.0 if len(got) > 1 else first
                values.append(first + (second - first) * (pos - low))
            out[step] = tuple(values)
        return out
    finally:
        chosen.drop(conn)
        conn.exec_driver_sql(f"PRAGMA temp.cache_size = {int(cache)}")


def visit_hours(dialect: str, filters: Filters) -> Select[Any]:
    """(step_id, hours) of every ended visit of the selected instances."""
    e = STEP_EVENT.c
    return (select(e.step_id, cast(e.visit_ms, Float) / 3_600_000.0)
            .join(INSTANCE, of_instances(dialect))
            .where(*filtered(filters, dialect, e.visit_ms.is_not(None))))
