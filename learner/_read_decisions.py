"""The decision table's read model: the SQL behind `learner.dataset.decisions`.

One query over the process's step events gives every decision:

* the offer: over each instance's hooked `entered` and acted events per step, in log order,
  an acted event whose previous one is an `entered` takes its offer from it; else (nothing
  entered since the step was last acted on, or an imported log) from itself;
* its place in the path: over the path events of each instance, how many come before it and
  the time of the previous one.

Two plans give the same rows: window functions (`lag`, `row_number`; PostgreSQL) and index
seeks from each acted event (SQLite, whose window functions cost more than the seeks).

Two small reads go beside it: the instances' headers (ids, context, start) and the outcome
events. Times travel as integer microseconds since 1970 (exact on both databases), and
numpy joins the three: rewards, hours, context columns, with no Python per event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    case,
    cast,
    extract,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from engine.store import ACTED_KINDS, INSTANCE, PATH_KINDS, REACHED_KINDS, STEP_EVENT, EventKind
from engine.store.database import Store
from engine.store.steplog import outcome_names

Array = NDArray[Any]


@dataclass(frozen=True)
class DecisionRows:
    """The decisions in instance and log order, as columns (times: µs since 1970)."""

    event_id: Array  # int64: the acted event's id (log order within an instance)
    instance_id: Array  # int64
    step_id: Array  # object
    kind: Array  # object: completed | skipped | varied
    hook: Array  # object
    shown: Array  # object, None when not offered
    used: Array  # object
    propensity: Array  # float64, NaN when not logged
    policy_version: Array  # int64, -1 when unknown
    offered_us: Array  # int64: the offer's time
    acted_us: Array  # int64: the acted event's time
    previous_us: Array  # int64: the previous path event's time; INT64_MIN: none
    step_index: Array  # int64


@dataclass(frozen=True)
class Headers:
    """Instances of the process in id order: id, prospect, distributor, context text, start."""

    instance_id: Array
    case_id: Array
    distributor_id: Array
    context: list[str]
    started_us: Array


NONE = np.iinfo(np.int64).min


def micros(dialect: str, column: Any) -> ColumnElement[Any]:
    """A naive UTC timestamp as integer microseconds since 1970, exactly: SQLite's text
    `YYYY-MM-DD HH:MM:SS[.ffffff]` by its whole seconds and its fraction's digits."""
    if dialect == "sqlite":
        seconds = cast(func.strftime("%s", column), Integer)
        fraction = cast(func.substr(type_coerce(column, String) + "000000", 21, 6), Integer)
        return seconds * 1_000_000 + fraction
    return cast(func.round(extract("epoch", column) * 1_000_000), BigInteger)


def decision_rows(store: Store, process_id: str, *, plan: str | None = None) -> DecisionRows:
    """Every decision of the process: an acted event at a hooked step with an offer or a
    used content (see `learner.dataset.decisions`). `plan`: "windows" or "seeks" (the
    default: seeks on SQLite, windows elsewhere); both give the same rows."""
    plan = plan or ("seeks" if store.dialect == "sqlite" else "windows")
    query = {"windows": _by_windows, "seeks": _by_seeks}[plan](store.dialect, process_id)
    columns = _columns(store, query, 13)
    ints = [np.array(c, dtype=np.int64) for c in (columns[0], columns[1], columns[8],
                                                   columns[9], columns[10], columns[12])]
    previous = np.array([NONE if v is None else v for v in columns[11]], dtype=np.int64) \
        if None in columns[11] else np.array(columns[11], dtype=np.int64)
    # instance and log order, sorted here: SQLite's ORDER BY on the joined rows cost more
    # than the rest of the join (a temporary B-tree of every decision)
    order = np.lexsort((ints[0], ints[1]))
    return DecisionRows(*(a[order] for a in (
        ints[0], ints[1], _objects(columns[2]), _objects(columns[3]), _objects(columns[4]),
        _objects(columns[5]), _objects(columns[6]), np.array(columns[7], dtype=np.float64),
        ints[2], ints[3], ints[4], previous, ints[5])))


def _of_process(instance_id: ColumnElement[Any], process_id: str) -> ColumnElement[bool]:
    return instance_id.in_(select(INSTANCE.c.id).where(
        INSTANCE.c.process_id == process_id).scalar_subquery())


def _by_windows(dialect: str, process_id: str) -> Any:
    """Two window passes joined: the offer by `lag` over each (instance, step)'s hooked
    events, the path index and previous time over each instance's path events."""
    e = STEP_EVENT.c
    of_process = _of_process(e.instance_id, process_id)
    at = e.at  # as stored: to microseconds only in the outer query, for the decisions' rows
    step = (e.instance_id, e.step_id)

    def before(column: Any) -> Any:
        return func.lag(column).over(partition_by=step, order_by=e.id)

    hooked = (select(e.id, e.instance_id, e.step_id, e.kind, e.hook, e.content_shown,
                     e.content_used, e.propensity, e.policy_version, at.label("at"),
                     before(e.kind).label("p_kind"), before(e.content_shown).label("p_shown"),
                     before(e.propensity).label("p_mu"), before(e.policy_version).label("p_v"),
                     before(at).label("p_at"))
              .where(of_process, e.hook.is_not(None),
                     e.kind.in_([EventKind.ENTERED, *ACTED_KINDS])).subquery())
    path = (select(e.id, (func.row_number().over(partition_by=e.instance_id, order_by=e.id)
                          - 1).label("index"),
                   func.lag(at).over(partition_by=e.instance_id, order_by=e.id).label("before"))
            .where(of_process, e.kind.in_(PATH_KINDS)).subquery())
    h = hooked.c
    columns = _decision_columns(dialect, h, h.p_kind, (h.p_shown, h.p_mu, h.p_v, h.p_at),
                                path.c.before, path.c.index)
    return (select(*columns).join_from(hooked, path, path.c.id == h.id)
            .where(h.kind.in_(ACTED_KINDS), _offered_or_used(columns)))


def _by_seeks(dialect: str, process_id: str) -> Any:
    """The same rows by index seeks from each acted event: its previous hooked event at the
    step (`ix_step_event_visit`), its previous path event and the count of those before it
    (`ix_step_event_instance`). On SQLite a third less time than the windows at a million
    events (5.5 against 8.1 s): its window functions sort every partition into a temporary table,
    while the events are already in index order. On PostgreSQL the windows are the faster
    plan (1.0–1.2 against 2.4–2.7 s at 200k events)."""
    e, p, q = (STEP_EVENT.alias(name) for name in ("e", "p", "q"))
    earlier = (q.c.instance_id == e.c.instance_id, q.c.id < e.c.id, q.c.kind.in_(PATH_KINDS))
    acted = (select(
        e.c.id, e.c.instance_id, e.c.step_id, e.c.kind, e.c.hook, e.c.content_shown,
        e.c.content_used, e.c.propensity, e.c.policy_version, e.c.at,
        select(p.c.id).where(p.c.instance_id == e.c.instance_id, p.c.step_id == e.c.step_id,
                             p.c.id < e.c.id, p.c.hook.is_not(None),
                             p.c.kind.in_([EventKind.ENTERED, *ACTED_KINDS]))
        .order_by(p.c.id.desc()).limit(1).scalar_subquery().label("offer"),
        select(q.c.id).where(*earlier).order_by(q.c.id.desc()).limit(1)
        .scalar_subquery().label("before"),
        select(func.count()).select_from(q).where(*earlier).scalar_subquery().label("index"))
        .where(_of_process(e.c.instance_id, process_id), e.c.hook.is_not(None),
               e.c.kind.in_(ACTED_KINDS)).cte("acted"))
    offer, before = STEP_EVENT.alias("offer"), STEP_EVENT.alias("before")
    o = offer.c
    columns = _decision_columns(dialect, acted.c, o.kind,
                                (o.content_shown, o.propensity, o.policy_version, o.at),
                                before.c.at, acted.c.index)
    return (select(*columns)
            .select_from(acted.outerjoin(offer, o.id == acted.c.offer)
                         .outerjoin(before, before.c.id == acted.c.before))
            .where(_offered_or_used(columns)))

def _decision_columns(dialect: str, acted: Any, previous_kind: Any,
                      previous: tuple[Any, Any, Any, Any], before_at: Any, index: Any
                      ) -> list[Any]:
    """`DecisionRows`' 13 columns in order, for the acted events' columns `acted`: the offer
    (shown, propensity, policy version or -1, time) from the previous event at the step
    (`previous`: its shown, propensity, version, time) when that one is an `entered`, else
    the acted event's own; then the previous path event's time and the path index."""
    offered = previous_kind == literal(str(EventKind.ENTERED))
    p_shown, p_mu, p_version, p_at = previous
    a = acted
    return [a.id, a.instance_id, a.step_id, a.kind, a.hook,
            case((offered, p_shown), else_=a.content_shown), a.content_used,
            case((offered, func.coalesce(p_mu, a.propensity)), else_=a.propensity),
            func.coalesce(case((offered, func.coalesce(p_version, a.policy_version)),
                               else_=a.policy_version), -1),
            micros(dialect, case((offered, p_at), else_=a.at)), micros(dialect, a.at),
            micros(dialect, before_at), index]


def _offered_or_used(columns: list[Any]) -> Any:
    """A decision: content was shown (offered) or used."""
    return columns[5].is_not(None) | columns[6].is_not(None)

def headers(store: Store, process_id: str, horizon: timedelta | None,
            observed_until: datetime | None) -> Headers:
    """The process's instances whose outcome is known by `observed_until` (all without one)."""
    i = INSTANCE.c
    query = (select(i.id, i.prospect_id, i.distributor_id, i.context,
                    micros(store.dialect, i.created_at))
             .where(i.process_id == process_id).order_by(i.id))
    if observed_until is not None and horizon is not None:
        limit = observed_until.astimezone(UTC).replace(tzinfo=None) \
            if observed_until.tzinfo else observed_until
        query = query.where(i.created_at <= limit - horizon)
    columns = _columns(store, query, 5)
    return Headers(np.array(columns[0], dtype=np.int64), _objects(columns[1]),
                   _objects(columns[2]), list(columns[3]), np.array(columns[4], dtype=np.int64))


def outcome_events(store: Store, process_id: str, outcome: str) -> tuple[Array, Array, Array]:
    """(instance id, event id, µs) of every event that reaches `outcome` (any of the names
    a "+"-joined outcome lists)."""
    e = STEP_EVENT.c
    query = select(e.instance_id, e.id, micros(store.dialect, e.at)).where(
        e.instance_id.in_(select(INSTANCE.c.id).where(
            INSTANCE.c.process_id == process_id).scalar_subquery()),
        e.step_id.in_(sorted(outcome_names(outcome))), e.kind.in_(REACHED_KINDS))
    columns = _columns(store, query, 3)
    out = tuple(np.array(c, dtype=np.int64) for c in columns)
    return out[0], out[1], out[2]


def parse_contexts(texts: list[str]) -> list[dict[str, Any]]:
    """Each instance's context document (identical texts parsed once)."""
    seen: dict[str, dict[str, Any]] = {}
    return [seen[t] if t in seen else seen.setdefault(t, json.loads(t)) for t in texts]


def _columns(store: Store, query: Any, width: int) -> list[tuple[Any, ...]]:
    """The query's rows as `width` columns. The driver's tuples are taken as they are: none
    of these columns needs SQLAlchemy's result processing (integers, text, floats), and at a
    million rows its Row objects cost more than the transposition."""
    with store.read() as conn:
        result = conn.execute(query)
        rows = result.cursor.fetchall() if result.cursor is not None else []
        result.close()
    return list(zip(*rows, strict=True)) if rows else [()] * width


def _objects(values: Any) -> Array:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
