"""Process maps: BPMN and YAML files → checked, deployable definitions.

    load(paths) -> LoadReport              every problem, never raises for a bad file
    load_definitions(paths)                the definitions, or DefinitionErrors
    build_spec(process_id, documents)      the SpiffWorkflow spec of a definition
    parse_xml(data, file)                  untrusted XML parsed safely (no DTDs, bounded size)
"""

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
