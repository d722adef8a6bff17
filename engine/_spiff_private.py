"""Every use of SpiffWorkflow's private API, in one place (imported only inside `engine`).

Each wrapper names the private name it relies on; tests/engine/test_spiff_private.py calls
each one against the installed SpiffWorkflow, so an upgrade that changes them fails there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.parser.task_spec import SpiffTaskParser
from SpiffWorkflow.task import Task


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
