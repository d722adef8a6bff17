"""Running instances: one per prospect, one transaction per step."""

from engine.runtime.bulk import BadRow, BulkStart, start_csv
from engine.runtime.engine import Engine
from engine.runtime.model import (
    Along,
    BroadcastResult,
    DeployedDefinition,
    Fired,
    HeldEvent,
    Instance,
    InstanceDetail,
    InstanceRef,
    NewProspect,
    ProspectRef,
    SignalResult,
    Started,
    StepEvent,
    Waiting,
)

__all__ = [
    "Along",
    "BadRow",
    "BroadcastResult",
    "BulkStart",
    "DeployedDefinition",
    "Engine",
    "Fired",
    "HeldEvent",
    "Instance",
    "InstanceDetail",
    "InstanceRef",
    "NewProspect",
    "ProspectRef",
    "SignalResult",
    "Started",
    "StepEvent",
    "Waiting",
    "start_csv",
]
