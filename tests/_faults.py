"""Helpers of the fault tests: run the CLI expecting one exit code and one clear line, and take
a snapshot of a database's rows (to show a refusal changed nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner, Result

from cli import app
from tests.conftest import FIXTURES, REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
EVENTS = FIXTURES / "events"
runner = CliRunner()


def cli(args: list[Any], code: int, *, env: dict[str, str] | None = None) -> Result:
    """Run `nextmove ARGS`; assert the exit code, no traceback, and (on failure) one line."""
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **(env or {})})
    assert result.exit_code == code, (result.exit_code, result.output[-2000:])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.output
    if code not in (0, 1, 2) and "--json" not in args:
        lines = result.stderr.strip().splitlines()  # a progress bar may come first
        assert lines and lines[-1].startswith("error: "), result.stderr
        assert sum("error" in line for line in lines) == 1, result.stderr
    return result


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (for 'the database is unchanged')."""
    engine = create_engine(url if "://" in url else f"sqlite:///{url}")
    try:
        with engine.connect() as conn:
            names = sorted(inspect(conn).get_table_names())
            return {name: [tuple(row) for row in conn.execute(
                text(f'SELECT * FROM "{name}" ORDER BY 1'))] for name in names}
    finally:
        engine.dispose()


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
