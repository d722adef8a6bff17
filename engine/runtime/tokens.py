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
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import EventBasedGateway
from SpiffWorkflow.bpmn.specs.mixins.exclusive_gateway import ExclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.inclusive_gateway import InclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from engine.clock import as_utc
from engine.runtime.model import Waiting

_GATEWAYS = (ExclusiveGateway, InclusiveGateway, ParallelGateway, EventBasedGateway)
_LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.FINISHED_MASK


@dataclass(frozen=True)
class TokenMove:
    """One event produced by a step: which BPMN step, what happened, and the task."""

    step_id: str
    kind: str
    task_id: str


def all_tasks(workflow: BpmnWorkflow, state: int = _LIVE) -> Iterator[Task]:
    """Tasks of the workflow and of its subprocesses and call activities."""
    yield from workflow.get_tasks_iterator(state=state)
    for sub in list(workflow.subprocesses.values()):
        yield from sub.get_tasks_iterator(state=state)


def bpmn_id(task: Task) -> str | None:
    return getattr(task.task_spec, "bpmn_id", None)


def snapshot(workflow: BpmnWorkflow) -> dict[UUID, int]:
    return {t.id: t.state for t in all_tasks(workflow)}


def _is_recorded(task: Task) -> bool:
    """Flow nodes a person would call a step: tasks and events, not gateways or plumbing."""
    spec = task.task_spec
    return bpmn_id(task) is not None and not isinstance(spec, _GATEWAYS)


def _catch_kind(task: Task) -> str:
    definition = getattr(task.task_spec, "event_definition", None)
    if isinstance(definition, TimerEventDefinition):
        return "timer"
    if isinstance(definition, MessageEventDefinition):
        return "message"
    return "completed"


def moves(
    before: Mapping[UUID, int], workflow: BpmnWorkflow, acted: UUID | None, acted_kind: str
) -> list[TokenMove]:
    """Events between the `before` snapshot and now; `acted` is the task the person did."""
    out: list[TokenMove] = []
    for task in all_tasks(workflow):
        if not _is_recorded(task):
            continue
        old = before.get(task.id)
        step = bpmn_id(task) or ""
        if task.state == TaskState.COMPLETED and old != TaskState.COMPLETED:
            if task.id == acted:
                kind = acted_kind
            elif isinstance(task.task_spec, CatchingEvent) and old == TaskState.WAITING:
                kind = _catch_kind(task)
            else:
                kind = "completed"
            out.append(TokenMove(step, kind, str(task.id)))
        elif task.state in (TaskState.READY, TaskState.WAITING) and old != task.state:
            if task.task_spec.manual or task.state == TaskState.WAITING:
                out.append(TokenMove(step, "entered", str(task.id)))
    return out


def _due(task: Task) -> datetime | None:
    value = task._get_internal_data("event_value")
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    if isinstance(value, dict) and isinstance(value.get("next"), str):
        return as_utc(datetime.fromisoformat(value["next"]))
    return None


def waits(
    workflow: BpmnWorkflow,
    steps: Mapping[str, Mapping[str, Any]],
    previous: Mapping[str, Waiting],
    now: datetime,
) -> list[Waiting]:
    """Where the instance waits now. `previous` (by task id) keeps `since` across steps."""
    out = []
    for task in all_tasks(workflow, TaskState.READY | TaskState.WAITING):
        spec = task.task_spec
        step = bpmn_id(task)
        if step is None:
            continue
        info = steps.get(step, {})
        props = info.get("properties", {})
        task_id = str(task.id)
        since = previous[task_id].since if task_id in previous else now
        if task.state == TaskState.READY and spec.manual:
            out.append(Waiting(step, info.get("name", step), "user", since, task_id,
                               hook=props.get("hook"), role=props.get("role", "distributor"),
                               control=props.get("control", "guidance")))
        elif task.state == TaskState.WAITING and isinstance(spec, CatchingEvent):
            kind = _catch_kind(task)
            if kind == "completed":
                kind = "event"
            definition = getattr(spec, "event_definition", None)
            out.append(Waiting(step, info.get("name", step), kind, since, task_id,
                               due_at=_due(task) if kind == "timer" else None,
                               message=getattr(definition, "name", None)
                               if kind == "message" else None,
                               attached_to=info.get("attached_to")))
    return out


def find_ready(workflow: BpmnWorkflow, step: str) -> Task | None:
    """The READY person's task for `step` (BPMN id), if the instance waits there."""
    for task in all_tasks(workflow, TaskState.READY):
        if task.task_spec.manual and bpmn_id(task) == step:
            return task
    return None
