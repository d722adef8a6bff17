"""Deployed definition versions: store them, find them, load them ready to run."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, func, insert, select
from sqlalchemy.exc import IntegrityError

from engine.clock import Clock, as_utc
from engine.definitions.model import ProcessDefinition
from engine.errors import DefinitionErrors, DefinitionNotFound, NextmoveError, Problem
from engine.runtime import retirement
from engine.runtime.model import DeployedDefinition, Deployment
from engine.runtime.queries import DEFINITION
from engine.store import RETIREMENT, plain
from engine.store.database import Store

if TYPE_CHECKING:
    from engine.catalogs import CatalogSupport
    from engine.definitions.loader import LoadReport


@dataclass(frozen=True)
class LoadedDefinition:
    """A definition version ready to run: its SpiffWorkflow specs and step metadata."""

    id: int
    process_id: str
    version: int
    spec: Any
    subprocess_specs: dict[str, Any]
    steps: dict[str, dict[str, Any]]


def relabel(definition: ProcessDefinition, origin: str) -> ProcessDefinition:
    """`definition` with its files named `origin` + their base names instead of their paths
    (the content hash is the same: it covers the documents, not their names)."""

    def name(path: str | None) -> str | None:
        return None if path is None else origin + PurePath(path).name

    return replace(definition, source_file=origin + PurePath(definition.source_file).name,
                   map=replace(definition.map, file=name(definition.map.file)),
                   documents={origin + PurePath(k).name: v
                              for k, v in definition.documents.items()})


def deploy(store: Store, paths: Iterable[str | Path], clock: Clock, *, allow_scripts: bool,
           catalogs: CatalogSupport | None, origin: str | None) -> Deployment:
    """`Engine.deploy`: load and check `paths`, check them against what `store` holds (with
    `catalogs`), then store every process version and catalog."""
    from engine.definitions.loader import load  # the BPMN parser and the schema checks

    report = load(paths, allow_scripts=allow_scripts, catalogs=catalogs)
    if report.errors:
        raise DefinitionErrors(report.problems)
    logs = imported_logs(store, [d.process_id for d in report.definitions])
    if logs:  # its live instances would be counted with the log's cases in every view
        raise DefinitionErrors([Problem(
            f"process {d.process_id!r} holds an imported event log; give the map a process id "
            f"of its own (e.g. '{d.process_id}_journey')", file=d.source_file,
            code="process-is-a-log") for d in report.definitions if d.process_id in logs])
    warnings = [p for p in report.problems if p.severity == "warning"]
    if catalogs is not None:
        warnings = check_against_database(store, report, catalogs)
    definitions = [d if origin is None else relabel(d, origin) for d in report.definitions]
    deployment = Deployment(
        (deploy_definition(store, d, clock.now()) for d in definitions), warnings)
    if catalogs is not None:
        deployment.catalogs.extend(catalogs.deploy(
            store, c, clock, None if origin is None else origin + Path(c.file).name)
            for c in report.catalogs)
    return deployment


def imported_logs(store: Store, process_ids: Collection[str]) -> set[str]:
    """Those of `process_ids` that `import-log` stored event logs under."""
    if not process_ids:
        return set()
    return {r["process_id"] for r in store.select(
        select(DEFINITION.c.process_id).distinct().where(
            DEFINITION.c.process_id.in_(list(process_ids)),
            DEFINITION.c.source_format == "imported-log"))}


def deploy_definition(
    store: Store, definition: ProcessDefinition, now: datetime
) -> DeployedDefinition:
    """Store a new version unless the current version has identical content.

    Deploying the content of an older version again makes it current as a new version, so
    new instances start on what was deployed last. Either way a retired process is
    reinstated (`engine.runtime.retirement`).
    """
    digest = definition.content_hash
    for _attempt in range(3):
        with store.write() as conn:
            row = conn.execute(select(DEFINITION).where(
                DEFINITION.c.process_id == definition.process_id,
            ).order_by(DEFINITION.c.version.desc()).limit(1)).mappings().first()
            reinstated = retirement.reinstate(conn, definition.process_id, now)
            if row is not None and row["content_hash"] == digest:
                return replace(to_deployed(row, created=False), reinstated=reinstated)
            latest = row["version"] if row is not None else 0
            values = {
                "process_id": definition.process_id,
                "version": latest + 1,
                "name": definition.name,
                "content_hash": digest,
                "source_file": definition.source_file,
                "source_format": definition.source_format,
                "documents": json.dumps(
                    {k: v.decode("utf-8") for k, v in definition.documents.items()}),
                "steps": json.dumps([s.to_dict() for s in definition.all_steps()]),
                "deployed_at": as_utc(now).replace(tzinfo=None),
            }
            try:
                result = conn.execute(insert(DEFINITION).values(**values))
            except IntegrityError:
                continue  # another deployer raced us; read what it stored
            new_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            return replace(to_deployed({**values, "id": new_id}, created=True),
                           reinstated=reinstated)
    raise NextmoveError(f"could not deploy {definition.process_id}: concurrent deploys kept "
                        "conflicting; try again")


def list_definitions(store: Store, process_id: str | None = None) -> list[DeployedDefinition]:
    """Every deployed version (of `process_id`), with its retirement if it is in force."""
    retired = RETIREMENT.c
    query = (select(DEFINITION, retired.at.label("retired_at"))
             .outerjoin(RETIREMENT, and_(retired.definition_id == DEFINITION.c.id,
                                         retired.reinstated_at.is_(None)))
             .order_by(DEFINITION.c.process_id, DEFINITION.c.version))
    if process_id:
        query = query.where(DEFINITION.c.process_id == process_id)
    with store.read() as conn:
        return [replace(to_deployed(r), retired_at=r["retired_at"] and as_utc(r["retired_at"]))
                for r in conn.execute(query).mappings()]


@dataclass(frozen=True)
class StoredSteps:
    """The steps of a process's newest stored version, as `ProcessMap.all_steps` listed them
    (dicts of `Step.to_dict`: id, name, type, properties with the hook...)."""

    process_id: str
    source_file: str
    steps: list[dict[str, Any]]


def newest_steps(store: Store, exclude: Collection[str] = ()) -> list[StoredSteps]:
    """Every stored process's newest version's steps, but `exclude`'s, retired processes'
    and imported logs' (which have no hooks): what a catalog deployed now must still fill.
    Read from the `steps` column, no BPMN parsed."""
    newest = (select(DEFINITION.c.process_id, func.max(DEFINITION.c.version).label("version"))
              .group_by(DEFINITION.c.process_id).subquery())
    query = (select(DEFINITION.c.process_id, DEFINITION.c.source_file, DEFINITION.c.steps)
             .join(newest, and_(DEFINITION.c.process_id == newest.c.process_id,
                                DEFINITION.c.version == newest.c.version))
             .where(DEFINITION.c.source_format != "imported-log",
                    DEFINITION.c.process_id.not_in(retirement.still_retired()))
             .order_by(DEFINITION.c.process_id))
    with store.read() as conn:
        return [StoredSteps(r.process_id, r.source_file, json.loads(r.steps))
                for r in conn.execute(query) if r.process_id not in exclude]


def stored_uses(stored: Iterable[StoredSteps]
                ) -> tuple[dict[str, list[tuple[str, str, int | None]]], dict[str, set[str]]]:
    """The hooks stored maps use (hook -> (file, step id, None: no line is stored)) and each
    one's step ids, as `engine.catalogs` takes them. The file is named "<source file> (as
    deployed)": a problem found there is in the database, not in a file being deployed."""
    uses: dict[str, list[tuple[str, str, int | None]]] = {}
    steps: dict[str, set[str]] = {}
    for found in stored:
        file = f"{found.source_file} (as deployed)"
        for step in found.steps:
            steps.setdefault(file, set()).add(step["id"])
            hook = (step.get("properties") or {}).get("hook")
            if hook:
                uses.setdefault(hook, []).append((file, step["id"], None))
    return uses, steps


def check_against_database(store: Store, report: LoadReport,
                           catalogs: CatalogSupport) -> list[Problem]:
    """The warnings of what `report` deploys, judged with what `store` holds; raise
    DefinitionErrors if it quarrels with it: with the maps already deployed (but those
    `report` redeploys) or the catalog served (`loader.check_against_stored`)."""
    from engine.definitions.loader import check_against_stored

    redeployed = {d.process_id for d in report.definitions}
    uses, steps = stored_uses(newest_steps(store, redeployed))
    conflicts, warnings = check_against_stored(report, catalogs, uses, steps,
                                               catalogs.stored(store))
    if conflicts:
        raise DefinitionErrors(conflicts)
    return warnings


def latest_definition_id(conn: Connection, process_id: str) -> int:
    found = conn.execute(
        select(DEFINITION.c.id).where(DEFINITION.c.process_id == process_id)
        .order_by(DEFINITION.c.version.desc()).limit(1)).scalar()
    if found is None:
        known = conn.execute(select(DEFINITION.c.process_id).distinct()).scalars().all()
        raise DefinitionNotFound(process_id, known)
    return int(found)


def load_definition(store: Store, definition_id: int) -> LoadedDefinition:
    """Parse a stored version's documents into specs (callers cache the result)."""
    with store.read() as conn:
        row = conn.execute(select(DEFINITION).where(
            DEFINITION.c.id == definition_id)).mappings().one()
    if row["source_format"] == "imported-log":
        raise NextmoveError(f"{row['process_id']!r} is an imported event log, not a process "
                            "map: it can be analysed and learned from, but not started")
    from engine.definitions.spiff import build_spec  # the BPMN parser: only to run a version

    documents = {k: v.encode("utf-8") for k, v in json.loads(row["documents"]).items()}
    spec, subprocess_specs = build_spec(row["process_id"], documents, row["source_file"])
    return LoadedDefinition(
        definition_id, row["process_id"], row["version"], spec, subprocess_specs,
        {s["id"]: s for s in json.loads(row["steps"])},
    )


def step_metadata(store: Store, definition_id: int) -> dict[str, dict[str, Any]]:
    """Step id → what the map says about it, without parsing the BPMN."""
    return store.plain_read(lambda reads: plain.step_metadata(reads, definition_id))


def to_deployed(row: Mapping[Any, Any], created: bool = False) -> DeployedDefinition:
    return DeployedDefinition(
        id=row["id"], process_id=row["process_id"], version=row["version"], name=row["name"],
        content_hash=row["content_hash"], source_file=row["source_file"],
        deployed_at=as_utc(row["deployed_at"]), created=created,
    )


class DefinitionCache:
    """Definition versions loaded once per process (a version never changes once stored)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._loaded: dict[int, LoadedDefinition] = {}
        self._steps: dict[int, dict[str, dict[str, Any]]] = {}

    def get(self, definition_id: int) -> LoadedDefinition:
        """The version ready to run (parsed on first use)."""
        loaded = self._loaded.get(definition_id)
        if loaded is None:
            loaded = self._loaded[definition_id] = load_definition(self.store, definition_id)
        return loaded

    def steps_of(self, definition_id: int) -> Mapping[str, Mapping[str, Any]]:
        """The version's step metadata, without parsing its BPMN if it is not loaded."""
        loaded = self._loaded.get(definition_id)
        if loaded is not None:
            return loaded.steps
        found = self._steps.get(definition_id)
        if found is None:
            found = self._steps[definition_id] = step_metadata(self.store, definition_id)
        return found

    def clear(self) -> None:
        """Forget every loaded version, as a freshly started process would."""
        self._loaded.clear()
        self._steps.clear()
