"""Incidents through the CLI (typer's CliRunner, a real SQLite file): the command that hits
one exits non-zero and says so; show, list --status incident and stuck show it; retry and
migrate-instance fix it; a map past a visible limit is refused at validate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli import app
from tests.conftest import FIXTURES

V1 = FIXTURES / "incidents" / "v1"
V2 = FIXTURES / "incidents" / "v2"
NOW = "2026-03-01T09:00:00Z"
runner = CliRunner()


def run(args: list[str], code: int = 0) -> Any:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    return result


def test_incident_is_reported_shown_retried_after_migration(tmp_path: Path) -> None:
    db = ["--db", str(tmp_path / "n.db"), "--now", NOW]
    run(["deploy", str(V1), "--db", db[1]])
    run(["start", "order_check", "-p", "p1", "-d", "d1", *db])

    failed = run(["complete", "take_order", "-p", "p1", *db], code=1)
    assert "incident" in failed.stderr and "nextmove retry 1" in failed.stderr
    as_json = json.loads(run(["complete", "take_order", "-p", "p1", "--json", *db],
                             code=1).stdout)  # refused
    assert as_json["error"] == "InstanceInIncident" and "in incident" in as_json["message"]

    shown = run(["show", "-p", "p1", "--db", db[1]]).stdout
    assert "[incident]" in shown and "at step route" in shown and "amount > 100" in shown
    listed = json.loads(run(["list", "--status", "incident", "--json", "--db", db[1]]).stdout)
    assert [i["prospect_id"] for i in listed["instances"]] == ["p1"]
    stuck = json.loads(run(["stuck", "--process", "order_check", "--json", *db]).stdout)
    assert [(i["instance_id"], i["step_id"]) for i in stuck["incidents"]] == [(1, "route")]
    assert "no cards" in run(["cards", "-d", "d1", *db]).stdout

    run(["deploy", str(V2), "--db", db[1]])
    moved = json.loads(run(["migrate-instance", "-p", "p1", "--to-version", "2", "--json",
                            *db]).stdout)
    assert (moved["definition_version"], moved["status"]) == (2, "incident")
    retried = json.loads(run(["retry", "1", "--json", *db]).stdout)
    assert (retried["status"], [w["step_id"] for w in retried["waiting"]]) == (
        "active", ["thank"])
    refused = run(["migrate-instance", "1", "--to-version", "7", *db], code=4)
    assert "version 7" in refused.stderr


def test_tick_reports_steps_and_incidents(tmp_path: Path) -> None:
    db = str(tmp_path / "n.db")
    run(["deploy", str(FIXTURES / "limits"), "--db", db])
    run(["start", "minute_cycle_catch_up", "-p", "late", "-d", "d1", "--db", db, "--now", NOW])
    result = run(["tick", "--db", db, "--now", "2026-03-02T09:00:00Z"])
    assert result.stdout.splitlines()[-1] == "0 timer(s) fired, 0 step(s) run, 1 incident(s)"
    assert "catch_up=100 exceeded (1440)" in result.stderr


def test_validate_refuses_what_exceeds_a_visible_limit() -> None:
    result = run(["validate", str(FIXTURES / "limits_refused")], code=3)  # invalid maps
    text = result.stdout + result.stderr
    assert "self_call.bpmn:5: again: calls 'self_call'" in text
    assert "big_cardinality.bpmn:5: call_each: multi-instance cardinality '10**6'" in text
    assert "zero_cycle.bpmn:6: remind: cycle timer 'R/PT0S' has a zero-length" in text
