"""The step `migrate-instance` makes: the move to the new version and what follows from it,
in one transaction, as any other step.

Once the tokens sit on the new version's specs, its automatic steps run (within the work
limits; a failure parks the instance in `incident` on the new version, whose retry runs them
again), and a catch it newly makes wait takes the prospect's oldest held event, so a move never
leaves an instance active with nothing to wait for, nor a held event beside a waiting catch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from SpiffWorkflow.bpmn import BpmnWorkflow

from engine.clock import Clock
from engine.errors import ExecutionError, InstanceIncident
from engine.limits import Limits, budget, run_engine_steps
from engine.runtime import held, incidents, migration, tokens
from engine.runtime._acts import Acted, HeldChanged
from engine.runtime._hot import Hot
from engine.runtime._step_rows import db_time, event_rows, mark_stuck, progress
from engine.runtime.model import Waiting
from engine.runtime.state import dump_state
from engine.runtime.versions import LoadedDefinition
from engine.store import trail
from engine.store.database import Store


class Steps(Protocol):
    """What the move needs of `StepPipeline` (not imported: it calls this module)."""

    store: Store
    clock: Clock
    limits: Limits
    steps_run: int

    def recommend(self, waits: list[Waiting], context: Mapping[str, Any],
                  previous: Mapping[str, Waiting] | None = None) -> list[Waiting]: ...

    def _take_held(self, prospect_id: str, workflow: BpmnWorkflow, previous: list[Waiting],
                   now: datetime, guard: Callable[[Callable[[], Any]], Any],
                   ) -> held.Taken | None: ...


def migrate(pipeline: Steps, hot: Hot, source: LoadedDefinition, target: LoadedDefinition,
            actor: str | None) -> bool:
    """Move `hot` (an instance of `source`, active or in incident) to `target` and store it;
    False when the prospect's held events changed meanwhile (nothing written: redo it on fresh
    state). Raises `MigrationRefused`, `VersionConflict`, or `InstanceIncident` (moved, then
    an automatic step of `target` failed: it is now in incident on `target`)."""
    header, workflow = hot.header, hot.workflow
    instance_id = header["id"]
    moved_state = migration.migrate(workflow, instance_id, source, target)
    now = pipeline.clock.now()
    row = incidents.migrated_row(header, source, target, actor, now)
    head = trail.chain_rows(header.get("chain_head") or trail.GENESIS, [row])
    values: dict[str, Any] = {"definition_id": target.id, "version": header["version"] + 1,
                              "lease_owner": None, "lease_until": None}
    previous = {tokens.wait_key(w): w for w in hot.waits}
    write = partial(_write, pipeline.store, header)
    if header["status"] != "active":  # in incident: its retry runs on from here
        values.update(progress(pipeline.recommend(hot.waits, hot.context, previous), now),
                      state=moved_state, chain_head=head)
        return write(values, [row])
    before = tokens.snapshot(workflow)
    guard = partial(incidents.guarded, instance_id, None)
    acted = Acted()
    with budget(pipeline.limits) as spent:
        try:
            guard(lambda: run_engine_steps(workflow))
            live = tokens.all_tasks(workflow)
            moves = tokens.moves(before, workflow, None, acted.kind, live)
            taken = pipeline._take_held(header["prospect_id"], workflow, hot.waits, now, guard)
        except ExecutionError as exc:
            failed = incidents.incident_row(
                instance_id, target, None, exc, incidents.failed_element(exc, spent.current),
                incidents.ENGINE_REPLAY, now)
            # Moved, not run: as a failing step leaves it, with its waits as they were.
            values.update(state=moved_state, status="incident", updated_at=db_time(now),
                          chain_head=trail.chain_rows(head, [failed]))
            write(values, [row, failed])
            raise InstanceIncident(instance_id, None, exc) from exc
    if taken is not None:  # the held events it caught moved the workflow on
        moves += taken.moves
        acted.move_data.update(taken.move_data)
        live = tokens.all_tasks(workflow)
    tokens.drop_uncaught(workflow)
    waits = pipeline.recommend(tokens.waits(workflow, target.steps, previous, now, live),
                               hot.context, previous)
    waits = mark_stuck(waits, moves, target, previous, now)
    visits = hot.visits()
    rows, new_head = event_rows(instance_id, target, moves, [*waits, *hot.waits], now, acted,
                                head, visits)
    done = workflow.completed
    values.update(progress(waits, now), visits=visits.dump(), state=dump_state(workflow),
                  chain_head=new_head, status="completed" if done else "active",
                  active_key=None if done else header["active_key"])
    if not write(values, [row, *rows], taken):
        return False
    pipeline.steps_run += spent.steps
    return True


def _write(store: Store, header: Mapping[str, Any], values: dict[str, Any],
           rows: list[dict[str, Any]], taken: held.Taken | None = None) -> bool:
    try:
        store.transaction(lambda conn: migration.write(
            conn, header["id"], header["version"], values, rows, taken))
    except HeldChanged:
        return False
    return True
