"""The step log read for learning and analytics: one process's instances with their events,
in chunks, as plain tuples; and the checks and measures both readers share.

Instances come in id order with their events in id order (the index `ix_step_event_instance`
serves exactly that order); the engine appends events as they happen and the importer writes
each case's events sorted by time, so id order is the case's timeline. Rows stay tuples: a
million events never become ORM objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import Connection, Float, Numeric, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import DefinitionNotFound, InvalidInput, NextmoveError, did_you_mean, meant
from engine.store.database import Store
from engine.store.kinds import REACHED_KINDS, EventKind
from engine.store.schema import DEFINITION, INSTANCE, STEP_EVENT

__all__ = ["CHUNK", "Header", "Row", "UnknownOutcome", "check_outcome", "check_process",
           "full_instances", "hours", "outcome_names", "instances", "outcome_positions",
           "within"]

CHUNK = 20_000

# (step_id, kind, at (naive UTC), hook, content_shown, content_used, propensity, policy_version)
Row = tuple[str, str, datetime, str | None, str | None, str | None, float | None, int | None]


@dataclass(frozen=True)
class Header:
    instance_id: int
    case_id: str
    distributor_id: str
    context: dict[str, Any]
    started_at: datetime  # naive UTC


class UnknownOutcome(NextmoveError):
    """The outcome names neither a step of the process nor an outcome event recorded for it."""

    def __init__(self, process_id: str, outcome: str, known: list[str]) -> None:
        self.process_id, self.outcome, self.known = process_id, outcome, known
        hint = did_you_mean(outcome, known)
        self.suggestion = hint
        text = (f"process {process_id!r} has no step and no outcome event named {outcome!r}"
                + meant(hint))
        super().__init__(text)


def instances(store: Store, process_id: str, kinds: tuple[str, ...] | None = None,
              ) -> Iterator[tuple[Header, list[Row]]]:
    """Every instance of the process (also those without events) with its events."""
    of_process = select(INSTANCE.c.id).where(INSTANCE.c.process_id == process_id)
    headers = (select(INSTANCE.c.id, INSTANCE.c.prospect_id, INSTANCE.c.distributor_id,
                      INSTANCE.c.context, INSTANCE.c.created_at)
               .where(INSTANCE.c.process_id == process_id).order_by(INSTANCE.c.id))
    # IN (subquery), not a join: the planner then walks ix_step_event_instance in order
    # instead of sorting every event of the process.
    events = (select(STEP_EVENT.c.instance_id, STEP_EVENT.c.step_id, STEP_EVENT.c.kind,
                     STEP_EVENT.c.at, STEP_EVENT.c.hook, STEP_EVENT.c.content_shown,
                     STEP_EVENT.c.content_used, STEP_EVENT.c.propensity,
                     STEP_EVENT.c.policy_version)
              .where(STEP_EVENT.c.instance_id.in_(of_process.scalar_subquery()))
              .order_by(STEP_EVENT.c.instance_id, STEP_EVENT.c.id))
    if kinds is not None:
        events = events.where(STEP_EVENT.c.kind.in_(kinds))
    with store.read() as head_conn, store.read() as conn:
        heads = iter(head_conn.execution_options(yield_per=CHUNK).execute(headers))
        head = next(heads, None)
        rows: list[Row] = []
        result = conn.execution_options(yield_per=CHUNK).execute(events)
        for part in result.partitions():
            for row in part:
                iid = row[0]
                while head is not None and head[0] < iid:
                    yield _header(head), rows
                    rows = []
                    head = next(heads, None)
                if head is not None and head[0] == iid:
                    rows.append(row[1:])
        while head is not None:
            yield _header(head), rows
            rows = []
            head = next(heads, None)


def full_instances(store: Store, process_id: str) -> Iterator[tuple[Any, list[Any]]]:
    """Every instance of the process that has events, with every column of them (for an
    export): ((id, prospect_id, distributor_id, context), [(instance_id, step_id, step_name,
    kind, actor, hook, content_shown, content_used, propensity, policy_version, data, at)]),
    instances in id order, events in log order."""
    i, e = INSTANCE.c, STEP_EVENT.c
    heads = (select(i.id, i.prospect_id, i.distributor_id, i.context)
             .where(i.process_id == process_id).order_by(i.id))
    events = (select(e.instance_id, e.step_id, e.step_name, e.kind, e.actor, e.hook,
                     e.content_shown, e.content_used, e.propensity, e.policy_version, e.data,
                     e.at)
              .where(e.instance_id.in_(select(i.id).where(i.process_id == process_id)
                                       .scalar_subquery()))
              .order_by(e.instance_id, e.id))
    with store.read() as head_conn, store.read() as conn:
        head_rows = head_conn.execution_options(yield_per=CHUNK).execute(heads)
        rows = iter(conn.execution_options(yield_per=CHUNK).execute(events))
        row = next(rows, None)
        for head in head_rows:
            found = []
            while row is not None and row[0] < head[0]:
                row = next(rows, None)
            while row is not None and row[0] == head[0]:
                found.append(row)
                row = next(rows, None)
            if found:
                yield tuple(head), found


def _header(row: Any) -> Header:
    iid, case_id, distributor, context, created = row
    return Header(iid, case_id, distributor, json.loads(context), _naive(created))


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def outcome_positions(rows: list[Row], outcome: str) -> list[int]:
    return [i for i, r in enumerate(rows) if r[0] == outcome and r[1] in REACHED_KINDS]


def within(started: datetime, at: datetime, horizon: timedelta | None) -> bool:
    return at >= started and (horizon is None or at - started <= horizon)


def hours(dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    """end - start in hours, to the millisecond, computed by the database (SQLite's Julian
    day numbers carry float noise below that; both databases round alike)."""
    if dialect == "sqlite":
        ms = func.round((func.julianday(end) - func.julianday(start)) * 86_400_000.0)
    else:
        ms = func.round(cast(func.extract("epoch", end - start) * 1000, Numeric))
    return cast(ms, Float) / 3_600_000.0


def outcome_names(outcome: str) -> frozenset[str]:
    """What `outcome` names: one step or outcome event, or several joined by "+" (as the
    map's converting outcomes are written, e.g. `customer_order+distributor_enrolled`: a
    case converts on reaching any of them). A name with "+" in it (an imported log's
    activity) still matches whole."""
    return frozenset({outcome, *(p for p in outcome.split("+") if p)})


def check_process(store: Store, process_id: str) -> None:
    """Raise DefinitionNotFound (with the nearest name) unless `process_id` was deployed or
    imported: a mistyped name must not read as a process with no data."""
    with store.read() as conn:
        if conn.execute(select(DEFINITION.c.id).where(DEFINITION.c.process_id == process_id)
                        .limit(1)).first() is None:
            _not_found(conn, process_id)


def _not_found(conn: Connection, process_id: str) -> NoReturn:
    known = conn.execute(select(DEFINITION.c.process_id).distinct()).scalars().all()
    raise DefinitionNotFound(process_id, known)


def check_horizon(horizon: timedelta | None) -> None:
    """Raise InvalidInput for a horizon of zero or less: no outcome could count within it."""
    if horizon is not None and horizon <= timedelta(0):
        raise InvalidInput("horizon", f"{horizon} is no time at all: no outcome could count "
                                      "within it; give how long, e.g. 14 days")


def stored_steps_and_hooks(store: Store) -> tuple[set[str], set[str]]:
    """Every step id and every hook of every stored map version (imported logs included)."""
    steps: set[str] = set()
    hooks: set[str] = set()
    for doc in store.select(select(DEFINITION.c.steps)):
        for step in json.loads(doc["steps"]):
            steps.add(step["id"])
            if hook := (step.get("properties") or {}).get("hook"):
                hooks.add(str(hook))
    return steps, hooks


def check_outcome(store: Store, process_id: str, outcome: str) -> None:
    """Raise DefinitionNotFound for a process never deployed or imported, UnknownOutcome
    unless the process has such a step or such outcome events (for a "+"-joined `outcome`:
    each of the names, unless it is one name whole; InvalidInput for an empty name between
    the "+", e.g. `+` or `a++b`). Checking the outcome checks the process: no
    `check_process` is needed beside it."""
    if "+" in outcome:
        try:
            _check_one(store, process_id, outcome)
        except UnknownOutcome:
            # `outcome_names` drops empty parts: `+` alone would name nothing and check nothing
            if "" in outcome.split("+"):
                raise InvalidInput("outcome", f"{outcome!r} has an empty name beside a '+': "
                                   "join outcome names with one '+', e.g. "
                                   "customer_order+distributor_enrolled") from None
            for name in sorted(outcome_names(outcome) - {outcome}):
                _check_one(store, process_id, name)
        return
    _check_one(store, process_id, outcome)


def _check_one(store: Store, process_id: str, outcome: str) -> None:
    recorded = (select(STEP_EVENT.c.step_id)
                .join(INSTANCE, INSTANCE.c.id == STEP_EVENT.c.instance_id)
                .where(INSTANCE.c.process_id == process_id, STEP_EVENT.c.kind == EventKind.OUTCOME))
    with store.read() as conn:
        step_docs = conn.execute(select(DEFINITION.c.steps)
                                 .where(DEFINITION.c.process_id == process_id)).scalars().all()
        if not step_docs:  # no version of it: not a process with no such step
            _not_found(conn, process_id)
        steps = {s["id"] for doc in step_docs for s in json.loads(doc)}
        if outcome in steps:
            return
        # one such event is enough: an index seek per instance until the first
        if conn.execute(recorded.where(STEP_EVENT.c.step_id == outcome).limit(1)).first():
            return
        names = set(conn.execute(recorded.distinct()).scalars())  # for the suggestion
    raise UnknownOutcome(process_id, outcome, sorted(steps | names))
