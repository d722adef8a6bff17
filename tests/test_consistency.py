"""One simulated database, every command: the numbers a sales lead compares agree.

The demo writes the database on a simulated clock and records it; report, funnel, stuck,
indicators and cohorts read "now" from it and conversion from the map's declared outcomes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()
JOURNEY = "prospect_journey"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    db = tmp_path_factory.mktemp("consistency") / "demo.db"
    result = runner.invoke(app, ["demo", "--distributors", "20", "--days", "20", "--seed", "3",
                                 "--no-learn", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), str(db)


def run_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_command_takes_now_from_the_simulated_clock(
    demo: tuple[dict[str, Any], str], tmp_path: Path,
) -> None:
    _report, db = demo
    # the simulation's last hour: day 20 (2026-01-24), 22:00
    clock = "2026-01-24T22:00:00+00:00"
    assert run_json("stuck", "--process", JOURNEY, "--db", db)["now"] == clock
    assert run_json("indicators", "--db", db)["as_of"] == clock
    assert run_json("cohorts", "--db", db)["as_of"] == clock
    page = run_json("report", "--process", JOURNEY, "-o", str(tmp_path / "r.html"), "--db", db)
    assert page["generated_at"] == clock
    # --now still wins
    assert run_json("stuck", "--process", JOURNEY, "--now", "2026-02-01T00:00:00Z",
                    "--db", db)["now"] == "2026-02-01T00:00:00+00:00"
    assert run_json("indicators", "--now", "2026-02-01T00:00:00Z",
                    "--db", db)["as_of"] == "2026-02-01T00:00:00+00:00"
