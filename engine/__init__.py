"""nextmove's engine: definitions, runtime on SpiffWorkflow, store.

    from engine import Engine, ProspectRef
    engine = Engine("nextmove.db")
    engine.deploy(["processes/lifevantage"])
    engine.start("prospect_journey", prospect_id="p1", distributor_id="d1")
    engine.complete(ProspectRef("p1"), "add_contact")
"""

from engine.clock import Clock, ManualClock, SystemClock
from engine.definitions import LoadReport, ProcessDefinition, load, load_definitions
from engine.errors import (
    AmbiguousInstance,
    DefinitionError,
    DefinitionErrors,
    DefinitionNotFound,
    EngineRuntimeError,
    ExecutionError,
    ExpressionError,
    InstanceNotFound,
    NextmoveError,
    Problem,
    StepNotWaiting,
    StepRequired,
    VersionConflict,
)
from engine.runtime import (
    DeployedDefinition,
    Engine,
    Instance,
    InstanceDetail,
    ProspectRef,
    StepEvent,
    Waiting,
)
from engine.store import Store, StoreError

__all__ = [
    "AmbiguousInstance",
    "Clock",
    "DefinitionError",
    "DefinitionErrors",
    "DefinitionNotFound",
    "DeployedDefinition",
    "Engine",
    "EngineRuntimeError",
    "ExecutionError",
    "ExpressionError",
    "Instance",
    "InstanceDetail",
    "InstanceNotFound",
    "LoadReport",
    "ManualClock",
    "NextmoveError",
    "Problem",
    "ProcessDefinition",
    "ProspectRef",
    "StepEvent",
    "StepNotWaiting",
    "StepRequired",
    "Store",
    "StoreError",
    "SystemClock",
    "VersionConflict",
    "Waiting",
    "load",
    "load_definitions",
]
