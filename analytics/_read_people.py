"""Who a per-person view covers: a sponsor's downline; and the events of a set of
distributors' instances, for the views that read them instance by instance (the map's flows).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from sqlalchemy import select

from analytics._flows import Event
from engine.store import INSTANCE, STEP_EVENT, VISIT_KINDS
from engine.store.database import Store


def downline(store: Store, sponsor: str) -> set[str]:
    """`sponsor` and every distributor below them: those whose instances name them as
    `sponsor_id`, and theirs, and so on (a cycle in the data ends the walk)."""
    i = INSTANCE.c
    seed = select(i.distributor_id.label("member")).where(i.sponsor_id == sponsor)
    walk = seed.cte("downline", recursive=True)
    walk = walk.union(select(i.distributor_id).join(walk, i.sponsor_id == walk.c.member))
    with store.read() as conn:
        found = {str(m) for m in conn.execute(select(walk.c.member)).scalars()}
    return found | {sponsor}


def visit_events_of(store: Store, process_id: str, people: Collection[str]) -> Iterator[Event]:
    """`analytics._read_flows.visit_events` for the instances of `people` only: the same
    events, in the same order, read through the distributor index instead of the whole log."""
    e, i = STEP_EVENT.c, INSTANCE.c
    query = (select(e.instance_id, e.step_id, e.kind, e.paired)
             .join(INSTANCE, i.id == e.instance_id)
             .where(i.process_id == process_id, i.distributor_id.in_(list(people)),
                    e.kind.in_(VISIT_KINDS))
             .order_by(e.instance_id, e.id))
    with store.read() as conn:
        for row in conn.execute(query.execution_options(yield_per=20_000)):
            yield row[0], row[1], row[2], row[3]
