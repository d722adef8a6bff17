"""The step log's anchor: what a reviewer keeps outside the database, so that a whole instance
deleted, an instance's tail cut off or its chain rewritten with fresh hashes still shows.

Each instance's step events are hash-chained and the instance row keeps the head
(`engine.store.trail`), so one edited, removed or moved event shows. The chains are unkeyed,
though, and each covers one instance only: someone who can write to the database can delete
an instance with all its events, or cut an instance's last events and set its head to match,
or recompute every hash after an edit, and each remaining chain still checks. `StepAnchor`
closes that gap, as `PolicyAnchor` does for the policy log:

    events   the cut-off: the last step event id when the anchor was taken
    ids      the instances that existed then, as ranges of ids
    digests  per block of `block` consecutive ids, the sha256 over each of those instances'
             id and chain as of the cut-off (the chain of its last event at or below `events`)

A later check recomputes the same from the database. An anchored instance that is gone, or a
block whose digest differs (an instance's events up to the cut-off removed, cut off or
rewritten), is tampering. Instances and events added after the anchor are not covered and are
fine. One digest per block keeps the anchor small; a rewritten chain is located to its block
of ids (the per-instance check names the instance itself unless the hashes were recomputed).

`TrailAnchor` is what `--anchor` reads: the policy log's `PolicyAnchor` and the `StepAnchor`.
An anchor kept before this (a policy head alone) still checks the policy log; its `steps` is
None and the step log is then only checked against itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from sqlalchemy import Connection, func, select, text

from compliance.policy_chain import BadAnchor, PolicyAnchor, anchor_json
from engine.store import INSTANCE, STEP_EVENT, trail
from engine.store.database import Store

BLOCK = 100  # instance ids per digest: a rewritten chain is located to its 100 ids
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class StepAnchor:
    """The step log as of one verification (see the module docstring); keep it outside the
    database."""

    events: int
    ids: tuple[tuple[int, int], ...]  # inclusive ranges of instance ids, ascending
    digests: Mapping[int, str] = field(default_factory=dict)  # block number -> sha256
    block: int = BLOCK

    @property
    def instances(self) -> int:
        return sum(last - first + 1 for first, last in self.ids)

    def to_dict(self) -> dict[str, Any]:
        return {"events": self.events, "instances": self.instances,
                "ids": [list(r) for r in self.ids], "block": self.block,
                "digests": {str(b): d for b, d in sorted(self.digests.items())}}

    @classmethod
    def from_dict(cls, data: Any, source: str = "anchor") -> StepAnchor:
        def bad(problem: str) -> BadAnchor:
            return BadAnchor(source, f"step_anchor: {problem}")

        if not isinstance(data, Mapping):
            raise bad("not a JSON object")
        events, block, ids, digests = (data.get(k) for k in ("events", "block", "ids",
                                                              "digests"))
        if not _count(events) or not _count(block) or block == 0:
            raise bad(f"events and block must be counts, not {events!r} and {block!r}")
        if not isinstance(ids, list) or not all(
                isinstance(r, list) and len(r) == 2 and all(_count(i) for i in r)
                and r[0] <= r[1] for r in ids):
            raise bad("ids must be a list of [first, last] instance id ranges")
        if not isinstance(digests, Mapping) or not all(
                k.isdigit() and isinstance(v, str) and _HEX64.fullmatch(v)
                for k, v in digests.items()):
            raise bad("digests must map block numbers to sha256s in hex")
        return cls(events, tuple((a, b) for a, b in ids),
                   {int(k): v for k, v in digests.items()}, block)


@dataclass(frozen=True)
class TrailAnchor:
    """What `--anchor` holds: the policy log's head and, since the step log was anchored too,
    the step log's anchor (None in an older anchor)."""

    policy: PolicyAnchor
    steps: StepAnchor | None = None

    @classmethod
    def from_dict(cls, data: Any, source: str = "anchor") -> TrailAnchor:
        """From a whole verification (`audit --verify --json`), {"policy": ..., "step_anchor":
        ...}, or an older {"records", "head"}."""
        policy = PolicyAnchor.from_dict(data, source)
        steps = data.get("step_anchor")
        return cls(policy, None if steps is None else StepAnchor.from_dict(steps, source))


def read_trail_anchor(path: Path) -> TrailAnchor:
    """The anchor kept in a JSON file (a saved verification, or an older policy head)."""
    return TrailAnchor.from_dict(anchor_json(path), source=str(path))


@dataclass(frozen=True)
class AnchorBreak:
    """Where the step log no longer reaches its anchor: instances `first`..`last` (ids)."""

    what: str  # instance removed | rewritten
    detail: str
    first: int
    last: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepAnchorCheck:
    """The step log against a kept anchor; `anchor` None: the anchor was an older one, with
    the policy log's head only, so nothing here could be checked."""

    anchor: StepAnchor | None
    tampered: tuple[AnchorBreak, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.tampered

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "anchor": self.anchor.to_dict() if self.anchor else None,
                "tampered": [t.to_dict() for t in self.tampered],
                "note": None if self.anchor else OLDER_ANCHOR}


OLDER_ANCHOR = ("an older anchor, with the policy log's head only: it cannot show instances "
                "removed or chains cut off or rewritten before it; keep this verification's "
                "--json as the anchor from now on")


def anchor_step_log(store: Store) -> StepAnchor:
    """The step log's anchor as the database keeps it now (verify the log before trusting
    it)."""
    events = _settled_cut_off(store)
    with store.read() as conn:
        ids = sorted(int(i) for i in conn.execute(select(INSTANCE.c.id)).scalars())
        heads = _heads(conn, events)
    return StepAnchor(events, _ranges(ids),
                      {b: _digest(members, heads) for b, members in _blocks(ids, BLOCK)})


def check_step_anchor(store: Store, anchor: StepAnchor) -> StepAnchorCheck:
    """Every instance the anchor covers must still exist and reach its chain as of the
    anchor's cut-off."""
    top = anchor.ids[-1][1] if anchor.ids else 0
    with store.read() as conn:
        present = set(conn.execute(select(INSTANCE.c.id).where(INSTANCE.c.id <= top)).scalars())
        heads = _heads(conn, anchor.events)
    ids = (i for first, last in anchor.ids for i in range(first, last + 1))
    found: list[AnchorBreak] = []
    for block, members in _blocks(ids, anchor.block):
        span = f"{members[0]}-{members[-1]}" if len(members) > 1 else str(members[0])
        gone = [i for i in members if i not in present]
        for first, last in _ranges(gone):
            which = f"instance {first}" if first == last else f"instances {first}-{last}"
            found.append(AnchorBreak(
                "instance removed", f"{which}: in the anchor (cut-off: event {anchor.events}) "
                f"but gone from the database, events and all; the other instances of {span} "
                "cannot be checked against the anchor without it", first, last))
        if not gone and _digest(members, heads) != anchor.digests.get(block):
            found.append(AnchorBreak(
                "rewritten", f"the chains of instances {span} as of event {anchor.events} no "
                "longer match the anchor: events up to it were removed, cut off or rewritten "
                "with fresh hashes in one of these instances", members[0], members[-1]))
    return StepAnchorCheck(anchor, tuple(found))


def _count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _ranges(ids: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Ascending ids as inclusive runs: 1 2 3 7 -> (1, 3), (7, 7)."""
    out: list[list[int]] = []
    for i in ids:
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return tuple((a, b) for a, b in out)


def _blocks(ids: Iterable[int], size: int) -> list[tuple[int, list[int]]]:
    """Ascending ids grouped by block number (id // size)."""
    blocks: dict[int, list[int]] = {}
    for i in ids:
        blocks.setdefault(i // size, []).append(i)
    return sorted(blocks.items())


def _heads(conn: Connection, events: int) -> dict[int, str]:
    """Each instance's chain as of event `events`: the chain of its last event up to it."""
    last = (select(func.max(STEP_EVENT.c.id)).where(STEP_EVENT.c.id <= events)
            .group_by(STEP_EVENT.c.instance_id))
    rows = conn.execute(select(STEP_EVENT.c.instance_id, STEP_EVENT.c.chain)
                        .where(STEP_EVENT.c.id.in_(last)))
    return {int(i): chain or "" for i, chain in rows}


def _digest(ids: list[int], heads: Mapping[int, str]) -> str:
    lines = "".join(f"{i}:{heads.get(i, trail.GENESIS)}\n" for i in ids)
    return hashlib.sha256(lines.encode("ascii")).hexdigest()


def _settled_cut_off(store: Store) -> int:
    """The last step event id, once every event up to it is committed. PostgreSQL gives ids
    out before commit, so a step written now could commit later below the cut-off and look
    like tampering; a SHARE lock waits for the steps being written (and holds new ones back
    for this one query). SQLite writers take turns, so ids already follow commits."""
    if store.is_sqlite:
        with store.read() as conn:
            return int(conn.execute(select(func.max(STEP_EVENT.c.id))).scalar() or 0)
    with store.write() as conn:
        conn.execute(text("LOCK TABLE step_event IN SHARE MODE"))
        return int(conn.execute(select(func.max(STEP_EVENT.c.id))).scalar() or 0)
