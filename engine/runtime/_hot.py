"""An instance as a step needs it, kept deserialized between steps by the pipeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow

from engine.runtime import queries
from engine.runtime.model import Instance, Waiting
from engine.runtime.state import Fragments
from engine.store.visits import Visits


class Hot:
    """An instance as a step needs it: its row (without the state), the workflow, the row's
    waiting and context columns already parsed, and its tasks' text as last serialized. The
    workflow may be given as how to load it, filling the fragments it is given (a fast start:
    deserialized only if a step comes while it is cached). `visits`: the row's visit state
    already parsed, when known."""

    __slots__ = ("_load", "_visits", "_workflow", "context", "fragments", "header", "waits")

    def __init__(
        self, header: dict[str, Any], workflow: BpmnWorkflow | Callable[[Fragments], BpmnWorkflow],
        waits: list[Waiting], context: dict[str, Any], fragments: Fragments | None = None,
        visits: Visits | None = None,
    ) -> None:
        self.header = header
        self._visits = visits
        self.waits = waits
        self.context = context
        # The workflow's tasks as its last dump wrote them (`state.dump_state`).
        self.fragments: Fragments = {} if fragments is None else fragments
        self._workflow: BpmnWorkflow | None = None
        self._load: Callable[[Fragments], BpmnWorkflow] | None = None
        if isinstance(workflow, BpmnWorkflow):
            self._workflow = workflow
        else:
            self._load = workflow

    @property
    def workflow(self) -> BpmnWorkflow:
        if self._workflow is None:
            assert self._load is not None
            self._workflow, self._load = self._load(self.fragments), None
        return self._workflow

    def visits(self) -> Visits:
        """The row's visit state, for a step to record into (a copy of the kept one: a step
        that is not written leaves it as it was)."""
        if self._visits is None:
            return Visits.load(self.header["visits"])
        return self._visits.copy()

    @property
    def completed(self) -> bool:
        return self.header.get("status") == "completed"

    def instance(self) -> Instance:
        return queries.to_instance(self.header, self.waits, dict(self.context))
