"""The one place where an error becomes an exit code.

Exit codes (`EXIT_CODES`; `--json` prints the error as an object whose `code` is the name):

    0  success
    1  refused      valid, but the instance's state does not allow it (step not waiting,
                    required step, the map failed on this data, a file already imported),
                    or some rows of a bulk command were bad (the others were done)
    2  usage        the command line is wrong (typer/click's own code)
    3  invalid-input  a map, context, id, log, time or option value breaks a rule
    4  not-found    no such instance, process, hook or file
    5  conflict     another worker got there first (or the database was locked); nothing
                    was applied: retrying is safe
    6  database     not a nextmove database, a newer schema, an unsupported kind of database
    7  storage      the database cannot be reached or written: down, disk full, read-only
    8  internal     a bug in nextmove: rerun with --debug and report the traceback

Every exception a command raises ends here: a `NextmoveError` says its own kind; SQLAlchemy,
sqlite3, psycopg and OS errors, RecursionError, OverflowError and the rest are named by
`engine.faults.describe`. The message is one line on stderr (or a JSON object on stdout
with --json). A traceback is printed only with --debug (or NEXTMOVE_DEBUG=1).

Commands raise; they never print an error themselves:

    @app.command()
    @exit_codes
    def show(..., as_json: JsonOption = False) -> None:
        raise NextmoveError("say which instance")     # → "error: say which instance", exit 3
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from typing import NoReturn, ParamSpec

import typer
from rich.markup import escape

from commands._output import err, print_json, print_problems
from commands._wiring import close_engines
from engine.errors import DefinitionError, ErrorCode, NextmoveError

P = ParamSpec("P")

EXIT_CODES: dict[ErrorCode, int] = {
    ErrorCode.REFUSED: 1,
    ErrorCode.USAGE: 2,
    ErrorCode.INVALID_INPUT: 3,
    ErrorCode.NOT_FOUND: 4,
    ErrorCode.CONFLICT: 5,
    ErrorCode.DATABASE: 6,
    ErrorCode.STORAGE: 7,
    ErrorCode.INTERNAL: 8,
}
PARTIAL = EXIT_CODES[ErrorCode.REFUSED]  # a bulk command that left some rows out


def exit_code(exc: BaseException) -> int:
    from engine.faults import describe  # SQLAlchemy's errors: loaded when there is an error

    return EXIT_CODES[describe(exc).code]


_debug = ContextVar("nextmove_debug", default=False)


def set_debug(on: bool) -> None:
    """The app's --debug option (or NEXTMOVE_DEBUG=1), set by its callback on every run."""
    _debug.set(on)


def debugging() -> bool:
    return _debug.get()


def fail(exc: BaseException, as_json: bool) -> NoReturn:
    """Print `exc` for a person (stderr) or a script (JSON on stdout) and exit with its code."""
    from engine.faults import describe

    fault = describe(exc)
    if debugging():
        traceback.print_exception(exc, file=sys.stderr)
    if as_json:
        print_json(exc.to_dict() if isinstance(exc, NextmoveError)
                   else fault.to_dict(type(exc).__name__))
    elif isinstance(exc, DefinitionError):
        print_problems(exc.problems)
    else:
        err.print(f"[red]error:[/red] {escape(fault.message)}")
    raise typer.Exit(EXIT_CODES[fault.code])


def exit_codes(command: Callable[P, None]) -> Callable[P, None]:
    """Run `command`; whatever it raises is printed as one line and becomes the exit code.

    The command's own `as_json` argument (its --json option) picks the error's format. typer
    reads the wrapped command's signature, so options are unchanged. typer's own exceptions
    (usage errors, typer.Exit, typer.Abort) and Ctrl-C pass through to typer."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise  # usage errors (BadParameter, ...) and exits are click's to print
        except Exception as exc:
            fail(exc, as_json=bool(kwargs.get("as_json", False)))
        finally:
            close_engines()

    return run
