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

The file must be UTF-8 (Excel: "CSV UTF-8"): a row with a byte that is not is reported, naming
the byte, and not started. A cell of a field the map declares (docs/data.md) is converted to
its declared type — boolean (true/false/yes/no/1/0, any case), integer, number — and a row whose
cell is not of that type or not one of the field's `values` is reported; other columns stay
text. A header that names a column twice is refused.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import DataError, IntegrityError

from engine.definitions.data import DataDeclaration, DataField
from engine.errors import ExecutionError, InvalidInput, NextmoveError, did_you_mean
from engine.faults import describe
from engine.runtime.engine import Engine, check_prospect
from engine.runtime.model import NewProspect

# Characters csv reads in one cell (its default is 128 KiB). Cells up to this are read and
# their row refused by the context limit (64 KiB); past it csv cannot tell where the next row
# starts, so reading stops there with that row reported.
MAX_FIELD = 16 << 20
OnError = Literal["skip", "reject"]
REQUIRED = ("prospect_id", "distributor_id")
UTF8 = 'the file must be UTF-8 (in Excel: Save As "CSV UTF-8")'
# Bytes that are not UTF-8 are read as lone surrogates U+DC80..U+DCFF (errors="surrogateescape"),
# so each row can name its own byte instead of the whole file failing or being mangled.
_UNDECODED = re.compile("[\udc80-\udcff]")
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


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


def declaration(engine: Engine, process_id: str) -> DataDeclaration | None:
    """The data the newest version of `process_id` declares (None or inferred: nothing)."""
    from engine.runtime.versions import latest_definition_id

    with engine.store.read() as conn:
        definition_id = latest_definition_id(conn, process_id)
    found = getattr(engine.pipeline.definitions.get(definition_id).spec, "nextmove_data", None)
    return found if isinstance(found, DataDeclaration) and not found.inferred else None


def read_prospects(path: Path, declared: DataDeclaration | None = None
                   ) -> Iterator[tuple[int, NewProspect | BadRow]]:
    """(row number, prospect or why the row is unusable) for every data row; cells of the
    fields `declared` converted to their declared types."""
    try:
        fh = path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
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
        undecoded = _undecoded(header)
        if undecoded:
            raise NextmoveError(f"{path}: the header has {undecoded}; {UTF8}")
        header = [h.strip() for h in header]
        repeated = sorted({h for h in header if h and header.count(h) > 1}, key=header.index)
        if repeated:
            where = "; ".join(f"{h!r} is columns " + " and ".join(
                str(i) for i, c in enumerate(header, 1) if c == h) for h in repeated)
            raise NextmoveError(f"{path}: the header repeats a column ({where}): name each "
                                "column once")
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
            yield number, _prospect(header, cells, number, reader.line_num, declared)


def _undecoded(cells: list[str]) -> str | None:
    """'byte 0xE9 (cell 3: ...), not UTF-8' for the first byte that is not UTF-8, or None."""
    for i, cell in enumerate(cells):
        found = _UNDECODED.search(cell)
        if found is not None:
            shown = _UNDECODED.sub("\ufffd", cell)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            return f"byte 0x{ord(found.group()) - 0xDC00:02X} (cell {i + 1}: {shown!r}), not UTF-8"
    return None


def _prospect(header: list[str], cells: list[str], number: int, line: int,
              declared: DataDeclaration | None = None) -> NewProspect | BadRow:
    undecoded = _undecoded(cells)
    if undecoded:
        return BadRow(number, f"{undecoded}; {UTF8}", line)
    if len(cells) != len(header):
        return BadRow(number, f"{len(cells)} cells, the header has {len(header)}", line)
    values = {k: v.strip() for k, v in zip(header, cells, strict=True)}
    empty = [c for c in REQUIRED if not values[c]]
    if empty:
        return BadRow(number, f"empty {', '.join(empty)}", line)
    prospect, distributor = values.pop("prospect_id"), values.pop("distributor_id")
    context: dict[str, Any] = {}
    for name, text in values.items():
        if not text:
            continue  # an empty cell: absent
        declared_field = declared.fields.get(name) if declared is not None else None
        if declared_field is None:
            context[name] = text
            continue
        try:
            context[name] = _typed(declared_field, text)
        except ValueError as exc:
            return BadRow(number, f"{name}: {exc}", line)
    try:
        return check_prospect(NewProspect(prospect, distributor, context))
    except InvalidInput as exc:
        return BadRow(number, str(exc), line)


def _typed(declared: DataField, text: str) -> Any:
    """A cell as the value of its declared field; ValueError saying why it cannot be."""
    kind = declared.type
    value: Any = None
    if kind == "boolean":
        value = _BOOLEANS.get(text.lower())
    elif kind == "integer" and _INTEGER.fullmatch(text):
        value = int(text)
    elif kind == "number" and _NUMBER.fullmatch(text):
        value = int(text) if _INTEGER.fullmatch(text) else float(text)
        value = value if math.isfinite(value) else None  # 1e999: JSON has no infinity
    elif kind == "date":
        try:
            datetime.fromisoformat(text)
            value = text
        except ValueError:
            pass
    elif kind in ("string", "any"):
        # an enumeration of mixed values (type any): the value the cell spells
        value = next((v for v in declared.values if str(v) == text), text)
    if value is None:
        spelled = {"boolean": "true, false, yes, no, 1 or 0", "integer": "a whole number",
                   "number": "a number", "date": "an ISO 8601 date or time"}[kind]
        raise ValueError(f"{text!r} is not {spelled} (declared {kind})")
    if declared.values and value not in declared.values:
        choices = [str(v) for v in declared.values]
        hint = next((c for c in choices if c.lower() == text.lower()), None) or did_you_mean(
            text, choices)
        raise ValueError(f"{text!r} is not one of the declared values {', '.join(choices)}"
                         + (f" (did you mean {hint!r}?)" if hint else ""))
    return value


def start_csv(
    engine: Engine, process_id: str, path: Path, *, batch_size: int = 500, new: bool = False,
    actor: str | None = None, progress: Callable[[int], None] | None = None,
    on_error: OnError = "skip",
) -> BulkStart:
    """Start `process_id` for every usable row of `path`; `progress(rows done)` per batch.

    With on_error="reject", nothing is started if any row is bad (the summary lists them)."""
    summary = BulkStart(process_id)
    batch: list[tuple[int, NewProspect]] = []
    rows = read_prospects(path, declaration(engine, process_id))
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
