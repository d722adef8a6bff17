"""The engine: deploy maps, start one instance per prospect, move tokens step by step.

Every step — a person's, a timer's or a prospect event's — is written by the engine's
`StepPipeline` (engine.runtime.pipeline): one transaction guarded by an optimistic version.

When a person's step with a content hook is entered, the recommender ranks content for it;
what the card will lead with is recorded with its propensity, so any other policy can later
be evaluated on the log.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import inputs
from engine.catalogs import CatalogSupport
from engine.clock import Clock, SystemClock, as_utc
from engine.errors import (
    DefinitionNotFound,
    ExecutionError,
    InstanceIncident,
    InstanceInIncident,
    InvalidInput,
    NextmoveError,
    StepNotWaiting,
    did_you_mean,
    meant,
)
from engine.limits import DEFAULT_LIMITS, Limits
from engine.recommend import Recommender
from engine.runtime import queries, retirement, versions
from engine.runtime.cards import (
    ActionCard,
    page_rows,
    parse_cursor,
    rows_cards,
    sorted_cards,
    step_owner,
)
from engine.runtime.model import (
    Along,
    BroadcastResult,
    DeployedDefinition,
    Deployment,
    HeldEvent,
    Instance,
    InstanceDetail,
    InstanceRef,
    NewProspect,
    ProspectRef,
    SignalResult,
    Started,
    StepEvent,
    TickReport,
)
from engine.runtime.retirement import Retirement
from engine.runtime.versions import DefinitionCache
from engine.store.database import Store
from engine.store.plain import card_rows

if TYPE_CHECKING:
    from SpiffWorkflow.bpmn import BpmnWorkflow

    from engine.runtime.pipeline import Acted, StepPipeline
    from engine.runtime.versions import LoadedDefinition

# SpiffWorkflow and the modules running instances on it (the pipeline, timers, events) are
# imported when an engine first runs a step, not with this module: commands that only read
# stored rows (`cards`, `list`) do not load the BPMN runtime.

for _name in ("spiff", "spiff.task", "spiff.workflow", "spiff.metrics"):
    logging.getLogger(_name).setLevel(logging.WARNING)  # they cost time on every task change

OUTCOMES = ("customer_order", "distributor_enrolled", "sale", "lost")


class Engine:
    """nextmove's runtime over one database (SQLite file or PostgreSQL).

    `recommender` ranks content for hooked steps (default: none); `rng` is the only source of
    randomness for its exploration, so a seeded engine replays the same recommendations.
    `catalogs` reads, checks and stores the content catalogs `deploy` finds (default: none, and
    catalog files are skipped). `limits` bound the work one command may do to one instance
    (`engine.limits`; past one, the instance goes into incident). The store must be prepared
    (`Store.prepare`): `nextmove.open_engine` does all of this.
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
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.allow_scripts = allow_scripts
        self.lease = lease
        self.recommender = recommender
        self.catalog_support = catalogs
        self.rng = rng or random.Random()
        self._definitions = DefinitionCache(self.store)
        self.hot_instances = hot_instances
        self.limits = limits
        self._pipeline: StepPipeline | None = None
        self._building = threading.Lock()  # one pipeline, even if two threads step first

    @property
    def pipeline(self) -> StepPipeline:
        """What writes every step (`engine.runtime.pipeline`), with the script engine the maps
        run with: built on first use, loading the BPMN runtime then."""
        pipeline = self._pipeline
        if pipeline is None:
            with self._building:
                if self._pipeline is None:
                    from engine.runtime._scripting import ClockedScriptEngine
                    from engine.runtime.pipeline import StepPipeline

                    self._pipeline = StepPipeline(
                        self.store, self._definitions,
                        ClockedScriptEngine(self.clock, self.allow_scripts), self.clock,
                        recommender=self.recommender, rng=self.rng,
                        hot_instances=self.hot_instances, limits=self.limits)
                pipeline = self._pipeline
        return pipeline

    # -- definitions ---------------------------------------------------------------------------

    def deploy(self, paths: Iterable[str | Path], *, origin: str | None = None) -> Deployment:
        """Validate and deploy every process and catalog under `paths`.

        Nothing is deployed if a map or catalog is invalid or quarrels with what the database
        holds (`versions.check_against_database`). The result lists the process versions;
        `.catalogs` the catalog versions (each new hook gets a default policy). With `origin`
        (e.g. `"upload:"`), each file is recorded as `origin` + its name, not its path: for
        files written to a scratch folder that will be gone.
        """
        return versions.deploy(self.store, paths, self.clock, allow_scripts=self.allow_scripts,
                               catalogs=self.catalog_support, origin=origin)

    def definitions(self, process_id: str | None = None) -> list[DeployedDefinition]:
        return versions.list_definitions(self.store, process_id)

    def retire(self, process_id: str, *, reason: str, actor: str | None = None) -> Retirement:
        """No new instance of `process_id` starts and no later catalog must fill its hooks;
        running instances go on. Deploying it again reinstates it (`runtime.retirement`)."""
        inputs.optional_identifier(actor, "actor")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("reason", "say why the process is retired")
        inputs.text(reason, "reason")
        return retirement.retire(self.store, process_id, reason.strip(), actor, self.clock.now())

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
        """Start `process_id` for a prospect, or return their active instance of it.

        Raises `InstanceIncident` if the new instance's first steps failed (it is stored in
        `incident`, before those steps)."""
        inputs.identifier(process_id, "process")
        inputs.optional_identifier(actor, "actor")
        prospect = NewProspect(prospect_id, distributor_id, inputs.context(context))
        check_prospect(prospect)
        (started,) = self.pipeline.start(process_id, [prospect], new=new, actor=actor,
                                         park=True)
        if started.created and started.instance.status == "incident":
            from engine.runtime import incidents

            with self.store.read() as conn:
                found = incidents.last_incident(conn, started.instance.id)
            raise InstanceIncident(started.instance.id, None, ExecutionError(
                started.instance.id, None, found["error"]), limit=found.get("limit"))
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
        in the order of `prospects`. Nothing of the batch is stored if any of it fails (a
        bulk import names the row); `start` stores a single failing start in `incident`.
        Ids and contexts must meet `engine.inputs`' rules (else `InvalidInput`).
        """
        inputs.identifier(process_id, "process")
        inputs.optional_identifier(actor, "actor")
        for prospect in prospects:
            check_prospect(prospect)
        return self.pipeline.start(process_id, prospects, new=new, actor=actor)

    # -- a person's steps ------------------------------------------------------------------------

    def complete(
        self, ref: InstanceRef, step: str, data: Mapping[str, Any] | None = None,
        *, actor: str | None = None, used: str | None = None, along: Along | None = None,
    ) -> Instance:
        """The person did `step`. `data` (what the prospect said) joins the instance data;
        `used` names the content they used (the suggestion or another option). `along`: a
        row of the caller's, made from the result, committed with the step (`Along`)."""
        return self._person(ref, step, "completed", dict(data or {}), actor, used, along)

    def skip(
        self, ref: InstanceRef, step: str, reason: str | None = None, *,
        actor: str | None = None, along: Along | None = None,
    ) -> Instance:
        """The person chose not to do `step`; allowed unless the step is required."""
        return self._person(ref, step, "skipped", {"reason": reason} if reason else {}, actor,
                            along=along)

    def vary(
        self, ref: InstanceRef, step: str, note: str, *, actor: str | None = None,
        data: Mapping[str, Any] | None = None, used: str | None = None,
        along: Along | None = None,
    ) -> Instance:
        """The person did something else than the card suggested; the journey moves on."""
        return self._person(ref, step, "varied", {**(data or {}), "note": note}, actor, used,
                            along)

    def _person(
        self, ref: InstanceRef, step: str, kind: str, data: dict[str, Any], actor: str | None,
        used: str | None = None, along: Along | None = None,
    ) -> Instance:
        inputs.identifier(step, "step")
        inputs.document(data, "data")
        inputs.optional_identifier(actor, "actor")
        inputs.optional_identifier(used, "used")
        inputs.text(data.get("note"), "note")
        inputs.text(data.get("reason"), "reason")
        from engine.runtime import events, incidents
        from engine.runtime.pipeline import NotWaiting

        instance_id = self.resolve(ref)
        person = incidents.person_act(instance_id, step, kind, data, actor, used)
        replay = incidents.person_replay(step, kind, data, used, actor)

        def act(workflow: BpmnWorkflow, definition: LoadedDefinition) -> Acted:
            # Timers due by now happened first (a person cannot outrun a deadline that passed).
            events.fire_timers(workflow, self.clock.now())
            return person(workflow, definition)
        try:
            return self.pipeline.advance(instance_id, step, act, replay=replay, along=along,
                                         in_order=True)
        except NotWaiting:
            instance = queries.get(self.store, instance_id)
            if instance.status == "incident":
                raise InstanceInIncident(
                    f"instance {instance_id} is in incident (a step failed: see `nextmove show "
                    f"{instance_id}`); nothing was applied. An operator retries it once the "
                    f"map is fixed: nextmove retry {instance_id}") from None
            raise StepNotWaiting(instance_id, step, instance.waiting_steps) from None

    def outcome(
        self, ref: InstanceRef, kind: str, *, amount: float | None = None,
        actor: str | None = None, data: Mapping[str, Any] | None = None,
        along: Along | None = None,
    ) -> StepEvent:
        """Record a business result for a prospect (an order, an enrollment, a sale, lost);
        `along` as for `complete`."""
        if kind not in OUTCOMES:
            hint = did_you_mean(kind, OUTCOMES)
            raise NextmoveError(f"unknown outcome {kind!r}; one of {', '.join(OUTCOMES)}"
                                + meant(hint))
        inputs.amount(amount)
        inputs.document(data, "data")
        inputs.optional_identifier(actor, "actor")
        instance_id = self.resolve(ref)
        payload = {**(data or {}), **({"amount": amount} if amount is not None else {})}
        return self.pipeline.outcome(instance_id, kind, payload, actor, along)

    # -- timers and prospect events ----------------------------------------------------------

    def fire_due(
        self, limit: int = 100, worker: str | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> TickReport:
        """Claim up to `limit` instances with a due timer (as leases), fire them; held
        prospect events past their expiry are marked expired on the way. The report lists
        what fired, and counts the steps run and the incidents raised."""
        from engine.runtime import events, held

        inputs.count(limit, "limit")
        held.expire(self.store, self.clock.now())
        return events.fire_due(self, limit, worker, should_stop)

    def tick(self, batch: int = 100, worker: str | None = None) -> TickReport:
        """Fire everything due now, batch after batch, until nothing unclaimed is due; held
        prospect events past their expiry are marked expired; a late cycle timer fires once
        (see `engine.limits`)."""
        from engine.runtime import events, held

        inputs.count(batch, "batch")
        inputs.instant(self.clock.now(), "now")
        held.expire(self.store, self.clock.now())
        return events.tick(self, batch, worker)

    def signal(
        self, message: str, prospect_id: str, *, message_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> SignalResult:
        """Deliver a prospect event (e.g. `video_played`), or hold it for the prospect until a
        step waits for it; a `message_id` seen for this prospect and message is a no-op."""
        inputs.identifier(message, "message")
        inputs.identifier(prospect_id, "prospect")
        inputs.optional_identifier(message_id, "message id")
        inputs.document(data, "data")
        from engine.runtime import events

        return events.signal(self, message, prospect_id, message_id=message_id, data=data)

    def broadcast(
        self, signal: str, *, signal_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> BroadcastResult:
        """Deliver BPMN signal `signal` to every instance waiting for it (any prospect), one
        step each; a repeated `signal_id` moves an instance at most once."""
        from engine.runtime import signals

        return signals.broadcast(self, signal, signal_id=signal_id, data=data)

    # -- incidents ---------------------------------------------------------------------------

    def retry(self, ref: InstanceRef, *, actor: str | None = None) -> Instance:
        """Run the step an instance in `incident` failed at again (after the map was fixed
        and the instance migrated, or a limit raised). Raises `InstanceIncident` if it
        fails again."""
        from engine.runtime import incidents
        from engine.runtime.pipeline import NotWaiting

        instance_id = self.resolve(ref)
        instance = queries.get(self.store, instance_id)
        if instance.status != "incident":
            raise NextmoveError(f"instance {instance_id} is {instance.status}, not in "
                                "incident: nothing to retry")
        with self.store.read() as conn:
            found = incidents.last_incident(conn, instance_id)
            replay = found.get("replay") or incidents.ENGINE_REPLAY
            recorded = incidents.recorded_receipt(conn, instance_id, instance.prospect_id,
                                                  replay)
        act = incidents.act_for(instance_id, replay, actor)
        try:
            # The event's receipt is marked delivered by the step that delivers it.
            return self.pipeline.advance(instance_id, found.get("step"), act, replay=replay,
                                         status="incident", delivers=recorded,
                                         receipt=self._retried_receipt(instance, replay,
                                                                       recorded))
        except NotWaiting:
            raise NextmoveError(
                f"instance {instance_id}: the step it failed at ({found.get('step')!r}) no "
                "longer waits; nothing was retried") from None

    def _retried_receipt(self, instance: Instance, replay: Mapping[str, Any],
                         recorded: int | None) -> dict[str, Any] | None:
        """The receipt a retried prospect event stores when its incident recorded none (one
        from before incidents kept receipts): its id is then seen from the retry on."""
        from engine.runtime import incidents

        key = incidents.received(replay)
        if key is None or recorded is not None:
            return None
        data = replay.get("data")
        return {"message_id": key[1], "message": key[0],
                "prospect_id": instance.prospect_id, "instance_id": instance.id,
                "data": json.dumps(data) if data else None,
                "received_at": as_utc(self.clock.now()).replace(tzinfo=None)}

    def migrate_instance(
        self, ref: InstanceRef, to_version: int, *, actor: str | None = None,
    ) -> Instance:
        """Move an instance (active or in incident) to version `to_version` of its process;
        refused (`MigrationRefused`) when a step it waits at or has passed is not in it."""
        instance = self.get(ref)
        target = next((d for d in self.definitions(instance.process_id)
                       if d.version == to_version), None)
        if target is None:
            known = [str(d.version) for d in self.definitions(instance.process_id)]
            raise DefinitionNotFound(f"{instance.process_id} version {to_version}",
                                     [f"{instance.process_id} version {v}" for v in known])
        return self.pipeline.migrate(instance.id, self._definitions.get(target.id), actor)

    def forget(self) -> None:
        """Drop cached instances and specs, as a freshly started process would have none."""
        if self._pipeline is not None:
            self._pipeline.forget()
        self._definitions.clear()

    # -- queries -------------------------------------------------------------------------------

    def resolve(self, ref: InstanceRef) -> int:
        """The instance id for an id or a prospect (their active instance, else the latest)."""
        if isinstance(ref, ProspectRef):
            inputs.identifier(ref.prospect_id, "prospect")
            inputs.optional_identifier(ref.process_id, "process")
        else:
            inputs.instance_id(ref)
        return queries.resolve(self.store, ref)

    def get(self, ref: InstanceRef) -> Instance:
        return queries.get(self.store, self.resolve(ref))

    def distributor_of(self, ref: InstanceRef) -> str:
        """The instance's distributor (it never changes): from the instance kept in memory, or
        read with its state and kept, so a step on it next needs no second read."""
        return str(self.pipeline.header(self.resolve(ref))["distributor_id"])

    def show(self, ref: InstanceRef) -> InstanceDetail:
        """The instance, its history and its prospect's events that moved nothing yet."""
        instance = self.get(ref)
        return InstanceDetail(instance, tuple(self.history(instance.id)),
                              tuple(self.held_events(instance.prospect_id)))

    def held_events(self, prospect_id: str) -> list[HeldEvent]:
        """The prospect's events nothing waited for: held, expired (or, from before events
        were held, unmatched), oldest first."""
        from engine.runtime import held

        return held.listed(self.store, prospect_id)

    def history(self, ref: InstanceRef) -> list[StepEvent]:
        return queries.history(self.store, self.resolve(ref))

    def cards(self, distributor_id: str, *, limit: int = 500) -> list[ActionCard]:
        """Everything waiting on this distributor (or on them as a sponsor), most urgent first."""
        inputs.identifier(distributor_id, "distributor")
        inputs.count(limit, "limit")
        catalog = getattr(self.recommender, "catalog", None)
        now = self.clock.now()
        rows = self.store.plain_read(lambda reads: card_rows(reads, distributor_id, limit))
        return sorted_cards(rows_cards(rows, distributor_id, now, self._definitions.steps_of,
                                       catalog), now)

    def cards_page(
        self, distributor_id: str, *, size: int = 20, after: str | None = None,
    ) -> tuple[list[ActionCard], str | None]:
        """About `size` of the distributor's cards after the page cursor `after` (None: the
        first page), and the next page's cursor (None: no card follows). Keyset-paged in the
        order each instance's cards came due (`engine.runtime.cards`): cards done or added
        between pages neither skip nor repeat the others."""
        inputs.identifier(distributor_id, "distributor")
        inputs.count(size, "size")
        if after is not None:
            try:
                parse_cursor(after)
            except ValueError:
                raise InvalidInput("after", f"{after!r} is not a page cursor") from None
        catalog = getattr(self.recommender, "catalog", None)
        rows, next_page = self.store.plain_read(
            lambda reads: page_rows(reads, distributor_id, size, after))
        return rows_cards(rows, distributor_id, self.clock.now(), self._definitions.steps_of,
                          catalog), next_page

    def step_owner(self, ref: InstanceRef, step: str) -> str | None:
        """Who may act on `step` of the instance: its card's owner (`cards.step_owner`)."""
        header = self.pipeline.header(self.resolve(ref))
        return step_owner(header, step, self._definitions.steps_of(header["definition_id"]),
                          lambda: queries.get(self.store, header["id"]).waiting)

    def list_instances(self, **filters: Any) -> list[Instance]:
        """Instances filtered by process_id, distributor_id, prospect_id, step, status."""
        if "limit" in filters:
            inputs.count(filters["limit"], "limit")
        return queries.list_instances(self.store, **filters)


def check_prospect(prospect: NewProspect) -> NewProspect:
    """`prospect` if its ids and context meet `engine.inputs`' rules (else `InvalidInput`)."""
    inputs.identifier(prospect.prospect_id, "prospect")
    inputs.identifier(prospect.distributor_id, "distributor")
    inputs.context(prospect.context)
    return prospect
