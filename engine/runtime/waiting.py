"""A step an instance waits at, as stored in its `waiting` column: the one record the action
cards are built from, in a module of its own so `nextmove cards` imports it without the rest
of the runtime's records (`engine.runtime.model` re-exports it)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Waiting:
    """A step an instance waits at: a person's step, a timer, a message or a signal."""

    step_id: str
    name: str
    kind: str  # user | timer | message | signal
    since: datetime
    task_id: str
    hook: str | None = None
    role: str | None = None
    control: str | None = None
    due_at: datetime | None = None
    message: str | None = None
    attached_to: str | None = None  # boundary events: the step they watch
    signal: str | None = None  # the BPMN signal a signal catch waits for
    recommendation: dict[str, Any] | None = None  # the ranking made when the step was entered
    stuck_since: datetime | None = None  # a stuck timer watching this step fired then

    def to_dict(self) -> dict[str, Any]:
        # Written out rather than `asdict`, which deep-copies: this runs on every step.
        out: dict[str, Any] = {"step_id": self.step_id, "name": self.name, "kind": self.kind,
                               "since": self.since.isoformat(), "task_id": self.task_id}
        for key in ("hook", "role", "control", "message", "attached_to", "signal"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.due_at is not None:
            out["due_at"] = self.due_at.isoformat()
        if self.recommendation is not None:
            out["recommendation"] = copy.deepcopy(self.recommendation)
        if self.stuck_since is not None:
            out["stuck_since"] = self.stuck_since.isoformat()
        return out

    @classmethod
    def from_dict(cls, dct: dict[str, Any]) -> Waiting:
        values = dict(dct)
        values["since"] = datetime.fromisoformat(values["since"])
        for key in ("due_at", "stuck_since"):
            if values.get(key):
                values[key] = datetime.fromisoformat(values[key])
        return cls(**values)
