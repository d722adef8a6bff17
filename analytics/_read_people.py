"""Who a per-person view covers: a sponsor's downline."""

from __future__ import annotations

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
