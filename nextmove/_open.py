"""Opening nextmove: a prepared store, the catalog recommender, the clock and the engine, put
together here and nowhere else."""

from __future__ import annotations

import logging
import os
import random
from datetime import timedelta
from typing import Any

from content_catalog import StoredRecommender
from engine import Clock, Engine, Limits, Store
from engine.store import DEFAULT_DB, Progress
from engine.store.database import DatabaseNotFound
from engine.store.plain import sqlite_path
from nextmove._catalogs import CONTENT_CATALOGS

log = logging.getLogger("nextmove")

Database = str | os.PathLike[str] | Store


def open_store(db: Database | None = None, *, durable: bool = True,
               progress: Progress | None = None, create: bool = True) -> Store:
    """The database `db` (an SQLite file path, a database URL or an open `Store`; None:
    ./nextmove.db), with its schema created, or upgraded if an older nextmove made it.
    `create=False` is for readers: an SQLite file that does not exist raises
    `DatabaseNotFound` and is not made (a mistyped path would otherwise read as an empty log).

    `progress(what, done, total)` hears of the long steps of an upgrade. The environment is
    not read: `$NEXTMOVE_DB` is the CLI's business. `durable=False` is an explicit opt-in for
    throwaway simulation databases: commits do not wait for the log to reach the disk
    (SQLite `synchronous=OFF`, PostgreSQL `synchronous_commit=off`); the default is one
    durable commit per step. Raises `StoreError` for a database
    that is not nextmove's (leaving it untouched) or that a newer nextmove made.
    """
    if not create and not isinstance(db, Store):
        _must_exist(os.fspath(db or DEFAULT_DB))
    store = db if isinstance(db, Store) else Store(os.fspath(db or DEFAULT_DB), durable=durable)
    try:
        store.prepare(progress)
    except BaseException:
        if store is not db:
            store.dispose()
        raise
    return store


def _must_exist(db: str) -> None:
    """Refuse an SQLite file that is not there (PostgreSQL and in-memory: nothing to check)."""
    path = sqlite_path(db)
    if path is not None and path != ":memory:" and not os.path.exists(
            os.path.expanduser(path)):
        raise DatabaseNotFound(path)


def open_engine(
    db: Database | None = None,
    *,
    clock: Clock | None = None,
    allow_scripts: bool = False,
    recommend: bool = True,
    durable: bool = True,
    progress: Progress | None = None,
    rng: random.Random | None = None,
    hot_instances: int | None = None,
    lease: timedelta | None = None,
    limits: Limits | None = None,
    create: bool = True,
) -> Engine:
    """A ready engine over `db` (see `open_store`): it deploys maps with their content
    catalogs, and with `recommend` ranks content for hooked steps from the stored catalog and
    each hook's active policy.

    `clock` defaults to the system clock; `rng` (the only randomness: exploration among
    content) defaults to an unseeded one. `allow_scripts` lets maps run script tasks.
    `durable=False` relaxes durability for a throwaway database (see `open_store`).
    `hot_instances` and `lease` tune the engine (see `engine.Engine`); `limits` bound the
    work one command may do to one instance (default `engine.DEFAULT_LIMITS`).
    `create=False`: refuse an SQLite file that does not exist (see `open_store`).
    """
    store = open_store(db, durable=durable, progress=progress, create=create)
    tuning: dict[str, Any] = {}
    if hot_instances is not None:
        tuning["hot_instances"] = hot_instances
    if lease is not None:
        tuning["lease"] = lease
    if limits is not None:
        tuning["limits"] = limits
    return Engine(
        store,
        clock=clock,
        allow_scripts=allow_scripts,
        recommender=StoredRecommender(store) if recommend else None,
        rng=rng,
        catalogs=CONTENT_CATALOGS,
        **tuning,
    )
