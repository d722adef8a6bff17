"""Running instances: one per prospect, one transaction per step.

Names are imported when first used (PEP 562): `engine.runtime.cards` and the records of
`engine.runtime.model` load without the engine, SQLAlchemy or SpiffWorkflow (`nextmove cards`
builds its cards with them from a read-only sqlite3 connection).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine._lazy import lazy_names

if TYPE_CHECKING:
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
        Retirement,
        SignalResult,
        Started,
        StepEvent,
        Waiting,
    )

_MODEL = "engine.runtime.model"
_WHERE = {
    "BadRow": "engine.runtime.bulk",
    "BulkStart": "engine.runtime.bulk",
    "start_csv": "engine.runtime.bulk",
    "Engine": "engine.runtime.engine",
    **dict.fromkeys((
        "Along", "BroadcastResult", "DeployedDefinition", "Fired", "HeldEvent", "Instance",
        "InstanceDetail", "InstanceRef", "NewProspect", "ProspectRef", "Retirement", "SignalResult",
        "Started", "StepEvent", "Waiting"), _MODEL),
}

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
    "Retirement",
    "SignalResult",
    "Started",
    "StepEvent",
    "Waiting",
    "start_csv",
]

__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
