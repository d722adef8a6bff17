"""Plain typed data describing process maps, whatever file they came from.

A `ProcessMap` is read straight from BPMN XML (YAML maps are compiled to BPMN first), so one
model serves validation, cards, compliance checks and pictures, and none of them needs
SpiffWorkflow. A `ProcessDefinition` is what gets deployed: one executable process plus every
BPMN document needed to build its SpiffWorkflow spec.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.definitions.data import DataDeclaration
    from engine.definitions.outcomes import Measures

NEXTMOVE_NS = "http://nextmove.dev/schema/bpmn/1.0"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"

# Step properties nextmove understands, with the same names in every dialect.
STEP_PROPERTIES = ("hook", "card", "control", "basis", "role", "ack")
CONTROL_VALUES = ("guidance", "required")

HUMAN_TYPES = frozenset({"userTask", "manualTask"})
GATEWAY_TYPES = frozenset({
    "exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway",
    "complexGateway",
})


@dataclass(frozen=True)
class Step:
    """One flow node of a process: a task, an event or a gateway."""

    id: str
    name: str
    type: str  # BPMN element local name: userTask, exclusiveGateway, boundaryEvent, ...
    process: str  # id of the process or embedded subprocess that directly contains it
    line: int | None = None
    properties: Mapping[str, str] = field(default_factory=dict)
    event: str | None = None  # timer, message, signal, error, escalation, terminate, ...
    timer: str | None = None  # the timer expression as written
    timer_kind: str | None = None  # timeDuration, timeDate or timeCycle
    message: str | None = None  # message name for message events and receive tasks
    # how long an event for `message` is held for its prospect (docs/messages.md)
    message_ttl: str | None = None
    attached_to: str | None = None  # host step of a boundary event
    interrupting: bool = True
    called: str | None = None  # calledElement of a call activity
    default_flow: str | None = None
    event_subprocess: bool = False  # a subProcess started by an event, not by a flow
    cardinality: str | None = None  # a multi-instance activity's loopCardinality, as written

    @property
    def hook(self) -> str | None:
        return self.properties.get("hook") or None

    @property
    def card(self) -> str | None:
        return self.properties.get("card") or None

    @property
    def control(self) -> str:
        return self.properties.get("control") or "guidance"

    @property
    def basis(self) -> str | None:
        return self.properties.get("basis") or None

    @property
    def role(self) -> str:
        return self.properties.get("role") or "distributor"

    @property
    def is_human(self) -> bool:
        """Waits on a person (the contractor or their sponsor)."""
        return self.type in HUMAN_TYPES

    @property
    def is_gateway(self) -> bool:
        return self.type in GATEWAY_TYPES

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "name": self.name, "type": self.type}
        for key in ("event", "timer", "message", "message_ttl", "attached_to", "called"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.type == "boundaryEvent":
            out["interrupting"] = self.interrupting
        if self.properties:
            out["properties"] = dict(self.properties)
        return out


@dataclass(frozen=True)
class Flow:
    """A sequence flow between two steps."""

    id: str
    source: str
    target: str
    process: str
    condition: str | None = None
    line: int | None = None
    name: str | None = None


@dataclass(frozen=True)
class ProcessMap:
    """A process (or embedded subprocess) as drawn: steps and flows, no execution semantics."""

    id: str
    name: str
    file: str | None
    line: int | None
    executable: bool
    steps: tuple[Step, ...]
    flows: tuple[Flow, ...]
    subprocesses: tuple[ProcessMap, ...] = ()
    data: DataDeclaration | None = None  # None: the file declares no data (docs/data.md)
    data_issues: tuple[tuple[str, int | None], ...] = ()  # unreadable declarations
    # the `outcomes` and `indicators` properties (engine.definitions.outcomes); None: none
    measures: Measures | None = None

    def step(self, step_id: str) -> Step | None:
        for step in self.all_steps():
            if step.id == step_id:
                return step
        return None

    def all_steps(self) -> list[Step]:
        """Steps of this process and, recursively, of its embedded subprocesses."""
        steps = list(self.steps)
        for sub in self.subprocesses:
            steps.extend(sub.all_steps())
        return steps

    def hooks(self) -> dict[str, list[Step]]:
        used: dict[str, list[Step]] = {}
        for step in self.all_steps():
            if step.hook:
                used.setdefault(step.hook, []).append(step)
        return used


@dataclass(frozen=True)
class ProcessDefinition:
    """A deployable process: its map plus the BPMN documents its spec is built from.

    `documents` maps a document name to BPMN XML bytes: the file holding the process and any
    files holding processes it calls. `source_file` is what the designer edited (BPMN or YAML).
    """

    process_id: str
    name: str
    source_file: str
    source_format: str  # "bpmn" or "yaml"
    map: ProcessMap
    documents: Mapping[str, bytes]
    called: tuple[str, ...] = ()
    called_maps: tuple[ProcessMap, ...] = ()

    @property
    def content_hash(self) -> str:
        """Identifies the content: same documents and process id, same hash."""
        digest = hashlib.sha256(self.process_id.encode())
        for name in sorted(self.documents):
            digest.update(b"\0" + hashlib.sha256(self.documents[name]).digest())
        return digest.hexdigest()

    def step(self, step_id: str) -> Step | None:
        found = self.map.step(step_id)
        if found is None:
            for called in self.called_maps:
                found = called.step(step_id)
                if found is not None:
                    break
        return found

    def all_steps(self) -> list[Step]:
        steps = self.map.all_steps()
        for called in self.called_maps:
            steps.extend(called.all_steps())
        return steps
