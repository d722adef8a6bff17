"""How the commands open the database: the one place that wires an engine together.

`engine_for` is the only function in the CLI that assembles Store + recommender + clock +
Engine; `open_store` is for commands that read or write the database without running
instances (analytics, learning, policies, audits) and closes it when they are done.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from commands._options import instant
from content_catalog import StoredRecommender
from engine import Engine, ManualClock, Store


def engine_for(db: str | None, allow_scripts: bool = False, now: str | None = None,
               recommend: bool = True) -> Engine:
    """An engine on `db` whose clock stands at `now` (ISO 8601; the system clock if None),
    recommending from the stored catalog unless `recommend` is False."""
    clock = ManualClock(instant(now, "--now")) if now else None
    store = Store(db)
    recommender = StoredRecommender(store) if recommend else None
    return Engine(store, allow_scripts=allow_scripts, clock=clock, recommender=recommender)


@contextmanager
def open_store(db: str | None) -> Iterator[Store]:
    """The database at `db`, disposed on the way out (no PostgreSQL pool is left open)."""
    store = Store(db)
    try:
        yield store
    finally:
        store.dispose()
