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

Names are imported when first used (PEP 562), so `from engine.errors import ErrorCode` or
`from engine import NextmoveError` does not load SpiffWorkflow and SQLAlchemy: the command line
starts fast and imports the runtime only for the commands that run it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine._lazy import lazy_names

if TYPE_CHECKING:
    from engine.catalogs import CatalogSupport
    from engine.clock import Clock, ManualClock, SystemClock
    from engine.definitions import LoadReport, ProcessDefinition, load, load_definitions
    from engine.errors import (
        AlreadyRecorded,
        AmbiguousInstance,
        BeforeLastStep,
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
        NotInData,
        Problem,
        ProcessRetired,
        StepNotWaiting,
        StepRequired,
        UnknownContent,
        UnknownHook,
        UnknownMessage,
        UnknownSignal,
        UnknownStep,
        VersionConflict,
    )
    from engine.limits import DEFAULT_LIMITS, Limits, WorkLimitExceeded
    from engine.recommend import Ranking, Recommender
    from engine.runtime import (
        Along,
        DeployedDefinition,
        Engine,
        Instance,
        InstanceDetail,
        ProspectRef,
        StepEvent,
        Waiting,
    )
    from engine.store import Prepared, Store, StoreError

_WHERE = {
    "AlreadyRecorded": "engine.errors",
    "Along": "engine.runtime",
    "AmbiguousInstance": "engine.errors",
    "BeforeLastStep": "engine.errors",
    "CatalogSupport": "engine.catalogs",
    "Clock": "engine.clock",
    "DEFAULT_LIMITS": "engine.limits",
    "DefinitionError": "engine.errors",
    "DefinitionErrors": "engine.errors",
    "DefinitionNotFound": "engine.errors",
    "DeployedDefinition": "engine.runtime",
    "Engine": "engine.runtime",
    "EngineRuntimeError": "engine.errors",
    "ErrorCode": "engine.errors",
    "ExecutionError": "engine.errors",
    "ExpressionError": "engine.errors",
    "Instance": "engine.runtime",
    "InstanceDetail": "engine.runtime",
    "InstanceIncident": "engine.errors",
    "InstanceNotFound": "engine.errors",
    "InvalidInput": "engine.errors",
    "Limits": "engine.limits",
    "LoadReport": "engine.definitions",
    "ManualClock": "engine.clock",
    "MigrationRefused": "engine.errors",
    "NextmoveError": "engine.errors",
    "NotInData": "engine.errors",
    "Prepared": "engine.store",
    "Problem": "engine.errors",
    "ProcessRetired": "engine.errors",
    "ProcessDefinition": "engine.definitions",
    "ProspectRef": "engine.runtime",
    "Ranking": "engine.recommend",
    "Recommender": "engine.recommend",
    "StepEvent": "engine.runtime",
    "StepNotWaiting": "engine.errors",
    "StepRequired": "engine.errors",
    "Store": "engine.store",
    "StoreError": "engine.store",
    "UnknownContent": "engine.errors",
    "UnknownHook": "engine.errors",
    "UnknownMessage": "engine.errors",
    "UnknownSignal": "engine.errors",
    "UnknownStep": "engine.errors",
    "SystemClock": "engine.clock",
    "VersionConflict": "engine.errors",
    "Waiting": "engine.runtime",
    "WorkLimitExceeded": "engine.limits",
    "load": "engine.definitions",
    "load_definitions": "engine.definitions",
}

__all__ = [
    "AlreadyRecorded",
    "Along",
    "AmbiguousInstance",
    "BeforeLastStep",
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
    "NotInData",
    "Problem",
    "ProcessRetired",
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
    "UnknownContent",
    "UnknownHook",
    "UnknownMessage",
    "UnknownSignal",
    "UnknownStep",
    "VersionConflict",
    "Waiting",
    "WorkLimitExceeded",
    "load",
    "load_definitions",
]


__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
