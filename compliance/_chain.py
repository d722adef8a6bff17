"""Explaining a broken hash chain: which record was edited, removed or moved.

Shared by the step-event trails and the policy log. Each record's `chain` is
link(previous chain, record); a record whose hash follows another record of the same chain
than the one before it was moved; one right after ids missing from its table follows removed
records; anything else was edited. Neighbouring moved records are one reordering, reported
once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]
Link = Callable[[str, Row], str]


@dataclass(frozen=True)
class ChainBreak:
    """One place a chain stops following from its records; `row` is where it shows."""

    what: str  # edited | removed | moved
    row: Row
    detail: str


def diagnose(rows: Sequence[Row], link: Link, genesis: str, *, noun: str,
             describe: Callable[[Row], str],
             missing: Callable[[int | None, int], list[int]]) -> list[ChainBreak]:
    """Walk `rows` (in id order) and explain each record that does not follow the one before.

    `describe(row)` names a record after its id, e.g. "9 (share_intro completed)";
    `missing(after, before)` lists the ids between two records that are gone from the table.
    """
    out: list[ChainBreak] = []
    moved: list[tuple[Row, str]] = []
    previous, previous_id = genesis, None
    chains = [genesis, *(r["chain"] for r in rows)]  # chains[j]: what row j follows
    for i, row in enumerate(rows):
        ok = link(previous, row) == row["chain"]
        if moved and (ok or _follows_another(chains, i, row, link) is None):
            out.append(_reordered(moved, noun, describe))
            moved = []
        if not ok:
            label = f"{noun} {describe(row)}"
            real = _follows_another(chains, i, row, link)
            gone = missing(previous_id, row["id"])
            if real is not None:
                moved.append((row, "the start" if real == 0 else f"{noun} {rows[real - 1]['id']}"))
            elif gone:
                ids = ", ".join(str(m) for m in gone[:5])
                out.append(ChainBreak("removed", row, f"the {noun}(s) before {label} were "
                                      f"removed (ids {ids} are gone)"))
            else:
                out.append(ChainBreak("edited", row, f"{label} no longer matches its hash: it "
                                      f"was edited (or the {noun} before it was rewritten with "
                                      "a new hash)"))
        previous, previous_id = row["chain"] or link(previous, row), row["id"]
    if moved:
        out.append(_reordered(moved, noun, describe))
    return out


def _follows_another(chains: list[str], i: int, row: Row, link: Link) -> int | None:
    """Index in `chains` of the record `row` was really written after, if not the one before."""
    return next((j for j, c in enumerate(chains)
                 if c and j != i and link(c, row) == row["chain"]), None)


def _reordered(moved: list[tuple[Row, str]], noun: str,
               describe: Callable[[Row], str]) -> ChainBreak:
    ids = ", ".join(str(r["id"]) for r, _ in moved)
    was = "; ".join(f"{describe(r)} came right after {real}" for r, real in moved)
    return ChainBreak("moved", moved[0][0],
                      f"{noun}s {ids} are out of their recorded order: {was}")


def gaps(present: set[int], after: int | None, before: int) -> list[int]:
    """Ids between two neighbouring records that the table no longer has (ids are given out
    in order, so a gap next to a break is where rows were deleted). With no record before,
    look just below `before`."""
    low = after if after is not None else max(before - 2, 0)  # ids start at 1
    return [i for i in range(low + 1, before) if i not in present]
