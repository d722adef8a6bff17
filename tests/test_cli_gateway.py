"""Issue 15's reproduction through the CLI: a message processed after the gateway's timer was
due finds the timer branch taken; the prospect waits at exactly one step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli import app
from tests.conftest import REPO

runner = CliRunner()
T0 = "2026-03-01T09:00:00Z"


def run(args: list[str]) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def waiting(db: str) -> list[str]:
    return sorted(w["step_id"] for w in run(["show", "-p", "g1", "--db", db])["waiting"])


def test_video_played_after_the_two_day_timer_was_due_does_not_take_a_second_branch(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "g.db")
    run(["deploy", str(REPO / "processes" / "lifevantage"), "--db", db])
    run(["start", "prospect_journey", "-p", "g1", "-d", "d1", "--db", db, "--now", T0])
    for step in ("add_contact", "share_intro"):
        run(["complete", step, "-p", "g1", "--db", db, "--now", T0])

    played = run(["signal", "video_played", "-p", "g1", "--id", "v1", "--db", db,
                  "--now", "2026-03-04T09:00:00Z"])

    assert played["delivered_to"] == []
    assert waiting(db) == ["follow_up"]  # not conversation as well
    history = run(["show", "-p", "g1", "--db", db])["history"]
    assert [e["kind"] for e in history].count("message") == 0
    assert [e["step_id"] for e in history if e["kind"] == "timer"] == ["Event_wait_for_video_timer"]

    for step, data in (("follow_up", None), ("conversation", '{"interest": "customer"}'),
                       ("customer_order", None)):
        run(["complete", step, "-p", "g1", "--db", db, "--now", "2026-03-05T09:00:00Z",
             *(["--data", data] if data else [])])
    shown = run(["show", "-p", "g1", "--db", db])
    assert (shown["status"], shown["waiting"]) == ("completed", [])
