"""Move a running instance to another version of its definition (Camunda and SpiffWorkflow
call it instance migration).

SpiffWorkflow 3.2 does the work through its public `SpiffWorkflow.bpmn.util.diff` API:
`diff_workflow` aligns the instance's tasks with the new version's specs by BPMN id, and
`migrate_workflow` swaps the specs in and re-predicts what lies ahead of the waiting steps.
nextmove refuses the move when a step the instance waits at, or a step it has passed
through, does not exist in the new version (its state could not be read back against it),
and names those steps.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Connection, insert, update

from engine.errors import MigrationRefused, NextmoveError, VersionConflict
from engine.runtime import held
from engine.runtime.queries import INSTANCE, STEP_EVENT
from engine.runtime.state import dump_state, load_state, registry
from engine.runtime.versions import LoadedDefinition

_WAITING = TaskState.READY | TaskState.WAITING | TaskState.STARTED


def _step(task: Any) -> str:
    return str(getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name)


def migrate(workflow: BpmnWorkflow, instance_id: int, source: LoadedDefinition,
            target: LoadedDefinition) -> str:
    """Move `workflow` (an instance of `source`) onto `target`'s specs, in place; its new
    state document."""
    refuse = f"instance {instance_id} cannot move from version {source.version} to " \
             f"{target.version} of {target.process_id!r}"
    top, subs = diff_workflow(registry(), workflow, target.spec, target.subprocess_specs)
    removed = list(top.removed)
    for sub_id, diff in subs.items():
        sub = workflow.subprocesses[sub_id]
        removed.extend(sub.get_tasks(skip_subprocesses=True) if diff is None else diff.removed)
    waiting = sorted({_step(t) for t in removed if t.state & _WAITING})
    if waiting:
        raise MigrationRefused(f"{refuse}: it waits at {', '.join(waiting)}, which version "
                               f"{target.version} does not have")
    passed = sorted({_step(t) for t in removed if t.state & TaskState.FINISHED_MASK})
    if passed:
        raise MigrationRefused(f"{refuse}: it has passed through {', '.join(passed)}, which "
                               f"version {target.version} does not have")
    migrate_workflow(top, workflow, target.spec)
    for sub_id, diff in subs.items():
        sub = workflow.subprocesses[sub_id]
        migrate_workflow(diff, sub, target.subprocess_specs[sub.spec.name])
    workflow.subprocess_specs = target.subprocess_specs
    state = dump_state(workflow)
    try:
        load_state(state, target.spec, target.subprocess_specs)
    except NextmoveError as exc:
        raise MigrationRefused(f"{refuse}: its state does not fit the new version: {exc}") \
            from exc
    return state


def write(conn: Connection, instance_id: int, expected_version: int, values: dict[str, Any],
          rows: list[dict[str, Any]], taken: held.Taken | None = None) -> None:
    """Store the migrated instance with its `migrated` event and what followed the move (the
    step events of its automatic steps and delivered held events, or an incident), if its
    version is unchanged; `taken`: the held events the move delivered (`HeldChanged`,
    nothing written, when the prospect's held events changed since they were read)."""
    if taken is not None:
        held.verify(conn, [taken])
    if conn.execute(update(INSTANCE).where(
            INSTANCE.c.id == instance_id, INSTANCE.c.version == expected_version,
    ).values(**values)).rowcount != 1:
        raise VersionConflict(instance_id, expected_version)
    for row in rows:  # one by one: their ids follow the trail's order
        conn.execute(insert(STEP_EVENT).values(**row))
    if taken is not None:
        held.settle(conn, taken, instance_id, values["updated_at"])
