"""A read-side hash chain over the policy activation log, for tamper evidence.

The `policy_activation` table (owned by content_catalog) has no chain column, so nothing in the
database itself can show that an old activation was edited, removed or reordered. This helper
computes the chain when it reads the log: `anchor_activations` gives a small document (count,
head and one link per entry) a reviewer keeps outside the database (e.g. next to a signed
audit report); `check_activations` later recomputes the chain and names the first entry that
no longer matches. New entries after the anchor are fine: the log is append-only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from engine.store.database import Store
from engine.store.tables import PolicyActivationRow

ACTIVATION = PolicyActivationRow.__table__  # type: ignore[attr-defined]
GENESIS = "0" * 64
_FIELDS = ("hook", "version", "action", "reason", "at")


def _canonical(row: Mapping[str, Any]) -> str:
    values = {}
    for name in _FIELDS:
        value = row[name]
        if isinstance(value, datetime):
            value = value.replace(tzinfo=None).isoformat(timespec="microseconds")
        values[name] = value
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


def _describe(row: Mapping[str, Any]) -> str:
    at = row["at"].isoformat(timespec="seconds") if isinstance(row["at"], datetime) else row["at"]
    return f"#{row['id']} ({row['action']} {row['hook']} v{row['version']} at {at})"


@dataclass(frozen=True)
class ActivationAnchor:
    """The chain of the activation log at one moment; keep it outside the database."""

    count: int
    head: str
    links: tuple[str, ...] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "head": self.head, "links": list(self.links)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActivationAnchor:
        links = tuple(str(x) for x in data.get("links", ()))
        return cls(int(data["count"]), str(data["head"]), links)


@dataclass(frozen=True)
class ActivationCheck:
    """The activation log compared with an anchor: `changes` is empty when nothing moved."""

    anchored: int  # entries the anchor covers
    current: int  # entries in the log now
    changes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.changes

    def to_dict(self) -> dict[str, Any]:
        return {"anchored": self.anchored, "current": self.current, "ok": self.ok,
                "changes": list(self.changes)}


def _rows(store: Store) -> list[dict[str, Any]]:
    with store.read() as conn:
        return [dict(r) for r in conn.execute(select(ACTIVATION).order_by(ACTIVATION.c.id))
                .mappings()]


def _links(rows: list[dict[str, Any]]) -> list[str]:
    head, links = GENESIS, []
    for row in rows:
        head = hashlib.sha256((head + _canonical(row)).encode("utf-8")).hexdigest()
        links.append(head)
    return links


def anchor_activations(store: Store) -> ActivationAnchor:
    """The activation log's chain as it is now."""
    links = _links(_rows(store))
    return ActivationAnchor(len(links), links[-1] if links else GENESIS, tuple(links))


def check_activations(store: Store, anchor: ActivationAnchor) -> ActivationCheck:
    """Recompute the chain and compare the entries the anchor covers."""
    rows = _rows(store)
    links = _links(rows)
    covered = links[: anchor.count]
    expected = list(anchor.links) or None
    if len(links) < anchor.count:
        missing = anchor.count - len(links)
        return ActivationCheck(anchor.count, len(links), (
            f"{missing} activation(s) recorded before the anchor are gone: the log has "
            f"{len(links)} entries, the anchor covered {anchor.count}",))
    if expected is None:  # an anchor kept as count and head only
        if (covered[-1] if covered else GENESIS) == anchor.head:
            return ActivationCheck(anchor.count, len(links))
        return ActivationCheck(anchor.count, len(links), (
            f"the first {anchor.count} activations no longer hash to the anchored head: one "
            "was edited, removed or reordered",))
    for i, (now, then) in enumerate(zip(covered, expected, strict=False)):
        if now != then:
            return ActivationCheck(anchor.count, len(links), (
                f"activation {_describe(rows[i])} differs from the anchored log: it was edited, "
                "or an entry at this place was removed or reordered",))
    return ActivationCheck(anchor.count, len(links))
