"""`nextmove report` through the CLI as a user runs it: deploy, start, report."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from tests.conftest import REPO

runner = CliRunner()
NOW = "2026-01-05T12:00:00Z"


def journey_db(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    for args in (["deploy", str(REPO / "processes" / "lifevantage")],
                 ["start", "prospect_journey", "-p", "p1", "-d", "D", "--now", NOW]):
        result = runner.invoke(app, [*args, "--db", db])
        assert result.exit_code == 0, result.output
    return db


def test_report_writes_the_page_and_says_so(tmp_path: Path) -> None:
    db, out = journey_db(tmp_path), tmp_path / "report.html"
    result = runner.invoke(app, ["report", "--process", "prospect_journey", "-o", str(out),
                                 "--db", db, "--now", NOW])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: prospect_journey v1, 1 prospect(s), map coloured by waiting" \
        in result.output
    page = out.read_text(encoding="utf-8")
    assert "generated 2026-01-05 12:00 UTC" in page and "bpmn-map" in page


def test_report_json_describes_what_was_written(tmp_path: Path) -> None:
    db, out = journey_db(tmp_path), tmp_path / "r.html"
    result = runner.invoke(app, ["report", "--process", "prospect_journey", "-o", str(out),
                                 "--heat", "dwell", "--db", db, "--now", NOW, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert (body["output"], body["heat_metric"], body["has_map"]) == (str(out), "dwell", True)
    assert body["generated_at"] == "2026-01-05T12:00:00+00:00"
    (add,) = [s for s in body["funnel"] if s["step_id"] == "add_contact"]
    assert (add["entered"], add["waiting"]) == (1, 1)
    assert out.exists()


def test_report_mistakes_are_messages_with_exit_3_or_4(tmp_path: Path) -> None:
    db, out = journey_db(tmp_path), tmp_path / "never.html"
    cases = [
        (["--process", "prospect_journy"], 4, "did you mean 'prospect_journey'"),
        (["--process", "prospect_journey", "--colour-by", "hot"], 3, "--colour-by must be one of"),
        (["--process", "prospect_journey", "--now", "yesterday"], 3, "not an ISO 8601 time"),
    ]
    for args, code, message in cases:
        result = runner.invoke(app, ["report", *args, "-o", str(out), "--db", db])
        assert result.exit_code == code, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not out.exists()
    result = runner.invoke(app, ["report", "--process", "nope", "-o", str(out), "--db", db,
                                 "--json"])
    assert result.exit_code == 4
    assert json.loads(result.output)["error"] == "DefinitionNotFound"


def test_report_needs_no_process_when_the_database_holds_one(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'one.db'}"
    journey = REPO / "processes" / "lifevantage" / "prospect_journey.yaml"
    assert runner.invoke(app, ["deploy", str(journey), "--db", db]).exit_code == 0
    out = tmp_path / "one.html"
    result = runner.invoke(app, ["report", "-o", str(out), "--db", db])
    assert result.exit_code == 0, result.output
    assert out.exists() and "prospect_journey" in result.output
    result = runner.invoke(app, ["report", "-o", str(tmp_path / "two.html"),
                                 "--db", journey_db(tmp_path)])
    assert result.exit_code == 2 and not (tmp_path / "two.html").exists()
    assert ("2 processes (distributor_onboarding, prospect_journey); say which with --process"
            in result.output)
