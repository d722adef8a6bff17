"""Workflow state as a versioned JSON document that leaves the spec out.

SpiffWorkflow's serializer stores the whole process spec with every instance; specs are
immutable per definition version and cached, so nextmove stores state only (about half the
size) and hands the cached spec back in when loading. The document:

    {"format": 1, "spiff": "<Spiff serializer version>", "workflow": {...state...}}

A change of format adds a function to MIGRATIONS (old format → next) and a frozen fixture of
the old format under tests/fixtures/state/.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.config import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.migration.version_migration import MIGRATIONS as SPIFF_MIGRATIONS
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SPIFF_VERSION
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.specs.defaults import NoneTask

from engine._spiff_private import (
    encode_json,
    encoder_mode,
    share_task_ids,
    task_converter_inputs,
    task_text,
    workflow_converter_inputs,
)
from engine.definitions.spiff import AutomaticTask
from engine.definitions.timers import CLOCK_TIMERS
from engine.errors import NextmoveError

FORMAT = 1
# format N → N+1; empty while only format 1 exists.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class StateError(NextmoveError):
    """A stored state document cannot be read."""


_SKIPPED = threading.local()  # per thread: the task mapping being dumped from fragments


class _StateOnlyConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    """Spiff's workflow converter without the spec and subprocess specs."""

    def mapping_to_dict(self, mapping: Any, **kwargs: Any) -> dict[str, Any]:
        # The task mapping `dump_state` writes itself from cached fragments (`Fragments`).
        if mapping is getattr(_SKIPPED, "tasks", None):
            return {}
        converted: dict[str, Any] = super().mapping_to_dict(mapping, **kwargs)
        return converted

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct: dict[str, Any] = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(
        self, dct: dict[str, Any], spec: Any = None, subprocess_specs: Any = None
    ) -> BpmnWorkflow:
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _serializer() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = _StateOnlyConverter
    for spiff_timer, clock_timer in CLOCK_TIMERS.items():
        config[clock_timer] = SPIFF_CONFIG[spiff_timer]
    config[AutomaticTask] = SPIFF_CONFIG[NoneTask]
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))


_SERIALIZER = _serializer()


Fragments = dict[UUID, tuple[tuple[Any, ...], str]]
"""A workflow's tasks as `dump_state` last wrote them: by task id, what the text was made
from and the text (`"id":{...}`). Kept with a deserialized instance between its steps."""


def dump_state(workflow: BpmnWorkflow, fragments: Fragments | None = None) -> str:
    """The instance's state document as JSON text. With `fragments` (the same workflow's, from
    its previous dumps), a task whose converted inputs are all unchanged is not converted
    again: its text is reused. The text is the same either way."""
    if fragments is None:
        convert = _SERIALIZER.registry.convert
        return encode_json(_SERIALIZER, lambda: {
            "format": FORMAT, "spiff": SPIFF_VERSION, "workflow": convert(workflow)},
            separators=(",", ":"))
    return _dump_with(workflow, fragments)


# The fragment of the document around the tasks (its text: before "\0" after), under an id
# no task has (task ids are random UUIDs).
_AROUND = UUID(int=0)
_BY_LAST = UUID(int=1)  # the same text cut where the last task's id goes ("\1")


def _dump_with(workflow: BpmnWorkflow, fragments: Fragments) -> str:
    registry = _SERIALIZER.registry
    tasks = workflow.tasks
    with encoder_mode(_SERIALIZER) as encoder:
        around = _around(workflow, fragments, encoder)
        parts = []
        for task_id, task in tasks.items():
            key = task_converter_inputs(task)
            found = fragments.get(task_id)
            if key is not None and found is not None and found[0] == key:
                parts.append(found[1])
                continue
            body = task_text(task) if key is not None else None
            if body is None:
                body = encoder.encode(registry.convert(task))
            text = f'"{task_id}":{body}'
            if key is not None:
                fragments[task_id] = (key, text)
            else:
                fragments.pop(task_id, None)
            parts.append(text)
    if len(fragments) > len(tasks) + (_AROUND in fragments) + (_BY_LAST in fragments):
        for gone in fragments.keys() - tasks.keys() - {_AROUND, _BY_LAST}:  # a task is gone
            del fragments[gone]
    opened, closed = around.split("\0")
    return f'{opened}"tasks":{{{",".join(parts)}{closed}'


def _around(workflow: BpmnWorkflow, fragments: Fragments, encoder: Any) -> str:
    """The document's text before its tasks and after them, joined by "\0" (which JSON text
    never holds raw): kept in `fragments` while what the converter reads is unchanged.

    A step nearly always changes only the workflow's last task, so the text is also kept cut
    where that id goes (under `_BY_LAST`, keyed by everything else): then the id is all that
    is written anew."""
    key = workflow_converter_inputs(workflow)
    found = fragments.get(_AROUND)
    if key is not None and found is not None and found[0] == key:
        return found[1]
    split = fragments.get(_BY_LAST)
    if key is not None and split is not None and split[0] == (key[0], *key[2:]):
        last = workflow.last_task
        before, after = split[1].split("\1")
        value: str = encoder.encode(None if last is None else str(last.id))
        fragments[_AROUND] = (key, before + value + after)
        return before + value + after
    _SKIPPED.tasks = workflow.tasks
    try:
        dct = _SERIALIZER.registry.convert(workflow)
    finally:
        _SKIPPED.tasks = None
    keys = list(dct)
    cut = keys.index("tasks")
    opened = _opening(encoder, dct, keys[:cut])
    tail = encoder.encode({k: dct[k] for k in keys[cut + 1:]})
    closed = "}" + ("," + tail[1:] if len(tail) > 2 else "}") + "}"
    text = f"{opened}\0{closed}"
    if key is None:
        fragments.pop(_AROUND, None)
        fragments.pop(_BY_LAST, None)
        return text
    fragments[_AROUND] = (key, text)
    if "last_task" in keys[:cut]:
        at = keys.index("last_task")
        before = _opening(encoder, dct, keys[:at])
        after = _opening(encoder, dct, keys[at + 1:cut], whole=False)
        value = encoder.encode(dct["last_task"])
        if f'{before}"last_task":{value}{after}' == opened:  # cut right: keep it
            fragments[_BY_LAST] = ((key[0], *key[2:]), f'{before}"last_task":\1{after}\0{closed}')
            return text
    fragments.pop(_BY_LAST, None)
    return text


def _opening(encoder: Any, dct: dict[str, Any], keys: list[str], whole: bool = True) -> str:
    """The document's text up to where the next workflow key goes (ending in "," when a key
    went before, or in "{" when none did): of the whole document (`whole`), or only of the
    workflow's `keys` (no braces, each key after a ",")."""
    if whole:
        head: str = encoder.encode({"format": FORMAT, "spiff": SPIFF_VERSION, "workflow": {
            k: dct[k] for k in keys}})  # ends in "}}"
        return head[:-2] + ("," if keys else "")
    part: str = encoder.encode({k: dct[k] for k in keys})
    return "," + part[1:-1] + "," if keys else ","


def dump_data(data: Mapping[str, Any]) -> str:
    """Task data as `dump_state` writes it inside a document (for `engine.runtime._first_wait`)."""
    convert = _SERIALIZER.registry.convert
    return encode_json(_SERIALIZER, lambda: convert(dict(data)), separators=(",", ":"))


def restore_links(spec: Any, subprocess_specs: Mapping[str, Any]) -> None:
    """Connect each loop or multi-instance task to the inner task it repeats, as Spiff's own
    spec deserializer does (`BpmnProcessSpecConverter.from_dict`).

    Spiff makes the link (the inner task's `completed_event` → the loop's `merge_child`) only
    when it creates the first instance; a spec parsed afresh (every CLI call) lacks it, so a
    restored instance's completion was never merged and the loop stopped with nothing
    waiting. Idempotent: specs are cached and shared by every instance."""
    for process in (spec, *subprocess_specs.values()):
        for task_spec in process.task_specs.values():
            if isinstance(task_spec, LoopTask):
                inner = process.task_specs[task_spec.task_spec]
                if not inner.completed_event.is_connected(task_spec.merge_child):
                    inner.completed_event.connect(task_spec.merge_child)


_PLAIN = json.JSONEncoder(separators=(",", ":"))  # what `dump_state`'s encoder writes for
# values that are already JSON (a stored document's, parsed)


def load_state(text: str, spec: Any, subprocess_specs: dict[str, Any], *,
               shared_ids: bool = False, fragments: Fragments | None = None) -> BpmnWorkflow:
    """Rebuild a workflow from its state document and its (cached) specs. `shared_ids`: one
    UUID object per task id (`share_task_ids`), for a workflow that will take many steps.
    `fragments` (empty, to fill): the document's own task texts (`Fragments`), so the next
    `dump_state` converts only the tasks a step changes; only for a document of this
    format and Spiff version (an older one's text is not what this version writes)."""
    restore_links(spec, subprocess_specs)
    try:
        doc = json.loads(text)
        stored = None
        if (fragments is not None and doc.get("format") == FORMAT
                and doc.get("spiff") == SPIFF_VERSION):
            stored = {key: _PLAIN.encode(task)  # before restoring, which may change them
                      for key, task in doc["workflow"]["tasks"].items()}
        fmt = doc.get("format")
        while fmt in MIGRATIONS:
            doc = MIGRATIONS[fmt](doc)
            fmt = doc.get("format")
        if fmt != FORMAT:
            raise StateError(f"unknown state format {fmt!r} (this nextmove reads {FORMAT})")
        workflow_dct = doc["workflow"]
        if doc.get("spiff") in SPIFF_MIGRATIONS:
            # Spiff's own migrations expect its full document; specs are not touched by them.
            workflow_dct["spec"] = {}
            workflow_dct["subprocess_specs"] = {}
            SPIFF_MIGRATIONS[doc["spiff"]](workflow_dct)
        workflow: BpmnWorkflow = _SERIALIZER.registry.restore(
            workflow_dct, spec=spec, subprocess_specs=subprocess_specs
        )
        if shared_ids:
            share_task_ids(workflow)
        if stored is not None and fragments is not None:
            _keep_texts(workflow, stored, fragments)
        return workflow
    except StateError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # JSON that is no object
        raise StateError(f"cannot read stored workflow state: {exc}") from exc


def _keep_texts(workflow: BpmnWorkflow, stored: dict[str, str], fragments: Fragments) -> None:
    """A restored task's text is the text it was restored from: writing that text again
    restores the same task, as long as nothing the converter reads has changed since (the
    key, as `dump_state` checks it)."""
    for task_id, task in workflow.tasks.items():
        key = task_converter_inputs(task)
        text = stored.get(str(task_id))
        if key is not None and text is not None:
            fragments[task_id] = (key, f'"{task_id}":{text}')


def registry() -> Any:
    """The serializer registry for nextmove's specs (what Spiff's spec diff compares with)."""
    return _SERIALIZER.registry
