"""The engine: deploy maps, start one instance per prospect, move tokens step by step.

Every step — a person's, a timer's or a prospect event's — goes through `_advance`: one
database transaction holding the new state, the step events and the waiting index, guarded by
an optimistic version. Of two workers moving the same instance, exactly one commits; the
other gets `VersionConflict`. Parsed specs are cached per definition version and recently
used instances stay deserialized (the version check catches a stale copy), so a step costs
about one Spiff state round trip.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from sqlalchemy import Connection, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from engine.clock import Clock, SystemClock, as_utc
from engine.definitions import ProcessDefinition, build_spec, load_definitions
from engine.errors import (
    ExecutionError,
    ExpressionError,
    InstanceNotFound,
    NextmoveError,
    StepNotWaiting,
    StepRequired,
    VersionConflict,
)
from engine.expressions import SafeScriptEngine
from engine.runtime import queries, tokens
from engine.runtime.model import (
    DeployedDefinition,
    Fired,
    Instance,
    InstanceDetail,
    InstanceRef,
    SignalResult,
    StepEvent,
    Waiting,
)
from engine.runtime.queries import DEFINITION, INSTANCE
from engine.runtime.state import dump_state, load_state
from engine.store.database import Store
from engine.store.tables import MessageReceiptRow, StepEventRow

for _name in ("spiff", "spiff.task", "spiff.workflow", "spiff.metrics"):
    logging.getLogger(_name).setLevel(logging.WARNING)  # they cost time on every task change

STEP_EVENT = StepEventRow.__table__  # type: ignore[attr-defined]
RECEIPT = MessageReceiptRow.__table__  # type: ignore[attr-defined]


class ClockedScriptEngine(SafeScriptEngine):
    """Safe expressions plus the engine's clock, which nextmove's timers read."""

    def __init__(self, clock: Clock, allow_scripts: bool = False) -> None:
        super().__init__(allow_scripts=allow_scripts)
        self.clock = clock


@dataclass(frozen=True)
class _Loaded:
    """A definition version ready to run: its specs and step metadata."""

    id: int
    process_id: str
    version: int
    spec: Any
    subprocess_specs: dict[str, Any]
    steps: dict[str, dict[str, Any]]


@dataclass
class _Hot:
    header: dict[str, Any]
    workflow: BpmnWorkflow


@dataclass
class _Acted:
    """What an action did to a workflow: the person's task (if any) and what to record."""

    task_id: str | None = None
    kind: str = "completed"
    actor: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    data_kinds: tuple[str, ...] = ()  # also attach `data` to moves of these kinds


class _NotWaiting(Exception):
    """The instance no longer waits for what the action needs (raised inside `_advance`)."""


def _db_time(moment: datetime) -> datetime:
    return as_utc(moment).replace(tzinfo=None)


class Engine:
    """nextmove's runtime over one database (SQLite file or PostgreSQL)."""

    def __init__(
        self,
        store: Store | str | None = None,
        *,
        clock: Clock | None = None,
        allow_scripts: bool = False,
        hot_instances: int = 2048,
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        self.store = store if isinstance(store, Store) else Store(store)
        self.clock: Clock = clock or SystemClock()
        self.allow_scripts = allow_scripts
        self.lease = lease
        self.script_engine = ClockedScriptEngine(self.clock, allow_scripts)
        self._definitions: dict[int, _Loaded] = {}
        self._hot: OrderedDict[int, _Hot] = OrderedDict()
        self._hot_limit = hot_instances

    # -- definitions ---------------------------------------------------------------------------

    def deploy(self, paths: Iterable[str | Path]) -> list[DeployedDefinition]:
        """Validate and deploy every process under `paths` (nothing if any map is invalid)."""
        definitions = load_definitions(paths, allow_scripts=self.allow_scripts)
        return [self.deploy_definition(d) for d in definitions]

    def deploy_definition(self, definition: ProcessDefinition) -> DeployedDefinition:
        """Store a new version unless identical content is already deployed."""
        digest = definition.content_hash
        for _attempt in range(3):
            with self.store.write() as conn:
                row = conn.execute(select(DEFINITION).where(
                    DEFINITION.c.process_id == definition.process_id,
                    DEFINITION.c.content_hash == digest)).mappings().first()
                if row is not None:
                    return _deployed(row, created=False)
                latest = conn.execute(select(func.max(DEFINITION.c.version)).where(
                    DEFINITION.c.process_id == definition.process_id)).scalar() or 0
                values = {
                    "process_id": definition.process_id,
                    "version": latest + 1,
                    "name": definition.name,
                    "content_hash": digest,
                    "source_file": definition.source_file,
                    "source_format": definition.source_format,
                    "documents": json.dumps(
                        {k: v.decode("utf-8") for k, v in definition.documents.items()}),
                    "steps": json.dumps([s.to_dict() for s in definition.all_steps()]),
                    "deployed_at": _db_time(self.clock.now()),
                }
                try:
                    result = conn.execute(insert(DEFINITION).values(**values))
                except IntegrityError:
                    continue  # another deployer raced us; read what it stored
                return _deployed({**values, "id": _new_id(result)}, created=True)
        raise NextmoveError(f"could not deploy {definition.process_id}: concurrent deploys kept "
                            "conflicting; try again")

    def definitions(self, process_id: str | None = None) -> list[DeployedDefinition]:
        query = select(DEFINITION).order_by(DEFINITION.c.process_id, DEFINITION.c.version)
        if process_id:
            query = query.where(DEFINITION.c.process_id == process_id)
        with self.store.read() as conn:
            return [_deployed(r) for r in conn.execute(query).mappings()]

    def _latest_definition_id(self, conn: Connection, process_id: str) -> int:
        from engine.errors import DefinitionNotFound

        found = conn.execute(
            select(DEFINITION.c.id).where(DEFINITION.c.process_id == process_id)
            .order_by(DEFINITION.c.version.desc()).limit(1)).scalar()
        if found is None:
            known = conn.execute(select(DEFINITION.c.process_id).distinct()).scalars().all()
            raise DefinitionNotFound(process_id, known)
        return int(found)

    def _definition(self, definition_id: int) -> _Loaded:
        loaded = self._definitions.get(definition_id)
        if loaded is None:
            with self.store.read() as conn:
                row = conn.execute(select(DEFINITION).where(
                    DEFINITION.c.id == definition_id)).mappings().one()
            documents = {k: v.encode("utf-8") for k, v in json.loads(row["documents"]).items()}
            spec, subprocess_specs = build_spec(row["process_id"], documents, row["source_file"])
            loaded = _Loaded(
                definition_id, row["process_id"], row["version"], spec, subprocess_specs,
                {s["id"]: s for s in json.loads(row["steps"])},
            )
            self._definitions[definition_id] = loaded
        return loaded

    # -- starting ------------------------------------------------------------------------------

    def start(
        self,
        process_id: str,
        prospect_id: str,
        distributor_id: str,
        context: Mapping[str, Any] | None = None,
        *,
        new: bool = False,
        actor: str | None = None,
    ) -> Instance:
        """Start `process_id` for a prospect, or return their active instance of it."""
        active_key = None if new else f"{process_id}\x1f{prospect_id}"
        with self.store.read() as conn:
            if active_key is not None:
                existing = conn.execute(queries.header_query().where(
                    INSTANCE.c.active_key == active_key)).mappings().first()
                if existing is not None:
                    return queries.to_instance(existing)
            definition_id = self._latest_definition_id(conn, process_id)
        definition = self._definition(definition_id)
        now = self.clock.now()
        context = dict(context or {})
        workflow = BpmnWorkflow(definition.spec, definition.subprocess_specs,
                                script_engine=self.script_engine)
        workflow.task_tree.data.update(context)
        self._run(None, None, workflow.do_engine_steps)
        moves = tokens.moves({}, workflow, None, "completed")
        waits = tokens.waits(workflow, definition.steps, {}, now)
        values = {
            "definition_id": definition.id,
            "process_id": process_id,
            "prospect_id": prospect_id,
            "distributor_id": distributor_id,
            "active_key": None if workflow.completed else active_key,
            "status": "completed" if workflow.completed else "active",
            "context": json.dumps(context),
            "created_at": _db_time(now),
            "version": 1,
            **self._progress(waits, now),
            "state": dump_state(workflow),
        }
        try:
            with self.store.write() as conn:
                instance_id = _new_id(conn.execute(insert(INSTANCE).values(**values)))
                self._log(conn, instance_id, definition, moves, now, _Acted(actor=actor))
        except IntegrityError:
            if active_key is None:
                raise
            return self.start(process_id, prospect_id, distributor_id, context, actor=actor)
        values.pop("state")
        header = {**values, "id": instance_id, "definition_version": definition.version}
        self._remember(instance_id, header, workflow)
        return queries.to_instance(header)

    # -- a person's steps ------------------------------------------------------------------------

    def complete(
        self, ref: InstanceRef, step: str, data: Mapping[str, Any] | None = None,
        *, actor: str | None = None,
    ) -> Instance:
        """The person did `step`; `data` (e.g. what the prospect said) joins the instance data."""
        return self._person(ref, step, "completed", dict(data or {}), actor)

    def skip(
        self, ref: InstanceRef, step: str, reason: str | None = None, *, actor: str | None = None
    ) -> Instance:
        """The person chose not to do `step`; allowed unless the step is required."""
        return self._person(ref, step, "skipped", {"reason": reason} if reason else {}, actor)

    def _person(
        self, ref: InstanceRef, step: str, kind: str, data: dict[str, Any], actor: str | None
    ) -> Instance:
        instance_id = self.resolve(ref)

        def act(workflow: BpmnWorkflow, definition: _Loaded) -> _Acted:
            task = tokens.find_ready(workflow, step)
            if task is None:
                raise _NotWaiting
            props = definition.steps.get(step, {}).get("properties", {})
            if kind == "skipped" and props.get("control") == "required":
                raise StepRequired(instance_id, step, props.get("basis"))
            if kind == "completed":
                task.data.update(data)
            task.run()
            workflow.do_engine_steps()
            return _Acted(str(task.id), kind, actor, data)

        try:
            header = self._advance(instance_id, step, act)
        except _NotWaiting:
            waiting = [w.step_id for w in queries.get(self.store, instance_id).waiting]
            raise StepNotWaiting(instance_id, step, waiting) from None
        return queries.to_instance(header)

    # -- timers and prospect events ----------------------------------------------------------

    def fire_due(
        self, limit: int = 100, worker: str | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Fired]:
        """Claim up to `limit` instances with a due timer, fire them, report what fired.

        Claims are leases: a worker that dies mid-batch leaves its claims to lapse after
        `lease`, and another worker picks them up. Each timer still fires at most once,
        because firing is a versioned step.
        """
        owner = worker or f"worker-{uuid.uuid4().hex[:8]}"
        fired: list[Fired] = []
        claimed = self._claim(limit, owner)
        for done, instance_id in enumerate(claimed):
            if should_stop is not None and should_stop():
                self._release(claimed[done:], owner)  # let other workers have them now
                break

            def act(workflow: BpmnWorkflow, _definition: _Loaded) -> _Acted:
                workflow.refresh_timers()
                workflow.do_engine_steps()
                return _Acted()

            try:
                self._advance(instance_id, None, act, moved=fired)
            except _NotWaiting:
                continue  # finished meanwhile
            except (VersionConflict, ExecutionError) as exc:
                logging.getLogger("nextmove.worker").warning("instance %s: %s", instance_id, exc)
        return fired

    def _claim(self, limit: int, owner: str) -> list[int]:
        now = _db_time(self.clock.now())
        due = (
            select(INSTANCE.c.id)
            .where(INSTANCE.c.status == "active", INSTANCE.c.next_due_at <= now,
                   or_(INSTANCE.c.lease_until.is_(None), INSTANCE.c.lease_until < now))
            .order_by(INSTANCE.c.next_due_at)
            .limit(limit)
        )
        if not self.store.is_sqlite:  # SQLite serializes writers; PostgreSQL needs SKIP LOCKED
            due = due.with_for_update(skip_locked=True)
        claim = (
            update(INSTANCE)
            .where(INSTANCE.c.id.in_(due.scalar_subquery()))
            .values(lease_owner=owner, lease_until=now + self.lease)
            .returning(INSTANCE.c.id)
        )
        with self.store.write() as conn:
            return sorted(conn.execute(claim).scalars().all())

    def _release(self, instance_ids: list[int], owner: str) -> None:
        with self.store.write() as conn:
            conn.execute(update(INSTANCE).where(
                INSTANCE.c.id.in_(instance_ids), INSTANCE.c.lease_owner == owner,
            ).values(lease_owner=None, lease_until=None))

    def tick(self, batch: int = 100, worker: str | None = None) -> list[Fired]:
        """Fire everything due now, batch after batch, until nothing is due."""
        fired: list[Fired] = []
        while True:
            before = len(fired)
            batch_fired = self.fire_due(batch, worker)
            fired.extend(batch_fired)
            if len(fired) == before and not self._has_due():
                return fired
            if not batch_fired and self._has_due():
                return fired  # what is left is leased by other workers

    def _has_due(self) -> bool:
        now = _db_time(self.clock.now())
        with self.store.read() as conn:
            return conn.execute(select(INSTANCE.c.id).where(
                INSTANCE.c.status == "active", INSTANCE.c.next_due_at <= now,
                or_(INSTANCE.c.lease_until.is_(None), INSTANCE.c.lease_until < now),
            ).limit(1)).first() is not None

    def signal(
        self, message: str, prospect_id: str, *, message_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> SignalResult:
        """Deliver a prospect event (e.g. `video_played`) to the instances waiting for it.

        Routed by our own index (prospect + message name in the waiting column). The same
        `message_id` twice has one effect; a message nothing waits for is recorded and
        reported as unmatched.
        """
        message_id = message_id or uuid.uuid4().hex
        payload = dict(data or {})
        needle = json.dumps({"message": message})[1:-1]
        with self.store.read() as conn:
            if conn.execute(select(RECEIPT.c.id).where(
                    RECEIPT.c.message_id == message_id).limit(1)).first() is not None:
                return SignalResult(message, prospect_id, message_id, duplicate=True)
            candidates = conn.execute(select(INSTANCE.c.id).where(
                INSTANCE.c.prospect_id == prospect_id, INSTANCE.c.status == "active",
                INSTANCE.c.waiting.contains(needle)).order_by(INSTANCE.c.id)).scalars().all()
        now = self.clock.now()
        receipt = {"message_id": message_id, "message": message, "prospect_id": prospect_id,
                   "data": json.dumps(payload) if payload else None,
                   "received_at": _db_time(now)}
        delivered: list[int] = []
        fired: list[Fired] = []
        for instance_id in candidates:
            def act(workflow: BpmnWorkflow, _definition: _Loaded) -> _Acted:
                if not tokens.waiting_for(workflow, message):
                    raise _NotWaiting
                workflow.catch(BpmnEvent(MessageEventDefinition(message), payload))
                workflow.do_engine_steps()
                return _Acted(data={"message_id": message_id, **payload},
                              data_kinds=("message",))

            try:
                self._advance(instance_id, message, act, moved=fired,
                              receipt={**receipt, "instance_id": instance_id})
            except (_NotWaiting, _DuplicateReceipt):
                continue
            delivered.append(instance_id)
        if not delivered:
            try:
                with self.store.write() as conn:
                    conn.execute(insert(RECEIPT).values(**receipt, instance_id=0))
            except IntegrityError:
                return SignalResult(message, prospect_id, message_id, duplicate=True)
        return SignalResult(message, prospect_id, message_id, tuple(delivered),
                            fired=tuple(fired))

    # -- the step transaction ----------------------------------------------------------------

    def _advance(
        self,
        instance_id: int,
        label: str | None,
        act: Callable[[BpmnWorkflow, _Loaded], _Acted],
        *,
        moved: list[Fired] | None = None,
        receipt: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Apply `act` to the instance and commit state, events and waits as one step."""
        for attempt in range(2):
            hot = self._hot.pop(instance_id, None) if attempt == 0 else None
            cached = hot is not None
            if hot is None:
                hot = self._load(instance_id)
            header, workflow = hot.header, hot.workflow
            if header["status"] != "active":
                raise _NotWaiting
            definition = self._definition(header["definition_id"])
            now = self.clock.now()
            before = tokens.snapshot(workflow)
            try:
                acted = self._run(instance_id, label, partial(act, workflow, definition))
            except _NotWaiting:
                if cached:
                    continue  # the cached copy may be stale: look at the database
                raise
            moves = tokens.moves(before, workflow,
                                 uuid.UUID(acted.task_id) if acted.task_id else None, acted.kind)
            previous = {tokens.wait_key(w): w for w in queries.waits_of(header)}
            waits = tokens.waits(workflow, definition.steps, previous, now)
            try:
                header = self._commit(header, workflow, definition, moves, waits, now, acted,
                                      receipt)
            except VersionConflict:
                if cached:
                    continue  # another process moved it since we cached it: redo on fresh state
                raise
            self._remember(instance_id, header, workflow)
            if moved is not None:
                moved.extend(
                    Fired(instance_id, header["prospect_id"], header["process_id"], m.step_id,
                          m.kind, as_utc(now))
                    for m in moves if m.kind in ("timer", "message"))
            return header
        raise VersionConflict(instance_id, -1)  # unreachable: the loop returns or raises

    def _run(self, instance_id: int | None, step: str | None, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except ExpressionError as exc:
            raise ExecutionError(instance_id, step, str(exc)) from exc
        except (NextmoveError, _NotWaiting):
            raise
        except Exception as exc:  # a failing map must not leave a half-applied step behind
            raise ExecutionError(instance_id, step, f"{type(exc).__name__}: {exc}") from exc

    def _commit(
        self, header: dict[str, Any], workflow: BpmnWorkflow, definition: _Loaded,
        moves: list[tokens.TokenMove], waits: list[Waiting], now: datetime, acted: _Acted,
        receipt: dict[str, Any] | None,
    ) -> dict[str, Any]:
        done = workflow.completed
        values = {
            **self._progress(waits, now),
            "status": "completed" if done else header["status"],
            "active_key": None if done else header["active_key"],
            "version": header["version"] + 1,
            "lease_owner": None,
            "lease_until": None,
            "state": dump_state(workflow),
        }
        try:
            with self.store.write() as conn:
                result = conn.execute(update(INSTANCE).where(
                    INSTANCE.c.id == header["id"], INSTANCE.c.version == header["version"]
                ).values(**values))
                if result.rowcount != 1:
                    raise VersionConflict(header["id"], header["version"])
                if receipt is not None:
                    conn.execute(insert(RECEIPT).values(**receipt))
                self._log(conn, header["id"], definition, moves, now, acted)
        except IntegrityError as exc:
            raise _DuplicateReceipt from exc
        for key in ("state", "lease_owner", "lease_until"):
            values.pop(key)
        return {**header, **values}

    def _progress(self, waits: list[Waiting], now: datetime) -> dict[str, Any]:
        dues = [w.due_at for w in waits if w.due_at is not None]
        return {
            "waiting": json.dumps([w.to_dict() for w in waits]),
            "next_due_at": _db_time(min(dues)) if dues else None,
            "updated_at": _db_time(now),
        }

    def _log(
        self, conn: Connection, instance_id: int, definition: _Loaded,
        moves: list[tokens.TokenMove], now: datetime, acted: _Acted,
    ) -> None:
        """Append the step events; the person's own step carries their name and data."""
        if not moves:
            return
        at = _db_time(now)
        rows = []
        for move in moves:
            # With no person's task (a start), the actor owns every move but the arrivals.
            mine = move.task_id == acted.task_id if acted.task_id else move.kind != "entered"
            with_data = move.kind in acted.data_kinds or (mine and acted.task_id is not None)
            rows.append({
                "instance_id": instance_id,
                "step_id": move.step_id,
                "step_name": definition.steps.get(move.step_id, {}).get("name", move.step_id),
                "kind": move.kind,
                "actor": acted.actor if mine else None,
                "data": json.dumps(acted.data) if with_data and acted.data else None,
                "at": at,
            })
        conn.execute(insert(STEP_EVENT), rows)

    def _load(self, instance_id: int) -> _Hot:
        with self.store.read() as conn:
            row = conn.execute(
                select(*queries.HEADER_COLUMNS, INSTANCE.c.state,
                       DEFINITION.c.version.label("definition_version"))
                .join(DEFINITION, DEFINITION.c.id == INSTANCE.c.definition_id)
                .where(INSTANCE.c.id == instance_id)).mappings().first()
        if row is None:
            raise InstanceNotFound(str(instance_id))
        header = dict(row)
        state = header.pop("state")
        definition = self._definition(header["definition_id"])
        workflow = load_state(state, definition.spec, definition.subprocess_specs)
        workflow.script_engine = self.script_engine
        return _Hot(header, workflow)

    def _remember(self, instance_id: int, header: dict[str, Any], workflow: BpmnWorkflow) -> None:
        if workflow.completed or self._hot_limit <= 0:
            return
        self._hot[instance_id] = _Hot(header, workflow)
        while len(self._hot) > self._hot_limit:
            self._hot.popitem(last=False)

    def forget(self) -> None:
        """Drop cached instances and specs, as a freshly started process would have none."""
        self._hot.clear()
        self._definitions.clear()

    # -- queries -------------------------------------------------------------------------------

    def resolve(self, ref: InstanceRef) -> int:
        """The instance id for an id or a prospect (their active instance, else the latest)."""
        return queries.resolve(self.store, ref)

    def get(self, ref: InstanceRef) -> Instance:
        return queries.get(self.store, self.resolve(ref))

    def show(self, ref: InstanceRef) -> InstanceDetail:
        instance = self.get(ref)
        return InstanceDetail(instance, tuple(self.history(instance.id)))

    def history(self, instance_id: int) -> list[StepEvent]:
        return queries.history(self.store, instance_id)

    def list_instances(self, **filters: Any) -> list[Instance]:
        """Instances filtered by process_id, distributor_id, prospect_id, step, status."""
        return queries.list_instances(self.store, **filters)


class _DuplicateReceipt(Exception):
    """The message id was already applied to this instance (a racing duplicate)."""


def _new_id(result: Any) -> int:
    return int(result.inserted_primary_key[0])


def _deployed(row: Mapping[Any, Any], created: bool = False) -> DeployedDefinition:
    return DeployedDefinition(
        id=row["id"], process_id=row["process_id"], version=row["version"], name=row["name"],
        content_hash=row["content_hash"], source_file=row["source_file"],
        deployed_at=as_utc(row["deployed_at"]), created=created,
    )
