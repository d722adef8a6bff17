"""The events `analytics._flows` traces flows from: per instance of a process, in log order."""

from __future__ import annotations

from collections.abc import Collection, Iterator

from sqlalchemy import select

from analytics._flows import Event
from engine.store import INSTANCE, STEP_EVENT, VISIT_KINDS
from engine.store.database import Store


def visit_events(store: Store, process_id: str,
                 people: Collection[str] | None = None) -> Iterator[Event]:
    """The journey's visit events by instance, in log order; with `people`, only their
    instances' (read through the distributor index instead of the whole log)."""
    e, i = STEP_EVENT.c, INSTANCE.c
    query = (select(e.instance_id, e.step_id, e.kind, e.paired)
             .join(INSTANCE, i.id == e.instance_id)
             .where(i.process_id == process_id, e.kind.in_(VISIT_KINDS))
             .order_by(e.instance_id, e.id))
    if people is not None:
        query = query.where(i.distributor_id.in_(list(people)))
    with store.read() as conn:
        for row in conn.execute(query.execution_options(yield_per=20_000)):
            yield row[0], row[1], row[2], row[3]
