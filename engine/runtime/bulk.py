"""Start a process for every prospect in a CSV file, a batch per transaction.

Columns: `prospect_id` and `distributor_id` (required), `sponsor_id` (optional); every other
column joins the instance's context under its header name (an empty cell adds nothing). A row
that cannot be started — an empty id, a wrong number of cells, a map that fails on its data —
is reported with its row number (the header is row 1) and the other rows are started.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ExecutionError, NextmoveError
from engine.runtime.engine import Engine
from engine.runtime.model import NewProspect

REQUIRED = ("prospect_id", "distributor_id")


@dataclass(frozen=True)
class BadRow:
    row: int  # 1-based, the header being row 1
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "reason": self.reason}


@dataclass
class BulkStart:
    """What a CSV start did."""

    process_id: str
    rows: int = 0  # data rows read
    started: int = 0  # new instances
    existing: int = 0  # prospects whose active instance was returned instead
    batches: int = 0  # transactions
    bad: list[BadRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"process": self.process_id, "rows": self.rows, "started": self.started,
                "existing": self.existing, "batches": self.batches,
                "bad_rows": [b.to_dict() for b in self.bad]}


def count_rows(path: Path) -> int:
    """Data rows in the file (for a progress bar's total)."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return max(sum(1 for cells in csv.reader(fh) if cells) - 1, 0)


def read_prospects(path: Path) -> Iterator[tuple[int, NewProspect | BadRow]]:
    """(row number, prospect or why the row is unusable) for every data row."""
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise NextmoveError(f"cannot read {path}: {exc.strerror}") from exc
    with fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise NextmoveError(f"{path} is empty: expected a header row with "
                                f"{', '.join(REQUIRED)}")
        header = [h.strip() for h in header]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise NextmoveError(f"{path}: the header lacks {', '.join(missing)} "
                                f"(found: {', '.join(header) or 'nothing'})")
        for number, cells in enumerate(reader, start=2):
            if not cells:
                continue  # a blank line
            if len(cells) != len(header):
                yield number, BadRow(number, f"{len(cells)} cells, the header has "
                                             f"{len(header)}")
                continue
            values = {k: v.strip() for k, v in zip(header, cells, strict=True)}
            empty = [c for c in REQUIRED if not values[c]]
            if empty:
                yield number, BadRow(number, f"empty {', '.join(empty)}")
                continue
            prospect, distributor = values.pop("prospect_id"), values.pop("distributor_id")
            context = {k: v for k, v in values.items() if v}
            yield number, NewProspect(prospect, distributor, context)


def start_csv(
    engine: Engine, process_id: str, path: Path, *, batch_size: int = 500, new: bool = False,
    actor: str | None = None, progress: Callable[[int], None] | None = None,
) -> BulkStart:
    """Start `process_id` for every usable row of `path`; `progress(rows done)` per batch."""
    summary = BulkStart(process_id)
    batch: list[tuple[int, NewProspect]] = []

    def flush() -> None:
        if not batch:
            return
        try:
            results = [(n, s) for (n, _), s in zip(batch, engine.start_many(
                process_id, [p for _, p in batch], new=new, actor=actor), strict=True)]
            summary.batches += 1
        except ExecutionError:
            # Some row's data makes the map fail: start the rows one by one to name it.
            results = []
            for n, prospect in batch:
                try:
                    results.extend((n, s) for s in engine.start_many(
                        process_id, [prospect], new=new, actor=actor))
                    summary.batches += 1
                except ExecutionError as exc:
                    summary.bad.append(BadRow(n, str(exc)))
        for _, started in results:
            if started.created:
                summary.started += 1
            else:
                summary.existing += 1
        batch.clear()
        if progress is not None:
            progress(summary.rows)

    for number, item in read_prospects(path):
        summary.rows += 1
        if isinstance(item, BadRow):
            summary.bad.append(item)
        else:
            batch.append((number, item))
        if len(batch) >= batch_size:
            flush()
    flush()
    if progress is not None:
        progress(summary.rows)
    summary.bad.sort(key=lambda b: b.row)
    return summary
