"""Per-person views: whose figures a view shows.

    who = analytics.people(store, sponsor="d0001")     # d0001 and their whole downline
    analytics.funnel(store, "prospect_journey", people=who.members)
    analytics.indicators(store, people=who.members)

A distributor's view covers their own instances; a sponsor's covers theirs and those of every
distributor below them, transitively through the instances' `sponsor_id`. Every analytics
view (funnel, stuck, indicators, cohorts, survival, content use, the map's flows, and the
report that gathers them) takes the members as `people`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analytics._read_people import downline
from analytics._sql import check_people
from engine.errors import ErrorCode, NextmoveError
from engine.store.database import Store

__all__ = ["People", "people"]


@dataclass(frozen=True)
class People:
    """One distributor (`distributor`), or a sponsor and their downline (`sponsor`);
    `members`: the distributors whose instances count, sorted."""

    members: tuple[str, ...]
    distributor: str | None = None
    sponsor: str | None = None

    @property
    def label(self) -> str:
        if self.sponsor is not None:
            others = len(self.members) - 1
            return (f"sponsor {self.sponsor} and their downline "
                    f"({others} distributor{'s' if others != 1 else ''})")
        return f"distributor {self.distributor}"

    def to_dict(self) -> dict[str, Any]:
        return {"distributor_id": self.distributor, "sponsor_id": self.sponsor,
                "distributor_ids": list(self.members)}


class BothPeople(NextmoveError):
    code = ErrorCode.USAGE


def people(store: Store, *, distributor: str | None = None,
           sponsor: str | None = None) -> People | None:
    """The view's people: `distributor` alone, or `sponsor` with every distributor below
    them (None: neither is given, everybody counts)."""
    if distributor is not None and sponsor is not None:
        raise BothPeople("give a distributor or a sponsor, not both")
    if distributor is not None:
        check_people(store, distributor=distributor)
        return People((distributor,), distributor=distributor)
    if sponsor is not None:
        check_people(store, sponsor=sponsor)
        return People(tuple(sorted(downline(store, sponsor))), sponsor=sponsor)
    return None
