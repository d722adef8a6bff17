"""Retired processes: no new instance starts, and no later catalog must fill their hooks.

    engine.retire("webinar_invite", reason="the brand stopped running webinars", actor="ana")

A brand stops running a journey: its designer retires the process. From then on `start` (and
the bulk start, the API) refuses new instances of it, and deploys stop checking that the
served catalog fills its hooks, so the catalog can drop that content. Instances already
running go on to their end: their timers fire, their cards show (a card whose hook the
catalog no longer fills says so). Deploying the process again, as a new version or the same
one, reinstates it. Each retirement is kept as a row (who, when, why, and when it was
reinstated): the process's history, for the reviewers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.clock import as_utc
from engine.errors import DefinitionNotFound, NextmoveError, ProcessRetired
from engine.runtime.model import Retirement
from engine.runtime.queries import DEFINITION, INSTANCE
from engine.store import RETIREMENT
from engine.store.database import Store

__all__ = ["ProcessRetired", "Retirement", "open_retirement", "reinstate", "retire",
           "still_retired"]  # the two records are engine.errors' and engine.runtime.model's


def open_retirement(conn: Connection, process_id: str) -> Mapping[str, Any] | None:
    """The process's retirement not yet reinstated, if any."""
    found = conn.execute(select(RETIREMENT).where(
        RETIREMENT.c.process_id == process_id,
        RETIREMENT.c.reinstated_at.is_(None))).mappings().first()
    return None if found is None else dict(found)


def still_retired() -> Any:
    """A subquery of the retired processes' ids (to leave them out of a query)."""
    return select(RETIREMENT.c.process_id).where(RETIREMENT.c.reinstated_at.is_(None))


def retire(store: Store, process_id: str, reason: str, actor: str | None,
           now: datetime) -> Retirement:
    """Record that `process_id` is retired at its newest version, unless it is already: then
    its retirement as recorded (`created` False). DefinitionNotFound if it was never
    deployed."""
    at = as_utc(now).replace(tzinfo=None)

    def work(conn: Connection) -> Retirement:
        row, created = open_retirement(conn, process_id), False
        if row is None:
            row, created = {"process_id": process_id, "actor": actor, "reason": reason,
                            "at": at, "definition_id": _newest(conn, process_id)}, True
            conn.execute(insert(RETIREMENT).values(**row))
        version = conn.execute(select(DEFINITION.c.version).where(
            DEFINITION.c.id == row["definition_id"])).scalar_one()
        running = conn.execute(select(func.count()).select_from(INSTANCE).where(
            INSTANCE.c.process_id == process_id, INSTANCE.c.status == "active")).scalar_one()
        return Retirement(process_id, int(version), row["actor"], row["reason"],
                          as_utc(row["at"]), int(running), created)

    for _attempt in range(3):
        try:
            return store.transaction(work)
        except IntegrityError:  # a racing retire got there first: read its row
            continue
    raise NextmoveError(f"could not retire {process_id}: concurrent changes; try again")


def _newest(conn: Connection, process_id: str) -> int:
    found = conn.execute(select(DEFINITION.c.id).where(DEFINITION.c.process_id == process_id)
                         .order_by(DEFINITION.c.version.desc()).limit(1)).scalar()
    if found is None:
        known = conn.execute(select(DEFINITION.c.process_id).distinct()).scalars().all()
        raise DefinitionNotFound(process_id, known)
    return int(found)


def reinstate(conn: Connection, process_id: str, now: datetime) -> bool:
    """End the process's open retirement (a deploy of it); True when there was one."""
    done = conn.execute(update(RETIREMENT).where(
        RETIREMENT.c.process_id == process_id, RETIREMENT.c.reinstated_at.is_(None),
    ).values(reinstated_at=as_utc(now).replace(tzinfo=None)))
    return bool(done.rowcount)
