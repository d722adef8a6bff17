"""The events `analytics._flows` traces flows from: per instance of a process, in log order."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from analytics._flows import Event
from engine.store import INSTANCE, STEP_EVENT, VISIT_KINDS
from engine.store.database import Store


def visit_events(store: Store, process_id: str) -> Iterator[Event]:
    e = STEP_EVENT.c
    query = (select(e.instance_id, e.step_id, e.kind, e.paired)
             .join(INSTANCE, INSTANCE.c.id == e.instance_id)
             .where(INSTANCE.c.process_id == process_id, e.kind.in_(VISIT_KINDS))
             .order_by(e.instance_id, e.id))
    with store.read() as conn:
        for row in conn.execute(query.execution_options(yield_per=20_000)):
            yield row[0], row[1], row[2], row[3]
