"""Reviewers' sign-offs: who accepted which audit finding, when and why, on which map version.

    report = audit(["maps/"])
    sign_off(store, report, "NM003:prospect_journey/enroll", reviewer="ana",
             reason="The FTC disclosure must come first", at=now)
    report = audit(["maps/"], signoffs=signoffs(store))   # NM003 there is now signed off

A sign-off is bound to the finding's id (rule, process, step, element) and to the hash of the
map version audited (`ProcessDefinition.content_hash`): when the map changes, its sign-offs
no longer apply and the finding is open again (the audit notes each voided sign-off). The
sign-offs are one hash chain (each record commits to the one before; the head and record
count are kept in `nextmove_meta`), so `verify_signoffs` — part of `audit --verify` — names
any sign-off edited, removed or moved, and a cut tail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from compliance._chain import diagnose, gaps
from compliance.audit import MIN_JUSTIFICATION_WORDS, AuditReport, Finding, SignOff
from engine.clock import as_utc
from engine.errors import ErrorCode, NextmoveError, did_you_mean
from engine.store import META, SIGNOFF
from engine.store.database import Store

GENESIS = "0" * 64
HEAD_KEY = "signoff_trail_head"
_FIELDS = ("finding", "rule", "process", "map_hash", "reviewer", "reason", "at")


class BadSignoff(NextmoveError, ValueError):
    """A sign-off without a reviewer's name, or with a reason too short to say why."""


class UnknownFinding(NextmoveError, LookupError):
    """A finding id the audit of the given maps does not list."""

    code = ErrorCode.NOT_FOUND


class SignoffRefused(NextmoveError):
    """A finding that cannot be signed off: already signed off for this map version."""

    code = ErrorCode.REFUSED


def link(previous: str, row: Mapping[str, Any]) -> str:
    """The chain of a sign-off record that follows `previous`."""
    values = {}
    for name in _FIELDS:
        value = row.get(name)
        if isinstance(value, datetime):
            value = value.replace(tzinfo=None).isoformat(timespec="microseconds")
        values[name] = value
    text = previous + json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _head(conn: Connection, *, lock: bool = False) -> tuple[int, str]:
    query = select(META.c.value).where(META.c.key == HEAD_KEY)
    found = conn.execute(query.with_for_update() if lock else query).scalar()
    if found is None:
        return 0, GENESIS
    records, head = str(found).split(" ", 1)
    return int(records), head


def sign_off(store: Store, report: AuditReport, finding: str, *, reviewer: str, reason: str,
             at: datetime) -> SignOff:
    """Record that `reviewer` accepts the open `finding` of `report`, for `reason`."""
    target = _open_finding(report, finding)
    reviewer, reason = reviewer.strip(), " ".join(reason.split())
    if not reviewer or len(reviewer) > 200:
        raise BadSignoff("a sign-off needs the reviewer's name (1-200 characters)")
    if len(reason.split()) < MIN_JUSTIFICATION_WORDS:
        raise BadSignoff(f"the reason {reason!r} is too short: write at least "
                             f"{MIN_JUSTIFICATION_WORDS} words saying why the finding is "
                             "accepted")
    row: dict[str, Any] = {"finding": target.id, "rule": target.rule, "process": target.process,
                           "map_hash": target.map_hash, "reviewer": reviewer, "reason": reason,
                           "at": as_utc(at).replace(tzinfo=None)}
    with store.write() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(META).values(key=HEAD_KEY, value=f"0 {GENESIS}")
                     .on_conflict_do_nothing())
        records, head = _head(conn, lock=True)
        row["chain"] = link(head, row)
        new_id = conn.execute(insert(SIGNOFF).values(**row).returning(SIGNOFF.c.id)).scalar_one()
        conn.execute(update(META).where(META.c.key == HEAD_KEY)
                     .values(value=f"{records + 1} {row['chain']}"))
    return SignOff(int(new_id), row["finding"], row["rule"], row["process"], row["map_hash"],
                   reviewer, reason, as_utc(at))


def _open_finding(report: AuditReport, finding: str) -> Finding:
    ids = {f.id: f for f in report.findings}
    if finding not in ids:
        hint = did_you_mean(finding, ids)
        raise UnknownFinding(f"no finding {finding!r} in the maps audited"
                             + (f" (did you mean {hint!r}?)" if hint else "")
                             + "; finding ids are RULE:process/step[/element], as the "
                             "audit lists them")
    target = ids[finding]
    if target.signoff is not None:
        raise SignoffRefused(f"{finding} is already signed off by {target.signoff.reviewer} "
                             f"on {target.signoff.at:%Y-%m-%d} for this map version")
    if target.map_hash is None:
        raise SignoffRefused(f"{finding} has no map version to bind a sign-off to")
    return target


def signoffs(store: Store) -> list[SignOff]:
    """Every recorded sign-off, oldest first."""
    with store.read() as conn:
        rows = conn.execute(select(SIGNOFF).order_by(SIGNOFF.c.id)).mappings().all()
    return [SignOff(r["id"], r["finding"], r["rule"], r["process"], r["map_hash"],
                    r["reviewer"], r["reason"], as_utc(r["at"])) for r in rows]


@dataclass(frozen=True)
class SignoffTampering:
    """One place the sign-off chain was altered. `what`: edited, removed, moved, truncated."""

    what: str
    detail: str
    record_id: int | None = None
    finding: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "detail": self.detail, "record_id": self.record_id,
                "finding": self.finding}


@dataclass(frozen=True)
class SignoffCheck:
    """The sign-off chain recomputed; `tampered` is empty when it is intact."""

    checked: int
    records: int
    head: str
    tampered: tuple[SignoffTampering, ...]

    @property
    def ok(self) -> bool:
        return not self.tampered

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "records": self.records,
                "head": self.head, "tampered": [t.to_dict() for t in self.tampered]}


def verify_signoffs(store: Store) -> SignoffCheck:
    """Recompute the sign-off chain and its kept head; name each record edited, removed or
    moved, and records cut off the end."""
    with store.read() as conn:
        rows = [dict(r) for r in conn.execute(select(SIGNOFF).order_by(SIGNOFF.c.id))
                .mappings()]
        records, head = _head(conn)
    ids = {r["id"] for r in rows}
    breaks = diagnose(rows, link, GENESIS, noun="sign-off",
                      describe=lambda r: f"{r['id']} ({r['finding']} by {r['reviewer']})",
                      missing=lambda after, before: gaps(ids, after, before))
    found = [SignoffTampering(b.what, b.detail, b.row["id"], b.row["finding"]) for b in breaks]
    last = rows[-1]["chain"] if rows else GENESIS
    if records != len(rows) and head == last and not breaks:
        found.append(SignoffTampering("edited", f"the kept head counts {records} sign-offs, "
                                      f"the table has {len(rows)}"))
    elif head != last:
        cut = f"{records - len(rows)} sign-off(s) at the end were removed: " \
            if records > len(rows) else ""
        found.append(SignoffTampering("truncated", f"{cut}the kept head ({records} records, "
                                      f"{head[:12]}…) is not the last sign-off's chain "
                                      f"({len(rows)} records, {last[:12]}…)"))
    return SignoffCheck(len(rows), records, head, tuple(found))
