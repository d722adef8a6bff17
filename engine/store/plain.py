"""Plain SQL over a DB-API connection: the reads `cards` needs, written once, without SQLAlchemy.

`Engine.cards` and `Engine.cards_page` run these on the store's DB-API connection
(`Store.plain_read`: the SQL goes unchanged to the driver's cursor); `nextmove cards` on an
SQLite file runs the very same ones over a read-only stdlib `sqlite3` connection
(`open_sqlite_readonly`), so the command starts without SQLAlchemy or sqlmodel.

The SQL is written with `:name` parameters (sqlite3's "named" style); `PlainReads` turns
them into `%(name)s` for psycopg ("pyformat"), here and nowhere else. Times come back as
SQLite stores SQLAlchemy's `DateTime` (ISO text) or as psycopg's `datetime`; `as_datetime`
reads both.

The tables are the store's (`engine.store.tables`, the SQLModel classes that own the schema
and every write); nothing here writes.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from engine.store.version import SCHEMA_VERSION

DEFAULT_DB = "nextmove.db"
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")

# The instance columns a card is built from (not the state document), with the ones that say
# whose it is. Ordered before the limit: past it, the least urgent instances are left out.
_CARD_COLUMNS = ("SELECT id, definition_id, process_id, prospect_id, distributor_id, sponsor_id, "
                 "context, waiting, card_due_at FROM instance "
                 "WHERE status = 'active' AND (distributor_id = :who OR sponsor_id = :who)")
_CARD_ORDER = " ORDER BY card_due_at ASC NULLS LAST, id ASC LIMIT :limit"
CARDS_SQL = _CARD_COLUMNS + _CARD_ORDER
# Keyset pages (engine.runtime.cards): after an instance whose cards are due at a time, or not.
PAGE_AFTER_DUE_SQL = (_CARD_COLUMNS + " AND (card_due_at > :due OR (card_due_at = :due AND "
                      "id > :id) OR card_due_at IS NULL)" + _CARD_ORDER)
PAGE_AFTER_NONE_SQL = _CARD_COLUMNS + " AND card_due_at IS NULL AND id > :id" + _CARD_ORDER

STEPS_SQL = "SELECT steps FROM definition WHERE id = :id"
META_SQL = "SELECT value FROM nextmove_meta WHERE key = :key"
LATEST_CATALOG_SQL = ("SELECT source, source_file FROM catalog "
                      "WHERE id = (SELECT max(id) FROM catalog)")
# Every stored version of every hook that has an active policy, by hook then version.
ACTIVE_HOOK_POLICIES_SQL = (
    "SELECT policy.hook, policy.version, policy.created_at, policy.document FROM policy "
    "JOIN policy_active ON policy_active.hook = policy.hook "
    "ORDER BY policy.hook, policy.version")


Execute = Callable[[str, dict[str, Any]], tuple[Sequence[str], Sequence[Sequence[Any]]]]


class PlainReads:
    """Plain SQL reads through `execute(sql, params)` → (column names, rows), which hands the
    SQL and its parameters unchanged to a DB-API cursor whose driver takes `paramstyle`
    ("named": sqlite3; "pyformat": psycopg). `over_dbapi` makes one for a DB-API connection;
    `Store.plain_read` one for the store's connection (`exec_driver_sql`: straight to the
    driver's cursor, with SQLAlchemy's error handling)."""

    def __init__(self, execute: Execute, paramstyle: str = "named") -> None:
        if paramstyle not in ("named", "pyformat"):
            raise ValueError(f"unsupported DB-API paramstyle {paramstyle!r}")
        self.execute = execute
        self.paramstyle = paramstyle
        self.conn: Any = None  # the DB-API connection, when `over_dbapi` made these reads

    def close(self) -> None:
        """Close the DB-API connection `over_dbapi` was given (nothing otherwise)."""
        if self.conn is not None:
            self.conn.close()

    @classmethod
    def over_dbapi(cls, conn: Any, paramstyle: str = "named") -> PlainReads:
        """Reads on the DB-API connection `conn` (kept as `.conn`; the caller closes it)."""

        def execute(sql: str, params: dict[str, Any]) -> tuple[list[str], list[Any]]:
            cursor = conn.cursor()
            try:
                cursor.execute(sql, params)
                return [column[0] for column in cursor.description], cursor.fetchall()
            finally:
                cursor.close()

        reads = cls(execute, paramstyle)
        reads.conn = conn
        return reads

    @property
    def is_sqlite(self) -> bool:
        return self.paramstyle == "named"

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The rows of one SELECT written with `:name` parameters, as dicts by column name."""
        names, found = self.execute(_in_style(sql, self.paramstyle), dict(params or {}))
        return [dict(zip(names, row, strict=True)) for row in found]

    def value(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row (None: no row)."""
        found = self.rows(sql, params)
        return next(iter(found[0].values())) if found else None

    def moment(self, value: datetime) -> Any:
        """A naive UTC time as a parameter compared with a stored time: on SQLite the text
        SQLAlchemy's `DateTime` stores (so the comparison is the one SQLAlchemy makes)."""
        naive = value.replace(tzinfo=None)
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if self.is_sqlite else naive


@cache
def _in_style(sql: str, paramstyle: str) -> str:
    if paramstyle == "named":
        return sql
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


def as_datetime(value: Any) -> datetime | None:
    """A stored time as a (naive) datetime: SQLite gives ISO text, psycopg a datetime."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def card_rows(reads: PlainReads, who: str, limit: int, after: tuple[datetime | None, int]
              | None = None) -> list[dict[str, Any]]:
    """The active instances with a step that may wait on `who` (as distributor or sponsor),
    in page order (when their cards came or come due, nulls last, then id), at most `limit`;
    `after` = (card due, id) of the last instance of the previous page (None: from the
    first)."""
    params: dict[str, Any] = {"who": who, "limit": limit}
    if after is None:
        sql = CARDS_SQL
    else:
        due, last_id = after
        params["id"] = last_id
        if due is None:
            sql = PAGE_AFTER_NONE_SQL
        else:
            sql, params["due"] = PAGE_AFTER_DUE_SQL, reads.moment(due)
    found = reads.rows(sql, params)
    for row in found:
        row["card_due_at"] = as_datetime(row["card_due_at"])
    return found


def step_metadata(reads: PlainReads, definition_id: int) -> dict[str, dict[str, Any]]:
    """Step id → what the map says about it (the definition row's stored `steps`)."""
    text = reads.value(STEPS_SQL, {"id": definition_id})
    if text is None:
        raise LookupError(f"no definition {definition_id}")
    return {s["id"]: s for s in json.loads(text)}


def meta_value(reads: PlainReads, key: str) -> str | None:
    """A `nextmove_meta` value (None: no such row)."""
    value = reads.value(META_SQL, {"key": key})
    return None if value is None else str(value)


def latest_catalog_source(reads: PlainReads) -> tuple[str, str | None] | None:
    """The YAML source and file name of the catalog version stored last (None: none)."""
    found = reads.rows(LATEST_CATALOG_SQL)
    return (found[0]["source"], found[0]["source_file"]) if found else None


def active_hook_policies(reads: PlainReads) -> list[dict[str, Any]]:
    """hook, version, created_at (naive UTC) and the JSON document of every stored version
    of every hook with an active policy, by hook then version."""
    found = reads.rows(ACTIVE_HOOK_POLICIES_SQL)
    for row in found:
        row["created_at"] = as_datetime(row["created_at"])
    return found


def open_sqlite_readonly(path: str | Path) -> PlainReads | None:
    """The SQLite file `path` opened read-only, inside one read transaction (one snapshot),
    when it is a nextmove database of exactly this schema version; None for anything else —
    no file, an empty one, not SQLite, not nextmove's, an older schema (to be upgraded) or a
    newer one: `nextmove.open_store` then creates, upgrades or refuses it, with its messages.
    Nothing is written to the file."""
    file = Path(path).expanduser()
    try:
        if not file.is_file() or file.stat().st_size == 0:
            return None
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True,
                               isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error):
        return None
    reads = PlainReads.over_dbapi(conn)
    try:
        conn.execute("BEGIN")
        version = meta_value(reads, "schema_version")
        if version is not None and version.strip() == str(SCHEMA_VERSION):
            return reads
    except sqlite3.Error:
        pass  # not a database, no meta table, locked: the normal way in says what it is
    conn.close()
    return None


def sqlite_path(db: str | None) -> str | None:
    """The file an SQLite `--db` names (a path, or an `sqlite:///` URL without options);
    None for any other URL (PostgreSQL, in-memory, with query options)."""
    raw = db or DEFAULT_DB
    if "://" not in raw:
        return raw
    if raw.startswith("sqlite:///") and "?" not in raw and len(raw) > len("sqlite:///"):
        return raw[len("sqlite:///"):]
    return None
