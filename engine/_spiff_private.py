"""Every use of SpiffWorkflow's private API, in one place (imported only inside `engine`).

Each wrapper names the private name it relies on; tests/engine/test_spiff_private.py calls
each one against the installed SpiffWorkflow, so an upgrade that changes them fails there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.parser.task_spec import SpiffTaskParser
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

_MAX_DEPTH = 1000  # BpmnTaskIterator's default max_depth
_SCALARS = frozenset({str, int, float, bool, type(None)})


def internal_value(task: Task, name: str, default: Any = None) -> Any:
    """A value of the task's internal data (timers keep `event_value` and `event_fired`
    there), or `default`.

    Relies on `Task._get_internal_data(name, default)`."""
    return task._get_internal_data(name, default)


def set_internal_values(task: Task, **values: Any) -> None:
    """Set values in the task's internal data, which Spiff serializes with the task.

    Relies on `Task._set_internal_data(**values)`."""
    task._set_internal_data(**values)


def encode_json(
    serializer: BpmnWorkflowSerializer, build: Callable[[], Any],
    separators: tuple[str, str] | None = None,
) -> str:
    """JSON of what `build()` returns, converted as Spiff's own `serialize_json` does it:
    while `build` runs, the registry's `convert` leaves the values it can encode for the
    JSON encoder (much faster than converting the whole tree first); the encoder then writes
    them in Spiff's typed form (`{"value": ...}` plus the type name).

    Relies on `DefaultRegistry._encoder_mode` (a flag `convert` reads) and
    `BpmnWorkflowSerializer._encoder_cls` (the encoder class made for its registry)."""
    registry = serializer.registry
    registry._encoder_mode = True
    try:
        return json.dumps(build(), cls=serializer._encoder_cls, separators=separators)
    finally:
        registry._encoder_mode = False


@contextmanager
def encoder_mode(serializer: BpmnWorkflowSerializer) -> Iterator[json.JSONEncoder]:
    """While open, the registry's `convert` leaves encodable values for the JSON encoder (as
    in `encode_json`); yields an encoder that writes them in Spiff's typed form. Its `encode`
    may be called many times (it keeps no state between calls).

    Relies on `DefaultRegistry._encoder_mode` and `BpmnWorkflowSerializer._encoder_cls`."""
    registry = serializer.registry
    registry._encoder_mode = True
    try:
        yield serializer._encoder_cls(separators=(",", ":"))
    finally:
        registry._encoder_mode = False


def spiff_extensions(node: etree._Element) -> dict[str, Any]:
    """The `spiffworkflow:` extension elements of a task node (preScript, postScript,
    properties, ...) as SpiffWorkflow's own task parser reads them.

    Relies on the static method `SpiffTaskParser._parse_extensions(node)`."""
    extensions: dict[str, Any] = SpiffTaskParser._parse_extensions(node)
    return extensions


def tree_tasks(workflow: Any, state: int) -> list[Task]:
    """The tasks `workflow.get_tasks(state=state)` returns, in its order: Spiff's
    BpmnTaskIterator (depth first, into subprocesses, its depth count and limit as it keeps
    them) walked in one loop, without its per-task method and property calls.

    Relies on `Task._state`, `Task._children` and on the iterator's algorithm
    (`BpmnTaskIterator._next`, `TaskIterator._handle_leaf_depth`)."""
    if state & TaskState.PREDICTED_MASK:
        min_state = TaskState.MAYBE
    elif state & TaskState.DEFINITE_MASK:
        min_state = TaskState.FUTURE
    else:
        min_state = TaskState.COMPLETED
    skip_finished = state <= TaskState.FINISHED_MASK
    subprocesses = workflow.top_workflow.subprocesses
    found = []
    todo = [workflow.task_tree]  # the next task last
    # The iterator's depth count grows by at most one per task visited: with fewer tasks
    # than its limit, the limit is never reached and the count need not be kept.
    size = len(workflow.tasks) + sum(len(sub.tasks) for sub in subprocesses.values())
    if not subprocesses and size < _MAX_DEPTH:
        while todo:
            task = todo.pop()
            task_state = task._state
            if task._children and task_state >= min_state:
                tasks = task.workflow.tasks
                todo.extend([tasks.get(child) for child in reversed(task._children)])
            if task_state & state and task.last_state_change >= 0:
                found.append(task)
        return found
    depth = 0
    while todo:
        task = todo.pop()
        task_state = task._state
        subprocess = subprocesses.get(task.id)
        if ((task._children or subprocess is not None)
                and (task_state >= min_state or subprocess is not None)
                and (depth < _MAX_DEPTH or size < _MAX_DEPTH)):
            tasks = task.workflow.tasks
            todo.extend([tasks.get(child) for child in reversed(task._children)])
            if subprocess is not None and not (task_state >= TaskState.FINISHED_MASK
                                               and skip_finished):
                todo.append(subprocess.task_tree)
            depth += 1
        elif todo and size >= _MAX_DEPTH:
            ancestor = todo[-1].parent
            current = task.parent
            while current is not None and current is not ancestor:
                current = current.parent
                depth -= 1
        if task_state & state and task.last_state_change >= 0:
            found.append(task)
    return found


def quick_task_lists(workflow: Any) -> None:
    """Answer `workflow.get_tasks(state=mask)` — what SpiffWorkflow's own engine loop asks for
    (its READY tasks, at least twice a step) — by `tree_tasks`, the same list in the same order
    several times cheaper; any other question goes to Spiff as before. And skip Spiff's walk
    for WAITING tasks after each completion when the workflow has none. Set once per workflow
    (attributes of the instance; nothing of it is serialized).

    Relies on `Workflow.get_tasks(first_task=None, **kwargs)` being what the engine loop calls,
    on `Workflow.update_waiting_tasks()` (called from `_task_completed_notify`) updating only
    the WAITING tasks of the workflow's own tree, and on `Task._state`."""
    if "get_tasks" in vars(workflow):
        return
    spiffs = workflow.get_tasks
    spiffs_update = workflow.update_waiting_tasks

    def get_tasks(first_task: Task | None = None, **kwargs: Any) -> list[Task]:
        if first_task is None and len(kwargs) == 1 and "state" in kwargs:
            return tree_tasks(workflow, kwargs["state"])
        found: list[Task] = spiffs(first_task, **kwargs)
        return found

    def update_waiting_tasks() -> None:
        # Spiff walks the tree for WAITING tasks after every completion; with none among the
        # workflow's tasks that walk would find nothing.
        for task in workflow.tasks.values():
            if task._state & TaskState.WAITING:
                spiffs_update()
                return

    workflow.get_tasks = get_tasks
    workflow.update_waiting_tasks = update_waiting_tasks


def _flat(values: dict[Any, Any]) -> bool:
    for value in values.values():
        if type(value) not in _SCALARS:
            return False
    return True


def task_converter_inputs(task: Task) -> tuple[Any, ...] | None:
    """Everything Spiff's task converter (`TaskConverter.to_dict`) reads from a task, by
    value; None when some of it could change without this changing: data or internal data
    (the task's, or its parent's, which the data delta is taken against) holding a mutable
    value, which a script may change in place, also through another task sharing it.

    Relies on `Task._parent` and `Task._children`, which the converter writes."""
    data, internal = task.data, task.internal_data
    parent = task.parent
    parent_data = parent.data if parent is not None else None
    if not (_flat(data) and _flat(internal) and (parent_data is None or _flat(parent_data))):
        return None
    return (task._state, task.last_state_change, task.triggered, task._parent,
            tuple(task._children), task.task_spec, tuple(data.items()),
            tuple(internal.items()),
            None if parent_data is None else tuple(parent_data.items()))


_FLAT_JSON = json.JSONEncoder(separators=(",", ":"))  # as Spiff's encoder writes flat values


def _flat_json(values: Any) -> str:
    return _FLAT_JSON.encode(values) if values else ("{}" if isinstance(values, dict) else "[]")


def task_text(task: Task) -> str | None:
    """The JSON text the registry's encoder writes for `TaskConverter.to_dict(task)` (keys in
    its order, the type name last), written directly: about a quarter of the converter's
    cost. Only for a task `task_converter_inputs` keys (flat data, internal data and parent
    data); None when a value is of a type it does not write (then convert as usual).

    Relies on the converter's layout, its data delta (`DeepMerge.get_updated_keys` and
    `get_deleted_keys`) and `Task._parent`, `Task._children`, `Task._state`."""
    changed, state, triggered = task.last_state_change, task._state, task.triggered
    if type(task) is not Task or type(changed) is not float or type(state) is not int \
            or type(triggered) is not bool or not math.isfinite(changed):
        return None
    data, parent = task.data, task.parent
    if parent is None:
        parent_text, data_text, delta_text = "null", _flat_json(data), "{}"
    else:
        above = parent.data
        updates = {k: v for k, v in data.items() if k not in above or v != above[k]}
        deletions = [k for k in above if k not in data]
        parent_text, data_text = f'"{task._parent}"', "{}"
        delta_text = f'{{"updates":{_flat_json(updates)},"deletions":{_flat_json(deletions)}}}'
    children = ",".join([f'"{child}"' for child in task._children])
    return (f'{{"id":"{task.id}","parent":{parent_text},"children":[{children}],'
            f'"last_state_change":{float.__repr__(changed)},"state":{state},'
            f'"task_spec":{_FLAT_JSON.encode(task.task_spec.name)},'
            f'"triggered":{"true" if triggered else "false"},'
            f'"internal_data":{_flat_json(task.internal_data)},"data":{data_text},'
            f'"delta":{delta_text},"typename":"Task"}}')


def workflow_converter_inputs(workflow: Any) -> tuple[Any, ...] | None:
    """Everything Spiff's workflow converter (`WorkflowConverter.to_dict`, and nextmove's
    state-only one) reads from a workflow besides its tasks, by value; None when it holds
    more than flat data: subprocesses, correlations, pending events or a mutable value.

    Relies on no private name; listed here with `task_converter_inputs`, whose reasoning
    it follows, as both must follow the converters."""
    if workflow.subprocesses or workflow.correlations or workflow.bpmn_events:
        return None
    data = workflow.data
    if not _flat(data):
        return None
    last = workflow.last_task
    return (tuple(data.items()), None if last is None else last.id, workflow.success,
            workflow.completed, workflow.task_tree.id)


def share_task_ids(workflow: Any) -> None:
    """Make every task id of a deserialized workflow the very UUID object its task dict is
    keyed by. Spiff's deserializer makes a new UUID for each mention of an id (dict key,
    `task.id`, parent, children); equal values, but every dict look-up by a child or parent
    id then calls UUID.__eq__ in Python. With one object per id the look-ups compare by
    identity. Nothing but object identity changes.

    Relies on `Task._parent` and `Task._children` (lists of UUIDs)."""
    for tasks in (workflow.tasks, *(sub.tasks for sub in workflow.subprocesses.values())):
        keys = {key: key for key in tasks}
        for key, task in tasks.items():
            task.id = key
            task._children = [keys.get(child, child) for child in task._children]
            if task._parent is not None:
                task._parent = keys.get(task._parent, task._parent)
