"""An instance as a step needs it, kept deserialized between steps by the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow

from engine.runtime import queries
from engine.runtime.model import Instance, Waiting


@dataclass
class Hot:
    """An instance as a step needs it: its row (without the state), the workflow, and the
    row's waiting and context columns already parsed."""

    header: dict[str, Any]
    workflow: BpmnWorkflow
    waits: list[Waiting]
    context: dict[str, Any]

    def instance(self) -> Instance:
        return queries.to_instance(self.header, self.waits, dict(self.context))
