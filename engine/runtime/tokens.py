"""Read a SpiffWorkflow workflow the way nextmove sees it: waits, and token moves as events.

A step's effect is found by comparing task states before and after it, which gives the
entered / completed / skipped / timer / message events in tree (execution) order without
hooking into Spiff's internals.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import (
    BoundaryEvent,
    EventBasedGateway,
)
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.exclusive_gateway import ExclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.inclusive_gateway import InclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from engine._spiff_private import tree_tasks
from engine.definitions import timers
from engine.runtime.model import Waiting

_GATEWAYS = (ExclusiveGateway, InclusiveGateway, ParallelGateway, EventBasedGateway)
_LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.FINISHED_MASK


@dataclass(frozen=True)
class TokenMove:
    """One event produced by a step: which BPMN step, what happened, and the task."""

    step_id: str
    kind: str
    task_id: str


def all_tasks(workflow: BpmnWorkflow, state: int = _LIVE) -> list[Task]:
    """Tasks of the workflow and of its subprocesses and call activities, in tree order:
    what `workflow.get_tasks(state=state)` returns (Spiff's BpmnTaskIterator also descends
    into subprocesses), walked without its per-task method calls (`tree_tasks`)."""
    return tree_tasks(workflow, state)


def tasks_in(workflow: BpmnWorkflow, state: int) -> Iterator[Task]:
    """Tasks of the workflow and its subprocesses in `state`, in no particular order: read
    from the task dicts, several times cheaper than Spiff's tree walk (`all_tasks`)."""
    for tasks in (workflow.tasks, *(sub.tasks for sub in workflow.subprocesses.values())):
        yield from (t for t in tasks.values() if t.state & state)


def bpmn_id(task: Task) -> str | None:
    return getattr(task.task_spec, "bpmn_id", None)


def snapshot(workflow: BpmnWorkflow) -> dict[UUID, int]:
    """States of the live tasks by id (what `moves` compares with). Read from the task
    dicts, not the tree walk: the same tasks, in an order a lookup table does not need."""
    live = {t.id: t.state for t in workflow.tasks.values() if t.state & _LIVE}
    for sub in workflow.subprocesses.values():
        live.update((t.id, t.state) for t in sub.tasks.values() if t.state & _LIVE)
    return live


def _is_recorded(task: Task) -> bool:
    """Flow nodes a person would call a step: tasks and events, not gateways or plumbing."""
    spec = task.task_spec
    return bpmn_id(task) is not None and not isinstance(spec, _GATEWAYS)


def _gateway_events(spec: Any) -> list[tuple[Any, Any]]:
    """(following catch event spec, its event definition) pairs of an event-based gateway.

    Spiff moves the events' definitions onto the gateway, in the order of its outputs.
    """
    return list(zip(spec.outputs, spec.event_definition.event_definitions, strict=False))


def _definition_of(task: Task) -> Any:
    parent = task.parent
    if parent is not None and isinstance(parent.task_spec, EventBasedGateway):
        for output, definition in _gateway_events(parent.task_spec):
            if output is task.task_spec:
                return definition
    return getattr(task.task_spec, "event_definition", None)


def _catch_kind(definition: Any) -> str:
    if isinstance(definition, TimerEventDefinition):
        return "timer"
    if isinstance(definition, MessageEventDefinition):
        return "message"
    if isinstance(definition, SignalEventDefinition):
        return "signal"
    if isinstance(definition, MultipleEventDefinition):
        # a start event with several messages: it fired on whichever came
        kinds = {_catch_kind(d) for d in definition.event_definitions}
        return kinds.pop() if len(kinds) == 1 else "completed"
    return "completed"


def _alternatives(definition: Any) -> list[Any]:
    """The definitions a catch waits for: one, or each of a multiple event's."""
    if isinstance(definition, MultipleEventDefinition):
        return list(definition.event_definitions)
    return [definition]


def moves(
    before: Mapping[UUID, int], workflow: BpmnWorkflow, acted: UUID | None, acted_kind: str,
    live: list[Task] | None = None,
) -> list[TokenMove]:
    """Events between the `before` snapshot and now, in the order they happened.

    `acted` is the task the person did. Tasks are visited in tree order, which is execution
    order except that a subprocess's own task comes before its inner steps: its completion
    is moved after them (no wall-clock timestamps involved, so the order is deterministic).
    `live`: `all_tasks(workflow)` if the caller already has it.
    """
    out: list[tuple[tuple[str, ...], TokenMove]] = []
    cycled: set[UUID] = set()
    for task in all_tasks(workflow) if live is None else live:
        old = before.get(task.id)
        parent = task.parent
        if (old is None and parent is not None and parent.id not in cycled
                and parent.state == TaskState.WAITING
                and isinstance(_definition_of(parent), CycleTimerEventDefinition)):
            # A cycle timer fires by adding its outputs while it keeps waiting for the next.
            cycled.add(parent.id)
            out.append((_owners(parent),
                        TokenMove(bpmn_id(parent) or "", "timer", str(parent.id))))
        if not _is_recorded(task):
            continue
        if old == task.state:
            continue
        step = bpmn_id(task) or ""
        spec = task.task_spec
        if task.state == TaskState.COMPLETED:
            if task.id == acted:
                kind = acted_kind
            elif isinstance(spec, CatchingEvent) and not isinstance(spec, StartEvent):
                definition = _definition_of(task)
                # a cycle timer's fires are recorded above while it waits for the next; its
                # last fire completes it (its outputs start now): a fire too
                cycle_end = isinstance(definition, CycleTimerEventDefinition) and not any(
                    child.id not in before for child in task.children)
                kind = "completed" if cycle_end else _catch_kind(definition)
            elif isinstance(spec, StartEvent) and old == TaskState.WAITING:
                # a start event that waited fired on a message or signal (timers: as before)
                caught = _catch_kind(_definition_of(task))
                kind = caught if caught in ("message", "signal") else "completed"
            else:
                kind = "completed"
        elif isinstance(spec, BoundaryEvent):
            continue  # a watcher on its host, not a step: only its firing is an event
        elif task.state in (TaskState.READY, TaskState.WAITING):
            if not (spec.manual or task.state == TaskState.WAITING):
                continue
            kind = "entered"
        elif task.state == TaskState.CANCELLED and old in (TaskState.READY, TaskState.WAITING):
            kind = "cancelled"
        else:
            continue
        out.append((_owners(task), TokenMove(step, kind, str(task.id))))
    return _completions_after_inner_steps(out)


def _owners(task: Task) -> tuple[str, ...]:
    """Ids of the subprocess tasks that (transitively) contain `task`, innermost first."""
    chain = []
    workflow = task.workflow
    while getattr(workflow, "parent_task_id", None) is not None:
        chain.append(str(workflow.parent_task_id))
        workflow = workflow.parent_workflow
    return tuple(chain)


def _completions_after_inner_steps(
    moves_in_tree_order: list[tuple[tuple[str, ...], TokenMove]],
) -> list[TokenMove]:
    if not any(owners for owners, _ in moves_in_tree_order):  # no subprocess: nothing to move
        return [move for _, move in moves_in_tree_order]
    ordered = list(moves_in_tree_order)
    containers = sorted(
        (entry for entry in ordered if entry[1].kind != "entered"
         and any(entry[1].task_id in owners for owners, _ in ordered)),
        key=lambda entry: -len(entry[0]))  # innermost subprocesses first
    for entry in containers:
        ordered.remove(entry)
        last = max(i for i, (owners, _) in enumerate(ordered) if entry[1].task_id in owners)
        ordered.insert(last + 1, entry)
    return [move for _, move in ordered]


def timer_dues(workflow: BpmnWorkflow) -> list[datetime]:
    """Due times of the armed timers the instance waits for (each gateway timer its own)."""
    out = []
    for task in tasks_in(workflow, TaskState.WAITING):
        spec = task.task_spec
        definitions = [d for _, d in _gateway_events(spec)] \
            if isinstance(spec, EventBasedGateway) else [getattr(spec, "event_definition", None)]
        for definition in definitions:
            if isinstance(definition, TimerEventDefinition):
                due = timers.due_at(task, definition)
                if due is not None:
                    out.append(due)
    return out


def waits(
    workflow: BpmnWorkflow,
    steps: Mapping[str, Mapping[str, Any]],
    previous: Mapping[str, Waiting],
    now: datetime,
    live: list[Task] | None = None,
) -> list[Waiting]:
    """Where the instance waits now. `previous` (by `wait_key`) keeps `since` across steps;
    `live`: `all_tasks(workflow)` of the workflow as it is now, if the caller has it."""
    out = []
    for task in waiting_tasks(workflow, live):
        spec = task.task_spec
        step = bpmn_id(task)
        if step is None:
            continue
        task_id = str(task.id)
        if task.state == TaskState.READY and spec.manual:
            info = steps.get(step, {})
            props = info.get("properties", {})
            since = _since(previous, task_id, step, now)
            out.append(Waiting(step, info.get("name", step), "user", since, task_id,
                               hook=props.get("hook"), role=props.get("role", "distributor"),
                               control=props.get("control", "guidance")))
        elif task.state == TaskState.WAITING and isinstance(spec, EventBasedGateway):
            # The gateway waits for whichever of the events after it comes first.
            for output, definition in _gateway_events(spec):
                out.extend(_event_wait(output, definition, task, steps, previous, now))
        elif task.state == TaskState.WAITING and isinstance(spec, CatchingEvent):
            out.extend(_event_wait(spec, spec.event_definition, task, steps, previous, now))
    return out


def waiting_tasks(workflow: BpmnWorkflow, live: list[Task] | None) -> list[Task]:
    """`all_tasks(workflow, READY | WAITING)`; taken from `live` without a second tree walk
    when the workflow has no subprocesses: the walk then visits the same tasks in the same
    order for both masks (`tree_tasks`), only the kept states differ."""
    wanted = TaskState.READY | TaskState.WAITING
    if live is None or workflow.subprocesses:
        return all_tasks(workflow, wanted)
    return [task for task in live if task.state & wanted]


def wait_key(wait: Waiting) -> str:
    return f"{wait.task_id}:{wait.step_id}"


def _since(previous: Mapping[str, Waiting], task_id: str, step: str, now: datetime) -> datetime:
    found = previous.get(f"{task_id}:{step}")
    return found.since if found else now


def _event_wait(
    spec: Any, definition: Any, task: Task, steps: Mapping[str, Mapping[str, Any]],
    previous: Mapping[str, Waiting], now: datetime,
) -> list[Waiting]:
    step = getattr(spec, "bpmn_id", None)
    if step is None:
        return []
    info = steps.get(step, {})
    out = []
    for each in _alternatives(definition):  # a start event with several messages: one each
        kind = _catch_kind(each)
        if kind == "completed":
            continue
        out.append(Waiting(
            step, info.get("name", step), kind, _since(previous, str(task.id), step, now),
            str(task.id),
            due_at=timers.due_at(task, each) if kind == "timer" else None,
            message=each.name if kind == "message" else None,
            attached_to=info.get("attached_to"),
            signal=each.name if kind == "signal" else None,
        ))
    return out


def waiting_for(workflow: BpmnWorkflow, message: str) -> bool:
    """Whether any task of the instance waits for `message` right now."""
    return bool(catching(workflow, MessageEventDefinition, message))


def catching(workflow: BpmnWorkflow, kind: type[Any], name: str) -> list[Any]:
    """The event definitions of kind `kind` (message, signal) named `name` that tasks of the
    instance wait for right now; catching one of them as the event moves those tasks."""
    found: list[Any] = []
    for task in all_tasks(workflow, TaskState.WAITING):
        spec = task.task_spec
        definitions = [d for _, d in _gateway_events(spec)] \
            if isinstance(spec, EventBasedGateway) else [getattr(spec, "event_definition", None)]
        for definition in definitions:
            found.extend(d for d in _alternatives(definition)
                         if isinstance(d, kind) and d.name == name)
    return found


def find_ready(workflow: BpmnWorkflow, step: str) -> Task | None:
    """The READY person's task for `step` (BPMN id), if the instance waits there: the first
    in tree order. Found in the task dicts (`tasks_in`); the tree is walked only to order
    several (a multi-instance step)."""
    def at_step(task: Task) -> bool:
        return bool(task.task_spec.manual) and bpmn_id(task) == step

    found = [task for task in tasks_in(workflow, TaskState.READY) if at_step(task)]
    if len(found) < 2:
        return found[0] if found else None
    return next(task for task in all_tasks(workflow, TaskState.READY) if at_step(task))


def drop_uncaught(workflow: BpmnWorkflow) -> None:
    """Forget the events the step threw that nothing in the workflow caught.

    SpiffWorkflow keeps them (`bpmn_events`) for an embedding app to route elsewhere; nextmove
    routes none (signals cross instances only through `broadcast`), and in BPMN a signal
    reaches what waits at the moment it is thrown, so kept ones would only grow the saved
    state with every throw. Called before a step's state is dumped."""
    workflow.get_events()  # returns and clears them
