"""Options shared by several commands, declared once, and the parsing of their values.

A malformed value raises InvalidInput naming the option (the rules are `engine.inputs`');
`exit_codes` turns it into exit 3.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from engine import inputs
from engine.errors import InvalidInput, NextmoveError

if TYPE_CHECKING:
    from engine.runtime import InstanceRef

DbOption = Annotated[
    str | None,
    typer.Option("--db", envvar="NEXTMOVE_DB",
                 help="SQLite file or database URL (postgresql://...). Default: ./nextmove.db"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
NowOption = Annotated[
    str | None,
    typer.Option("--now", envvar="NEXTMOVE_NOW",
                 help="Act as if it were this time (ISO 8601, e.g. 2026-03-01T09:00:00Z); "
                      "for simulations and tests."),
]
# A reading command's "now" (analytics): --now, with --as-of as its older name.
AsOfOption = Annotated[str | None, typer.Option(
    "--as-of", "--now", help="Judge as of this time (ISO 8601). Default: now, which on a "
    "database a simulation wrote is its simulated clock.")]
ProspectOption = Annotated[
    str | None, typer.Option("--prospect", "-p", help="Act on this prospect's instance.")
]
ProcessOption = Annotated[
    str | None, typer.Option("--process", help="Which process, when a prospect has several.")
]
ActorOption = Annotated[str | None, typer.Option("--actor", help="Who did it (recorded).")]
UsedOption = Annotated[
    str | None, typer.Option("--used", help="The content option used (the card's suggestion "
                             "or another option of the step's hook; anything else is refused).")]
AllowScripts = Annotated[
    bool,
    typer.Option("--allow-scripts", envvar="NEXTMOVE_ALLOW_SCRIPTS",
                 help="Run script tasks: this executes the designer's Python code."),
]


def json_object(text: str | None, option: str) -> dict[str, Any]:
    """The JSON object given to `option` ({} when not given)."""
    if not text:
        return {}
    return inputs.json_text(text, option)


def jsonl_objects(path: Path) -> list[dict[str, Any]]:
    """One JSON object per non-blank line of `path`."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise NextmoveError(f"cannot read {path}: {exc}") from exc
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        rows.append(inputs.json_text(line, f"{path}:{number}"))
    return rows


def instance_ref(instance: int | None, prospect: str | None, process: str | None
                 ) -> InstanceRef:
    """Which instance a command acts on: an id, or a prospect (and process)."""
    from engine import ProspectRef
    if instance is not None and prospect is not None:
        raise NextmoveError("give an instance id or --prospect, not both")
    if instance is not None:
        return inputs.instance_id(instance)
    if prospect is None:
        raise NextmoveError("say which instance: an instance id or --prospect P")
    return ProspectRef(prospect, process)


def instant(text: str, option: str) -> datetime:
    """An ISO 8601 time within `engine.inputs`' range (1970 .. 9000)."""
    from engine.clock import parse_instant
    try:
        moment = parse_instant(text)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(option, f"{text[:60]!r} is not an ISO 8601 time: {exc}") from exc
    return inputs.instant(moment, option)


def optional_instant(text: str | None, option: str) -> datetime | None:
    return instant(text, option) if text else None


def duration(text: str | None, option: str, *, positive: bool = False) -> timedelta | None:
    """`text` as a duration; `positive`: zero is refused too (a horizon of zero counts no
    outcome at all)."""
    if not text:
        return None
    from engine.clock import parse_duration

    try:
        return parse_duration(text, positive=positive)
    except ValueError as exc:
        raise NextmoveError(f"{option}: {exc}") from exc
