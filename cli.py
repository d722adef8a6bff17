"""The `nextmove` command line: the app, assembled from the command groups in `commands/`.

Exit codes (commands/_errors.py): 0 success; 1 refused (the instance's state does not allow
it) or some bulk rows bad; 2 usage error; 3 invalid input; 4 not found; 5 conflict (nothing
applied, retry is safe); 6 not a nextmove database or a newer schema; 7 storage unavailable
or full; 8 internal error. Every command takes --json for scripts; errors are then printed as
JSON too, with a stable `code`. --debug (or NEXTMOVE_DEBUG=1) adds the traceback.
`--version` prints the version; `--install-completion` installs shell completion (typer's).

The command modules import the runtime, the learner and the rest inside the commands, so
`nextmove --help` loads none of them (tests/test_cli_startup.py, bench/cli_start.py). The
`nextmove` script runs `run`, which builds only the invoked command's group: typer turns every
command's options into click parameters when it starts, about 0.1 s for all of them.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Annotated, Any

import typer

from commands import (
    admin,
    analytics,
    cards,
    compliance,
    definitions,
    instances,
    learning,
    serving,
    survival,
)
from commands._errors import set_debug


def _version(value: bool) -> None:
    if value:
        from importlib import metadata

        try:
            version = metadata.version("nextmove")
        except metadata.PackageNotFoundError:  # run from a checkout, not installed
            version = "0+unknown"
        typer.echo(f"nextmove {version}")
        raise typer.Exit()


_SETTINGS: dict[str, Any] = {
    "help": "nextmove: guided-selling journeys as process maps, run per prospect.\n\n"
    "Exit codes: 0 success; 1 refused: the instance's state does not allow it (step not "
    "waiting, required step, the map failed on this data), or some rows of a bulk command "
    "were bad; 2 usage error; 3 invalid input (map, context, id, log, time, option value); "
    "4 not found; 5 conflict: another worker got there first, nothing was applied, retrying "
    "is safe; 6 not a nextmove database, a newer schema or an unsupported database; 7 storage "
    "unavailable or full; 8 internal error (a bug: rerun with --debug and report it).\n\n"
    "Errors are one line on stderr, or with --json an object with a stable `code` "
    "(refused, usage, invalid-input, not-found, conflict, database, storage, internal). "
    "Input rules (the same on SQLite and PostgreSQL): ids (prospect, distributor, sponsor, "
    "message, actor) are 1-200 characters without control characters; --context and --data "
    "are JSON objects of at most 64 KiB and 20 levels, with finite numbers; amounts are "
    "finite; times lie between 1970 and 9000; instance ids between 1 and 2^63-1. "
    "The database is --db, else $NEXTMOVE_DB, else ./nextmove.db. "
    "--json output is one object with a `schema_version` (docs/json.md).",
    "no_args_is_help": True,
    "add_completion": True,
    "pretty_exceptions_enable": False,
}
app = typer.Typer(**_SETTINGS)


@app.callback()
def main(
    debug: Annotated[bool, typer.Option(
        "--debug", envvar="NEXTMOVE_DEBUG",
        help="Print the traceback of an error (after its one-line message).")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print nextmove's version and exit.")] = False,
) -> None:
    """nextmove: guided-selling journeys as process maps, run per prospect."""
    set_debug(debug)


GROUPS = (definitions, instances, cards, learning, analytics, survival, compliance, admin, serving)
for group in GROUPS:
    app.add_typer(group.app)  # no name: the group's commands stay at the top level


def _names(group: ModuleType) -> list[str]:
    """The top-level command names a group module adds (its commands and sub-groups)."""
    commands: typer.Typer = group.app
    return [info.name or typer.main.get_command_name(info.callback.__name__)
            for info in commands.registered_commands if info.callback is not None] + [
        str(sub.name) for sub in commands.registered_groups]


def app_for(args: list[str]) -> typer.Typer:
    """The app to run `args` with: when the first argument names a command, an app of the
    root options and that command's group only (the same commands, options and help);
    otherwise (no command, a root option first, an unknown name) the whole app."""
    for group in GROUPS:
        if args and args[0] in _names(group):
            one = typer.Typer(**_SETTINGS)
            one.callback()(main)
            one.add_typer(group.app)
            return one
    return app


def run() -> None:
    """The `nextmove` script."""
    args = sys.argv[1:]
    app_for(args)(args, prog_name="nextmove")


if __name__ == "__main__":
    run()
