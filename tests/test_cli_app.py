"""How cli.py assembles the commands: error handling, lazy imports, shared defaults."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

import analytics
import cli
from commands import analytics as analytics_commands
from commands._errors import exit_codes
from commands._options import JsonOption
from engine import NextmoveError, VersionConflict

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _commands(app: typer.Typer) -> list[typer.models.CommandInfo]:
    found = list(app.registered_commands)
    for group in app.registered_groups:
        assert group.typer_instance is not None
        found += _commands(group.typer_instance)
    return found


def test_every_command_goes_through_the_one_error_handler() -> None:
    wrapped = exit_codes(lambda: None).__code__
    commands = _commands(cli.app)
    assert len(commands) == 31
    for info in commands:
        assert info.callback is not None
        assert info.callback.__code__ is wrapped, f"{info.callback.__name__} lacks @exit_codes"


def _probe(error: NextmoveError) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @exit_codes
    def fails(as_json: JsonOption = False) -> None:
        raise error

    return app


def test_a_version_conflict_exits_5_and_other_errors_by_their_code() -> None:
    conflict = runner.invoke(_probe(VersionConflict(7, 3)), [])
    assert conflict.exit_code == 5
    assert "instance 7 was changed by another worker" in conflict.stderr
    assert conflict.stdout == ""

    other = runner.invoke(_probe(NextmoveError("no such thing")), ["--json"])
    assert other.exit_code == 3
    assert json.loads(other.stdout) == {"error": "NextmoveError", "code": "invalid-input",
                                         "message": "no such thing"}


def test_the_app_starts_without_the_learning_libraries() -> None:
    heavy = ("lightgbm", "pandas", "pyarrow", "learner", "analytics")
    code = ("import sys, cli\n"
            "from typer.main import get_command\n"
            "get_command(cli.app)\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                          capture_output=True, text=True)
    assert done.stdout.strip() == "[]"


def test_the_funnel_default_outcome_is_the_analytics_default() -> None:
    assert analytics_commands.DEFAULT_OUTCOME == analytics.DEFAULT_OUTCOME


def test_a_bad_time_is_an_error_message_not_a_traceback(tmp_path: Path) -> None:
    db = str(tmp_path / "audit.db")
    result = runner.invoke(cli.app, ["audit", "--trail", "--since", "yesterday", "--db", db])
    assert result.exit_code == 3
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "--since: 'yesterday' is not an ISO 8601 time" in result.stderr
