"""`nextmove cards` on an SQLite file without SQLAlchemy: the same cards, read read-only.

`open_read_only(db)` opens an SQLite `--db` with stdlib sqlite3, read-only, when it is a
nextmove database of this very schema version (anything else, and PostgreSQL, goes the
normal way in, `nextmove.open_engine`, which upgrades or refuses it as for every command; a
file that is not there is refused, not created, since `cards` only reads). `read_cards` then
reads what `Engine.cards` reads — the one cards query of `engine.store.plain`, "now" by the
one rule (`--now`, else the recorded simulated clock, else the real clock), the stored step
metadata and the stored content catalog — and builds the cards with the same code
(`engine.runtime.cards`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.runtime.cards import ActionCard
    from engine.store.plain import PlainReads


def open_read_only(db: str | None) -> PlainReads | None:
    """A read-only connection to `db` if it is an SQLite nextmove database of this schema
    version, in one read transaction (close it with `reads.close()`); else None."""
    from engine.store.plain import open_sqlite_readonly, sqlite_path

    path = sqlite_path(db)
    return None if path is None else open_sqlite_readonly(path)


def read_cards(reads: PlainReads, distributor: str, limit: int, now: str | None
               ) -> list[ActionCard]:
    """`Engine.cards(distributor, limit=limit)` with the clock `engine_for` gives it."""
    from commands._options import instant
    from content_catalog import read_stored_catalog_text
    from engine import inputs
    from engine.clock import SystemClock
    from engine.runtime.cards import cards_for
    from engine.store import plain
    from engine.store.recorded_clock import recorded_in

    moment = instant(now, "--now") if now else None  # as engine_for: before the checks
    inputs.identifier(distributor, "distributor")
    inputs.count(limit, "limit")
    if moment is None:
        moment = recorded_in(reads) or SystemClock().now()
    source = plain.latest_catalog_source(reads)
    catalog = None if source is None else read_stored_catalog_text(source[0], file=source[1])
    steps: dict[int, Mapping[str, Mapping[str, Any]]] = {}

    def steps_of(definition_id: int) -> Mapping[str, Mapping[str, Any]]:
        if definition_id not in steps:
            steps[definition_id] = plain.step_metadata(reads, definition_id)
        return steps[definition_id]

    return cards_for(reads, distributor, moment, steps_of, catalog, limit)
