"""The `nextmove` command line: the app, assembled from the command groups in `commands/`.

Exit codes: 0 success; 1 a problem with the input or the request (invalid map, unknown
instance, step not waiting, required step, ...); 2 a conflict: another worker changed the
instance first and nothing was applied (typer also uses 2 for command-line usage errors).
Every command takes --json for scripts; errors are then printed as JSON too.
"""

from __future__ import annotations

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
)

app = typer.Typer(
    help="nextmove: guided-selling journeys as process maps, run per prospect.\n\n"
    "Exit codes: 0 success; 1 a problem with the input or the request (invalid map, unknown "
    "instance, step not waiting, required step); 2 a conflict: another worker changed the "
    "instance first and nothing was applied (2 is also a command-line usage error). "
    "The database is --db, else $NEXTMOVE_DB, else ./nextmove.db. Every command takes --json.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for group in (definitions, instances, cards, learning, analytics, compliance, admin, serving):
    app.add_typer(group.app)  # no name: the group's commands stay at the top level

if __name__ == "__main__":
    app()
