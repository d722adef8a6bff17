"""Connections, transactions and schema for SQLite (default) and PostgreSQL.

SQLite runs in WAL mode with a busy timeout; write transactions start with BEGIN IMMEDIATE so
two writers queue for the lock instead of failing halfway through. PostgreSQL uses psycopg 3.

Pooled connections are not pinged before each use (a round trip per transaction): work that
finds its connection dead goes through `Store.transaction`, which runs it once more on a fresh
connection (SQLAlchemy then also discards the other pooled connections of that time).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Executable,
    Index,
    RowMapping,
    Table,
    create_engine,
    event,
    func,
    inspect,
    select,
)
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import QueuePool
from sqlmodel import SQLModel

from engine.errors import ErrorCode, NextmoveError
from engine.store._survey import NotADatabase, Survey, survey, survey_sqlite_file
from engine.store.migrations import OBSOLETE_INDEXES, Progress, migrate
from engine.store.plain import DEFAULT_DB as DEFAULT_DB
from engine.store.plain import PlainReads
from engine.store.schema import META
from engine.store.tables import ONLY_ON, SCHEMA_VERSION

T = TypeVar("T")
_PREPARE_LOCK = 0x6E6D5F736368  # PostgreSQL advisory lock: one process prepares at a time

log = logging.getLogger("nextmove.store")


class StoreError(NextmoveError):
    """The database is not one nextmove can use (`code` DATABASE: not nextmove's, a newer
    schema, an unsupported kind) or cannot be reached (`code` STORAGE)."""

    def __init__(self, message: str, *, code: ErrorCode = ErrorCode.DATABASE) -> None:
        self.code = code  # type: ignore[misc]  # per instance: two kinds of store failure
        super().__init__(message)


class DatabaseNotFound(StoreError):
    """An SQLite file that does not exist, opened by something that only reads
    (`nextmove.open_store(create=False)`): nothing was created. `code` NOT_FOUND."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"no database at {path}; deploy or simulate first, or check --db",
                         code=ErrorCode.NOT_FOUND)


SUPPORTED = ("sqlite", "postgresql")


def database_url(db: str | None = None) -> str:
    """`db` (a path or URL), else ./nextmove.db, as an SQLAlchemy URL. The environment is not
    read here: the CLI reads $NEXTMOVE_DB."""
    raw = db or DEFAULT_DB
    if "://" not in raw:
        return f"sqlite:///{Path(raw).expanduser()}"
    if raw.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + raw.split("://", 1)[1]
    return raw


@dataclass(frozen=True)
class Prepared:
    """What `Store.prepare` did: `before` is the schema version found (None: a new
    database), `after` the version now; `migrated` and `indexes` name what was added,
    `dropped` the indexes a later one replaced (`migrations.OBSOLETE_INDEXES`)."""

    before: int | None
    after: int
    migrated: tuple[str, ...] = ()
    indexes: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()

    @property
    def created(self) -> bool:
        return self.before is None

    @property
    def upgraded(self) -> bool:
        return self.before is not None and self.before < self.after


class Store:
    """A database holding definitions, instances and the step log.

    Making the store connects to nothing; `prepare()` creates or upgrades the schema (and
    refuses a database that is not nextmove's) before the first use.
    """

    def __init__(self, url: str, *, durable: bool = True) -> None:
        """`url` is an SQLAlchemy URL or an SQLite file path.

        `durable=False` is an explicit opt-in for throwaway simulation databases, where speed
        matters and a crash or power cut does not: commits return before the log reaches the
        disk (SQLite `synchronous=OFF`; PostgreSQL `synchronous_commit=off` on every
        connection of this store). A crash may lose the last steps, never half of one. The
        default (True) is one durable commit per step."""
        self.url = database_url(url)
        try:
            parsed = make_url(self.url)
        except Exception as exc:  # sqlalchemy.exc.ArgumentError, ValueError: not a URL
            raise StoreError(f"--db {url!r} is neither a file path nor a database URL: {exc}"
                             ) from exc
        self.dialect = parsed.get_backend_name()
        if self.dialect not in SUPPORTED:
            raise StoreError(
                f"unsupported database {self.dialect!r}: nextmove runs on SQLite (a file "
                "path) or PostgreSQL (postgresql://user@host/db)")
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(self.url, durable)
        else:
            # Connections are kept for as many requests as a server process serves at once
            # (an overflow connection is closed when returned, and a new PostgreSQL backend
            # per request cost 13-36% of API steps/s with 16 clients: BENCHMARKS.md section
            # 8). At most 20 per process, so four worker processes stay under PostgreSQL's
            # default max_connections of 100.
            self.engine = create_engine(self.url, pool_size=16, max_overflow=4)
            if not durable:
                event.listen(self.engine, "connect", _relaxed_postgres)
        self.durable = durable
        self._autocommit: SAEngine | None = None
        # SQLite: each thread's own connection for step writes (`step_connection`).
        self._own = threading.local()
        self._owned: weakref.WeakSet[_StepConnection] = weakref.WeakSet()
        self._owned_lock = threading.Lock()

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

    def prepare(self, progress: Progress | None = None) -> Prepared:
        """Create the schema in an empty database, or bring one made by an earlier nextmove
        up to this schema (logged, with `progress(what, done, total)` on long steps), in one
        transaction. A database that is not empty and not nextmove's is refused with
        `StoreError` before anything is written to it."""
        if self.is_sqlite:
            try:  # before any pooled connection, which would switch the file to WAL
                self._refuse_foreign(survey_sqlite_file(make_url(self.url).database))
            except NotADatabase as exc:
                raise StoreError(f"{self.safe_url} is not a nextmove database: {exc}") from exc
        try:
            with self.write() as conn:
                if not self.is_sqlite:  # a second process waits here for the first to finish
                    conn.execute(select(func.pg_advisory_xact_lock(_PREPARE_LOCK)))
                found = survey(conn)
                self._refuse_foreign(found)
                prepared = self._prepare(conn, found, progress)
        except OperationalError as exc:
            said = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
            raise StoreError(f"cannot open database {self.safe_url}: {said}; check the "
                             "path or URL, that the server runs, and the permissions",
                             code=ErrorCode.STORAGE) from exc
        if prepared.created:
            log.info("created nextmove schema %d in %s", prepared.after, self.safe_url)
        elif prepared.upgraded:
            log.warning("upgraded %s from schema %d to %d (%s)", self.safe_url, prepared.before,
                        prepared.after, "; ".join(prepared.migrated) or "no data changed")
        if prepared.indexes and not prepared.created:
            log.info("added indexes to %s: %s", self.safe_url, ", ".join(prepared.indexes))
        if prepared.dropped:
            log.info("dropped indexes a later one replaced from %s: %s", self.safe_url,
                     ", ".join(prepared.dropped))
        return prepared

    def _refuse_foreign(self, found: Survey) -> None:
        if found.bad_version is not None:
            raise StoreError(f"{self.safe_url} is not a usable nextmove database: its schema "
                             f"version is {found.bad_version!r}, not a number (damaged, or "
                             "not nextmove's); nothing was changed")
        if found.empty or found.version is not None:
            return
        ours = [t for t in SQLModel.metadata.sorted_tables if t.name in found.tables]
        if len(ours) == len(found.tables):  # nextmove's tables, from before the meta row
            for table in ours:
                self._check_table(table, found.tables[table.name])
            return
        lacking = [t.name for t in ours if {c.name for c in t.columns} - found.tables[t.name]]
        names = ", ".join(sorted(found.tables)[:5]) + (", ..." if len(found.tables) > 5 else "")
        theirs = f"; its {lacking[0]!r} table is not nextmove's" if lacking else ""
        raise StoreError(
            f"{self.safe_url} is not a nextmove database (it has tables {names} and no "
            f"nextmove schema version{theirs}); nothing was changed: use an empty database "
            "or a new file"
        )

    def _prepare(self, conn: Connection, found: Survey, progress: Progress | None) -> Prepared:
        if found.version is not None and found.version > SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {found.version} is newer than this nextmove "
                f"({SCHEMA_VERSION}); upgrade nextmove"
            )
        meta = META
        SQLModel.metadata.create_all(conn)
        migrated: list[str] = []
        if found.version is None:
            conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        elif found.version < SCHEMA_VERSION:
            log.warning("upgrading %s from schema %d to %d (large logs take minutes)",
                        self.safe_url, found.version, SCHEMA_VERSION)
            migrated = migrate(conn, progress)
            conn.execute(meta.update().where(meta.c.key == "schema_version")
                         .values(value=str(SCHEMA_VERSION)))
        columns = inspect(conn)
        for table in SQLModel.metadata.sorted_tables:
            self._check_table(table, {c["name"] for c in columns.get_columns(table.name)})
        added, dropped = _sync_indexes(conn)
        return Prepared(found.version, SCHEMA_VERSION, tuple(migrated), added, dropped)

    def _check_table(self, table: Table, have: set[str]) -> None:
        """Refuse a database whose tables lack columns this nextmove writes."""
        missing = sorted(c.name for c in table.columns if c.name not in have)
        if missing:
            raise StoreError(
                f"database {self.safe_url} was made by another nextmove version: table "
                f"{table.name!r} lacks {', '.join(missing)}; use a new database file"
            )

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

    def plain_read(self, work: Callable[[PlainReads], T]) -> T:
        """`work(reads)` on this store's DB-API connection (`engine.store.plain`: the plain
        SQL `nextmove cards` also runs on a read-only sqlite3 connection), sent unchanged to
        the driver's cursor (`exec_driver_sql`). SQLite: in one read transaction;
        PostgreSQL: in autocommit mode, each SELECT its own snapshot in one round trip (as
        `select`). Work that finds its connection dead runs once more."""
        style = "named" if self.is_sqlite else "pyformat"

        def run(conn: Connection) -> T:
            def execute(sql: str, params: dict[str, Any]) -> tuple[Any, Any]:
                result = conn.exec_driver_sql(sql, params)
                return list(result.keys()), result.all()

            return work(PlainReads(execute, style))

        if self.is_sqlite:
            return self.transaction(run, write=False)
        for attempt in range(2):
            try:
                with self.autocommit_engine.connect() as conn:
                    return run(conn)
            except DBAPIError as exc:
                if attempt or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def step_connection(self) -> Any | None:
        """SQLite file: this thread's own sqlite3 connection for step writes, made by the pool
        (same settings) and then detached from it, so a step skips the pool's check-out and
        check-in (~30 µs of a ~550 µs step). None when there is no such connection (an
        in-memory database, whose pool hands every user the same connection; PostgreSQL).
        A forked child makes its own. Closed when its thread ends (a server's idle pool
        threads do) or by `dispose`."""
        own: _StepConnection | None = getattr(self._own, "conn", None)
        if own is not None and own.pid == os.getpid():
            return own.conn
        if not self.is_sqlite or not isinstance(self.engine.pool, QueuePool):
            return None
        proxied = self.engine.raw_connection()
        own = _StepConnection(proxied.driver_connection)
        proxied.detach()
        self._own.conn = own  # the thread's only reference: it goes when the thread ends
        with self._owned_lock:
            self._owned.add(own)
        return own.conn

    def dispose(self) -> None:
        self.engine.dispose()
        with self._owned_lock:
            owned, self._owned = list(self._owned), weakref.WeakSet()
        self._own = threading.local()
        for own in owned:
            own.close()


# Step connections a forked child inherited: never closed there (closing a SQLite connection
# opened by the parent can disturb the parent's locks and WAL), only kept from being freed.
_INHERITED: list[Any] = []


class _StepConnection:
    """A thread's own sqlite3 connection for steps, closed when nothing refers to it (its
    thread ended) or by `close`; only by the process that opened it."""

    __slots__ = ("__weakref__", "conn", "pid")

    def __init__(self, conn: Any) -> None:
        self.conn, self.pid = conn, os.getpid()

    def close(self) -> None:
        if self.pid == os.getpid():
            self.conn.close()
        else:
            _INHERITED.append(self.conn)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # at interpreter exit, or already closed
            pass


def _sync_indexes(conn: Connection) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Indexes added in a later release (create_all only indexes tables it creates) made,
    and the ones they replace (`OBSOLETE_INDEXES`) dropped: (added, dropped). They change no
    data, so an existing database simply gets them, upgraded or not."""
    found = inspect(conn)
    added, dropped = [], []
    for table in SQLModel.metadata.sorted_tables:
        have = {ix["name"] for ix in found.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in have and _belongs(index, conn.dialect.name):
                index.create(conn, checkfirst=True)
                added.append(str(index.name))
                if conn.dialect.name == "sqlite":  # its planner knows an index by its stats
                    conn.exec_driver_sql(f"ANALYZE {index.name}")
        for name in sorted(set(OBSOLETE_INDEXES.get(table.name, ())) & have):
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
            dropped.append(name)
    return tuple(added), tuple(dropped)


def _belongs(index: Index, dialect: str) -> bool:
    """Whether `index` is made on this database (`tables.only_on` marks one made on a
    single dialect)."""
    return index.info.get(ONLY_ON) in (None, dialect)


def _relaxed_postgres(dbapi_conn: Any, _record: Any) -> None:
    """Commits of this connection return before their WAL flush (`Store(durable=False)`)."""
    dbapi_conn.execute("SET synchronous_commit TO off")
    dbapi_conn.commit()


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
