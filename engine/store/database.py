"""Connections, transactions and schema for SQLite (default) and PostgreSQL.

SQLite runs in WAL mode with a busy timeout; write transactions start with BEGIN IMMEDIATE so
two writers queue for the lock instead of failing halfway through. PostgreSQL uses psycopg 3.

Pooled connections are not pinged before each use (a round trip per transaction): work that
finds its connection dead goes through `Store.transaction`, which runs it once more on a fresh
connection (SQLAlchemy then also discards the other pooled connections of that time).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Executable, RowMapping, create_engine, event, inspect, select
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import SQLModel

from engine.errors import NextmoveError
from engine.store.migrations import migrate
from engine.store.schema import META
from engine.store.tables import SCHEMA_VERSION

DEFAULT_DB = "nextmove.db"
T = TypeVar("T")


class StoreError(NextmoveError):
    """The database cannot be opened or has an unexpected schema."""


def database_url(db: str | None = None) -> str:
    """`db` (a path or URL), else $NEXTMOVE_DB, else ./nextmove.db, as an SQLAlchemy URL."""
    raw = db or os.environ.get("NEXTMOVE_DB") or DEFAULT_DB
    if "://" not in raw:
        return f"sqlite:///{Path(raw).expanduser()}"
    if raw.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + raw.split("://", 1)[1]
    return raw


class Store:
    """A database holding definitions, instances and the step log."""

    def __init__(self, url: str | None = None, *, create: bool = True,
                 durable: bool = True) -> None:
        """`durable=False` (SQLite only) skips syncing the log to disk at commit: for
        simulations on throwaway files, where speed matters and a power cut does not."""
        self.url = database_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(self.url, durable)
        else:
            self.engine = create_engine(self.url, pool_size=5)
        self._autocommit: SAEngine | None = None
        if create:
            self.create_schema()

    @property
    def autocommit_engine(self) -> SAEngine:
        """PostgreSQL connections (from the same pool) in autocommit mode: a statement sent
        there is its own transaction, without BEGIN and COMMIT round trips."""
        if self.is_sqlite:
            raise StoreError("autocommit connections are for PostgreSQL")
        if self._autocommit is None:
            self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        return self._autocommit

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def create_schema(self) -> None:
        try:
            SQLModel.metadata.create_all(self.engine)
        except OperationalError as exc:
            raise StoreError(f"cannot open database {self.safe_url}: {exc.orig}") from exc
        meta = META
        version = select(meta.c.value).where(meta.c.key == "schema_version")
        if not self.is_sqlite:  # a second process opening it waits for the migration
            version = version.with_for_update()
        with self.write() as conn:
            found = conn.execute(version).scalar()
            if found is not None and int(found) > SCHEMA_VERSION:
                raise StoreError(
                    f"database schema version {found} is newer than this nextmove "
                    f"({SCHEMA_VERSION}); upgrade nextmove"
                )
            if found is not None and int(found) < SCHEMA_VERSION:
                migrate(conn)
                conn.execute(meta.update().where(meta.c.key == "schema_version")
                             .values(value=str(SCHEMA_VERSION)))
            elif found is None:
                conn.execute(meta.insert().values(key="schema_version",
                                                  value=str(SCHEMA_VERSION)))
        self._check_columns()
        self._add_missing_indexes()

    def _check_columns(self) -> None:
        """Refuse a database whose tables lack columns this nextmove writes."""
        found = inspect(self.engine)
        for table in SQLModel.metadata.sorted_tables:
            have = {c["name"] for c in found.get_columns(table.name)}
            missing = sorted(c.name for c in table.columns if c.name not in have)
            if missing:
                raise StoreError(
                    f"database {self.safe_url} was made by another nextmove version: table "
                    f"{table.name!r} lacks {', '.join(missing)}; use a new database file"
                )

    def _add_missing_indexes(self) -> None:
        """Indexes added in a later release (create_all only indexes tables it creates): they
        change no data, so an existing database simply gets them."""
        found = inspect(self.engine)
        for table in SQLModel.metadata.sorted_tables:
            have = {ix["name"] for ix in found.get_indexes(table.name)}
            for index in table.indexes:
                if index.name not in have:
                    index.create(self.engine, checkfirst=True)

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction that will write: all of it commits or none of it does."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(nextmove_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    def transaction(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """`work(conn)` in one transaction; run once more if its connection was found dead
        (nothing of a transaction on a dead connection was committed)."""
        try:
            with self.write() if write else self.read() as conn:
                return work(conn)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        with self.write() if write else self.read() as conn:
            return work(conn)

    def select(self, statement: Executable,
               params: dict[str, Any] | None = None) -> list[RowMapping]:
        """The rows of one SELECT. A single statement reads one consistent snapshot, so on
        PostgreSQL it is sent alone in autocommit mode (one round trip instead of three);
        like `transaction`, it runs once more if its connection was found dead."""
        if self.is_sqlite:
            return self.transaction(
                lambda conn: list(conn.execute(statement, params).mappings()), write=False)
        for attempt in range(2):
            try:
                with self.autocommit_engine.connect() as conn:
                    return list(conn.execute(statement, params).mappings())
            except DBAPIError as exc:
                if attempt or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_engine(url: str, durable: bool = True) -> SAEngine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL" if durable else "PRAGMA synchronous=OFF")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("nextmove_write", False)
        # Straight to sqlite3: SQLAlchemy's statement machinery costs more than the BEGIN.
        conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
