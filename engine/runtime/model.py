"""What the runtime hands out: plain frozen records, never ORM rows or Spiff objects."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.runtime.waiting import Waiting as Waiting  # its own module: cards load only it

if TYPE_CHECKING:
    from sqlalchemy import Table

    from engine.errors import Problem


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@dataclass(frozen=True)
class ProspectRef:
    """An instance named the way integrators think: by prospect (and process if ambiguous)."""

    prospect_id: str
    process_id: str | None = None

    def __str__(self) -> str:
        suffix = f" in process {self.process_id!r}" if self.process_id else ""
        return f"prospect {self.prospect_id!r}{suffix}"


InstanceRef = int | ProspectRef


@dataclass(frozen=True)
class NewProspect:
    """One prospect to start a process for (see `Engine.start_many`)."""

    prospect_id: str
    distributor_id: str
    context: Mapping[str, Any] = field(default_factory=dict)  # sponsor_id goes here too


@dataclass(frozen=True)
class Instance:
    id: int
    process_id: str
    definition_id: int
    definition_version: int
    prospect_id: str
    distributor_id: str
    status: str
    context: dict[str, Any]
    waiting: tuple[Waiting, ...]
    next_due_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def waiting_steps(self) -> list[str]:
        return [w.step_id for w in self.waiting]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "process": self.process_id,
            "definition_id": self.definition_id,
            "definition_version": self.definition_version,
            "prospect": self.prospect_id,
            "distributor": self.distributor_id,
            "status": self.status,
            "context": self.context,
            "waiting": [w.to_dict() for w in self.waiting],
            "next_due_at": _iso(self.next_due_at),
            "version": self.version,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True)
class Started:
    """What `Engine.start_many` did for one prospect: a new instance, or their active one."""

    instance: Instance
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {**self.instance.to_dict(), "created": self.created}


@dataclass(frozen=True)
class StepEvent:
    id: int
    instance_id: int
    step_id: str
    step_name: str
    kind: str
    at: datetime
    actor: str | None = None
    data: dict[str, Any] | None = None
    hook: str | None = None
    content_shown: str | None = None
    content_used: str | None = None
    propensity: float | None = None
    policy_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        out["at"] = _iso(self.at)
        return out


@dataclass(frozen=True)
class DeployedDefinition:
    id: int
    process_id: str
    version: int
    name: str
    content_hash: str
    source_file: str
    deployed_at: datetime
    created: bool = False  # False when identical content was already deployed
    reinstated: bool = False  # the deploy ended the process's retirement
    retired_at: datetime | None = None  # listed: this version's retirement, if in force

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["deployed_at"] = _iso(self.deployed_at)
        out["retired_at"] = _iso(self.retired_at) if self.retired_at else None
        return out


@dataclass(frozen=True)
class Retirement:
    """A process's open retirement; `created` False when it was retired before."""

    process_id: str
    version: int  # the version that was newest when it was retired
    actor: str | None
    reason: str
    at: datetime
    running: int  # its instances still active (they go on)
    created: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "version": self.version, "actor": self.actor,
                "reason": self.reason, "retired_at": self.at.isoformat(),
                "running": self.running, "created": self.created}


class Deployment(list[DeployedDefinition]):
    """The process versions a deploy produced; `.catalogs`: what `CatalogSupport.deploy`
    stored; `.warnings`: what the maps and catalogs were warned of (`engine.errors.Problem`s
    of severity "warning", e.g. an unknown step property), deployed all the same."""

    def __init__(self, definitions: Iterable[DeployedDefinition] = (),
                 warnings: Iterable[Problem] = ()) -> None:
        super().__init__(definitions)
        self.catalogs: list[Any] = []
        self.warnings: list[Problem] = list(warnings)


@dataclass(frozen=True)
class HeldEvent:
    """A prospect event that came before anything waited for it (see `engine.runtime.held`):
    `held` until a catch starts waiting for it (then `delivered`, to `instance_id`) or until
    `expires_at` passes (`expired`). `unmatched`: recorded before events were held.
    `incident`: its delivery to `instance_id` failed; the instance's `retry` delivers it."""

    message: str
    message_id: str
    prospect_id: str
    status: str  # held | delivered | expired | unmatched | incident
    received_at: datetime
    expires_at: datetime | None = None
    settled_at: datetime | None = None
    instance_id: int | None = None
    data: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("received_at", "expires_at", "settled_at"):
            out[key] = _iso(getattr(self, key))
        return out


@dataclass(frozen=True)
class InstanceDetail:
    """An instance with its history and its prospect's held events, for `show`."""

    instance: Instance
    history: tuple[StepEvent, ...] = field(default_factory=tuple)
    held: tuple[HeldEvent, ...] = field(default_factory=tuple)

    @property
    def incident(self) -> StepEvent | None:
        """The incident the instance is in (its latest `incident` event), if it is in one."""
        if self.instance.status != "incident":
            return None
        return next((e for e in reversed(self.history) if e.kind == "incident"), None)

    def to_dict(self) -> dict[str, Any]:
        out = self.instance.to_dict()
        found = self.incident
        out["incident"] = found.to_dict() if found is not None else None
        out["history"] = [e.to_dict() for e in self.history]
        out["held_events"] = [e.to_dict() for e in self.held]
        return out


@dataclass(frozen=True)
class Fired:
    """A timer, message or signal that moved an instance."""

    instance_id: int
    prospect_id: str
    process_id: str
    step_id: str
    kind: str  # timer | message | signal
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["at"] = _iso(self.at)
        return out


@dataclass(frozen=True)
class Incident:
    """A step that failed at run time and parked its instance (see `Engine.retry`)."""

    instance_id: int
    step: str | None
    error: str
    limit: str | None = None  # the work limit exceeded, if that was the failure

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TickReport(list[Fired]):
    """What firing due timers really did: the timers and messages that fired (the list),
    `steps` (automatic steps run) and `incidents` (instances parked by a failing step)."""

    def __init__(self, fired: Iterable[Fired] = ()) -> None:
        super().__init__(fired)
        self.steps = 0
        self.incidents: list[Incident] = []

    def merge(self, other: TickReport) -> None:
        self.extend(other)
        self.steps += other.steps
        self.incidents.extend(other.incidents)

    def to_dict(self) -> dict[str, Any]:
        return {"fired": [f.to_dict() for f in self], "steps": self.steps,
                "incidents": [i.to_dict() for i in self.incidents]}


@dataclass(frozen=True)
class SignalResult:
    """What a prospect event did: the instances it moved, or that it is held for the
    prospect until `expires_at` (nothing waited for it yet), or that its id was seen."""

    message: str
    prospect_id: str
    message_id: str
    delivered: tuple[int, ...] = ()
    duplicate: bool = False
    fired: tuple[Fired, ...] = ()
    held: bool = False
    expires_at: datetime | None = None

    @property
    def status(self) -> str:
        """delivered | held | duplicate."""
        return "duplicate" if self.duplicate else "held" if self.held else "delivered"

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "prospect": self.prospect_id,
            "message_id": self.message_id,
            "status": self.status,
            "delivered_to": list(self.delivered),
            "duplicate": self.duplicate,
            "held": self.held,
            "expires_at": _iso(self.expires_at),
            "fired": [f.to_dict() for f in self.fired],
        }


@dataclass(frozen=True)
class BroadcastResult:
    """What a broadcast BPMN signal did: every instance it moved (none: nobody waited)."""

    signal: str
    signal_id: str
    delivered: tuple[int, ...] = ()
    fired: tuple[Fired, ...] = ()
    already: tuple[int, ...] = ()  # instances that had this signal id already
    failed: tuple[int, ...] = ()  # instances whose step failed (nothing written there)

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "signal_id": self.signal_id,
            "delivered_to": list(self.delivered),
            "already_delivered_to": list(self.already),
            "failed": list(self.failed),
            "fired": [f.to_dict() for f in self.fired],
        }


@dataclass(frozen=True)
class Along:
    """A row the caller has written in a step's own transaction, made by `row` from the step's
    result (the `Instance` of a person's step, the `StepEvent` of an outcome) before it
    commits: what must not be lost to a crash between the step and a write of the caller's
    own, such as the service's stored idempotent answers. The step and the row commit
    together or not at all; when `table` already holds the row's key, nothing of the step is
    written and the step raises `AlreadyRecorded`."""

    table: Table
    row: Callable[[Any], dict[str, Any]]
