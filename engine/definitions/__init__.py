"""Process maps: BPMN and YAML files → checked, deployable definitions.

    load(paths) -> LoadReport              every problem, never raises for a bad file
    load_definitions(paths)                the definitions, or DefinitionErrors
    build_spec(process_id, documents)      the SpiffWorkflow spec of a definition
    parse_xml(data, file)                  untrusted XML parsed safely (no DTDs, bounded size)

Names are imported when first used (PEP 562): `from engine.definitions.model import ...` or
reading stored step metadata loads neither the BPMN parser (SpiffWorkflow, lxml) nor the schema
checks, so commands that only read the store start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine._lazy import lazy_names

if TYPE_CHECKING:
    from engine.definitions._xml import parse_xml
    from engine.definitions.loader import LoadReport, discover, load, load_definitions
    from engine.definitions.model import (
        NEXTMOVE_NS,
        STEP_PROPERTIES,
        Flow,
        ProcessDefinition,
        ProcessMap,
        Step,
    )
    from engine.definitions.spiff import NextmoveParser, build_spec

_WHERE = {
    "NEXTMOVE_NS": "engine.definitions.model",
    "STEP_PROPERTIES": "engine.definitions.model",
    "Flow": "engine.definitions.model",
    "LoadReport": "engine.definitions.loader",
    "NextmoveParser": "engine.definitions.spiff",
    "ProcessDefinition": "engine.definitions.model",
    "ProcessMap": "engine.definitions.model",
    "Step": "engine.definitions.model",
    "build_spec": "engine.definitions.spiff",
    "discover": "engine.definitions.loader",
    "load": "engine.definitions.loader",
    "load_definitions": "engine.definitions.loader",
    "parse_xml": "engine.definitions._xml",
}

__all__ = [
    "NEXTMOVE_NS",
    "STEP_PROPERTIES",
    "Flow",
    "LoadReport",
    "NextmoveParser",
    "ProcessDefinition",
    "ProcessMap",
    "Step",
    "build_spec",
    "discover",
    "load",
    "load_definitions",
    "parse_xml",
]


__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
