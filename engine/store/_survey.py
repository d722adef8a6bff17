"""What a database holds before nextmove writes to it: its tables, their columns and the schema
version nextmove recorded (None: no `nextmove_meta` row).

SQLite is surveyed through a read-only `sqlite3` connection, not the store's pool: a pooled
connection switches the file to WAL mode, and a database that is not nextmove's must be left
byte for byte as it was.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, inspect, text

META_TABLE = "nextmove_meta"


@dataclass(frozen=True)
class Survey:
    tables: dict[str, set[str]] = field(default_factory=dict)  # table -> its columns
    version: int | None = None
    bad_version: str | None = None  # a schema_version row that is not a number

    @property
    def empty(self) -> bool:
        return not self.tables


class NotADatabase(Exception):
    """The file exists but is not an SQLite database."""


def survey_sqlite_file(path: str | None) -> Survey:
    """The file at `path` (None or ':memory:': a new in-memory database), read-only."""
    if not path or path == ":memory:":
        return Survey()
    file = Path(path)
    if not file.exists() or file.stat().st_size == 0:
        return Survey()
    try:
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise NotADatabase(str(exc)) from exc
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        tables = {n: {r[1] for r in conn.execute(f'PRAGMA table_info("{n}")')} for n in names}
        if META_TABLE in tables:
            row = conn.execute(f"SELECT value FROM {META_TABLE} "
                               "WHERE key = 'schema_version'").fetchone()
            return _versioned(tables, None if row is None else row[0])
        return Survey(tables)
    except sqlite3.OperationalError:
        raise  # cannot read it (e.g. a read-only folder): a storage fault, not a foreign file
    except sqlite3.DatabaseError as exc:
        raise NotADatabase(str(exc)) from exc
    finally:
        conn.close()


def survey(conn: Connection) -> Survey:
    """The tables of the connection's default schema (PostgreSQL: `current_schema()`)."""
    found = inspect(conn)
    tables = {n: {c["name"] for c in found.get_columns(n)} for n in found.get_table_names()}
    if META_TABLE in tables:
        value = conn.execute(text(f"SELECT value FROM {META_TABLE} "
                                  "WHERE key = 'schema_version'")).scalar()
        return _versioned(tables, value)
    return Survey(tables)


def _versioned(tables: dict[str, set[str]], value: object) -> Survey:
    if value is None:
        return Survey(tables)
    try:
        return Survey(tables, int(str(value)))
    except ValueError:
        return Survey(tables, bad_version=str(value)[:40])
