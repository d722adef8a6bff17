"""The engine: deploy maps, start one instance per prospect, move tokens step by step.

Every step is one database transaction holding the new state, the step events and the waiting
index, guarded by an optimistic version: of two workers completing the same step, exactly one
commits and the other gets `VersionConflict`. Parsed specs are cached per definition version
and recently used instances are kept deserialized (checked against the stored version), so a
step costs about one Spiff state round trip.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.clock import Clock, SystemClock, as_utc
from engine.definitions import ProcessDefinition, build_spec, load_definitions
from engine.errors import (
    AmbiguousInstance,
    DefinitionNotFound,
    ExecutionError,
    ExpressionError,
    InstanceNotFound,
    NextmoveError,
    StepNotWaiting,
    StepRequired,
    VersionConflict,
)
from engine.expressions import SafeScriptEngine
from engine.runtime import tokens
from engine.runtime.model import (
    DeployedDefinition,
    Instance,
    InstanceDetail,
    InstanceRef,
    StepEvent,
    Waiting,
)
from engine.runtime.state import dump_state, load_state
from engine.store.database import Store
from engine.store.tables import DefinitionRow, InstanceRow, StepEventRow

for _name in ("spiff", "spiff.task", "spiff.workflow", "spiff.metrics"):
    logging.getLogger(_name).setLevel(logging.WARNING)  # they cost time on every task change

DEFINITION = DefinitionRow.__table__  # type: ignore[attr-defined]
INSTANCE = InstanceRow.__table__  # type: ignore[attr-defined]
STEP_EVENT = StepEventRow.__table__  # type: ignore[attr-defined]
_HEADER_COLUMNS = [c for c in INSTANCE.c if c.name != "state"]


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
    ) -> None:
        self.store = store if isinstance(store, Store) else Store(store)
        self.clock: Clock = clock or SystemClock()
        self.allow_scripts = allow_scripts
        self.script_engine = SafeScriptEngine(allow_scripts=allow_scripts)
        self._definitions: dict[int, _Loaded] = {}
        self._hot: OrderedDict[int, _Hot] = OrderedDict()
        self._hot_limit = hot_instances

    # -- definitions ---------------------------------------------------------------------------

    def deploy(self, paths: Iterable[str | Path]) -> list[DeployedDefinition]:
        """Validate and deploy every process under `paths` (all or nothing per process)."""
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
                    new_id = conn.execute(insert(DEFINITION).values(**values)).inserted_primary_key
                except IntegrityError:
                    continue  # another deployer raced us; read what it stored
                return _deployed({**values, "id": new_id[0]}, created=True)
        raise NextmoveError(f"could not deploy {definition.process_id}: concurrent deploys kept "
                            "conflicting; try again")

    def definitions(self, process_id: str | None = None) -> list[DeployedDefinition]:
        query = select(DEFINITION).order_by(DEFINITION.c.process_id, DEFINITION.c.version)
        if process_id:
            query = query.where(DEFINITION.c.process_id == process_id)
        with self.store.read() as conn:
            return [_deployed(r) for r in conn.execute(query).mappings()]

    def _latest_definition_id(self, conn: Connection, process_id: str) -> int:
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

    # -- instances -------------------------------------------------------------------------------

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
                existing = conn.execute(select(*_HEADER_COLUMNS).where(
                    INSTANCE.c.active_key == active_key)).mappings().first()
                if existing is not None:
                    return self._instance(dict(existing))
            definition = self._definition(self._latest_definition_id(conn, process_id))
        now = self.clock.now()
        context = dict(context or {})
        workflow = BpmnWorkflow(definition.spec, definition.subprocess_specs,
                                script_engine=self.script_engine)
        workflow.task_tree.data.update(context)
        self._run(workflow, None, None, lambda: workflow.do_engine_steps())
        moves = tokens.moves({}, workflow, None, "completed")
        waits = tokens.waits(workflow, definition.steps, {}, now)
        header = {
            "definition_id": definition.id,
            "process_id": process_id,
            "prospect_id": prospect_id,
            "distributor_id": distributor_id,
            "active_key": None if workflow.completed else active_key,
            "status": "completed" if workflow.completed else "active",
            "context": json.dumps(context),
            "created_at": _db_time(now),
        }
        try:
            with self.store.write() as conn:
                values = {**header, **self._progress(waits, now), "version": 1,
                          "state": dump_state(workflow)}
                instance_id = conn.execute(insert(INSTANCE).values(**values)).inserted_primary_key[0]
                self._log(conn, instance_id, definition, moves, now, ("", actor, {}))
        except IntegrityError:
            if active_key is None:
                raise
            return self.start(process_id, prospect_id, distributor_id, context, actor=actor)
        header = {**values, "id": instance_id}
        header.pop("state")
        self._remember(instance_id, header, workflow)
        return self._instance(header)

    def complete(
        self, ref: InstanceRef, step: str, data: Mapping[str, Any] | None = None,
        *, actor: str | None = None,
    ) -> Instance:
        """The person did `step`; `data` (e.g. what the prospect said) joins the instance data."""
        return self._act(self.resolve(ref), step, "completed", dict(data or {}), actor)

    def skip(
        self, ref: InstanceRef, step: str, reason: str | None = None, *, actor: str | None = None
    ) -> Instance:
        """The person chose not to do `step`; allowed unless the step is required."""
        note = {"reason": reason} if reason else {}
        return self._act(self.resolve(ref), step, "skipped", note, actor)

    def _act(
        self, instance_id: int, step: str, kind: str, data: dict[str, Any], actor: str | None
    ) -> Instance:
        for attempt in range(2):
            hot = self._hot.pop(instance_id, None) if attempt == 0 else None
            cached = hot is not None
            if hot is None:
                hot = self._load(instance_id)
            header, workflow = hot.header, hot.workflow
            definition = self._definition(header["definition_id"])
            task = tokens.find_ready(workflow, step)
            if task is None:
                if cached:
                    continue  # the cached copy may be stale: look at the database
                raise StepNotWaiting(instance_id, step, [w.step_id for w in self._waits(header)])
            info = definition.steps.get(step, {})
            props = info.get("properties", {})
            if kind == "skipped" and props.get("control") == "required":
                raise StepRequired(instance_id, step, props.get("basis"))
            now = self.clock.now()
            before = tokens.snapshot(workflow)

            def run(task: Any = task) -> None:
                if kind == "completed":
                    task.data.update(data)
                task.run()
                workflow.do_engine_steps()

            self._run(workflow, instance_id, step, run)
            moves = tokens.moves(before, workflow, task.id, kind)
            previous = {w.task_id: w for w in self._waits(header)}
            waits = tokens.waits(workflow, definition.steps, previous, now)
            try:
                header = self._commit(header, workflow, definition, moves, waits, now,
                                      (str(task.id), actor, data))
            except VersionConflict:
                if cached:
                    continue  # another process moved it since we cached it: redo on fresh state
                raise
            self._remember(instance_id, header, workflow)
            return self._instance(header)
        raise InstanceNotFound(str(instance_id))  # unreachable: the loop returns or raises

    def _run(self, workflow: BpmnWorkflow, instance_id: int | None, step: str | None,
             action: Any) -> None:
        try:
            action()
        except ExpressionError as exc:
            raise ExecutionError(instance_id, step, str(exc)) from exc
        except Exception as exc:  # a failing map must not leave a half-applied step behind
            if instance_id is not None:
                self._hot.pop(instance_id, None)
            raise ExecutionError(instance_id, step, f"{type(exc).__name__}: {exc}") from exc

    def _commit(
        self, header: dict[str, Any], workflow: BpmnWorkflow, definition: _Loaded,
        moves: list[tokens.TokenMove], waits: list[Waiting], now: datetime,
        acted: tuple[str, str | None, dict[str, Any]],
    ) -> dict[str, Any]:
        done = workflow.completed
        values = {
            **self._progress(waits, now),
            "status": "completed" if done else header["status"],
            "active_key": None if done else header["active_key"],
            "version": header["version"] + 1,
            "state": dump_state(workflow),
        }
        with self.store.write() as conn:
            result = conn.execute(update(INSTANCE).where(
                INSTANCE.c.id == header["id"], INSTANCE.c.version == header["version"]
            ).values(**values))
            if result.rowcount != 1:
                self._hot.pop(header["id"], None)
                raise VersionConflict(header["id"], header["version"])
            self._log(conn, header["id"], definition, moves, now, acted)
        values.pop("state")
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
        moves: list[tokens.TokenMove], now: datetime,
        acted: tuple[str, str | None, dict[str, Any]],
    ) -> None:
        """Append the step events; the person's own step carries their name and data."""
        if not moves:
            return
        acted_task, actor, data = acted
        at = _db_time(now)
        rows = []
        for move in moves:
            mine = move.task_id == acted_task or (not acted_task and move.kind != "entered")
            rows.append({
                "instance_id": instance_id,
                "step_id": move.step_id,
                "step_name": definition.steps.get(move.step_id, {}).get("name", move.step_id),
                "kind": move.kind,
                "actor": actor if mine else None,
                "data": json.dumps(data) if mine and data else None,
                "at": at,
            })
        conn.execute(insert(STEP_EVENT), rows)

    def _load(self, instance_id: int) -> _Hot:
        with self.store.read() as conn:
            row = conn.execute(select(INSTANCE).where(INSTANCE.c.id == instance_id)).mappings().first()
        if row is None:
            raise InstanceNotFound(str(instance_id))
        header = dict(row)
        state = header.pop("state")
        definition = self._definition(header["definition_id"])
        workflow = load_state(state, definition.spec, definition.subprocess_specs)
        workflow.script_engine = self.script_engine
        return _Hot(header, workflow)

    def _remember(self, instance_id: int, header: dict[str, Any], workflow: BpmnWorkflow) -> None:
        if workflow.completed:
            return
        self._hot[instance_id] = _Hot(header, workflow)
        self._hot.move_to_end(instance_id)
        while len(self._hot) > self._hot_limit:
            self._hot.popitem(last=False)

    def forget(self) -> None:
        """Drop cached instances (and specs), as a fresh process would start."""
        self._hot.clear()
        self._definitions.clear()

    # -- queries -------------------------------------------------------------------------------

    def resolve(self, ref: InstanceRef) -> int:
        """The instance id for an id or a prospect (their active instance, else the latest)."""
        if isinstance(ref, int):
            return ref
        query = select(INSTANCE.c.id, INSTANCE.c.process_id, INSTANCE.c.status).where(
            INSTANCE.c.prospect_id == ref.prospect_id).order_by(INSTANCE.c.id.desc())
        if ref.process_id:
            query = query.where(INSTANCE.c.process_id == ref.process_id)
        with self.store.read() as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise InstanceNotFound(str(ref))
        active = [r for r in rows if r.status == "active"]
        processes = sorted({r.process_id for r in active})
        if len(processes) > 1:
            raise AmbiguousInstance(ref.prospect_id, processes)
        return int((active or rows)[0].id)

    def get(self, ref: InstanceRef) -> Instance:
        instance_id = self.resolve(ref)
        with self.store.read() as conn:
            row = conn.execute(select(*_HEADER_COLUMNS).where(
                INSTANCE.c.id == instance_id)).mappings().first()
        if row is None:
            raise InstanceNotFound(str(ref))
        return self._instance(dict(row))

    def show(self, ref: InstanceRef) -> InstanceDetail:
        instance = self.get(ref)
        return InstanceDetail(instance, tuple(self.history(instance.id)))

    def history(self, instance_id: int) -> list[StepEvent]:
        with self.store.read() as conn:
            rows = conn.execute(select(STEP_EVENT).where(
                STEP_EVENT.c.instance_id == instance_id).order_by(STEP_EVENT.c.id)).mappings()
            return [
                StepEvent(r["id"], r["instance_id"], r["step_id"], r["step_name"], r["kind"],
                          as_utc(r["at"]), r["actor"],
                          json.loads(r["data"]) if r["data"] else None)
                for r in rows
            ]

    def list_instances(
        self, *, process_id: str | None = None, distributor_id: str | None = None,
        prospect_id: str | None = None, step: str | None = None, status: str | None = None,
        limit: int = 100, offset: int = 0,
    ) -> list[Instance]:
        """Instances matching every filter given, newest first."""
        query = select(*_HEADER_COLUMNS).order_by(INSTANCE.c.id.desc()).limit(limit).offset(offset)
        for column, value in (("process_id", process_id), ("distributor_id", distributor_id),
                              ("prospect_id", prospect_id), ("status", status)):
            if value is not None:
                query = query.where(INSTANCE.c[column] == value)
        if step is not None:
            query = query.where(INSTANCE.c.waiting.contains(json.dumps({"step_id": step})[1:-1]))
        with self.store.read() as conn:
            return [self._instance(dict(r)) for r in conn.execute(query).mappings()]

    def _waits(self, header: Mapping[str, Any]) -> list[Waiting]:
        return [Waiting.from_dict(w) for w in json.loads(header["waiting"])]

    def _instance(self, header: Mapping[str, Any]) -> Instance:
        definition = self._definitions.get(header["definition_id"])
        version = definition.version if definition else self._definition(
            header["definition_id"]).version
        return Instance(
            id=header["id"],
            process_id=header["process_id"],
            definition_id=header["definition_id"],
            definition_version=version,
            prospect_id=header["prospect_id"],
            distributor_id=header["distributor_id"],
            status=header["status"],
            context=json.loads(header["context"]),
            waiting=tuple(self._waits(header)),
            next_due_at=as_utc(header["next_due_at"]) if header["next_due_at"] else None,
            version=header["version"],
            created_at=as_utc(header["created_at"]),
            updated_at=as_utc(header["updated_at"]),
        )


def _deployed(row: Mapping[str, Any], created: bool = False) -> DeployedDefinition:
    return DeployedDefinition(
        id=row["id"], process_id=row["process_id"], version=row["version"], name=row["name"],
        content_hash=row["content_hash"], source_file=row["source_file"],
        deployed_at=as_utc(row["deployed_at"]), created=created,
    )
