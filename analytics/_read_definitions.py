"""The report's read model for definitions: which processes a database holds, and the
newest version of one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from engine.store import DEFINITION


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
