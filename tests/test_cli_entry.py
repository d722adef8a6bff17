"""The `nextmove` script builds only the invoked command's group (`cli.app_for`): every
command must come out exactly as in the whole app — same options, defaults, help — and
anything that is not a command name must get the whole app."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main
from typer.core import TyperGroup
from typer.testing import CliRunner

from cli import app, app_for

WHOLE = typer.main.get_command(app)
assert isinstance(WHOLE, TyperGroup)  # typer 0.29 carries its own click
NAMES = sorted(WHOLE.commands)


def described(command: Any) -> Any:
    """What a user can see and pass of a command, sub-commands included."""
    params = [(p.name, p.opts, p.secondary_opts, p.required, repr(p.default),
               getattr(p, "help", None), p.envvar) for p in command.params]
    subs = ({name: described(sub) for name, sub in command.commands.items()}
            if isinstance(command, TyperGroup) else None)
    return command.name, command.help, params, subs


def test_every_command_is_the_same_when_built_alone() -> None:
    assert len(NAMES) > 30  # the whole command line, not an empty list
    for name in NAMES:
        alone = typer.main.get_command(app_for([name, "--help"]))
        assert isinstance(alone, TyperGroup)
        assert name in alone.commands and len(alone.commands) < len(NAMES)
        assert described(alone.commands[name]) == described(WHOLE.commands[name]), name
        # the root's own options (--debug, --version) stay
        assert described(alone)[2] == described(WHOLE)[2]


@pytest.mark.parametrize("args", [[], ["--debug", "cards"], ["--version"], ["cardz"],
                                  ["--install-completion"]])
def test_anything_but_a_command_name_gets_the_whole_app(args: list[str]) -> None:
    assert app_for(args) is app


def test_a_command_built_alone_runs_like_the_whole_app(tmp_path: Any) -> None:
    db = str(tmp_path / "n.db")
    runner = CliRunner()
    for args in (["cards", "-d", "d1", "--db", db, "--json"], ["list", "--db", db, "--json"],
                 ["start", "--help"], ["cards", "--limit", "x", "-d", "d1"]):
        alone = runner.invoke(app_for(args), args, prog_name="nextmove")
        whole = runner.invoke(app, args, prog_name="nextmove")
        assert (alone.exit_code, alone.output) == (whole.exit_code, whole.output), args
