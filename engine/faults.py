"""What an exception means to an operator: a kind (`ErrorCode`) and one line saying the cause
and what to do.

`describe` is the one place where infrastructure errors — SQLAlchemy, sqlite3 and psycopg
errors, OS errors (disk full, permission denied), RecursionError, OverflowError, MemoryError —
are named. The CLI's error handler calls it; an HTTP API would too. A `NextmoveError` already
says what it is. Anything not recognised is an internal error: a bug to report.
"""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from engine.errors import ErrorCode, NextmoveError

_NOTHING = "nothing of this command was stored"


@dataclass(frozen=True)
class Fault:
    code: ErrorCode
    message: str

    def to_dict(self, error: str) -> dict[str, object]:
        return {"error": error, "code": str(self.code), "message": self.message}


def _first_line(text: object, limit: int = 200) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."


def describe(exc: BaseException) -> Fault:
    """The kind of `exc` and a one-line message naming its cause and what to do."""
    if isinstance(exc, NextmoveError):
        return Fault(exc.code, str(exc))
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return _database(exc.orig, integrity=isinstance(exc, IntegrityError))
    if isinstance(exc, sqlite3.Error):
        return _database(exc, integrity=isinstance(exc, sqlite3.IntegrityError))
    if isinstance(exc, SQLAlchemyError):
        return Fault(ErrorCode.STORAGE, f"database error: {_first_line(exc)}")
    if isinstance(exc, OSError):
        return _os(exc)
    if isinstance(exc, RecursionError):
        return Fault(ErrorCode.INVALID_INPUT, "the input is nested too deeply to process; "
                     f"flatten it (contexts and data allow 20 levels); {_NOTHING}")
    if isinstance(exc, OverflowError):
        return Fault(ErrorCode.INVALID_INPUT, f"a number or date is out of range "
                     f"({_first_line(exc)}); {_NOTHING}")
    if isinstance(exc, UnicodeError):
        return Fault(ErrorCode.INVALID_INPUT, f"the input is not valid text ({_first_line(exc)})")
    if isinstance(exc, MemoryError):
        return Fault(ErrorCode.STORAGE, "out of memory; give the process more memory or the "
                     "command less input")
    return Fault(ErrorCode.INTERNAL, f"internal error ({type(exc).__name__}: "
                 f"{_first_line(exc)}); rerun with --debug and report the traceback")


def _database(orig: BaseException, *, integrity: bool) -> Fault:
    said = _first_line(orig)
    text = said.lower()
    state = str(getattr(orig, "sqlstate", "") or "")
    if "database or disk is full" in text or state == "53100" or "no space left" in text:
        return Fault(ErrorCode.STORAGE, f"the database's disk is full ({said}); free space "
                     f"and run the command again; {_NOTHING}")
    if "locked" in text or state in ("40001", "40P01", "55P03"):
        return Fault(ErrorCode.CONFLICT, f"the database was busy ({said}); {_NOTHING}: "
                     "retry")
    if "file is not a database" in text or "malformed" in text:
        return Fault(ErrorCode.DATABASE, f"the file is not a usable SQLite database ({said})")
    if "unable to open database file" in text:
        return Fault(ErrorCode.STORAGE, f"the database file cannot be opened ({said}); SQLite "
                     "needs to write journal files beside it: check that its folder exists, "
                     f"is writable and is not on a read-only file system; {_NOTHING}")
    if "readonly" in text or "read-only" in text or state in ("25006", "42501"):
        return Fault(ErrorCode.STORAGE, f"the database cannot be written ({said}); check "
                     "its permissions")
    if integrity or state.startswith("23"):
        return Fault(ErrorCode.CONFLICT, f"another writer changed the same rows first "
                     f"({said}); {_NOTHING}: retry")
    if state.startswith(("22", "54")):
        return Fault(ErrorCode.INVALID_INPUT, f"the database refused a value ({said}); "
                     f"{_NOTHING}")
    if state.startswith(("42P01", "42703")):
        return Fault(ErrorCode.DATABASE, f"the database's tables are not what this nextmove "
                     f"expects ({said})")
    if isinstance(orig, sqlite3.ProgrammingError | sqlite3.InterfaceError) or state.startswith(
            ("42", "0A")):
        return Fault(ErrorCode.INTERNAL, f"internal error (database: {said}); rerun with "
                     "--debug and report the traceback")
    return Fault(ErrorCode.STORAGE, f"the database is unavailable ({said}); check that it "
                 "runs and can be reached, then retry")


def _os(exc: OSError) -> Fault:
    where = f": {exc.filename}" if exc.filename else ""
    reason = exc.strerror or _first_line(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return Fault(ErrorCode.STORAGE, f"no space left on the device{where}; free space and "
                     "run the command again")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return Fault(ErrorCode.STORAGE, f"permission denied{where} ({reason}); check the "
                     "file's permissions")
    if exc.errno == errno.ENOENT:
        return Fault(ErrorCode.NOT_FOUND, f"no such file or directory{where}")
    return Fault(ErrorCode.STORAGE, f"{reason}{where}")


__all__ = ["Fault", "describe"]
