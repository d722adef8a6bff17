"""Who a per-person view covers: a sponsor's downline, and the instances of a set of
distributors (for the views that read events instance by instance, such as the map's flows).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select

from engine.store import INSTANCE
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


def instance_ids(store: Store, process_id: str, people: Collection[str]) -> set[int]:
    """The ids of `process_id`'s instances whose distributor is one of `people`."""
    i = INSTANCE.c
    query = select(i.id).where(i.process_id == process_id, i.distributor_id.in_(list(people)))
    with store.read() as conn:
        return {int(n) for n in conn.execute(query).scalars()}
