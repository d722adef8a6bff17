"""The variants' read model: the SQL behind `learner.variants`.

The database builds each case's path (its steps' ids in log order, hex-encoded so no step
name can collide with the separator) and counts cases per path and time to the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from engine.store import INSTANCE, PATH_KINDS, REACHED_KINDS, STEP_EVENT
from engine.store.database import Store
from engine.store.steplog import hours

SEP = " "  # between a path's steps; each step (and its content) is written in hex


def path_rows(store: Store, process_id: str, *, outcome: tuple[str, ...] | None,
              horizon: timedelta | None, with_content: bool,
              observed_until: datetime | None) -> list[tuple[Any, ...]]:
    """(path key, hours to the outcome or None, cases, the first case's instance id) per
    path and time to outcome; the key is `SEP`-joined hex steps (`hex:hex` with content,
    `-` for none)."""
    dialect = store.dialect
    cases = select(INSTANCE.c.id, INSTANCE.c.created_at).where(
        INSTANCE.c.process_id == process_id)
    limit = _observed_limit(horizon, observed_until)
    if limit is not None:
        cases = cases.where(INSTANCE.c.created_at <= limit)
    case_rows = cases.subquery()
    path = _paths(dialect, process_id, with_content)
    to_outcome: Any = literal(None)
    if outcome is not None:
        to_outcome = _hours_to_outcome(dialect, case_rows, outcome, horizon)
    per_case = (select(func.coalesce(path.c.path, "").label("path"),
                       case_rows.c.id.label("instance_id"), to_outcome.label("hours"))
                .select_from(case_rows.outerjoin(path, path.c.instance_id == case_rows.c.id))
                .subquery())
    grouped = (select(per_case.c.path, per_case.c.hours, func.count(),
                      func.min(per_case.c.instance_id))
               .group_by(per_case.c.path, per_case.c.hours))
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(grouped)]


def unobserved(store: Store, process_id: str, horizon: timedelta | None,
               observed_until: datetime | None) -> int:
    """How many cases `path_rows` leaves out: started too late for their horizon to have
    passed by `observed_until`."""
    limit = _observed_limit(horizon, observed_until)
    if limit is None:
        return 0
    query = select(func.count()).where(INSTANCE.c.process_id == process_id,
                                       INSTANCE.c.created_at > limit)
    with store.read() as conn:
        return int(conn.execute(query).scalar_one())


def _observed_limit(horizon: timedelta | None, until: datetime | None) -> datetime | None:
    """The latest start (naive UTC) whose horizon had passed by `until`; None: no limit."""
    if until is None or horizon is None:
        return None
    return (until.astimezone(UTC).replace(tzinfo=None) if until.tzinfo else until) - horizon


def prospect_ids(store: Store, ids: Sequence[int]) -> dict[int, str]:
    """Instance id -> prospect id, for the given instances."""
    with store.read() as conn:
        return dict(conn.execute(select(INSTANCE.c.id, INSTANCE.c.prospect_id)
                                 .where(INSTANCE.c.id.in_(list(ids)))).all())


def _paths(dialect: str, process_id: str, with_content: bool) -> Any:
    """Per instance with path events: instance_id, path (hex steps in log order)."""
    e = STEP_EVENT.c
    element: Any = _hex(dialect, e.step_id)
    if with_content:
        # "-": no content (SQLite's hex(NULL) is '', which is an empty name's hex too)
        element = element + ":" + case((e.content_used.is_(None), "-"),
                                       else_=_hex(dialect, e.content_used))
    of_process = select(INSTANCE.c.id).where(INSTANCE.c.process_id == process_id)
    where = (e.instance_id.in_(of_process.scalar_subquery()), e.kind.in_(PATH_KINDS))
    if dialect == "sqlite":
        # SQLite 3.40 has no ORDER BY inside an aggregate: the running concatenation over
        # each instance's events in id order, kept at its last event (a bare column next to
        # max() comes from the row holding the max)
        running = (select(e.instance_id, e.id, func.group_concat(element, SEP).over(
            partition_by=e.instance_id, order_by=e.id).label("path")).where(*where)
            .subquery())
        return (select(running.c.instance_id, func.max(running.c.id), running.c.path)
                .group_by(running.c.instance_id).subquery())
    return (select(e.instance_id, func.string_agg(element, aggregate_order_by(
        literal(SEP), e.id)).label("path")).where(*where).group_by(e.instance_id).subquery())


def _hex(dialect: str, value: Any) -> Any:
    if dialect == "sqlite":
        return func.hex(value)
    return func.encode(func.convert_to(value, "UTF8"), "hex")


def _hours_to_outcome(dialect: str, cases: Any, outcome: tuple[str, ...],
                      horizon: timedelta | None) -> Any:
    """Hours from the case's start to its first event of one of the outcomes at or after the
    start, when that came within the horizon; else NULL."""
    p = STEP_EVENT.alias("o")
    reached = (select(p.c.at).where(
        p.c.instance_id == cases.c.id, p.c.step_id.in_(outcome), p.c.kind.in_(REACHED_KINDS),
        p.c.at >= cases.c.created_at).order_by(p.c.id).limit(1).scalar_subquery())
    taken = hours(dialect, cases.c.created_at, reached)
    if horizon is None:
        return taken
    return case((taken <= horizon.total_seconds() / 3600, taken))
