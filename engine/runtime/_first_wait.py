"""Fast starts: each definition version's first-wait state is built once and new instances
are made from it, instead of running SpiffWorkflow from the start event every time.

A template is built by running the definition to its first wait with a marker as the start
data, under a script engine that notes every expression or script evaluated. It is used only
when nothing can make one instance's first wait differ from another's but its data:

* no expression or script was evaluated on the way (no condition, no script, no timer or
  cardinality read from data: the route does not depend on the start data);
* it stops at user steps only: no timer (its due time depends on the clock), no message catch
  (held events are delivered there), not completed;
* the marker appears in the state only as whole task data, or as the keys a task's data lacks
  next to its parent's (Spiff stores a task's data as a delta): the data was copied, never
  changed, on the way.

An instance is then the template's state document with fresh task ids and its own start
data (or its keys) where the marker was, deserialized; everything after that (token moves,
waits, events, the row) is computed from it as for any start. Otherwise (`None`) the normal
path runs.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine

from engine.limits import Limits, budget, run_engine_steps
from engine.runtime import held, tokens
from engine.runtime.model import Waiting
from engine.runtime.state import Fragments, dump_data, dump_state, load_state
from engine.runtime.versions import LoadedDefinition

_MARK = "__nextmove_first_wait__"
_DATA, _KEYS = "\x00data\x00", "\x00keys\x00"  # holes in a template's text
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class _Probe(PythonScriptEngine):  # type: ignore[misc]  # Spiff is untyped
    """The engine's script engine, noting whether anything was evaluated or executed."""

    def __init__(self, inner: PythonScriptEngine) -> None:  # no super(): all is delegated
        self._inner = inner
        self.used = False

    def __getattr__(self, name: str) -> Any:  # environment, clock, ...
        return getattr(self._inner, name)

    def validate(self, expression: str) -> Any:
        self.used = True
        return self._inner.validate(expression)

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        self.used = True
        return self._inner.evaluate(task, expression, external_context)

    def execute(self, task: Any, script: str, external_context: Any = None) -> Any:
        self.used = True
        return self._inner.execute(task, script, external_context)

    def call_service(self, task: Any, **kwargs: Any) -> Any:
        self.used = True
        return self._inner.call_service(task, **kwargs)


@dataclass(frozen=True)
class FirstWait:
    """A definition version's state at its first wait, split where the start data goes."""

    text: str  # the state document, with holes where the start data and its keys go
    steps: int  # automatic tasks run to get there (counted for every instance)
    moves: tuple[tokens.TokenMove, ...]  # the start's token moves (template task ids)
    waits: tuple[Waiting, ...]  # where it waits (template task ids; `since`: the start)

    def __post_init__(self) -> None:
        # The text as a format string, once: a field for every task id (numbered by id) and
        # for the holes; an instance fills it in one call. Ids are filled before the start
        # data: str.format does not look into what it inserts, so the data is left as given.
        cut = re.split(f"({_UUID.pattern})", self.text)
        ids = tuple(dict.fromkeys(cut[1::2]))
        at = {old: i for i, old in enumerate(ids)}
        fields = [_escape(cut[0])]
        for old, piece in zip(cut[1::2], cut[2::2], strict=True):
            fields.append(f"{{{at[old]}}}{_escape(piece)}")
        object.__setattr__(self, "_ids", ids)
        object.__setattr__(self, "_format", "".join(fields))
        object.__setattr__(self, "_wait_fields", tuple(
            {f.name: getattr(w, f.name) for f in dataclass_fields(w)} for w in self.waits))

    def instantiate(
        self, definition: LoadedDefinition, context: dict[str, Any],
        script_engine: PythonScriptEngine, now: datetime,
    ) -> tuple[str, Callable[[Fragments], BpmnWorkflow], list[tokens.TokenMove],
               list[Waiting]]:
        """A new instance's state document, how to load its workflow, its moves and waits."""
        ids: tuple[str, ...] = self._ids  # type: ignore[attr-defined]
        new = uuid4_texts(len(ids))
        fresh = dict(zip(ids, new, strict=True))
        text = self._format.format(  # type: ignore[attr-defined]
            *new, data=dump_data(context),
            keys=json.dumps(list(context), separators=(",", ":")))

        def load(fragments: Fragments) -> BpmnWorkflow:
            workflow = load_state(text, definition.spec, definition.subprocess_specs,
                                  shared_ids=True, fragments=fragments)
            workflow.script_engine = script_engine
            return workflow

        # Made directly (dataclasses.replace inspects the fields on every call).
        moves = [tokens.TokenMove(m.step_id, m.kind, fresh[m.task_id]) for m in self.moves]
        waits = [Waiting(**{**fields, "task_id": fresh[w.task_id], "since": now})
                 for w, fields in zip(self.waits, self._wait_fields,  # type: ignore[attr-defined]
                                      strict=True)]
        return text, load, moves, waits


def _escape(piece: str) -> str:
    """A piece of the state text as literal text of a format string, its holes as fields."""
    text = piece.replace("{", "{{").replace("}", "}}")
    return text.replace(_DATA, "{data}").replace(_KEYS, "{keys}")


def uuid4_texts(n: int) -> list[str]:
    """`n` random (version 4) UUIDs as text, as `str(uuid.uuid4())` writes them: from one
    read of the system's random source instead of one per id."""
    raw = bytearray(os.urandom(16 * n))
    out = []
    for i in range(0, 16 * n, 16):
        raw[i + 6] = (raw[i + 6] & 0x0F) | 0x40  # version 4
        raw[i + 8] = (raw[i + 8] & 0x3F) | 0x80  # RFC 4122 variant
        h = raw[i:i + 16].hex()
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def build(
    definition: LoadedDefinition, script_engine: PythonScriptEngine, limits: Limits,
    now: datetime,
) -> FirstWait | None:
    """The definition's first-wait template, or None when starts must run the normal way."""
    probe = _Probe(script_engine)
    marker = {_MARK: uuid.uuid4().hex}
    workflow = BpmnWorkflow(definition.spec, definition.subprocess_specs, script_engine=probe)
    workflow.task_tree.data.update(marker)
    with budget(limits) as spent:
        try:
            run_engine_steps(workflow)
        except Exception:  # the normal path reports (or parks) the failure
            return None
    if (probe.used or workflow.completed or tokens.timer_dues(workflow)
            or held.message_catches(workflow)):
        return None
    tokens.drop_uncaught(workflow)
    text = dump_state(workflow)
    text = text.replace(dump_data(marker), _DATA).replace(f'"deletions":["{_MARK}"]',
                                                          f'"deletions":{_KEYS}')
    if _MARK in text or marker[_MARK] in text:
        return None  # the data was changed on the way: not a plain copy of the start data
    moves = tokens.moves({}, workflow, None, "completed")
    waits = tokens.waits(workflow, definition.steps, {}, now)
    if any(w.kind != "user" or w.task_id not in text for w in waits) \
            or any(m.task_id not in text for m in moves):
        return None
    return FirstWait(text, spent.steps, tuple(moves), tuple(waits))
