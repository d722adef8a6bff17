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
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine._spiff_private import quick_task_lists
from engine.clock import Clock, as_utc
from engine.errors import (
    AlreadyRecorded,
    BeforeLastStep,
    ExecutionError,
    InstanceIncident,
    InstanceNotFound,
    MigrationRefused,
    NextmoveError,
    VersionConflict,
)
from engine.limits import DEFAULT_LIMITS, Limits, budget
from engine.recommend import Recommender
from engine.runtime import _migrate_step, _start, held, incidents, queries, tokens
from engine.runtime._acts import Acted, DuplicateReceipt, HeldChanged, NotWaiting, Stale
from engine.runtime._first_wait import FirstWait
from engine.runtime._hot import Hot
from engine.runtime._step_data import check_person
from engine.runtime._step_rows import db_time, event_rows, mark_stuck, progress
from engine.runtime._write import KEPT_IF_SAME, Conflict, StepWriter
from engine.runtime.model import (
    Along,
    Fired,
    Instance,
    NewProspect,
    Started,
    StepEvent,
    Waiting,
)
from engine.runtime.queries import DEFINITION, INSTANCE, STEP_EVENT
from engine.runtime.state import Fragments, dump_state, load_state
from engine.runtime.versions import DefinitionCache, LoadedDefinition
from engine.store import trail
from engine.store.database import Store
from engine.store.kinds import CATCH_KINDS
from engine.store.visits import Visits

__all__ = ["Act", "Acted", "DuplicateReceipt", "NotWaiting", "StepPipeline"]

Act = Callable[[BpmnWorkflow, LoadedDefinition], Acted]
"""What a step does to the workflow (run a task, catch a message, refresh timers)."""

# Statements built once: SQLAlchemy then reuses their cache key and compiled form.
_LOAD_COLUMNS = select(
    *queries.HEADER_COLUMNS, INSTANCE.c.state, DEFINITION.c.version.label("definition_version")
).join(DEFINITION, DEFINITION.c.id == INSTANCE.c.definition_id)
_LOAD_QUERY = _LOAD_COLUMNS.where(INSTANCE.c.id == bindparam("instance_id"))
_LOAD_MANY = _LOAD_COLUMNS.where(INSTANCE.c.id.in_(bindparam("ids", expanding=True)))


@dataclass
class Prepared:
    """A step run on its workflow, not yet written: what the write stores and, once it
    committed, what the pipeline keeps (`StepPipeline.finish`)."""

    hot: Hot
    waits: list[Waiting]
    moves: list[tokens.TokenMove]
    values: dict[str, Any]
    rows: list[dict[str, Any]]
    receipt: dict[str, Any] | None
    taken: held.Taken | None
    steps: int  # automatic tasks it ran
    now: datetime
    visits: Visits  # the visit state `values["visits"]` holds

    @property
    def version(self) -> int:
        """The version the write expects to find."""
        return int(self.hot.header["version"])


# What a step refuses or fails with (reported per instance by `advance_many`).
_REFUSALS = (NotWaiting, DuplicateReceipt, NextmoveError)


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
        self._hot: OrderedDict[int, Hot] = OrderedDict()
        self._hot_limit = hot_instances
        self.writer = StepWriter(store)
        # Starts made from each definition version's first-wait state (`_first_wait`);
        # False: every start runs SpiffWorkflow from the start event.
        self.fast_starts = True
        self.first_waits: dict[int, FirstWait | None] = {}

    # -- a step --------------------------------------------------------------------------------

    def advance(
        self, instance_id: int, label: str | None, act: Act, *,
        moved: list[Fired] | None = None, receipt: dict[str, Any] | None = None,
        replay: Mapping[str, Any] = incidents.ENGINE_REPLAY, status: str = "active",
        along: Along | None = None, delivers: int | None = None, in_order: bool = False,
    ) -> Instance:
        """Apply `act` to the instance and commit state, events and waits as one step.

        `label` names the step in errors; timer and message moves are appended to `moved`;
        `receipt` (a prospect event's) is stored in the same transaction, as is the row
        `along` makes from the step's result (not with a receipt; `AlreadyRecorded` when it
        is already stored, and nothing is written). `replay` says what
        `retry` runs again if the step fails (when that is a message, the failing step's
        `receipt` is stored with the incident); `delivers`: the id of such a receipt, marked
        delivered by this step (a retry's). Only an instance in `status` is moved. Raises
        `NotWaiting` (from `act`, or the instance is not in `status`), `DuplicateReceipt`,
        `VersionConflict`, `InstanceIncident` (the map failed or a work limit was exceeded:
        the instance is now in `incident` and nothing of the step is applied); with
        `in_order` (a person's step, a prospect event), `BeforeLastStep` when the clock is
        behind the instance's last step."""
        for attempt in range(4):
            hot = self._hot.pop(instance_id, None) if attempt == 0 else None
            cached = hot is not None
            try:
                step = self.prepare(hot or self._load(instance_id), cached, label, act,
                                    receipt, replay, status, in_order)
            except Stale:
                continue  # the cached copy may be stale: look at the database
            row = None
            if along is not None:
                assert receipt is None, "a step writes a receipt or an along row, not both"
                row = (along.table.name, along.row(self.result(step)[1].instance()))
            try:
                self.writer.write(instance_id, step.version, step.values, step.rows, receipt,
                                   step.taken, row, delivers)
            except Conflict:
                if cached:
                    continue  # another process moved it since we cached it: redo on fresh state
                raise VersionConflict(instance_id, step.version) from None
            except self.writer.integrity_errors as exc:
                if along is not None:
                    raise AlreadyRecorded(along.table.name) from exc
                raise DuplicateReceipt from exc
            except HeldChanged:
                continue  # an event was held or taken meanwhile: redo on fresh state
            return self.finish(step, moved)
        raise VersionConflict(instance_id, -1)  # held events kept changing under us

    def prepare(
        self, hot: Hot, cached: bool, label: str | None, act: Act,
        receipt: dict[str, Any] | None = None,
        replay: Mapping[str, Any] = incidents.ENGINE_REPLAY, status: str = "active",
        in_order: bool = False,
    ) -> Prepared:
        """Run the step on the workflow and build what its write stores (nothing is written
        unless the map fails: then the incident is). `Stale` when a `cached` copy may be
        out of date (redo it from the database)."""
        header, workflow, stored_waits = hot.header, hot.workflow, hot.waits
        quick_task_lists(workflow)
        instance_id = header["id"]
        if header["status"] != status:
            raise NotWaiting
        now = self.clock.now()
        if in_order and db_time(now) < header["updated_at"]:
            raise BeforeLastStep(instance_id, as_utc(now), as_utc(header["updated_at"]))
        definition = self.definitions.get(header["definition_id"])
        if status == "active" and replay.get("type") == "person":  # refused: nothing written
            check_person(replay, workflow, stored_waits, definition.steps, self.recommender)
        before = tokens.snapshot(workflow)
        guard = partial(incidents.guarded, instance_id, label)
        with budget(self.limits) as spent:
            try:
                acted = guard(partial(act, workflow, definition))
                live = tokens.all_tasks(workflow)
                moves = tokens.moves(before, workflow,
                                     uuid.UUID(acted.task_id) if acted.task_id else None,
                                     acted.kind, live)
                # Held events the step catches run within its budget (a loop is an incident).
                # A parked instance takes none, so events for catches that waited through its
                # incident were held: its retry counts every catch as newly waiting.
                taken = self._take_held(header["prospect_id"], workflow,
                                        stored_waits if status == "active" else [], now, guard)
            except NotWaiting:
                if cached:
                    raise Stale from None
                raise
            except ExecutionError as exc:
                failed_at = incidents.failed_element(exc, spent.current or label)
                row = incidents.incident_row(instance_id, definition, label, exc,
                                             failed_at, replay, now)
                # A prospect event's or broadcast signal's receipt is kept: the retry
                # replays it, and the same id sent again meanwhile is a duplicate.
                kept = receipt if incidents.received(replay) is not None else None
                try:
                    parked = self.store.transaction(partial(
                        incidents.write_incident, header=header, row=row, now=now,
                        receipt=kept))
                except (IntegrityError, self.writer.integrity_errors):
                    raise DuplicateReceipt from exc  # a racing copy of the event got there
                if parked:
                    raise InstanceIncident(instance_id, label, exc) from exc
                if cached:
                    raise Stale from exc  # the step may not fail on the stored state
                raise VersionConflict(instance_id, header["version"]) from exc
        if taken is not None:  # the held events it caught moved the workflow on
            moves += taken.moves
            acted.move_data.update(taken.move_data)
            live = tokens.all_tasks(workflow)
        tokens.drop_uncaught(workflow)
        previous = {tokens.wait_key(w): w for w in stored_waits}
        waits = self.recommend(
            tokens.waits(workflow, definition.steps, previous, now, live), hot.context, previous)
        waits = mark_stuck(waits, moves, definition, previous, now)
        # Every append to the trail bumps the version, so the head we chain to is the stored
        # one whenever the write's version check passes.
        visits = hot.visits()
        rows, head = event_rows(instance_id, definition, moves, [*waits, *stored_waits],
                                now, acted, header.get("chain_head"), visits)
        done = workflow.completed
        values = {
            **progress(waits, now),
            "visits": visits.dump(),
            "status": "completed" if done else "active",  # a retried incident is active again
            "active_key": None if done else header["active_key"],
            "version": header["version"] + 1,
            "state": dump_state(workflow, hot.fragments),
            "chain_head": head,
        }
        if self.store.is_sqlite:  # indexed columns it does not change are not written
            for column in KEPT_IF_SAME:
                if column in header and header[column] == values[column]:
                    del values[column]
        return Prepared(hot, waits, moves, values, rows, receipt, taken, spent.steps, now,
                        visits)

    def finish(self, step: Prepared, moved: list[Fired] | None) -> Instance:
        """After the step's write committed: keep the instance hot, report what fired."""
        self.steps_run += step.steps
        header, hot = self.result(step)
        self.remember(header["id"], hot)
        if moved is not None:
            moved.extend(
                Fired(header["id"], header["prospect_id"], header["process_id"], m.step_id,
                      m.kind, as_utc(step.now))
                for m in step.moves if m.kind in CATCH_KINDS)
        return hot.instance()

    @staticmethod
    def result(step: Prepared) -> tuple[dict[str, Any], Hot]:
        """The instance as the step leaves it (its row without the state, and hot)."""
        values = dict(step.values)
        values.pop("state")
        header = {**step.hot.header, **values}
        return header, Hot(header, step.hot.workflow, step.waits, step.hot.context,
                           step.hot.fragments, step.visits)

    def advance_many(
        self, items: Sequence[tuple[int, str | None, Act]], moved: list[Fired] | None = None,
    ) -> dict[int, Instance | Exception]:
        """Group commit: `advance` for many instances, their writes in one transaction so one
        commit (one WAL flush) serves them all; per instance, its new state or the exception
        `advance` would have raised (the database's own errors propagate, nothing written).

        Each step is run and version-checked as `advance` does; one whose version moved on
        (or whose held events changed) writes nothing in the group and the others commit; it
        is then redone alone on fresh state through `advance`, as is a stale cached copy."""
        results: dict[int, Instance | Exception] = {}
        hots = {i: self._hot.pop(i, None) for i, _, _ in items}
        loaded = self.load_many(sorted(i for i, hot in hots.items() if hot is None))
        prepared: list[tuple[Prepared, tuple[int, str | None, Act]]] = []
        alone: list[tuple[int, str | None, Act]] = []
        for item in items:
            hot = hots[item[0]]
            try:
                if hot is not None:
                    prepared.append((self.prepare(hot, True, item[1], item[2]), item))
                elif item[0] in loaded:
                    prepared.append((self.prepare(loaded[item[0]], False, item[1], item[2]),
                                     item))
                else:
                    results[item[0]] = InstanceNotFound(str(item[0]))
            except Stale:
                alone.append(item)
            except _REFUSALS as exc:
                results[item[0]] = exc
        committed = self.writer.write_many([
            (s.hot.header["id"], s.version, s.values, s.rows, s.receipt, s.taken)
            for s, _ in prepared])
        for (step, item), ok in zip(prepared, committed, strict=True):
            if ok:
                results[item[0]] = self.finish(step, moved)
            else:
                alone.append(item)
        for instance_id, label, act in alone:
            try:
                results[instance_id] = self.advance(instance_id, label, act, moved=moved)
            except _REFUSALS as exc:
                results[instance_id] = exc
        return results

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

    def recommend(
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
                return _start.start_batch(self, process_id, prospects, new, actor, park)
            except HeldChanged:
                continue  # an event for one of them was held meanwhile: start them again
            except IntegrityError:
                if new:
                    raise
                # Another process started one of these prospects meanwhile: look again.
        raise NextmoveError(f"could not start {len(prospects)} instance(s) of {process_id!r}: "
                            "other processes kept starting the same prospects")

    # -- incidents ---------------------------------------------------------------------------

    def migrate(self, instance_id: int, target: LoadedDefinition,
                actor: str | None = None) -> Instance:
        """Move an active instance, or one in incident, to `target` (same process); an active
        one then runs on as a step does (`_migrate_step`)."""
        for _attempt in range(4):
            self._hot.pop(instance_id, None)
            hot = self._load(instance_id)
            header = hot.header
            if header["status"] not in ("active", "incident"):
                raise MigrationRefused(f"instance {instance_id} is {header['status']}: only "
                                       "active instances and instances in incident can move")
            if target.process_id != header["process_id"]:
                raise MigrationRefused(f"instance {instance_id} runs {header['process_id']!r}, "
                                       f"not {target.process_id!r}")
            source = self.definitions.get(header["definition_id"])
            if target.id == source.id:
                raise MigrationRefused(f"instance {instance_id} already runs version "
                                       f"{target.version}")
            if _migrate_step.migrate(self, hot, source, target, actor):
                return queries.get(self.store, instance_id)
        raise VersionConflict(instance_id, -1)  # held events kept changing under us

    # -- outcomes ------------------------------------------------------------------------------

    def outcome(
        self, instance_id: int, kind: str, payload: dict[str, Any], actor: str | None,
        along: Along | None = None,
    ) -> StepEvent:
        """Append a business result to the instance's trail (no state change), with the row
        `along` makes from it in the same transaction (see `advance`)."""
        at = self.clock.now()
        row = {"instance_id": instance_id, "step_id": kind, "step_name": kind, "kind": "outcome",
               "actor": actor, "data": json.dumps(payload) if payload else None,
               "at": db_time(at)}
        for _attempt in range(5):
            with self.store.read() as conn:
                version, head, last = conn.execute(
                    select(INSTANCE.c.version, INSTANCE.c.chain_head, INSTANCE.c.updated_at)
                    .where(INSTANCE.c.id == instance_id)).one()
            if row["at"] < last:
                raise BeforeLastStep(instance_id, as_utc(at), as_utc(last))
            try:
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
                    event = StepEvent(event_id, instance_id, kind, kind, "outcome",
                                      as_utc(at), actor, payload or None)
                    if along is not None:
                        conn.execute(insert(along.table).values(**along.row(event)))
                    return event
            except IntegrityError as exc:
                if along is None:
                    raise
                raise AlreadyRecorded(along.table.name) from exc
        raise VersionConflict(instance_id, version)

    # -- deserialized instances ----------------------------------------------------------------

    def workflow(self, instance_id: int) -> BpmnWorkflow:
        """The instance's workflow as its next step would start from (cached or loaded)."""
        return (self._hot.get(instance_id) or self._load(instance_id)).workflow

    def header(self, instance_id: int) -> dict[str, Any]:
        """The row without state: kept, or loaded and kept for the step that usually follows."""
        self.remember(instance_id, hot := self._hot.get(instance_id) or self._load(instance_id))
        return hot.header

    def forget(self) -> None:
        """Drop the deserialized instances, as a freshly started process would have none."""
        self._hot.clear()

    def _load(self, instance_id: int) -> Hot:
        rows = self.store.select(_LOAD_QUERY, {"instance_id": instance_id})
        if not rows:
            raise InstanceNotFound(str(instance_id))
        return self.hot_from_row(dict(rows[0]))

    def load_many(self, instance_ids: Sequence[int]) -> dict[int, Hot]:
        """The instances (found ones) read in one query, deserialized."""
        if not instance_ids:
            return {}
        rows = self.store.select(_LOAD_MANY, {"ids": list(instance_ids)})
        return {row["id"]: self.hot_from_row(dict(row)) for row in rows}

    def hot_from_row(self, header: dict[str, Any]) -> Hot:
        state = header.pop("state")
        definition = self.definitions.get(header["definition_id"])
        fragments: Fragments = {}
        workflow = load_state(state, definition.spec, definition.subprocess_specs,
                              shared_ids=True, fragments=fragments)
        workflow.script_engine = self.script_engine
        return Hot(header, workflow, queries.waits_of(header), json.loads(header["context"]),
                   fragments)

    def remember(self, instance_id: int, hot: Hot) -> None:
        if hot.completed or self._hot_limit <= 0:
            return
        self._hot[instance_id] = hot
        while len(self._hot) > self._hot_limit:
            self._hot.popitem(last=False)
