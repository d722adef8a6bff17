"""Start a process for every prospect in a CSV file, a batch per transaction.

Columns: `prospect_id` and `distributor_id` (required), `sponsor_id` (optional); every other
column joins the instance's context under its header name (an empty cell adds nothing). A row
that cannot be started — an empty or overlong id, a control character or NUL byte, a wrong
number of cells, a context over `engine.inputs`' limits (a 1 MB cell), a map that fails on
its data, a value the database refuses — is reported with its row number (the header is row
1) and line, and the other rows are started. A cell over `MAX_FIELD` (16 MiB) stops the
reading there: that row is reported, the rows before it are started. With `on_error="reject"`
every row is checked first and nothing is started if any is bad (then all rows go in one
transaction, so a row the map fails on also starts nothing).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import DataError, IntegrityError

from engine.errors import ExecutionError, InvalidInput, NextmoveError
from engine.faults import describe
from engine.runtime.engine import Engine, check_prospect
from engine.runtime.model import NewProspect

# Characters csv reads in one cell (its default is 128 KiB). Cells up to this are read and
# their row refused by the context limit (64 KiB); past it csv cannot tell where the next row
# starts, so reading stops there with that row reported.
MAX_FIELD = 16 << 20
OnError = Literal["skip", "reject"]
REQUIRED = ("prospect_id", "distributor_id")


@dataclass(frozen=True)
class BadRow:
    row: int  # 1-based, the header being row 1
    reason: str
    line: int | None = None  # the file's line where the row ends (quoted cells span lines)

    def __str__(self) -> str:
        line = f" (line {self.line})" if self.line is not None and self.line != self.row else ""
        return f"row {self.row}{line}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "line": self.line, "reason": self.reason}


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


@contextmanager
def _field_limit() -> Iterator[None]:
    """csv's limit (128 KiB) raised to MAX_FIELD while a file is read (it is process-wide)."""
    before = csv.field_size_limit(MAX_FIELD)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def count_rows(path: Path) -> int:
    """Data rows in the file, about (for a progress bar's total): its non-blank lines."""
    with path.open("rb") as fh:
        return max(sum(1 for line in fh if line.strip()) - 1, 0)


def read_prospects(path: Path) -> Iterator[tuple[int, NewProspect | BadRow]]:
    """(row number, prospect or why the row is unusable) for every data row."""
    try:
        fh = path.open(newline="", encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise NextmoveError(f"cannot read {path}: {exc.strerror}") from exc
    with fh, _field_limit():
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise InvalidInput(str(path), f"line 1: the header is not CSV ({exc})") from exc
        if header is None:
            raise NextmoveError(f"{path} is empty: expected a header row with "
                                f"{', '.join(REQUIRED)}")
        header = [h.strip() for h in header]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise NextmoveError(f"{path}: the header lacks {', '.join(missing)} "
                                f"(found: {', '.join(header) or 'nothing'})")
        number = 1
        while True:
            number += 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # a cell over MAX_FIELD
                yield number, BadRow(number, f"not readable as CSV ({exc}); the rows after "
                                             "it were not read", reader.line_num)
                return
            if not cells:
                continue  # a blank line
            yield number, _prospect(header, cells, number, reader.line_num)


def _prospect(header: list[str], cells: list[str], number: int, line: int
              ) -> NewProspect | BadRow:
    if len(cells) != len(header):
        return BadRow(number, f"{len(cells)} cells, the header has {len(header)}", line)
    values = {k: v.strip() for k, v in zip(header, cells, strict=True)}
    empty = [c for c in REQUIRED if not values[c]]
    if empty:
        return BadRow(number, f"empty {', '.join(empty)}", line)
    prospect, distributor = values.pop("prospect_id"), values.pop("distributor_id")
    found = NewProspect(prospect, distributor, {k: v for k, v in values.items() if v})
    try:
        return check_prospect(found)
    except InvalidInput as exc:
        return BadRow(number, str(exc), line)


def start_csv(
    engine: Engine, process_id: str, path: Path, *, batch_size: int = 500, new: bool = False,
    actor: str | None = None, progress: Callable[[int], None] | None = None,
    on_error: OnError = "skip",
) -> BulkStart:
    """Start `process_id` for every usable row of `path`; `progress(rows done)` per batch.

    With on_error="reject", nothing is started if any row is bad (the summary lists them)."""
    summary = BulkStart(process_id)
    batch: list[tuple[int, NewProspect]] = []
    rows = read_prospects(path)
    if on_error == "reject":
        every = list(rows)
        summary.bad = [item for _, item in every if isinstance(item, BadRow)]
        if summary.bad:
            summary.rows = len(every)
            return summary
        rows, batch_size = iter(every), max(len(every), 1)

    def flush() -> None:
        if not batch:
            return
        try:
            results = [(n, s) for (n, _), s in zip(batch, engine.start_many(
                process_id, [p for _, p in batch], new=new, actor=actor), strict=True)]
            summary.batches += 1
        except (ExecutionError, InvalidInput, DataError, IntegrityError) as exc:
            if on_error == "reject":
                summary.bad.append(BadRow(batch[0][0], f"nothing was started: "
                                                       f"{describe(exc).message}"))
                batch.clear()
                return
            # Some row's data makes the map or the database fail: one by one to name it.
            results = []
            for n, prospect in batch:
                try:
                    results.extend((n, s) for s in engine.start_many(
                        process_id, [prospect], new=new, actor=actor))
                    summary.batches += 1
                except (ExecutionError, InvalidInput, DataError, IntegrityError) as exc:
                    summary.bad.append(BadRow(n, describe(exc).message))
        for _, started in results:
            if started.created:
                summary.started += 1
            else:
                summary.existing += 1
        batch.clear()
        if progress is not None:
            progress(summary.rows)

    for number, item in rows:
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
