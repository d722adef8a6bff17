"""Small records shared by the step transaction and the actions that feed it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Acted:
    """What an action did to a workflow: the person's task (if any) and what to record."""

    task_id: str | None = None
    kind: str = "completed"
    actor: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    data_kinds: tuple[str, ...] = ()  # also attach `data` to moves of these kinds
    content_used: str | None = None
    move_data: dict[str, dict[str, Any]] = field(default_factory=dict)  # by task id: wins




class NotWaiting(Exception):
    """The instance no longer waits for what the action needs."""


class HeldChanged(Exception):
    """The prospect's held events changed since the step read them: redo it on fresh state."""


class DuplicateReceipt(Exception):
    """The message id was already applied to this instance (a racing duplicate)."""


class Stale(Exception):
    """A cached instance may be out of date: redo the step from the database."""
