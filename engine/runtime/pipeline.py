"""Where a step happens: every write to an instance goes through `StepPipeline`.

`advance` (a person's step, a timer, a prospect event), `start` (new instances) and
`outcome` each write in one transaction the new state, the step events chained to the
instance's trail, its visits and the waiting index, guarded by an optimistic version: of two
writers of the same instance exactly one commits; the other gets `VersionConflict`.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.clock import Clock, as_utc
from engine.errors import (
    ExecutionError,
    InstanceIncident,
    InstanceNotFound,
    MigrationRefused,
    NextmoveError,
    VersionConflict,
)
from engine.limits import DEFAULT_LIMITS, Limits, budget, run_engine_steps
from engine.recommend import Recommender
from engine.runtime import held, incidents, migration, queries, tokens, versions
from engine.runtime._acts import Acted, DuplicateReceipt, HeldChanged, NotWaiting
from engine.runtime._step_rows import db_time, event_rows, mark_stuck, progress
from engine.runtime._write import Conflict, StepWriter
from engine.runtime.model import Fired, Instance, NewProspect, Started, StepEvent, Waiting
from engine.runtime.queries import DEFINITION, INSTANCE, STEP_EVENT
from engine.runtime.state import dump_state, load_state
from engine.runtime.versions import DefinitionCache, LoadedDefinition
from engine.store import trail
from engine.store.database import Store
from engine.store.kinds import CATCH_KINDS
from engine.store.visits import Visits

__all__ = ["Act", "Acted", "DuplicateReceipt", "NotWaiting", "StepPipeline"]

Act = Callable[[BpmnWorkflow, LoadedDefinition], Acted]
"""What a step does to the workflow (run a task, catch a message, refresh timers)."""

# Statements built once: SQLAlchemy then reuses their cache key and compiled form.
_EVENTS_INSERT = insert(STEP_EVENT)
_START_INSERT = insert(INSTANCE).returning(INSTANCE.c.id, sort_by_parameter_order=True)
_SET_CHAIN_HEAD = update(INSTANCE).where(INSTANCE.c.id == bindparam("b_id")).values(
    chain_head=bindparam("b_head"))
_LOAD_QUERY = select(
    *queries.HEADER_COLUMNS, INSTANCE.c.state, DEFINITION.c.version.label("definition_version")
).join(DEFINITION, DEFINITION.c.id == INSTANCE.c.definition_id).where(
    INSTANCE.c.id == bindparam("instance_id"))


@dataclass
class _Hot:
    """An instance as a step needs it: its row (without the state), the workflow, and the
    row's waiting and context columns already parsed."""

    header: dict[str, Any]
    workflow: BpmnWorkflow
    waits: list[Waiting]
    context: dict[str, Any]

    def instance(self) -> Instance:
        return queries.to_instance(self.header, self.waits, dict(self.context))


@dataclass
class _NewInstance:
    """A started workflow about to be inserted (see `StepPipeline.start`)."""

    values: dict[str, Any]
    workflow: BpmnWorkflow
    moves: list[tokens.TokenMove]
    waits: list[Waiting]
    context: dict[str, Any]
    taken: held.Taken | None = None  # held events delivered as it started
    incident: tuple[ExecutionError, str | None] | None = None  # its first steps failed


class StepPipeline:
    """Writes steps for one store. Recently used instances stay deserialized (up to
    `hot_instances`; the version check catches a stale copy), so a step costs about one
    Spiff state round trip. `recommender` ranks content for newly entered hooked steps,
    drawing from `rng`."""

    def __init__(
        self, store: Store, definitions: DefinitionCache, script_engine: PythonScriptEngine,
        clock: Clock, *, recommender: Recommender | None = None, rng: random.Random | None = None,
        hot_instances: int = 2048, limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.store = store
        self.limits = limits
        self.steps_run = 0  # automatic tasks run by committed steps (what `tick` reports)
        self.definitions = definitions
        self.script_engine = script_engine
        self.clock = clock
        self.recommender = recommender
        self.rng = rng or random.Random()
        self._hot: OrderedDict[int, _Hot] = OrderedDict()
        self._hot_limit = hot_instances
        self._writer = StepWriter(store)

    # -- a step --------------------------------------------------------------------------------

    def advance(
        self, instance_id: int, label: str | None, act: Act, *,
        moved: list[Fired] | None = None, receipt: dict[str, Any] | None = None,
        replay: Mapping[str, Any] = incidents.ENGINE_REPLAY, status: str = "active",
    ) -> Instance:
        """Apply `act` to the instance and commit state, events and waits as one step.

        `label` names the step in errors; timer and message moves are appended to `moved`;
        `receipt` (a prospect event's) is stored in the same transaction. `replay` says what
        `retry` runs again if the step fails; only an instance in `status` is moved. Raises
        `NotWaiting` (from `act`, or the instance is not in `status`), `DuplicateReceipt`,
        `VersionConflict`, `InstanceIncident` (the map failed or a work limit was exceeded:
        the instance is now in `incident` and nothing of the step is applied)."""
        for attempt in range(4):
            hot = self._hot.pop(instance_id, None) if attempt == 0 else None
            cached = hot is not None
            if hot is None:
                hot = self._load(instance_id)
            header, workflow, stored_waits = hot.header, hot.workflow, hot.waits
            if header["status"] != status:
                raise NotWaiting
            definition = self.definitions.get(header["definition_id"])
            now = self.clock.now()
            before = tokens.snapshot(workflow)
            with budget(self.limits) as spent:
                try:
                    acted = incidents.guarded(instance_id, label,
                                              partial(act, workflow, definition))
                except NotWaiting:
                    if cached:
                        continue  # the cached copy may be stale: look at the database
                    raise
                except ExecutionError as exc:
                    failed_at = incidents.failed_element(exc, spent.current or label)
                    row = incidents.incident_row(instance_id, definition, label, exc,
                                                 failed_at, replay, now)
                    if self.store.transaction(partial(incidents.write_incident,
                                                      header=header, row=row, now=now)):
                        raise InstanceIncident(instance_id, label, exc) from exc
                    if cached:
                        continue  # stale copy: the step may not fail on the stored state
                    raise VersionConflict(instance_id, header["version"]) from exc
            moves = tokens.moves(before, workflow,
                                 uuid.UUID(acted.task_id) if acted.task_id else None, acted.kind)
            taken = self._take_held(header["prospect_id"], workflow, stored_waits, now,
                                    partial(incidents.guarded, instance_id, label))
            if taken is not None:
                moves += taken.moves
                acted.move_data.update(taken.move_data)
            previous = {tokens.wait_key(w): w for w in stored_waits}
            waits = self._recommend(
                tokens.waits(workflow, definition.steps, previous, now), hot.context, previous)
            waits = mark_stuck(waits, moves, definition, previous, now)
            try:
                header = self._commit(header, workflow, definition, moves, waits, stored_waits,
                                      now, acted, receipt, taken)
            except VersionConflict:
                if cached:
                    continue  # another process moved it since we cached it: redo on fresh state
                raise
            except HeldChanged:
                continue  # an event was held or taken meanwhile: redo on fresh state
            self.steps_run += spent.steps
            hot = _Hot(header, workflow, waits, hot.context)
            self._remember(instance_id, hot)
            if moved is not None:
                moved.extend(
                    Fired(instance_id, header["prospect_id"], header["process_id"], m.step_id,
                          m.kind, as_utc(now))
                    for m in moves if m.kind in CATCH_KINDS)
            return hot.instance()
        raise VersionConflict(instance_id, -1)  # held events kept changing under us

    def _take_held(
        self, prospect_id: str, workflow: BpmnWorkflow, previous: list[Waiting], now: datetime,
        guard: Callable[[Callable[[], Any]], Any],
    ) -> held.Taken | None:
        """Deliver the prospect's held events to the catches this step made start waiting
        (None: it made none, and the step's write needs no look at held events)."""
        if not held.starts_waiting(workflow, previous):
            return None
        rows = self.store.transaction(lambda conn: held.read(conn, [prospect_id]), write=False)
        return held.take(workflow, prospect_id, rows.get(prospect_id, []), now, guard)

    def _commit(
        self, header: dict[str, Any], workflow: BpmnWorkflow, definition: LoadedDefinition,
        moves: list[tokens.TokenMove], waits: list[Waiting], previous: list[Waiting],
        now: datetime, acted: Acted, receipt: dict[str, Any] | None,
        taken: held.Taken | None = None,
    ) -> dict[str, Any]:
        done = workflow.completed
        # Every append to the trail bumps the version, so the head we chain to is the stored
        # one whenever the write's version check passes.
        visits = Visits.load(header["visits"])
        rows, head = event_rows(header["id"], definition, moves, [*waits, *previous],
                                now, acted, header.get("chain_head"), visits)
        values = {
            **progress(waits, now),
            "visits": visits.dump(),
            "status": "completed" if done else "active",  # a retried incident is active again
            "active_key": None if done else header["active_key"],
            "version": header["version"] + 1,
            "state": dump_state(workflow),
            "chain_head": head,
        }
        try:
            self._writer.write(header["id"], header["version"], values, rows, receipt, taken)
        except Conflict:
            raise VersionConflict(header["id"], header["version"]) from None
        except self._writer.integrity_errors as exc:
            raise DuplicateReceipt from exc
        values.pop("state")
        return {**header, **values}

    def _recommend(
        self, waits: list[Waiting], context: Mapping[str, Any],
        previous: Mapping[str, Waiting] | None = None,
    ) -> list[Waiting]:
        """Rank content for newly entered hooked steps; keep the ranking of earlier ones."""
        out = []
        for wait in waits:
            earlier = (previous or {}).get(tokens.wait_key(wait))
            if earlier is not None and earlier.recommendation is not None:
                wait = replace(wait, recommendation=earlier.recommendation)
            elif self.recommender is not None and wait.kind == "user" and wait.hook:
                found = self.recommender.recommend(wait.hook, context, self.rng)
                if found is not None:
                    wait = replace(wait, recommendation=found.to_dict())
            out.append(wait)
        return out

    # -- starting ------------------------------------------------------------------------------

    def start(
        self, process_id: str, prospects: Sequence[NewProspect], *, new: bool = False,
        actor: str | None = None, park: bool = False,
    ) -> list[Started]:
        """Start `process_id` for each prospect in one transaction (see `Engine.start_many`);
        a race with another process starting the same prospects is retried. A prospect whose
        first steps fail raises `ExecutionError` and nothing of the batch is stored, unless
        `park`: then its instance is stored in `incident`."""
        for _attempt in range(5):
            try:
                return self._start_batch(process_id, prospects, new, actor, park)
            except HeldChanged:
                continue  # an event for one of them was held meanwhile: start them again
            except IntegrityError:
                if new:
                    raise
                # Another process started one of these prospects meanwhile: look again.
        raise NextmoveError(f"could not start {len(prospects)} instance(s) of {process_id!r}: "
                            "other processes kept starting the same prospects")

    def _start_batch(
        self, process_id: str, prospects: Sequence[NewProspect], new: bool, actor: str | None,
        park: bool,
    ) -> list[Started]:
        keys = [None if new else f"{process_id}\x1f{p.prospect_id}" for p in prospects]
        wanted = sorted({k for k in keys if k is not None})

        def look(conn: Connection) -> tuple[dict[str, Any], int, dict[str, list[held.Pending]]]:
            found: dict[str, Any] = {}
            for i in range(0, len(wanted), 500):
                query = queries.header_query().where(INSTANCE.c.active_key.in_(wanted[i:i + 500]))
                found.update((row["active_key"], row) for row in conn.execute(query).mappings())
            waiting = held.read(conn, sorted({p.prospect_id for p in prospects}))
            return found, versions.latest_definition_id(conn, process_id), waiting

        existing, definition_id, waiting = self.store.transaction(look, write=False)
        claimed: set[int] = set()  # held events given to an instance of this batch
        definition = self.definitions.get(definition_id)
        now = self.clock.now()
        results: list[Started | int] = []  # an int: same as the result at that index
        first: dict[str, int] = {}
        fresh: list[tuple[int, _NewInstance]] = []
        for i, (prospect, key) in enumerate(zip(prospects, keys, strict=True)):
            if key is not None and key in existing:
                results.append(Started(queries.to_instance(existing[key]), created=False))
            elif key is not None and key in first:
                results.append(first[key])
            else:
                made = self._new_instance(definition, process_id, prospect, key, now,
                                          waiting.get(prospect.prospect_id, []), claimed, park)
                if made.values["active_key"] is not None:  # not one that finished at once
                    first[made.values["active_key"]] = i
                fresh.append((i, made))
                results.append(-1)
        if fresh:
            heads = self.store.transaction(
                lambda conn: self._insert_started(conn, definition, fresh, now, actor))
            for (i, made), (instance_id, head) in zip(fresh, heads, strict=True):
                header = {**made.values, "id": instance_id,
                          "definition_version": definition.version, "chain_head": head}
                header.pop("state")
                hot = _Hot(header, made.workflow, made.waits, made.context)
                self._remember(instance_id, hot)
                results[i] = Started(hot.instance(), created=True)
        out: list[Started] = []
        for item in results:
            if isinstance(item, int):
                earlier = results[item]
                assert isinstance(earlier, Started)
                item = Started(earlier.instance, created=False)
            out.append(item)
        return out

    def _new_instance(
        self, definition: LoadedDefinition, process_id: str, prospect: NewProspect,
        active_key: str | None, now: datetime, pending: list[held.Pending], claimed: set[int],
        park: bool = False,
    ) -> _NewInstance:
        context = dict(prospect.context)
        workflow = self._fresh(definition, context)
        incident = None
        with budget(self.limits) as spent:
            try:
                incidents.guarded(None, None, partial(run_engine_steps, workflow))
            except ExecutionError as exc:  # stored in `incident`, as it was before its steps
                if not park:
                    raise
                incident = (exc, incidents.failed_element(exc, spent.current))
        self.steps_run += spent.steps
        if incident is not None:
            workflow = self._fresh(definition, context)
        taken = None
        if incident is None and held.starts_waiting(workflow, []):
            taken = held.take(workflow, prospect.prospect_id, pending, now,
                              partial(incidents.guarded, None, None), claimed)
        moves = [] if incident else tokens.moves({}, workflow, None, "completed")
        waits = [] if incident else self._recommend(
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
            "active_key": None if workflow.completed else active_key,
            "status": "incident" if incident else "completed" if workflow.completed else "active",
            "context": json.dumps(context),
            "created_at": db_time(now),
            "version": 1,
            **progress(waits, now),
            "state": dump_state(workflow),
            "visits": visits.dump(),
        }
        return _NewInstance(values, workflow, moves, waits, context, taken=taken,
                            incident=incident)

    def _fresh(self, definition: LoadedDefinition, context: Mapping[str, Any]) -> BpmnWorkflow:
        workflow = BpmnWorkflow(definition.spec, definition.subprocess_specs,
                                script_engine=self.script_engine)
        workflow.task_tree.data.update(context)
        return workflow

    def _insert_started(
        self, conn: Connection, definition: LoadedDefinition,
        fresh: list[tuple[int, _NewInstance]], now: datetime, actor: str | None,
    ) -> list[tuple[int, str | None]]:
        """Insert the instance rows, their events and chain heads; (id, head) per instance."""
        takens = [made.taken for _, made in fresh if made.taken is not None]
        if takens:
            held.verify(conn, takens)
        ids = conn.execute(_START_INSERT, [made.values for _, made in fresh]).scalars().all()
        out: list[tuple[int, str | None]] = []
        events: list[dict[str, Any]] = []
        for instance_id, (_, made) in zip(ids, fresh, strict=True):
            acted = Acted(actor=actor)
            if made.taken is not None:
                held.settle(conn, made.taken, int(instance_id), now)
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
        if events:
            conn.execute(_EVENTS_INSERT, events)
        conn.execute(_SET_CHAIN_HEAD, [{"b_id": i, "b_head": h} for i, h in out if h])
        return out

    # -- incidents ---------------------------------------------------------------------------

    def migrate(self, instance_id: int, target: LoadedDefinition,
                actor: str | None = None) -> Instance:
        """Move an active instance, or one in incident, to `target` (same process)."""
        self._hot.pop(instance_id, None)
        hot = self._load(instance_id)
        header = hot.header
        if header["status"] not in ("active", "incident"):
            raise MigrationRefused(f"instance {instance_id} is {header['status']}: only active "
                                   "instances and instances in incident can move")
        if target.process_id != header["process_id"]:
            raise MigrationRefused(f"instance {instance_id} runs {header['process_id']!r}, "
                                   f"not {target.process_id!r}")
        source = self.definitions.get(header["definition_id"])
        if target.id == source.id:
            raise MigrationRefused(f"instance {instance_id} already runs version "
                                   f"{target.version}")
        state = migration.migrate(hot.workflow, instance_id, source, target)
        now = self.clock.now()
        previous = {tokens.wait_key(w): w for w in hot.waits}
        waits = tokens.waits(hot.workflow, target.steps, previous, now) \
            if header["status"] == "active" else hot.waits
        row = incidents.migrated_row(header, source, target, actor, now)
        head = trail.chain_rows(header.get("chain_head") or trail.GENESIS, [row])
        values = {**progress(self._recommend(waits, hot.context, previous), now),
                  "definition_id": target.id, "state": state, "chain_head": head,
                  "version": header["version"] + 1, "lease_owner": None, "lease_until": None}
        self.store.transaction(
            lambda conn: migration.write(conn, header["id"], header["version"], values, row))
        return queries.get(self.store, instance_id)

    # -- outcomes ------------------------------------------------------------------------------

    def outcome(
        self, instance_id: int, kind: str, payload: dict[str, Any], actor: str | None,
    ) -> StepEvent:
        """Append a business result to the instance's trail (no state change)."""
        at = self.clock.now()
        row = {"instance_id": instance_id, "step_id": kind, "step_name": kind, "kind": "outcome",
               "actor": actor, "data": json.dumps(payload) if payload else None,
               "at": db_time(at)}
        for _attempt in range(5):
            with self.store.read() as conn:
                version, head = conn.execute(select(INSTANCE.c.version, INSTANCE.c.chain_head)
                                             .where(INSTANCE.c.id == instance_id)).one()
            with self.store.write() as conn:
                new_head = trail.chain_rows(head or trail.GENESIS, [row])
                # Appending to the trail bumps the version: a step racing us retries.
                moved = conn.execute(update(INSTANCE).where(
                    INSTANCE.c.id == instance_id, INSTANCE.c.version == version,
                ).values(chain_head=new_head, version=version + 1)).rowcount
                if moved != 1:
                    continue
                event_id = int(conn.execute(insert(STEP_EVENT).values(**row))
                               .inserted_primary_key[0])  # type: ignore[index]
                break
        else:
            raise VersionConflict(instance_id, version)
        return StepEvent(event_id, instance_id, kind, kind, "outcome", as_utc(at), actor,
                         payload or None)

    # -- deserialized instances ----------------------------------------------------------------

    def workflow(self, instance_id: int) -> BpmnWorkflow:
        """The instance's workflow as its next step would start from (cached or loaded)."""
        return (self._hot.get(instance_id) or self._load(instance_id)).workflow

    def header(self, instance_id: int) -> dict[str, Any]:
        """The row without state: kept, or loaded and kept for the step that usually follows."""
        self._remember(instance_id, hot := self._hot.get(instance_id) or self._load(instance_id))
        return hot.header

    def forget(self) -> None:
        """Drop the deserialized instances, as a freshly started process would have none."""
        self._hot.clear()

    def _load(self, instance_id: int) -> _Hot:
        rows = self.store.select(_LOAD_QUERY, {"instance_id": instance_id})
        if not rows:
            raise InstanceNotFound(str(instance_id))
        header = dict(rows[0])
        state = header.pop("state")
        definition = self.definitions.get(header["definition_id"])
        workflow = load_state(state, definition.spec, definition.subprocess_specs)
        workflow.script_engine = self.script_engine
        return _Hot(header, workflow, queries.waits_of(header), json.loads(header["context"]))

    def _remember(self, instance_id: int, hot: _Hot) -> None:
        if hot.workflow.completed or self._hot_limit <= 0:
            return
        self._hot[instance_id] = hot
        while len(self._hot) > self._hot_limit:
            self._hot.popitem(last=False)
