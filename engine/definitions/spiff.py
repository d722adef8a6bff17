"""Build SpiffWorkflow specs from our definitions with one parser for every BPMN dialect.

`NextmoveParser` is SpiffWorkflow's `SpiffBpmnParser` with every task parser's
`parse_extensions` reading step properties from any dialect (so `task_spec.extensions` holds
hook/card/control/basis whichever modeler wrote the file), and plain ISO 8601 timers
(`P2D`, as modelers write them) quoted so Spiff's expression-evaluating timers accept them;
timers read the engine's injectable clock (`timers.py`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser, full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.specs.defaults import NoneTask

from engine._spiff_private import spiff_extensions
from engine.definitions._data_checks import declaration_for
from engine.definitions._xml import parse_xml
from engine.definitions.data import DataDeclaration
from engine.definitions.extract import read_maps, read_properties
from engine.definitions.model import ProcessMap
from engine.definitions.timers import with_clock
from engine.durations import is_timer_literal
from engine.errors import DefinitionError


class _DialectMixin:
    """Reads properties from all dialects and normalizes timer literals."""

    node: etree._Element

    def parse_extensions(self, node: etree._Element | None = None) -> dict[str, Any]:
        node = self.node if node is None else node
        extensions: dict[str, Any] = spiff_extensions(node)  # preScript etc. for Spiff files
        extensions["properties"] = read_properties(node)
        return extensions

    def parse_timer_event(self, event: etree._Element) -> Any:
        definition = with_clock(super().parse_timer_event(event))  # type: ignore[misc]
        text = (definition.expression or "").strip()
        if is_timer_literal(text):
            definition.expression = repr(text)
        return definition


def _with_dialects(classes: dict[str, tuple[type, type]]) -> dict[str, tuple[type, type]]:
    return {
        tag: (type(f"Nextmove{parser.__name__}", (_DialectMixin, parser), {}), spec)
        for tag, (parser, spec) in classes.items()
    }


class AutomaticTask(NoneTask):  # type: ignore[misc]
    """A plain `bpmn:task`: nobody waits on it, the token passes through (as in Camunda)."""

    def __init__(self, wf_spec: Any, bpmn_id: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = False


_TASK = full_tag("task")


class NextmoveParser(SpiffBpmnParser):  # type: ignore[misc]
    OVERRIDE_PARSER_CLASSES = _with_dialects({
        **BpmnParser.PARSER_CLASSES,
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        _TASK: (SpiffBpmnParser.OVERRIDE_PARSER_CLASSES[_TASK][0], AutomaticTask),
    })


_REPR = re.compile(r"<Element (?:\{[^}]*\})?([\w.-]+) at 0x[0-9a-fA-F]+>")
_TRAILING_ID = re.compile(r":\s*([A-Za-z_][\w.-]*)\s*$")


def readable(message: str) -> str:
    """Spiff's message without Python reprs of lxml elements (`<Element {ns}x at 0x..>`)."""
    return _REPR.sub(lambda m: f"<{m.group(1)}>", message)


def spiff_problem(exc: Exception, default_file: str | None,
                  trees: Mapping[str, etree._ElementTree] | None = None) -> DefinitionError:
    """Turn a SpiffWorkflow parse failure into our error with file, line and element; when
    Spiff gives no element, the id its message names is looked up in `trees` (file -> XML)."""
    if isinstance(exc, ValidationException):
        message = readable(str(exc.args[0]) if exc.args else str(exc))
        line = exc.line_number if isinstance(exc.line_number, int) else None
        file, element = exc.file_name or default_file, exc.id or None
        if line is None and trees:
            named = element or (m.group(1) if (m := _TRAILING_ID.search(message)) else None)
            found = _locate(trees, named) if named else None
            if found is not None:
                file, line, element = found
        return DefinitionError(message, file=file, line=line, element=element, code="spiff")
    return DefinitionError(f"cannot build the process: {readable(str(exc))}",
                           file=default_file, code="spiff")


def _locate(trees: Mapping[str, etree._ElementTree], ident: str
            ) -> tuple[str, int | None, str] | None:
    for name, tree in trees.items():
        for node in tree.iter():
            if isinstance(node.tag, str) and node.get("id") == ident:
                return name, node.sourceline, ident
    return None


def build_spec(
    process_id: str, documents: Mapping[str, bytes], source_file: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """The SpiffWorkflow spec and subprocess specs of a process (callers cache the result)."""
    parser = NextmoveParser()
    declared: dict[str, DataDeclaration] = {}
    trees: dict[str, etree._ElementTree] = {}
    try:
        for name, xml in documents.items():
            tree = trees[name] = parse_xml(xml, name)
            parser.add_bpmn_xml(tree.getroot(), filename=name)
            declared.update(_declarations(read_maps(tree, name)))
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except DefinitionError:
        raise
    except Exception as exc:  # Spiff raises many types; all mean "this map cannot be built"
        raise spiff_problem(exc, source_file, trees) from exc
    # The safe script engine reads each process's declared data from its spec.
    for key, each in (("", spec), *subprocess_specs.items()):
        each.nextmove_data = declared.get(key or process_id)
    return spec, subprocess_specs


def _declarations(maps: list[ProcessMap]) -> dict[str, DataDeclaration]:
    """Process or embedded subprocess id -> the declared data its expressions read."""
    out: dict[str, DataDeclaration] = {}
    for pmap in maps:
        found = declaration_for(pmap)
        out[pmap.id] = found
        todo = list(pmap.subprocesses)
        while todo:
            sub = todo.pop()
            out.setdefault(sub.id, found)
            todo.extend(sub.subprocesses)
    return out
