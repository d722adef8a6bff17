"""Running instances: one per prospect, one transaction per step."""

from engine.runtime.engine import Engine
from engine.runtime.model import (
    DeployedDefinition,
    Fired,
    Instance,
    InstanceDetail,
    InstanceRef,
    ProspectRef,
    SignalResult,
    StepEvent,
    Waiting,
)

__all__ = [
    "DeployedDefinition",
    "Engine",
    "Fired",
    "Instance",
    "InstanceDetail",
    "InstanceRef",
    "ProspectRef",
    "SignalResult",
    "StepEvent",
    "Waiting",
]
