"""How cli.py assembles the commands: error handling, lazy imports, shared defaults."""

from __future__ import annotations

import errno
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import analytics
import cli
from commands import analytics as analytics_commands
from commands._errors import EXIT_CODES, exit_codes, set_debug
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
    assert len(commands) >= 34  # every command there is, including those added later
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
    assert json.loads(other.stdout) == {"schema_version": 1, "error": "NextmoveError",
                                        "code": "invalid-input", "message": "no such thing"}


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


def _raising(error: BaseException) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main(debug: bool = typer.Option(False, "--debug")) -> None:
        set_debug(debug)

    @app.command()
    @exit_codes
    def fails(as_json: JsonOption = False) -> None:
        raise error

    return app


def test_every_exit_code_is_distinct_and_documented() -> None:
    assert sorted(EXIT_CODES.values()) == list(range(1, 9))
    docs = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    for code, number in EXIT_CODES.items():
        assert f"{number} " in docs and str(code) in docs, code


@pytest.mark.parametrize(("error", "code", "says"), [
    (RecursionError("maximum recursion depth exceeded"), 3, "nested too deeply"),
    (OverflowError("date value out of range"), 3, "out of range (date value out of range)"),
    (OSError(errno.ENOSPC, "No space left on device", "x.db"), 7, "no space left"),
    (OSError(errno.EACCES, "Permission denied", "x.db"), 7, "permission denied: x.db"),
    (sqlite3.OperationalError("database is locked"), 5, "the database was busy"),
    (KeyError("surprise"), 8, "internal error (KeyError: 'surprise'); rerun with --debug"),
])
def test_infrastructure_errors_are_one_line_with_their_code(
        error: BaseException, code: int, says: str) -> None:
    result = runner.invoke(_raising(error), ["fails"])
    assert result.exit_code == code
    assert result.stderr.count("\n") == 1 and says in result.stderr
    assert "Traceback" not in result.output
    as_json = json.loads(runner.invoke(_raising(error), ["fails", "--json"]).stdout)
    assert as_json["code"] == [c for c, n in EXIT_CODES.items() if n == code][0]
    debug = runner.invoke(_raising(error), ["--debug", "fails"])
    assert debug.exit_code == code and "Traceback (most recent call last)" in debug.stderr


@pytest.mark.parametrize(("args", "code", "said"), [
    (["simulate", "--distributors", "0"], 2, "Invalid value for '--distributors'"),
    (["demo", "--days", "-2"], 2, "Invalid value for '--days'"),
    (["variants", "--process", "p", "--top", "-1"], 2, "Invalid value for '--top'"),
    (["worker", "--poll", "0"], 2, "Invalid value for '--poll'"),
    (["worker", "--learn-every", "P0D", "--learn-process", "p"], 3,
     "--learn-every: 'P0D' is no time at all"),
    (["worker", "--drift-every", "PT0S", "--drift-process", "p"], 3,
     "--drift-every: 'PT0S' is no time at all"),
])
def test_counts_and_intervals_that_mean_nothing_are_refused(
        tmp_path: Path, args: list[str], code: int, said: str) -> None:
    """Before, a simulation of -5 distributors reported zeros, `--top -1` left out the last
    row, and a zero poll or chore interval would spin the worker."""
    result = runner.invoke(cli.app, [*args, "--db", str(tmp_path / "n.db")],
                           env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    assert said in " ".join(result.output.replace("│", " ").split())
    from simulator import SimulationConfig
    with pytest.raises(ValueError, match="at least one distributor and one day"):
        SimulationConfig(distributors=0)
