"""nextmove's engine: definitions, runtime on SpiffWorkflow, store.

Open it with `nextmove.open_engine`, which prepares the database and gives the engine its
recommender and content catalogs (the engine imports neither: it defines what it needs in
`engine.recommend` and `engine.catalogs`)::

    from engine import ProspectRef
    from nextmove import open_engine
    engine = open_engine("nextmove.db")
    engine.deploy(["processes/lifevantage"])
    engine.start("prospect_journey", prospect_id="p1", distributor_id="d1")
    engine.cards("d1")[0].content          # the recommended content, best first
    engine.complete(ProspectRef("p1"), "add_contact")
"""

from engine.catalogs import CatalogSupport
from engine.clock import Clock, ManualClock, SystemClock
from engine.definitions import LoadReport, ProcessDefinition, load, load_definitions
from engine.errors import (
    AmbiguousInstance,
    DefinitionError,
    DefinitionErrors,
    DefinitionNotFound,
    EngineRuntimeError,
    ErrorCode,
    ExecutionError,
    ExpressionError,
    InstanceIncident,
    InstanceNotFound,
    InvalidInput,
    MigrationRefused,
    NextmoveError,
    Problem,
    StepNotWaiting,
    StepRequired,
    VersionConflict,
)
from engine.limits import DEFAULT_LIMITS, Limits, WorkLimitExceeded
from engine.recommend import Ranking, Recommender
from engine.runtime import (
    DeployedDefinition,
    Engine,
    Instance,
    InstanceDetail,
    ProspectRef,
    StepEvent,
    Waiting,
)
from engine.store import Prepared, Store, StoreError

__all__ = [
    "AmbiguousInstance",
    "CatalogSupport",
    "Clock",
    "DefinitionError",
    "DefinitionErrors",
    "DefinitionNotFound",
    "DeployedDefinition",
    "Engine",
    "EngineRuntimeError",
    "ErrorCode",
    "ExecutionError",
    "ExpressionError",
    "DEFAULT_LIMITS",
    "Instance",
    "InstanceDetail",
    "InstanceIncident",
    "InstanceNotFound",
    "InvalidInput",
    "Limits",
    "LoadReport",
    "ManualClock",
    "MigrationRefused",
    "NextmoveError",
    "Problem",
    "ProcessDefinition",
    "Prepared",
    "ProspectRef",
    "Ranking",
    "Recommender",
    "StepEvent",
    "StepNotWaiting",
    "StepRequired",
    "Store",
    "StoreError",
    "SystemClock",
    "VersionConflict",
    "Waiting",
    "WorkLimitExceeded",
    "load",
    "load_definitions",
]
