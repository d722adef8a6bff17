"""The read model of deployed definitions: which processes a database holds, the newest
version of one, and the outcomes and indicators it declares."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from engine.definitions import ProcessMap, parse_xml
from engine.definitions.extract import read_maps
from engine.definitions.outcomes import Measures
from engine.errors import DefinitionError
from engine.store import DEFINITION
from engine.store.database import Store


def latest_definition(conn: Connection, process_id: str) -> dict[str, Any] | None:
    """The name, version, documents and source format of the process's newest version."""
    query = (select(DEFINITION.c.name, DEFINITION.c.version, DEFINITION.c.documents,
                    DEFINITION.c.source_format)
             .where(DEFINITION.c.process_id == process_id)
             .order_by(DEFINITION.c.version.desc()).limit(1))
    row = conn.execute(query).mappings().first()
    return None if row is None else dict(row)


def process_ids(conn: Connection) -> list[str]:
    """Every process with a deployed definition."""
    return list(conn.execute(select(DEFINITION.c.process_id).distinct()).scalars())


def deployed_map(store: Store, process_id: str) -> ProcessMap | None:
    """The map of the newest version of `process_id` as drawn (None: not deployed, an
    imported log, or unreadable)."""
    with store.read() as conn:
        row = latest_definition(conn, process_id)
    if row is None or row["source_format"] == "imported-log":
        return None
    for name, xml in json.loads(row["documents"]).items():
        try:
            maps = read_maps(parse_xml(xml.encode("utf-8"), name), name)
        except DefinitionError:
            continue
        for found in maps:
            if found.id == process_id:
                return found
    return None


def declared_measures(store: Store, process_id: str | None = None) -> Measures | None:
    """The outcomes and indicators the newest version of `process_id` declares (None: it
    declares none, is not deployed, or is an imported log). Without a process: the first
    process, by id, that declares any."""
    found = declaring_process(store, process_id)
    return None if found is None else found[1]


def declaring_process(store: Store, process_id: str | None = None
                      ) -> tuple[str, Measures] | None:
    """(process id, measures) of `process_id`, or of the first process by id that declares
    outcomes or indicators; None when none does."""
    if process_id is not None:
        ids = [process_id]
    else:
        with store.read() as conn:
            ids = sorted(process_ids(conn))
    for pid in ids:
        found = deployed_map(store, pid)
        if found is not None and found.measures is not None:
            return pid, found.measures
    return None
