"""Where prospects are stuck: instances waiting on a step longer than usual or than a limit.

"Usual" is the step's own history: the 90th percentile of the time arrivals there took to
end (computed by the database). An open arrival on an active instance that has waited longer
than that — or than `older_than` when given — is stuck. Counts come grouped by step and
distributor, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from analytics._read_stuck import stuck_rows
from analytics._sql import Filters
from engine.clock import as_utc
from engine.store.database import Store

USUAL = 0.9  # the percentile of a step's past times that counts as "longer than usual"


@dataclass(frozen=True)
class StuckGroup:
    step_id: str
    step_name: str
    distributor_id: str
    instances: int  # open arrivals past the limit
    oldest_since: datetime  # the longest-waiting one arrived then (UTC)
    limit_hours: float  # the limit they passed: the step's p90, or older_than

    def waited_hours(self, now: datetime) -> float:
        return (as_utc(now) - self.oldest_since).total_seconds() / 3600

    def to_dict(self) -> dict[str, Any]:
        return {"step_id": self.step_id, "step_name": self.step_name,
                "distributor_id": self.distributor_id, "instances": self.instances,
                "oldest_since": self.oldest_since.isoformat(), "limit_hours": self.limit_hours}


@dataclass(frozen=True)
class Stuck:
    process_id: str
    now: datetime
    older_than: timedelta | None  # None: each step's own p90
    limits: dict[str, float]  # step id -> limit in hours (steps with a known limit)
    groups: tuple[StuckGroup, ...]  # by step (order of first arrival), then oldest first

    @property
    def instances(self) -> int:
        return sum(g.instances for g in self.groups)

    def by_step(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for g in self.groups:
            out[g.step_id] = out.get(g.step_id, 0) + g.instances
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "now": as_utc(self.now).isoformat(),
                "older_than_hours": (self.older_than.total_seconds() / 3600
                                     if self.older_than is not None else None),
                "limits_hours": self.limits, "instances": self.instances,
                "groups": [g.to_dict() for g in self.groups]}


def stuck(
    store: Store, process_id: str, now: datetime, *, older_than: timedelta | None = None,
    distributor: str | None = None, market: str | None = None,
) -> Stuck:
    """Open arrivals at `now` that waited past their step's usual time (p90) or
    `older_than`, grouped by step and distributor. A step that no arrival has ended yet
    has no usual time: with no `older_than`, nothing there counts as stuck."""
    filters = Filters(process_id, None, distributor, market)
    limits, rows = stuck_rows(store, filters, now, usual=USUAL, older_than=older_than)
    first: dict[str, int] = {}
    for r in rows:
        first[r[0]] = min(first.get(r[0], r[5]), r[5])
    rows.sort(key=lambda r: (first[r[0]], as_utc(r[4]), r[2]))
    groups = tuple(StuckGroup(r[0], r[1], r[2], int(r[3]), as_utc(r[4]),
                              round(limits[r[0]], 6)) for r in rows)
    return Stuck(process_id, as_utc(now), older_than,
                 {k: round(v, 6) for k, v in limits.items()}, groups)
