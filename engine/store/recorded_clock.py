"""The clock a database was written on, when that was not the real one.

A simulation writes its log on a simulated clock; every command reading that database must
take "now" from the same clock, or ages and rates come out against today's date (weeks after
the simulated days). The simulator records its clock here after each simulated day; the rule
for "now" everywhere is then: `--now` if given, else the recorded clock, else the real one.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from engine.clock import as_utc
from engine.store.plain import PlainReads, meta_value

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from engine.store.database import Store

SIMULATED_CLOCK = "simulated_clock"  # the nextmove_meta key


def record_simulated_clock(store: Store, moment: datetime) -> None:
    """Record that this database's log was written on a simulated clock now standing at
    `moment`."""
    from sqlalchemy import delete, insert  # a write: only the simulator records its clock

    from engine.store.schema import META

    text = as_utc(moment).isoformat()

    def work(conn: Connection) -> None:
        conn.execute(delete(META).where(META.c.key == SIMULATED_CLOCK))
        conn.execute(insert(META).values(key=SIMULATED_CLOCK, value=text))

    store.transaction(work)


def simulated_clock(store: Store) -> datetime | None:
    """Where the simulated clock that wrote this database stood last (aware UTC), or None
    for a database written on the real clock."""
    return store.plain_read(recorded_in)


def recorded_in(reads: PlainReads) -> datetime | None:
    """`simulated_clock` in plain SQL (`engine.store.plain`): `nextmove cards` reads it from
    a read-only sqlite3 connection."""
    value = meta_value(reads, SIMULATED_CLOCK)
    return None if value is None else as_utc(datetime.fromisoformat(value))
