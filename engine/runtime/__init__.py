"""Running instances: one per prospect, one transaction per step."""

from engine.runtime.engine import Engine
from engine.runtime.model import (
    DeployedDefinition,
    Instance,
    InstanceDetail,
    InstanceRef,
    ProspectRef,
    StepEvent,
    Waiting,
)

__all__ = [
    "DeployedDefinition",
    "Engine",
    "Instance",
    "InstanceDetail",
    "InstanceRef",
    "ProspectRef",
    "StepEvent",
    "Waiting",
]
