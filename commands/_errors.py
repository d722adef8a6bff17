"""The one place where an error becomes an exit code.

Exit codes: 0 success; 1 a `NextmoveError` (a problem with the input or the request: invalid
map, unknown instance, step not waiting, required step, a malformed option value, ...); 2 a
`VersionConflict` (another worker changed the instance first; nothing was applied). typer
itself exits 2 on a command-line usage error. With --json the error is printed as JSON on
stdout, otherwise as a sentence (or a map's list of problems) on stderr.

Commands raise; they never print an error themselves:

    @app.command()
    @exit_codes
    def show(..., as_json: JsonOption = False) -> None:
        raise NextmoveError("say which instance")     # → "error: say which instance", exit 1
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NoReturn, ParamSpec

import typer
from rich.markup import escape

from commands._output import err, print_json, print_problems
from engine import DefinitionError, NextmoveError, VersionConflict

P = ParamSpec("P")


def exit_code(exc: NextmoveError) -> int:
    return 2 if isinstance(exc, VersionConflict) else 1


def fail(exc: NextmoveError, as_json: bool) -> NoReturn:
    """Print `exc` for a person (stderr) or a script (JSON on stdout) and exit with its code."""
    if as_json:
        print_json(exc.to_dict())
    elif isinstance(exc, DefinitionError):
        print_problems(exc.problems)
    else:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
    raise typer.Exit(exit_code(exc))


def exit_codes(command: Callable[P, None]) -> Callable[P, None]:
    """Run `command`; a NextmoveError it raises is printed and becomes the exit code.

    The command's own `as_json` argument (its --json option) picks the error's format. typer
    reads the wrapped command's signature, so options are unchanged."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except NextmoveError as exc:
            fail(exc, as_json=bool(kwargs.get("as_json", False)))

    return run
