"""What an import reports, and the errors it raises.

    NextmoveError
    └── LogImportError          the file cannot be imported at all (format, unsafe XML,
        │                       missing column, a deployed map's process id); nothing written
        ├── LogRejected         on_error="reject" and some rows were malformed; nothing written
        └── LogAlreadyImported  this very file (same SHA-256) is already in the process
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from engine.errors import ErrorCode, NextmoveError


@dataclass(frozen=True)
class ImportProblem:
    """One malformed row (CSV: data row and line; Parquet: row; XES: trace and event)."""

    message: str
    row: int | None = None  # CSV/Parquet data row, 1-based, header not counted
    line: int | None = None  # CSV physical line / XES source line
    trace: int | None = None  # XES trace, 1-based
    event: int | None = None  # XES event within its trace, 1-based
    case_id: str | None = None

    @property
    def where(self) -> str:
        if self.trace is not None:
            text = f"trace {self.trace}" + (f", event {self.event}" if self.event else "")
        elif self.row is not None:
            text = f"row {self.row}"
        else:
            text = "file"
        return text + (f" (line {self.line})" if self.line is not None else "")

    def __str__(self) -> str:
        case = f" [case {self.case_id}]" if self.case_id else ""
        return f"{self.where}{case}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "where": self.where}


@dataclass(frozen=True)
class ImportProgress:
    """Handed to the progress callback: `done` of `total` `unit`s in `phase` (read, write)."""

    phase: str
    done: int
    total: int | None
    unit: str  # bytes (CSV/XES read), rows (Parquet read), events (write)


@dataclass(frozen=True)
class ImportReport:
    """What an import read and wrote. `problems` lists every row that was skipped."""

    process_id: str
    source: str
    format: str  # csv | parquet | xes
    content_hash: str  # SHA-256 of the file: importing it again into the process is refused
    definition_version: int | None  # the version the import was written as; None: nothing
    events_read: int
    cases_written: int
    events_written: int
    activities: tuple[str, ...]
    problems: tuple[ImportProblem, ...]
    cases_unchanged: int = 0  # already imported with the same content: left as they were
    cases_skipped: tuple[str, ...] = ()  # cases with a bad event: none of their events written
    # events whose time had no zone (e.g. "2026-01-05 09:00"): read as UTC; a log kept in
    # local time is then off by its UTC offset, so the report says how many there were
    timestamps_without_zone: int = 0

    @property
    def events_skipped(self) -> int:
        return self.events_read - self.events_written

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["problems"] = [p.to_dict() for p in self.problems]
        out["activities"] = list(self.activities)
        out["cases_skipped"] = list(self.cases_skipped)
        out["events_skipped"] = self.events_skipped
        return out


class LogImportError(NextmoveError):
    """The log cannot be imported; nothing was written."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 reason: str = "invalid") -> None:
        self.message, self.file, self.line, self.reason = message, file, line, reason
        where = ":".join(str(p) for p in (file, line) if p is not None)
        super().__init__(f"{where}: {message}" if where else message)
        if reason == "not-found":
            self.code = ErrorCode.NOT_FOUND  # type: ignore[misc]

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "file": self.file, "line": self.line,
                "reason": self.reason}


class LogRejected(LogImportError):
    """Malformed rows with on_error="reject": the whole import was refused."""

    def __init__(self, file: str, problems: list[ImportProblem]) -> None:
        self.problems = tuple(problems)
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{len(problems)} malformed row(s), nothing imported; first: "
                         f"{first}{more}", file=file, reason="rejected")

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "problems": [p.to_dict() for p in self.problems]}


class LogAlreadyImported(LogImportError):
    """The same file was imported into the same process before."""

    def __init__(self, file: str, process_id: str, version: int) -> None:
        self.process_id, self.version = process_id, version
        super().__init__(
            f"this file was already imported into process {process_id!r} (version {version}); "
            "nothing was written", file=file, reason="duplicate")
        self.code = ErrorCode.REFUSED  # type: ignore[misc]
