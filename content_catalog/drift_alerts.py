"""Drift alerts as the policy log records them: which content was demoted for drift, and
whether a person has reviewed it. Reading them needs no learner (`learner.drift_watch` raises
them): a card or the card page can show an open alert without loading LightGBM.

    for record in drift_records(store, status="open"):
        print(record.sentence())

They are read in plain SQL (`engine.store.plain`), so `nextmove cards` reads them from a
read-only sqlite3 connection (`open_alerts_in`) without SQLAlchemy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.clock import as_utc
from engine.store.plain import PlainReads, active_hook_policies

if TYPE_CHECKING:
    from engine.store.database import Store

__all__ = ["DriftRecord", "drift_records", "drift_records_in", "open_alerts_in",
           "open_alerts_on"]


@dataclass(frozen=True)
class DriftRecord:
    """One alert that was acted on: the demotion version and, once reviewed, the review."""

    hook: str
    option_id: str
    version: int  # the policy version that demoted the item
    demoted_from: int  # the version active before
    raised_at: datetime
    alert: Mapping[str, Any]  # `Alert.to_dict()`, plus process and outcome
    status: str  # open | kept | restored
    reviewer: str | None = None
    reviewed_at: datetime | None = None
    review_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"hook": self.hook, "option_id": self.option_id, "version": self.version,
                "demoted_from": self.demoted_from, "raised_at": self.raised_at.isoformat(),
                "alert": dict(self.alert), "status": self.status, "reviewer": self.reviewer,
                "reviewed_at": self.reviewed_at.isoformat() if self.reviewed_at else None,
                "review_version": self.review_version}

    def sentence(self) -> str:
        a = self.alert
        return (f"{self.hook}/{self.option_id}: outcome rate {a['rate_before']:.1%} → "
                f"{a['rate_after']:.1%} since {str(a['since'])[:10]} (detected "
                f"{str(a['detected_at'])[:10]}); demoted in policy v{self.version}, "
                f"{self.status}" + (f" by {self.reviewer}" if self.reviewer else ""))



def drift_records(store: Store, *, status: str | None = None) -> list[DriftRecord]:
    """Every acted-on alert (or those of one status), oldest first."""
    return store.plain_read(lambda reads: drift_records_in(reads, status=status))


def drift_records_in(reads: PlainReads, *, status: str | None = None) -> list[DriftRecord]:
    """`drift_records` over a plain DB-API connection (`engine.store.plain`)."""
    found: list[DriftRecord] = []
    reviews: dict[tuple[str, int], tuple[Mapping[str, Any], int]] = {}
    # Every version of every hook with an active policy, by hook then version.
    for row in active_hook_policies(reads):
        hook, version = row["hook"], int(row["version"])
        explain = json.loads(row["document"]).get("explain") or {}
        if "drift" in explain:
            d = explain["drift"]
            found.append(DriftRecord(hook, d["option_id"], version, d["demoted_from"],
                                     as_utc(row["created_at"]), d["alert"], "open"))
        if "drift_review" in explain:
            r = explain["drift_review"]
            reviews[(hook, r["alert_version"])] = (r, version)
    out = []
    for record in found:
        review = reviews.get((record.hook, record.version))
        if review is not None:
            r, version = review
            record = replace(record, status="kept" if r["decision"] == "keep" else "restored",
                             reviewer=r["reviewer"],
                             reviewed_at=datetime.fromisoformat(r["at"]), review_version=version)
        out.append(record)
    out.sort(key=lambda r: (r.raised_at, r.hook, r.version))
    return [r for r in out if status is None or r.status == status]


def open_alerts_on(store: Store, shown: Iterable[tuple[str, str]]) -> list[DriftRecord]:
    """The open (not yet reviewed) alerts on any of the (hook, option id) pairs in `shown`:
    e.g. the content on a person's cards, to tell their sponsor or lead."""
    wanted = set(shown)
    if not wanted:
        return []
    return store.plain_read(lambda reads: open_alerts_in(reads, wanted))


def open_alerts_in(reads: PlainReads, shown: Iterable[tuple[str, str]]) -> list[DriftRecord]:
    """`open_alerts_on` over a plain DB-API connection (`engine.store.plain`)."""
    wanted = set(shown)
    if not wanted:
        return []
    return [r for r in drift_records_in(reads, status="open")
            if (r.hook, r.option_id) in wanted]
