"""Read CSV, Parquet and XES logs as rows of XES-named values, streaming.

Every reader yields `(where, values)`: `where` locates the row for error reports (CSV: data
row and physical line; Parquet: row; XES: trace, event and source line) and `values` maps XES
column names to values. XES trace attributes arrive as `case:<key>`, the way pm4py flattens
them, so the importer validates all three formats with one function.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from engine.errors import did_you_mean
from learner._records import LogImportError
from learner._xes import read_xes

CASE = "case:concept:name"
ACTIVITY = "concept:name"
TIME = "time:timestamp"
RESOURCE = "org:resource"
HOOK = "nextmove:hook"
CONTENT = "nextmove:content"
PROPENSITY = "nextmove:propensity"
REQUIRED = (CASE, ACTIVITY, TIME)

Where = dict[str, int | None]
Rows = Iterator[tuple[Where, dict[str, Any]]]
Tick = Callable[[int, int | None, str], None]  # done, total, unit
TICK_EVERY = 5000

_FORMATS = {
    ".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet",
    ".xes": "xes", ".xes.gz": "xes",
}


def detect_format(path: Path) -> str:
    name = path.name.lower()
    for suffix, fmt in sorted(_FORMATS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(suffix):
            return fmt
    raise LogImportError(
        f"cannot tell the log format from the name {path.name!r}; use one of "
        + ", ".join(sorted(_FORMATS)), file=str(path), reason="format")


def read_rows(path: Path, fmt: str, tick: Tick) -> Rows:
    if fmt == "csv":
        return _csv(path, tick)
    if fmt == "parquet":
        return _parquet(path, tick)
    return _xes(path, tick)


def _check_columns(path: Path, columns: list[str]) -> None:
    for column in REQUIRED:
        if column not in columns:
            hint = did_you_mean(column, [c for c in columns if c not in REQUIRED])
            raise LogImportError(
                f"missing column {column!r} (XES column names are needed: "
                f"{', '.join(REQUIRED)})" + (f"; did you mean {hint!r}?" if hint else ""),
                file=str(path), reason="missing-column")


def _open(path: Path) -> tuple[IO[bytes], Any]:
    """The file (whose position measures progress) and the stream of its content."""
    raw = open(path, "rb")  # closed by the caller
    if path.name.lower().endswith(".gz"):
        return raw, gzip.GzipFile(fileobj=raw, mode="rb")
    return raw, raw


def _csv(path: Path, tick: Tick) -> Rows:
    raw, stream = _open(path)
    size = os.fstat(raw.fileno()).st_size
    with raw, io.TextIOWrapper(stream, encoding="utf-8-sig", newline="") as text:
        try:
            header_line = text.readline()
        except (UnicodeDecodeError, OSError) as exc:
            raise LogImportError(f"cannot read as CSV text: {exc}", file=str(path),
                                 reason="format") from exc
        delimiter = max((",", ";", "\t", "|"), key=header_line.count)
        reader = csv.reader(itertools.chain([header_line], text), delimiter=delimiter)
        header = next(reader, [])
        _check_columns(path, header)
        width = len(header)
        row = 0
        last = reader.line_num
        try:
            for fields in reader:
                start, last = last + 1, reader.line_num  # a quoted field may span lines
                if not fields:
                    continue  # blank line
                row += 1
                where: Where = {"row": row, "line": start}
                if len(fields) != width:
                    yield where, {"__error__": f"{len(fields)} fields, the header has {width}"}
                else:
                    yield where, {k: v for k, v in zip(header, fields, strict=True) if k}
                if row % TICK_EVERY == 0:
                    tick(raw.tell(), size, "bytes")
        except (csv.Error, UnicodeDecodeError, OSError, EOFError) as exc:
            raise LogImportError(f"cannot read CSV after line {reader.line_num}: {exc}",
                                 file=str(path), line=reader.line_num, reason="format") from exc
        tick(size, size, "bytes")


def _parquet(path: Path, tick: Tick) -> Rows:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise LogImportError(f"cannot read as Parquet: {exc}", file=str(path),
                             reason="format") from exc
    with handle:
        _check_columns(path, list(handle.schema_arrow.names))
        total = handle.metadata.num_rows
        row = 0
        for batch in handle.iter_batches(batch_size=TICK_EVERY):
            for values in batch.to_pylist():
                row += 1
                yield {"row": row}, {k: v for k, v in values.items() if k}
            tick(row, total, "rows")


def _xes(path: Path, tick: Tick) -> Rows:
    raw, stream = _open(path)
    size = os.fstat(raw.fileno()).st_size
    with raw:
        try:
            traces = read_xes(stream, str(path), lambda: tick(raw.tell(), size, "bytes"))
            for trace in traces:
                case = {f"case:{k}": v for k, v in trace.attributes.items()}
                if not trace.events:
                    yield {"trace": trace.index, "line": trace.line}, {
                        **case, "__error__": "trace has no events"}
                for event in trace.events:
                    where: Where = {"trace": trace.index, "event": event.index,
                                    "line": event.line}
                    yield where, {**case, **event.attributes, "__trace__": trace.index}
        except (OSError, EOFError) as exc:
            raise LogImportError(f"cannot read XES: {exc}", file=str(path),
                                 reason="format") from exc
        tick(size, size, "bytes")
