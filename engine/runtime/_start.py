"""Starting instances: each new workflow run to its first wait, inserted in one transaction
per batch (`StepPipeline.start`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from sqlalchemy import Connection, bindparam, insert, update
from sqlalchemy.exc import IntegrityError

from engine.clock import Clock
from engine.definitions.data import DataDeclaration
from engine.errors import ExecutionError, InvalidInput
from engine.limits import Limits, budget, run_engine_steps
from engine.runtime import _first_wait, held, incidents, queries, retirement, tokens, versions
from engine.runtime._acts import Acted
from engine.runtime._first_wait import FirstWait
from engine.runtime._hot import Hot
from engine.runtime._step_rows import db_time, event_rows, progress
from engine.runtime._write import EVENT_COLUMNS, sqlite_insert, sqlite_value
from engine.runtime.model import NewProspect, Started, Waiting
from engine.runtime.queries import INSTANCE, STEP_EVENT
from engine.runtime.state import Fragments, dump_state
from engine.runtime.versions import DefinitionCache, LoadedDefinition
from engine.store import trail
from engine.store.database import Store
from engine.store.visits import Visits


class StepPipeline(Protocol):
    """What starting needs of `engine.runtime.pipeline.StepPipeline`."""

    store: Store
    definitions: DefinitionCache
    script_engine: PythonScriptEngine
    clock: Clock
    limits: Limits
    steps_run: int
    fast_starts: bool
    first_waits: dict[int, FirstWait | None]

    def recommend(self, waits: list[Waiting], context: Mapping[str, Any],
                  previous: Mapping[str, Waiting] | None = None) -> list[Waiting]: ...

    def remember(self, instance_id: int, hot: Hot) -> None: ...

_EVENTS_INSERT = insert(STEP_EVENT)
_START_INSERT = insert(INSTANCE).returning(INSTANCE.c.id, sort_by_parameter_order=True)
# What a start stores in an instance row (besides its id and chain head).
_START_COLUMNS = ("definition_id", "process_id", "prospect_id", "distributor_id", "sponsor_id",
                  "active_key", "status", "context", "created_at", "version", "waiting",
                  "next_due_at", "card_due_at", "updated_at", "state", "visits")
_START_TIMES = tuple(i for i, c in enumerate(_START_COLUMNS)
                     if c in ("created_at", "next_due_at", "card_due_at", "updated_at"))
_EVENT_TIMES = (EVENT_COLUMNS.index("at"),)
_SQLITE_START = sqlite_insert(INSTANCE.name, ("id", *_START_COLUMNS, "chain_head"))
_SQLITE_EVENTS = sqlite_insert(STEP_EVENT.name, ("instance_id", *EVENT_COLUMNS))
_SET_CHAIN_HEAD = update(INSTANCE).where(INSTANCE.c.id == bindparam("b_id")).values(
    chain_head=bindparam("b_head"))


@dataclass
class NewInstance:
    """A started workflow about to be inserted."""

    values: dict[str, Any]
    workflow: BpmnWorkflow | Callable[[Fragments], BpmnWorkflow]  # (how to load it, a fast start)
    moves: list[tokens.TokenMove]
    waits: list[Waiting]
    context: dict[str, Any]
    taken: held.Taken | None = None  # held events delivered as it started
    incident: tuple[ExecutionError, str | None] | None = None  # its first steps failed


def check_contexts(definition: LoadedDefinition, prospects: Sequence[NewProspect]) -> None:
    """Refuse the batch (nothing started) when a new prospect's context gives a field the map
    declares a value of another type or outside its values: a gateway would route as if it
    were absent (`interest: maybe`). Names the map does not declare are the prospect's own
    attributes (a CRM's), not checked; a map that declares nothing is not either."""
    declared = getattr(definition.spec, "nextmove_data", None)
    if not isinstance(declared, DataDeclaration) or declared.inferred:
        return
    for prospect in prospects:
        problems = declared.problems_in(prospect.context, typos=False)
        if problems:
            raise InvalidInput("context", f"prospect {prospect.prospect_id!r}: "
                               + "; ".join(problems) + ": nothing was started")


def start_batch(
    pipe: StepPipeline, process_id: str, prospects: Sequence[NewProspect], new: bool,
    actor: str | None, park: bool,
) -> list[Started]:
    keys = [None if new else f"{process_id}\x1f{p.prospect_id}" for p in prospects]
    wanted = sorted({k for k in keys if k is not None})

    def look(conn: Connection) -> tuple[dict[str, Any], int, dict[str, list[held.Pending]],
                                        Mapping[str, Any] | None]:
        found: dict[str, Any] = {}
        for i in range(0, len(wanted), 500):
            query = queries.header_query().where(INSTANCE.c.active_key.in_(wanted[i:i + 500]))
            found.update((row["active_key"], row) for row in conn.execute(query).mappings())
        waiting = held.read(conn, sorted({p.prospect_id for p in prospects}))
        return (found, versions.latest_definition_id(conn, process_id), waiting,
                retirement.open_retirement(conn, process_id))

    existing, definition_id, waiting, retired = pipe.store.transaction(look, write=False)
    if retired is not None and any(k is None or k not in existing for k in keys):
        raise retirement.ProcessRetired(process_id, retired)  # (a running one is returned)
    claimed: set[int] = set()  # held events given to an instance of this batch
    definition = pipe.definitions.get(definition_id)
    check_contexts(definition, [p for p, k in zip(prospects, keys, strict=True)
                                if k is None or k not in existing])
    now = pipe.clock.now()
    results: list[Started | int] = []  # an int: same as the result at that index
    first: dict[str, int] = {}
    fresh: list[tuple[int, NewInstance]] = []
    for i, (prospect, key) in enumerate(zip(prospects, keys, strict=True)):
        if key is not None and key in existing:
            results.append(Started(queries.to_instance(existing[key]), created=False))
        elif key is not None and key in first:
            results.append(first[key])
        else:
            made = new_instance(pipe, definition, process_id, prospect, key, now,
                                      waiting.get(prospect.prospect_id, []), claimed, park)
            if made.values["active_key"] is not None:  # not one that finished at once
                first[made.values["active_key"]] = i
            fresh.append((i, made))
            results.append(-1)
    if fresh:
        heads = pipe.store.transaction(
            lambda conn: insert_started(conn, definition, fresh, now, actor))
        for (i, made), (instance_id, head) in zip(fresh, heads, strict=True):
            header = {**made.values, "id": instance_id,
                      "definition_version": definition.version, "chain_head": head}
            header.pop("state")
            hot = Hot(header, made.workflow, made.waits, made.context)
            pipe.remember(instance_id, hot)
            results[i] = Started(hot.instance(), created=True)
    out: list[Started] = []
    for item in results:
        if isinstance(item, int):
            earlier = results[item]
            assert isinstance(earlier, Started)
            item = Started(earlier.instance, created=False)
        out.append(item)
    return out


def new_instance(
    pipe: StepPipeline, definition: LoadedDefinition, process_id: str, prospect: NewProspect,
    active_key: str | None, now: datetime, pending: list[held.Pending], claimed: set[int],
    park: bool = False,
) -> NewInstance:
    context = dict(prospect.context)
    incident = None
    taken = None
    state = None
    template = first_wait(pipe, definition, now)
    workflow: BpmnWorkflow | Callable[[Fragments], BpmnWorkflow]
    if template is not None:  # the same as running it, without running it
        state, workflow, moves, waits = template.instantiate(definition, context,
                                                             pipe.script_engine, now)
        waits = pipe.recommend(waits, context)
        pipe.steps_run += template.steps
        completed = False
    else:
        workflow, incident, taken = _run_to_first_wait(pipe, definition, context, prospect,
                                                       now, pending, claimed, park)
        completed = workflow.completed
        moves = [] if incident else tokens.moves({}, workflow, None, "completed")
        waits = [] if incident else pipe.recommend(
            tokens.waits(workflow, definition.steps, {}, now), context)
    visits = Visits()  # what `event_rows` will record for these moves
    for move in moves:
        visits.record(move.step_id, move.kind, db_time(now))
    values = {
        "definition_id": definition.id,
        "process_id": process_id,
        "prospect_id": prospect.prospect_id,
        "distributor_id": prospect.distributor_id,
        "sponsor_id": context.get("sponsor_id"),
        "active_key": None if completed else active_key,
        "status": "incident" if incident else "completed" if completed else "active",
        "context": json.dumps(context),
        "created_at": db_time(now),
        "version": 1,
        **progress(waits, now),
        "state": state if state is not None else dump_state(workflow),
        "visits": visits.dump(),
    }
    return NewInstance(values, workflow, moves, waits, context, taken=taken,
                        incident=incident)


def first_wait(
    pipe: StepPipeline, definition: LoadedDefinition, now: datetime,
) -> FirstWait | None:
    """The definition's first-wait template, built on first use (None: start normally)."""
    if not pipe.fast_starts:
        return None
    if definition.id not in pipe.first_waits:
        pipe.first_waits[definition.id] = _first_wait.build(definition, pipe.script_engine,
                                                            pipe.limits, now)
    return pipe.first_waits[definition.id]


def _run_to_first_wait(
    pipe: StepPipeline, definition: LoadedDefinition, context: dict[str, Any],
    prospect: NewProspect, now: datetime, pending: list[held.Pending], claimed: set[int],
    park: bool,
) -> tuple[BpmnWorkflow, tuple[ExecutionError, str | None] | None, held.Taken | None]:
    """Run a new workflow to its first wait: the workflow, its incident (then the workflow is
    as before its steps) and the held events it took."""
    workflow = fresh(pipe, definition, context)
    incident = None
    taken = None
    mine = set(claimed)  # what this start claims, kept only if it succeeds
    with budget(pipe.limits) as spent:
        try:
            incidents.guarded(None, None, partial(run_engine_steps, workflow))
            # Held events it catches run within the same budget: a map that loops on one
            # is an incident like any other.
            if held.starts_waiting(workflow, []):
                taken = held.take(workflow, prospect.prospect_id, pending, now,
                                  partial(incidents.guarded, None, None), mine)
            tokens.drop_uncaught(workflow)
        except ExecutionError as exc:  # stored in `incident`, as it was before its steps
            if not park:
                raise
            incident = (exc, incidents.failed_element(exc, spent.current))
    pipe.steps_run += spent.steps
    if incident is not None:
        return fresh(pipe, definition, context), incident, None
    claimed.update(mine)
    return workflow, None, taken


def fresh(
    pipe: StepPipeline, definition: LoadedDefinition, context: Mapping[str, Any],
) -> BpmnWorkflow:
    workflow = BpmnWorkflow(definition.spec, definition.subprocess_specs,
                            script_engine=pipe.script_engine)
    workflow.task_tree.data.update(context)
    return workflow


def insert_started(
    conn: Connection, definition: LoadedDefinition,
    fresh: list[tuple[int, NewInstance]], now: datetime, actor: str | None,
) -> list[tuple[int, str | None]]:
    """Insert the instance rows, their events and chain heads; (id, head) per instance.

    On SQLite the rows go straight to sqlite3, each table in one executemany: the ids are
    the ones SQLite would give (the next after the largest; the write transaction holds the
    database's only write lock), so each row is inserted with its chain head already set."""
    takens = [made.taken for _, made in fresh if made.taken is not None]
    if takens:
        held.verify(conn, takens)
    sqlite = conn.dialect.name == "sqlite"
    driver: Any = conn.connection.driver_connection
    if sqlite:
        top = driver.execute(f"SELECT max(id) FROM {INSTANCE.name}").fetchone()[0] or 0
        ids: Sequence[int] = range(top + 1, top + 1 + len(fresh))
    else:
        ids = conn.execute(_START_INSERT, [made.values for _, made in fresh]).scalars().all()
    out: list[tuple[int, str | None]] = []
    events: list[dict[str, Any]] = []
    for instance_id, (_, made) in zip(ids, fresh, strict=True):
        acted = Acted(actor=actor)
        if made.taken is not None:
            acted.move_data.update(made.taken.move_data)
        rows, head = event_rows(int(instance_id), definition, made.moves, made.waits,
                                now, acted, None, Visits())
        if made.incident is not None:
            exc, failed_at = made.incident
            row = incidents.incident_row(int(instance_id), definition, None, exc, failed_at,
                                         {**incidents.START_REPLAY, "actor": actor}, now)
            head = trail.chain_rows(head or trail.GENESIS, [row])
            rows.append(row)
        events.extend(rows)
        out.append((int(instance_id), head))
    if sqlite:
        _sqlite_many(driver, _SQLITE_START, [
            (instance_id, *_sqlite_row(made.values, _START_COLUMNS, _START_TIMES), head)
            for (instance_id, head), (_, made) in zip(out, fresh, strict=True)])
    for (instance_id, _), (_, made) in zip(out, fresh, strict=True):
        if made.taken is not None:
            held.settle(conn, made.taken, instance_id, now)
    if sqlite:
        _sqlite_many(driver, _SQLITE_EVENTS, [
            (r["instance_id"], *_sqlite_row(r, EVENT_COLUMNS, _EVENT_TIMES)) for r in events])
        return out
    if events:
        conn.execute(_EVENTS_INSERT, events)
    conn.execute(_SET_CHAIN_HEAD, [{"b_id": i, "b_head": h} for i, h in out if h])
    return out


def _sqlite_many(driver: Any, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """sqlite3 executemany, its integrity errors raised as SQLAlchemy's (what a start
    that raced another one for the same prospect is retried on)."""
    try:
        driver.executemany(statement, rows)
    except driver.IntegrityError as exc:  # e.g. the active_key taken meanwhile
        raise IntegrityError(statement, None, exc) from exc


def _sqlite_row(values: dict[str, Any], columns: tuple[str, ...],
                times: tuple[int, ...]) -> list[Any]:
    """The values of `columns` as sqlite3 parameters: only the time columns (at `times`) need
    converting (`sqlite_value`)."""
    row = [values.get(c) for c in columns]
    for i in times:
        row[i] = sqlite_value(row[i])
    return row
