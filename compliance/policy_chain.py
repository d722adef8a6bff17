"""The policy log as evidence: every policy version saved, activated or rolled back to.

The log is hash-chained in the database as it is written (`engine.store.trail.PolicyTrail`):
each record commits to the record before it and to the sha256 of the policy document it
names, and `policy_trail_head` keeps the head. `verify_policy_trail` recomputes all of it and
names each record edited, removed or moved, a cut tail (the kept head differs), a stored policy
document that no longer matches what its records committed to ("policy changed") or is gone
("policy removed"), a stored version no record names ("unrecorded"), and an active version
other than the one the log's activations and rollbacks leave ("active changed").

What a reviewer must keep outside the database: the hashes are unkeyed, so someone who can
write to the database and recomputes every hash after an edit leaves a consistent log. Keep
the `PolicyAnchor` (record count and head) of each verification — `nextmove audit --verify
--json` prints it — and pass it to later checks: the log must still reach that head after that
many records. Records added after the anchor are fine; the log only grows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from compliance._chain import diagnose, gaps
from engine.errors import NextmoveError
from engine.store import POLICY, POLICY_ACTIVATION, POLICY_TRAIL_HEAD, trail
from engine.store import POLICY_ACTIVE as ACTIVE
from engine.store.database import Store

_HEX64 = re.compile(r"[0-9a-f]{64}")


class BadAnchor(NextmoveError, ValueError):
    """An anchor file or document that is not a policy log anchor."""

    def __init__(self, source: str, problem: str) -> None:
        self.source, self.problem = source, problem
        super().__init__(f"{source}: {problem}; expected the JSON of `nextmove audit --verify "
                         '--json` or {"records": N, "head": "<64 hex digits>"}')


@dataclass(frozen=True)
class PolicyAnchor:
    """The policy log's length and head at one verification; keep it outside the database."""

    records: int
    head: str

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "head": self.head}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "anchor") -> PolicyAnchor:
        """From {"records", "head"} or from a whole verification (its "policy" part)."""
        if isinstance(data, Mapping) and isinstance(data.get("policy"), Mapping):
            data = data["policy"]
        if not isinstance(data, Mapping):
            raise BadAnchor(source, "not a JSON object")
        records, head = data.get("records"), data.get("head")
        if not isinstance(records, int) or isinstance(records, bool) or records < 0:
            raise BadAnchor(source, f"records must be a count, not {records!r}")
        if not isinstance(head, str) or not _HEX64.fullmatch(head):
            raise BadAnchor(source, f"head must be a sha256 in hex, not {head!r}")
        return cls(records, head)


def read_anchor(path: Path) -> PolicyAnchor:
    """The anchor kept in a JSON file (a saved verification, or just records and head)."""
    return PolicyAnchor.from_dict(anchor_json(path), source=str(path))


def anchor_json(path: Path) -> Any:
    """The JSON of an anchor file; BadAnchor if it cannot be read."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadAnchor(str(path), f"cannot read it ({exc})") from exc


@dataclass(frozen=True)
class PolicyTampering:
    """One place the policy log or a policy it names was altered. `what`: edited, removed,
    moved, truncated, rewritten (against the anchor), policy changed, policy removed,
    unrecorded, active changed."""

    what: str
    detail: str
    record_id: int | None = None
    hook: str | None = None
    version: int | None = None
    action: str | None = None  # save | activate | rollback

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PolicyTrailCheck:
    """The policy log recomputed: `tampered` is empty when it is intact. `records` and `head`
    are as the database keeps them now: the anchor for the next check."""

    checked: int  # records checked
    records: int
    head: str
    tampered: tuple[PolicyTampering, ...]
    anchor: PolicyAnchor | None = None  # the anchor checked against, if any

    @property
    def ok(self) -> bool:
        return not self.tampered

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "records": self.records,
                "head": self.head, "tampered": [t.to_dict() for t in self.tampered],
                "anchor": self.anchor.to_dict() if self.anchor else None}


def anchor_policy_trail(store: Store) -> PolicyAnchor:
    """The policy log's anchor as the database keeps it now (check it before trusting it)."""
    with store.read() as conn:
        found = conn.execute(select(POLICY_TRAIL_HEAD.c.records, POLICY_TRAIL_HEAD.c.head)
                             .where(POLICY_TRAIL_HEAD.c.id == 1)).first()
    return PolicyAnchor(int(found[0]), str(found[1])) if found else PolicyAnchor(0, trail.GENESIS)


def verify_policy_trail(store: Store, *, anchor: PolicyAnchor | None = None) -> PolicyTrailCheck:
    """Recompute the policy log's chain, its head, and the hashes of the policies it names."""
    log = POLICY_ACTIVATION
    with store.read() as conn:
        rows = [dict(r) for r in conn.execute(select(log).order_by(log.c.id)).mappings()]
        kept = conn.execute(select(POLICY_TRAIL_HEAD.c.records, POLICY_TRAIL_HEAD.c.head)
                            .where(POLICY_TRAIL_HEAD.c.id == 1)).first()
        documents = {(h, v): d for h, v, d in conn.execute(
            select(POLICY.c.hook, POLICY.c.version, POLICY.c.document))}
        active = {h: int(v) for h, v in conn.execute(select(ACTIVE.c.hook, ACTIVE.c.version))}
    records, head = (int(kept[0]), str(kept[1])) if kept else (0, trail.GENESIS)
    ids = {r["id"] for r in rows}
    breaks = diagnose(rows, trail.policy_link, trail.GENESIS, noun="record", describe=_describe,
                      missing=lambda after, before: gaps(ids, after, before))
    found = [_at(b.row, b.what, b.detail) for b in breaks]
    last = rows[-1]["chain"] if rows else trail.GENESIS
    if head != last:
        cut = f"{records - len(rows)} record(s) at the end were removed: " \
            if records > len(rows) else ""
        found.append(PolicyTampering("truncated", f"{cut}the head kept in policy_trail_head "
                                     f"({records} records, {head[:12]}…) is not the last "
                                     f"record's chain ({len(rows)} records, {last[:12]}…)"))
    elif records != len(rows) and not breaks:
        found.append(PolicyTampering("edited", f"policy_trail_head counts {records} records, "
                                     f"the log has {len(rows)}"))
    edited = {b.row["id"] for b in breaks if b.what == "edited"}
    found += _policies(rows, edited, documents)
    found += _active(rows, active)
    if anchor is not None:
        found += _anchored(rows, anchor)
    return PolicyTrailCheck(len(rows), records, head, tuple(found), anchor)


def _describe(row: Mapping[str, Any]) -> str:
    return f"{row['id']} ({row['action']} {row['hook']} v{row['version']})"


def _at(row: Mapping[str, Any], what: str, detail: str) -> PolicyTampering:
    return PolicyTampering(what, detail, row["id"], row["hook"], row["version"], row["action"])


def _policies(rows: list[dict[str, Any]], edited: set[int],
              documents: dict[tuple[str, int], str]) -> list[PolicyTampering]:
    """Each stored version against the hash its first intact record committed to."""
    out: list[PolicyTampering] = []
    named: set[tuple[str, int]] = set()
    for row in rows:
        key = (row["hook"], row["version"])
        if key in named or row["id"] in edited:  # an edited record's hash proves nothing
            continue
        named.add(key)
        label = f"policy {key[0]} v{key[1]}"
        if key not in documents:
            out.append(_at(row, "policy removed", f"{label}, named by record {_describe(row)}, "
                           "is no longer stored"))
        elif trail.policy_hash(documents[key]) != row["policy_hash"]:
            out.append(_at(row, "policy changed", f"{label} no longer matches the content hash "
                           f"record {_describe(row)} committed to: its stored document was "
                           "edited"))
    named |= {(r["hook"], r["version"]) for r in rows}
    for hook, version in sorted(documents.keys() - named):
        out.append(PolicyTampering("unrecorded", f"policy {hook} v{version} is stored but no "
                                   "record names it: it was added behind nextmove's back, or "
                                   "its records were removed", hook=hook, version=version))
    return out


def _active(rows: list[dict[str, Any]], active: dict[str, int]) -> list[PolicyTampering]:
    """The active versions against a replay of the log's activations and rollbacks."""
    stacks: dict[str, list[int]] = {}
    for row in rows:
        stack = stacks.setdefault(row["hook"], [])
        if row["action"] == "activate":
            stack.append(row["version"])
        elif row["action"] == "rollback" and stack:
            stack.pop()
    out = []
    for hook in sorted(stacks.keys() | active.keys()):
        logged = stacks.get(hook, [])
        expected = logged[-1] if logged else None
        if active.get(hook) != expected:
            now = f"v{active[hook]}" if hook in active else "none"
            was = f"v{expected}" if expected is not None else "none"
            out.append(PolicyTampering("active changed", f"hook {hook} uses {now}, but the "
                                       f"log's activations and rollbacks leave {was} active",
                                       hook=hook, version=active.get(hook)))
    return out


def _anchored(rows: list[dict[str, Any]], anchor: PolicyAnchor) -> list[PolicyTampering]:
    """The log must still reach the anchored head, after exactly the anchored records."""
    if anchor.records == 0:
        return []  # an anchor of the empty log: anything since is growth
    at = next((i for i, r in enumerate(rows) if r["chain"] == anchor.head), None)
    if at is None:
        return [PolicyTampering("rewritten", f"no record carries the anchored head "
                                f"{anchor.head[:12]}…: the first {anchor.records} records were "
                                "rewritten or removed since the anchor was kept")]
    if at + 1 != anchor.records:
        return [_at(rows[at], "rewritten", f"the anchored head is on record {_describe(rows[at])}"
                    f", record number {at + 1}, but the anchor kept it as number "
                    f"{anchor.records}: records before it were removed or added")]
    return []
