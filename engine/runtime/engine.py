"""The engine: deploy maps, start one instance per prospect, move tokens step by step.

Every step — a person's, a timer's or a prospect event's — goes through `_advance`: one
database transaction holding the new state, the step events and the waiting index, guarded by
an optimistic version. Of two workers moving the same instance, exactly one commits; the
other gets `VersionConflict`. Parsed specs are cached per definition version and recently
used instances stay deserialized (the version check catches a stale copy), so a step costs
about one Spiff state round trip.

When a person's step with a content hook is entered, the recommender ranks content for it;
what the card will lead with is recorded with its propensity, so any other policy can later
be evaluated on the log.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.catalogs import CatalogSupport
from engine.clock import Clock, SystemClock, as_utc
from engine.definitions import load
from engine.errors import (
    DefinitionErrors,
    ExecutionError,
    ExpressionError,
    InstanceNotFound,
    NextmoveError,
    StepNotWaiting,
    StepRequired,
    VersionConflict,
    did_you_mean,
)
from engine.expressions import SafeScriptEngine
from engine.recommend import Recommender
from engine.runtime import events, queries, tokens, versions
from engine.runtime._acts import Acted, DuplicateReceipt, NotWaiting
from engine.runtime._write import Conflict, StepWriter
from engine.runtime.cards import ActionCard, cards_for
from engine.runtime.model import (
    DeployedDefinition,
    Fired,
    Instance,
    InstanceDetail,
    InstanceRef,
    NewProspect,
    SignalResult,
    Started,
    StepEvent,
    Waiting,
)
from engine.runtime.queries import DEFINITION, INSTANCE, STEP_EVENT
from engine.runtime.state import dump_state, load_state
from engine.runtime.versions import LoadedDefinition
from engine.store import trail
from engine.store.database import Store
from engine.store.visits import Visits

# Statements built once: SQLAlchemy then reuses their cache key and compiled form.
_EVENTS_INSERT = insert(STEP_EVENT)
_START_INSERT = insert(INSTANCE).returning(INSTANCE.c.id, sort_by_parameter_order=True)
_SET_CHAIN_HEAD = update(INSTANCE).where(INSTANCE.c.id == bindparam("b_id")).values(
    chain_head=bindparam("b_head"))
_LOAD_QUERY = select(
    *queries.HEADER_COLUMNS, INSTANCE.c.state, DEFINITION.c.version.label("definition_version")
).join(DEFINITION, DEFINITION.c.id == INSTANCE.c.definition_id).where(
    INSTANCE.c.id == bindparam("instance_id"))

for _name in ("spiff", "spiff.task", "spiff.workflow", "spiff.metrics"):
    logging.getLogger(_name).setLevel(logging.WARNING)  # they cost time on every task change

OUTCOMES = ("customer_order", "distributor_enrolled", "sale", "lost")


class ClockedScriptEngine(SafeScriptEngine):
    """Safe expressions plus the engine's clock, which nextmove's timers read."""

    def __init__(self, clock: Clock, allow_scripts: bool = False) -> None:
        super().__init__(allow_scripts=allow_scripts)
        self.clock = clock


class Deployment(list[DeployedDefinition]):
    """The process versions a deploy produced, plus the catalog versions it stored (what the
    engine's `CatalogSupport.deploy` returned: `content_catalog.StoredCatalog`)."""

    def __init__(self, definitions: Iterable[DeployedDefinition] = ()) -> None:
        super().__init__(definitions)
        self.catalogs: list[Any] = []


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
    """A started workflow about to be inserted (see `Engine._start_batch`)."""

    values: dict[str, Any]
    workflow: BpmnWorkflow
    moves: list[tokens.TokenMove]
    waits: list[Waiting]
    context: dict[str, Any]


def _mark_stuck(
    waits: list[Waiting], moves: list[tokens.TokenMove], definition: LoadedDefinition,
    previous: Mapping[str, Waiting], now: datetime,
) -> list[Waiting]:
    """A person's step whose watching timer fired stays flagged as stuck until it moves."""
    fired_on = {definition.steps.get(m.step_id, {}).get("attached_to")
                for m in moves if m.kind == "timer"}
    out = []
    for wait in waits:
        earlier = previous.get(tokens.wait_key(wait))
        if wait.kind == "user" and wait.step_id in fired_on:
            wait = replace(wait, stuck_since=now)
        elif earlier is not None and earlier.stuck_since is not None:
            wait = replace(wait, stuck_since=earlier.stuck_since)
        out.append(wait)
    return out


def _db_time(moment: datetime) -> datetime:
    return as_utc(moment).replace(tzinfo=None)


class Engine:
    """nextmove's runtime over one database (SQLite file or PostgreSQL).

    `recommender` ranks content for hooked steps (default: none); `rng` is the only source of
    randomness for its exploration, so a seeded engine replays the same recommendations.
    `catalogs` reads, checks and stores the content catalogs `deploy` finds (default: none, and
    catalog files are skipped). The store must be prepared (`Store.prepare`):
    `nextmove.open_engine` does all of this.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        allow_scripts: bool = False,
        hot_instances: int = 2048,
        lease: timedelta = timedelta(minutes=2),
        recommender: Recommender | None = None,
        rng: random.Random | None = None,
        catalogs: CatalogSupport | None = None,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.allow_scripts = allow_scripts
        self.lease = lease
        self.recommender = recommender
        self.catalog_support = catalogs
        self.rng = rng or random.Random()
        self.script_engine = ClockedScriptEngine(self.clock, allow_scripts)
        self._definitions: dict[int, LoadedDefinition] = {}
        self._step_info: dict[int, dict[str, dict[str, Any]]] = {}
        self._hot: OrderedDict[int, _Hot] = OrderedDict()
        self._hot_limit = hot_instances
        self._writer = StepWriter(self.store)

    # -- definitions ---------------------------------------------------------------------------

    def deploy(self, paths: Iterable[str | Path]) -> Deployment:
        """Validate and deploy every process and catalog under `paths`.

        Nothing is deployed if any map or catalog is invalid. The result lists the process
        versions; `.catalogs` lists the catalog versions (each new hook gets a default policy).
        """
        report = load(paths, allow_scripts=self.allow_scripts, catalogs=self.catalog_support)
        if report.errors:
            raise DefinitionErrors(report.problems)
        deployment = Deployment(
            versions.deploy_definition(self.store, d, self.clock.now())
            for d in report.definitions)
        if self.catalog_support is not None:
            deployment.catalogs.extend(self.catalog_support.deploy(self.store, c, self.clock)
                                       for c in report.catalogs)
        return deployment

    def definitions(self, process_id: str | None = None) -> list[DeployedDefinition]:
        return versions.list_definitions(self.store, process_id)

    def _definition(self, definition_id: int) -> LoadedDefinition:
        loaded = self._definitions.get(definition_id)
        if loaded is None:
            loaded = self._definitions[definition_id] = versions.load_definition(
                self.store, definition_id)
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
        (started,) = self.start_many(
            process_id, [NewProspect(prospect_id, distributor_id, dict(context or {}))],
            new=new, actor=actor)
        return started.instance

    def start_many(
        self,
        process_id: str,
        prospects: Sequence[NewProspect],
        *,
        new: bool = False,
        actor: str | None = None,
    ) -> list[Started]:
        """Start `process_id` for each prospect in one transaction, as `start` does for one.

        A prospect with an active instance of the process (already stored, or earlier in
        `prospects`) gets that instance back with `created=False`, unless `new`. Results come
        in the order of `prospects`. Nothing of the batch is stored if any of it fails.
        """
        for _attempt in range(5):
            try:
                return self._start_batch(process_id, prospects, new, actor)
            except IntegrityError:
                if new:
                    raise
                # Another process started one of these prospects meanwhile: look again.
        raise NextmoveError(f"could not start {len(prospects)} instance(s) of {process_id!r}: "
                            "other processes kept starting the same prospects")

    def _start_batch(
        self, process_id: str, prospects: Sequence[NewProspect], new: bool, actor: str | None,
    ) -> list[Started]:
        keys = [None if new else f"{process_id}\x1f{p.prospect_id}" for p in prospects]
        wanted = sorted({k for k in keys if k is not None})

        def look(conn: Connection) -> tuple[dict[str, Any], int]:
            found: dict[str, Any] = {}
            for i in range(0, len(wanted), 500):
                query = queries.header_query().where(INSTANCE.c.active_key.in_(wanted[i:i + 500]))
                found.update((row["active_key"], row) for row in conn.execute(query).mappings())
            return found, versions.latest_definition_id(conn, process_id)

        existing, definition_id = self.store.transaction(look, write=False)
        definition = self._definition(definition_id)
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
                made = self._new_instance(definition, process_id, prospect, key, now)
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
        active_key: str | None, now: datetime,
    ) -> _NewInstance:
        context = dict(prospect.context)
        workflow = BpmnWorkflow(definition.spec, definition.subprocess_specs,
                                script_engine=self.script_engine)
        workflow.task_tree.data.update(context)
        self._run(None, None, workflow.do_engine_steps)
        moves = tokens.moves({}, workflow, None, "completed")
        waits = self._recommend(tokens.waits(workflow, definition.steps, {}, now), context)
        visits = Visits()  # what `_event_rows` will record for these moves
        for move in moves:
            visits.record(move.step_id, move.kind, _db_time(now))
        values = {
            "definition_id": definition.id,
            "process_id": process_id,
            "prospect_id": prospect.prospect_id,
            "distributor_id": prospect.distributor_id,
            "sponsor_id": context.get("sponsor_id"),
            "active_key": None if workflow.completed else active_key,
            "status": "completed" if workflow.completed else "active",
            "context": json.dumps(context),
            "created_at": _db_time(now),
            "version": 1,
            **self._progress(waits, now),
            "state": dump_state(workflow),
            "visits": visits.dump(),
        }
        return _NewInstance(values, workflow, moves, waits, context)

    def _insert_started(
        self, conn: Connection, definition: LoadedDefinition,
        fresh: list[tuple[int, _NewInstance]], now: datetime, actor: str | None,
    ) -> list[tuple[int, str | None]]:
        """Insert the instance rows, their events and chain heads; (id, head) per instance."""
        ids = conn.execute(_START_INSERT, [made.values for _, made in fresh]).scalars().all()
        out: list[tuple[int, str | None]] = []
        events: list[dict[str, Any]] = []
        for instance_id, (_, made) in zip(ids, fresh, strict=True):
            rows, head = self._event_rows(int(instance_id), definition, made.moves, made.waits,
                                          now, Acted(actor=actor), None, Visits())
            events.extend(rows)
            out.append((int(instance_id), head))
        if events:
            conn.execute(_EVENTS_INSERT, events)
        conn.execute(_SET_CHAIN_HEAD, [{"b_id": i, "b_head": h} for i, h in out if h])
        return out

    # -- a person's steps ------------------------------------------------------------------------

    def complete(
        self, ref: InstanceRef, step: str, data: Mapping[str, Any] | None = None,
        *, actor: str | None = None, used: str | None = None,
    ) -> Instance:
        """The person did `step`. `data` (what the prospect said) joins the instance data;
        `used` names the content they used (the suggestion or another option)."""
        return self._person(ref, step, "completed", dict(data or {}), actor, used)

    def skip(
        self, ref: InstanceRef, step: str, reason: str | None = None, *, actor: str | None = None
    ) -> Instance:
        """The person chose not to do `step`; allowed unless the step is required."""
        return self._person(ref, step, "skipped", {"reason": reason} if reason else {}, actor)

    def vary(
        self, ref: InstanceRef, step: str, note: str, *, actor: str | None = None,
        data: Mapping[str, Any] | None = None, used: str | None = None,
    ) -> Instance:
        """The person did something else than the card suggested; the journey moves on."""
        return self._person(ref, step, "varied", {**(data or {}), "note": note}, actor, used)

    def _person(
        self, ref: InstanceRef, step: str, kind: str, data: dict[str, Any], actor: str | None,
        used: str | None = None,
    ) -> Instance:
        instance_id = self.resolve(ref)

        def act(workflow: BpmnWorkflow, definition: LoadedDefinition) -> Acted:
            task = tokens.find_ready(workflow, step)
            if task is None:
                raise NotWaiting
            props = definition.steps.get(step, {}).get("properties", {})
            if kind == "skipped" and props.get("control") == "required":
                raise StepRequired(instance_id, step, props.get("basis"))
            if kind != "skipped":
                task.data.update({k: v for k, v in data.items() if k != "note"})
            task.run()
            workflow.do_engine_steps()
            return Acted(str(task.id), kind, actor, data, content_used=used)

        try:
            hot = self._advance(instance_id, step, act)
        except NotWaiting:
            waiting = [w.step_id for w in queries.get(self.store, instance_id).waiting]
            raise StepNotWaiting(instance_id, step, waiting) from None
        return hot.instance()

    def outcome(
        self, ref: InstanceRef, kind: str, *, amount: float | None = None,
        actor: str | None = None, data: Mapping[str, Any] | None = None,
    ) -> StepEvent:
        """Record a business result for a prospect (an order, an enrollment, a sale, lost)."""
        if kind not in OUTCOMES:
            hint = did_you_mean(kind, OUTCOMES)
            raise NextmoveError(f"unknown outcome {kind!r}; one of {', '.join(OUTCOMES)}"
                                + (f" (did you mean '{hint}'?)" if hint else ""))
        instance_id = self.resolve(ref)
        payload = {**(data or {}), **({"amount": amount} if amount is not None else {})}
        at = self.clock.now()
        row = {"instance_id": instance_id, "step_id": kind, "step_name": kind, "kind": "outcome",
               "actor": actor, "data": json.dumps(payload) if payload else None,
               "at": _db_time(at)}
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

    # -- timers and prospect events ----------------------------------------------------------

    def fire_due(
        self, limit: int = 100, worker: str | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Fired]:
        """Claim up to `limit` instances with a due timer (as leases), fire them."""
        return events.fire_due(self, limit, worker, should_stop)

    def tick(self, batch: int = 100, worker: str | None = None) -> list[Fired]:
        """Fire everything due now, batch after batch, until nothing unclaimed is due."""
        return events.tick(self, batch, worker)

    def signal(
        self, message: str, prospect_id: str, *, message_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> SignalResult:
        """Deliver a prospect event (e.g. `video_played`); a repeated `message_id` is a no-op."""
        return events.signal(self, message, prospect_id, message_id=message_id, data=data)

    # -- the step transaction ----------------------------------------------------------------

    def _advance(
        self,
        instance_id: int,
        label: str | None,
        act: Callable[[BpmnWorkflow, LoadedDefinition], Acted],
        *,
        moved: list[Fired] | None = None,
        receipt: dict[str, Any] | None = None,
    ) -> _Hot:
        """Apply `act` to the instance and commit state, events and waits as one step."""
        for attempt in range(2):
            hot = self._hot.pop(instance_id, None) if attempt == 0 else None
            cached = hot is not None
            if hot is None:
                hot = self._load(instance_id)
            header, workflow, stored_waits = hot.header, hot.workflow, hot.waits
            if header["status"] != "active":
                raise NotWaiting
            definition = self._definition(header["definition_id"])
            now = self.clock.now()
            before = tokens.snapshot(workflow)
            try:
                acted = self._run(instance_id, label, partial(act, workflow, definition))
            except NotWaiting:
                if cached:
                    continue  # the cached copy may be stale: look at the database
                raise
            moves = tokens.moves(before, workflow,
                                 uuid.UUID(acted.task_id) if acted.task_id else None, acted.kind)
            previous = {tokens.wait_key(w): w for w in stored_waits}
            waits = self._recommend(
                tokens.waits(workflow, definition.steps, previous, now), hot.context, previous)
            waits = _mark_stuck(waits, moves, definition, previous, now)
            try:
                header = self._commit(header, workflow, definition, moves, waits, stored_waits,
                                      now, acted, receipt)
            except VersionConflict:
                if cached:
                    continue  # another process moved it since we cached it: redo on fresh state
                raise
            hot = _Hot(header, workflow, waits, hot.context)
            self._remember(instance_id, hot)
            if moved is not None:
                moved.extend(
                    Fired(instance_id, header["prospect_id"], header["process_id"], m.step_id,
                          m.kind, as_utc(now))
                    for m in moves if m.kind in ("timer", "message"))
            return hot
        raise VersionConflict(instance_id, -1)  # unreachable: the loop returns or raises

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

    def _run(self, instance_id: int | None, step: str | None, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except ExpressionError as exc:
            raise ExecutionError(instance_id, step, str(exc)) from exc
        except (NextmoveError, NotWaiting):
            raise
        except Exception as exc:  # a failing map must not leave a half-applied step behind
            raise ExecutionError(instance_id, step, f"{type(exc).__name__}: {exc}") from exc

    def _commit(
        self, header: dict[str, Any], workflow: BpmnWorkflow, definition: LoadedDefinition,
        moves: list[tokens.TokenMove], waits: list[Waiting], previous: list[Waiting],
        now: datetime, acted: Acted, receipt: dict[str, Any] | None,
    ) -> dict[str, Any]:
        done = workflow.completed
        # Every append to the trail bumps the version, so the head we chain to is the stored
        # one whenever the write's version check passes.
        visits = Visits.load(header["visits"])
        rows, head = self._event_rows(header["id"], definition, moves, [*waits, *previous],
                                      now, acted, header.get("chain_head"), visits)
        values = {
            **self._progress(waits, now),
            "visits": visits.dump(),
            "status": "completed" if done else header["status"],
            "active_key": None if done else header["active_key"],
            "version": header["version"] + 1,
            "state": dump_state(workflow),
            "chain_head": head,
        }
        try:
            self._writer.write(header["id"], header["version"], values, rows, receipt)
        except Conflict:
            raise VersionConflict(header["id"], header["version"]) from None
        except self._writer.integrity_errors as exc:
            raise DuplicateReceipt from exc
        values.pop("state")
        return {**header, **values}

    def _progress(self, waits: list[Waiting], now: datetime) -> dict[str, Any]:
        dues = [w.due_at for w in waits if w.due_at is not None]
        return {
            "waiting": json.dumps([w.to_dict() for w in waits]),
            "next_due_at": _db_time(min(dues)) if dues else None,
            "updated_at": _db_time(now),
        }

    def _event_rows(
        self, instance_id: int, definition: LoadedDefinition, moves: list[tokens.TokenMove],
        waits: list[Waiting], now: datetime, acted: Acted, previous_head: str | None,
        visits: Visits,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The step events, chained to the instance's trail, and the trail's new head;
        `visits` (the instance's visit state) records them.

        The person's own step carries their name, data and the content they used; an arrival
        at a hooked step carries what the card offers; a closing event, its visit."""
        if not moves:
            return [], previous_head
        offers = {w.task_id: w.recommendation for w in waits if w.recommendation}
        at = _db_time(now)
        steps = definition.steps
        rows = []
        for move in moves:
            # With no person's task (a start), the actor owns every move but the arrivals.
            mine = move.task_id == acted.task_id if acted.task_id else move.kind != "entered"
            with_data = move.kind in acted.data_kinds or (mine and acted.task_id is not None)
            offer = offers.get(move.task_id) if move.kind == "entered" or mine else None
            info = steps.get(move.step_id, {})
            visit_ms, paired = visits.record(move.step_id, move.kind, at)
            rows.append({
                "instance_id": instance_id,
                "step_id": move.step_id,
                "step_name": info.get("name", move.step_id),
                "kind": move.kind,
                "actor": acted.actor if mine else None,
                "data": json.dumps(acted.data) if with_data and acted.data else None,
                "hook": info.get("properties", {}).get("hook"),
                "content_shown": offer["shown"] if offer else None,
                "content_used": acted.content_used if mine and acted.task_id else None,
                "propensity": offer["propensity"] if offer else None,
                "policy_version": offer["policy_version"] if offer else None,
                "visit_ms": visit_ms,
                "paired": paired,
                "at": at,
            })
        head = trail.chain_rows(previous_head or trail.GENESIS, rows)
        return rows, head

    def _load(self, instance_id: int) -> _Hot:
        rows = self.store.select(_LOAD_QUERY, {"instance_id": instance_id})
        if not rows:
            raise InstanceNotFound(str(instance_id))
        header = dict(rows[0])
        state = header.pop("state")
        definition = self._definition(header["definition_id"])
        workflow = load_state(state, definition.spec, definition.subprocess_specs)
        workflow.script_engine = self.script_engine
        return _Hot(header, workflow, queries.waits_of(header), json.loads(header["context"]))

    def _remember(self, instance_id: int, hot: _Hot) -> None:
        if hot.workflow.completed or self._hot_limit <= 0:
            return
        self._hot[instance_id] = hot
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

    def cards(self, distributor_id: str, *, limit: int = 500) -> list[ActionCard]:
        """Everything waiting on this distributor (or on them as a sponsor), most urgent first."""
        catalog = getattr(self.recommender, "catalog", None)
        return cards_for(self.store, distributor_id, self.clock.now(), self._steps_of,
                         catalog, limit)

    def _steps_of(self, definition_id: int) -> Mapping[str, Mapping[str, Any]]:
        loaded = self._definitions.get(definition_id)
        if loaded is not None:
            return loaded.steps
        found = self._step_info.get(definition_id)
        if found is None:
            found = self._step_info[definition_id] = versions.step_metadata(
                self.store, definition_id)
        return found

    def list_instances(self, **filters: Any) -> list[Instance]:
        """Instances filtered by process_id, distributor_id, prospect_id, step, status."""
        return queries.list_instances(self.store, **filters)

