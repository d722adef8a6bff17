"""Files and folders → deployable definitions, with every problem collected.

BPMN files are parsed safely and checked; YAML maps are validated against their schema and
compiled to BPMN first, and problems found in the compiled map are reported against the YAML
file and line they came from. A YAML file whose top level has `catalog:` is a content catalog:
the `CatalogSupport` given (`engine.catalogs`) reads it and cross-checks the maps against it
(every hook used has content); without one, the file is skipped with a warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lxml import etree

from engine.catalogs import CatalogSupport, HookUses, MapSteps
from engine.definitions._limit_checks import check_limits, check_recursion
from engine.definitions._reminders import add_reminder_timers
from engine.definitions._xml import parse_xml
from engine.definitions.compile import compile_map
from engine.definitions.extract import read_maps
from engine.definitions.model import BPMN_NS, ProcessDefinition, ProcessMap
from engine.definitions.spiff import build_spec
from engine.definitions.validate import check_calls, check_maps
from engine.definitions.yaml_maps import load_yaml_map
from engine.errors import DefinitionError, DefinitionErrors, Problem
from engine.yamlsafe import load_yaml

BPMN_SUFFIXES = (".bpmn", ".bpmn2", ".bpmn20.xml")
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class LoadReport:
    """What loading some paths produced: good definitions, catalogs and every problem."""

    definitions: list[ProcessDefinition] = field(default_factory=list)
    catalogs: list[Any] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    # per YAML map file, compiled element id -> (YAML path, line): where its problems point
    origins: dict[str, Mapping[str, tuple[str, int | None]]] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Document:
    file: str
    fmt: str
    xml: bytes
    maps: list[ProcessMap]
    origins: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Files named directly, plus BPMN and YAML files found under folders."""
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.name.lower().endswith(BPMN_SUFFIXES + YAML_SUFFIXES)
            )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem("no such file or folder", str(path), code="not-found"))
    return files, problems


def _read_bpmn(path: Path) -> _Document:
    name = str(path)
    data = path.read_bytes()
    tree = parse_xml(data, name)
    root = tree.getroot()
    if etree.QName(root).namespace != BPMN_NS or etree.QName(root).localname != "definitions":
        raise DefinitionError(
            f"not a BPMN 2.0 document (root element is {etree.QName(root).localname!r} in "
            f"{etree.QName(root).namespace or 'no namespace'})", file=name, line=root.sourceline,
            code="not-bpmn",
        )
    if add_reminder_timers(root):  # `follow_up` / `stuck_after` set in a modeler
        data = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
    return _Document(name, "bpmn", data, read_maps(tree, name))


def _read_yaml_map(path: Path) -> _Document:
    compiled = compile_map(load_yaml_map(path))
    tree = parse_xml(compiled.xml, str(path))
    return _Document(str(path), "yaml", compiled.xml, read_maps(tree, str(path)),
                     dict(compiled.origins))


def _is_catalog(path: Path) -> bool:
    """A YAML file whose top level names a catalog (a broken file is read as a map)."""
    try:
        head = load_yaml(path.read_text(encoding="utf-8"), str(path)).data
    except (DefinitionError, UnicodeDecodeError):
        return False
    return isinstance(head, dict) and "catalog" in head


def _from_yaml(problem: Problem, doc: _Document) -> Problem:
    """Point a problem found in compiled BPMN back at the YAML path and line."""
    origin = doc.origins.get(problem.element or "")
    if doc.fmt != "yaml":
        return problem
    if origin is None:
        return replace(problem, line=None)
    path, line = origin
    return replace(problem, element=path or problem.element, line=line)


def load(
    paths: Iterable[str | Path], *, allow_scripts: bool = False, build: bool = True,
    catalogs: CatalogSupport | None = None,
) -> LoadReport:
    """Load and check everything under `paths`; never raises for a bad file. Content catalogs
    are read and cross-checked by `catalogs` (`nextmove.load` passes the content catalog's)."""
    report = LoadReport()
    files, report.problems = discover(paths)
    documents: list[_Document] = []
    for path in files:
        report.files.append(str(path))
        try:
            if path.name.lower().endswith(YAML_SUFFIXES):
                if _is_catalog(path):
                    if catalogs is None:
                        report.problems.append(_skipped_catalog(path))
                    else:
                        report.catalogs.append(catalogs.load(path))
                    continue
                documents.append(_read_yaml_map(path))
            else:
                documents.append(_read_bpmn(path))
        except DefinitionError as exc:
            report.problems.extend(exc.problems)
        except (OSError, UnicodeDecodeError) as exc:
            report.problems.append(Problem(f"cannot read: {exc}", str(path), code="io"))

    by_process: dict[str, _Document] = {}
    maps_by_id: dict[str, ProcessMap] = {}
    report.origins.update({doc.file: doc.origins for doc in documents if doc.fmt == "yaml"})
    for doc in documents:
        doc.problems = [_from_yaml(p, doc) for p in
                        [*check_maps(doc.maps, doc.file, allow_scripts=allow_scripts),
                         *check_limits(doc.maps)]]
        for pmap in doc.maps:
            if pmap.id in by_process and pmap.steps:
                doc.problems.append(Problem(
                    f"process id {pmap.id!r} is also defined in {by_process[pmap.id].file}",
                    doc.file, pmap.line, pmap.id, code="duplicate-process"))
            elif pmap.steps:
                by_process[pmap.id] = doc
                maps_by_id[pmap.id] = pmap
    for doc in documents:
        doc.problems += [_from_yaml(p, doc) for p in [*check_calls(doc.maps, maps_by_id),
                                                        *check_recursion(doc.maps, maps_by_id)]]
        report.problems.extend(doc.problems)

    for doc in documents:
        for pmap in doc.maps:
            if not (pmap.executable and pmap.steps) or by_process.get(pmap.id) is not doc:
                continue
            deps = _dependencies(pmap, by_process)
            needed = list({id(d): d for d in (doc, *deps.values())}.values())
            if any(_has_errors(d.problems) for d in needed):
                continue
            definition = ProcessDefinition(
                process_id=pmap.id,
                name=pmap.name,
                source_file=doc.file,
                source_format=doc.fmt,
                map=pmap,
                documents={d.file: d.xml for d in needed},
                called=tuple(sorted(deps)),
                called_maps=tuple(_map_of(pid, d) for pid, d in sorted(deps.items())),
            )
            if build:
                try:
                    build_spec(definition.process_id, definition.documents, doc.file)
                except DefinitionError as exc:
                    report.problems.extend(
                        _from_yaml(_with_line(p, needed), doc) for p in exc.problems)
                    continue
            report.definitions.append(definition)
    if catalogs is not None:
        _cross_check_catalogs(report, catalogs)
    return report


def _skipped_catalog(path: Path) -> Problem:
    return Problem(
        "content catalog skipped: this engine was given no catalog support (open it with "
        "nextmove.open_engine, or check files with nextmove.load)", str(path),
        code="catalog-skipped", severity="warning")


def _with_line(problem: Problem, docs: list[_Document]) -> Problem:
    """Spiff names the element but not the line: find it in our maps."""
    if problem.line is not None or not problem.element:
        return problem
    for doc in docs:
        for pmap in doc.maps:
            step = pmap.step(problem.element)
            if step is not None:
                return replace(problem, file=doc.file, line=step.line)
            if pmap.id == problem.element:
                return replace(problem, file=doc.file, line=pmap.line)
    return problem


def _has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)


def _map_of(process_id: str, doc: _Document) -> ProcessMap:
    return next(m for m in doc.maps if m.id == process_id)


def _dependencies(pmap: ProcessMap, by_process: dict[str, _Document]) -> dict[str, _Document]:
    """Processes reachable through call activities, with the documents defining them."""
    deps: dict[str, _Document] = {}
    todo = [pmap]
    while todo:
        for step in todo.pop().all_steps():
            if step.called and step.called not in deps and step.called in by_process:
                deps[step.called] = by_process[step.called]
                todo.append(_map_of(step.called, by_process[step.called]))
    deps.pop(pmap.id, None)
    return deps


def _cross_check_catalogs(report: LoadReport, catalogs: CatalogSupport) -> None:
    if not report.catalogs:
        return
    hooks_used, map_steps = _uses(report.definitions)
    for catalog in report.catalogs:
        report.problems.extend(_at_source(p, report)
                               for p in catalogs.cross_check(catalog, hooks_used, map_steps))


def _at_source(problem: Problem, report: LoadReport) -> Problem:
    """A problem at a step of a YAML map given the step's line in the YAML file, not in the
    compiled BPMN (the step id stays its element: it names the step better than its path)."""
    origins = report.origins.get(problem.file or "")
    if origins is None:
        return problem
    return replace(problem, line=origins.get(problem.element or "", ("", None))[1])


def _uses(definitions: Iterable[ProcessDefinition]
          ) -> tuple[dict[str, list[tuple[str, str, int | None]]], dict[str, set[str]]]:
    """The hooks the maps use (hook -> (file, step id, line)) and each map file's steps."""
    hooks_used: dict[str, list[tuple[str, str, int | None]]] = {}
    map_steps: dict[str, set[str]] = {}
    for definition in definitions:
        for step in definition.map.all_steps():
            map_steps.setdefault(definition.source_file, set()).add(step.id)
            if step.hook:
                hooks_used.setdefault(step.hook, []).append(
                    (definition.source_file, step.id, step.line))
    return hooks_used, map_steps


def check_against_stored(report: LoadReport, catalogs: CatalogSupport, stored_uses: HookUses,
                         stored_steps: MapSteps, served: Any | None
                         ) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) of what `report` deploys, judged with what a database already
    holds, which `load` alone cannot see (it checks the files against each other), so that a
    map and its catalog are refused the same way whether they are deployed together or one
    at a time. The errors:

    * a catalog deployed now must fill the hooks of the maps already deployed (`stored_uses`,
      `stored_steps`: of the processes `report` does not redeploy) and name `learn_from`
      steps that a map using the hook has;
    * maps deployed without a catalog must have their hooks filled by the catalog the
      database serves (`served`; None: it serves none, and there is nothing to check).

    What was wrong before this deploy is not its error: a stored map's hook that the served
    catalog did not fill either (a map deployed before any catalog, or by an older nextmove)
    does not refuse a new catalog, and such quarrels of other maps do not refuse a map.

    The warnings are the report's, but "used by no process map" is judged on the stored maps
    too (a catalog deployed alone fills hooks that the deployed maps use)."""
    mine_uses, mine_steps = _uses(report.definitions)
    uses: dict[str, list[tuple[str, str, int | None]]] = {
        hook: list(places) for hook, places in stored_uses.items()}
    for hook, places in mine_uses.items():
        uses.setdefault(hook, []).extend(places)
    steps = {**stored_steps, **mine_steps}
    warnings = [p for p in report.problems if p.severity == "warning"]
    if report.catalogs:
        judged = [p for catalog in report.catalogs
                  for p in catalogs.cross_check(catalog, uses, steps)]
        before = ({(p.file, p.element) for p in catalogs.cross_check(served, stored_uses, steps)
                   if p.code == "unknown-hook"} if served is not None else set())
        found = [p for p in judged if p.severity == "error"
                 and (p.code != "unknown-hook" or (p.file, p.element) not in before)]
        warnings = [p for p in warnings if p.code != "unused-hook"] + [
            p for p in judged if p.code == "unused-hook"]
    elif served is not None:
        found = [p for p in catalogs.cross_check(served, uses, steps)
                 if p.severity == "error" and p.file in mine_steps]
    else:
        found = []
    return [_at_source(p, report) for p in found], warnings


def load_definitions(
    paths: Iterable[str | Path], *, allow_scripts: bool = False,
    catalogs: CatalogSupport | None = None,
) -> list[ProcessDefinition]:
    """Definitions under `paths`; raises DefinitionErrors listing every error if any."""
    report = load(paths, allow_scripts=allow_scripts, catalogs=catalogs)
    if report.errors:
        raise DefinitionErrors(report.problems)
    return report.definitions
