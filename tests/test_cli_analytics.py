"""`nextmove funnel / stuck / indicators / cohorts / export-log` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from engine import ManualClock
from nextmove import open_engine
from tests.analytics.test_funnel import LIFEVANTAGE, T0, four_prospects
from tests.conftest import LOGS

runner = CliRunner()


@pytest.fixture
def db(db_url: str, clock: ManualClock) -> str:
    engine = open_engine(db_url, clock=clock, recommend=False)
    engine.deploy([LIFEVANTAGE])
    engine.start("distributor_onboarding", "D", "D", {"market": "US"})
    four_prospects(engine, clock)
    engine.store.dispose()
    return db_url


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "240"})
    return result.exit_code, result.output


@pytest.mark.parametrize("command", [
    ["funnel"], ["stuck"], ["indicators"], ["cohorts"], ["report"],
    ["variants"], ["learn"], ["learn", "--outcome", "sale"], ["drift"], ["policy", "refresh"],
    ["export-log"], ["audit", "--trail"]])
def test_a_mistyped_process_is_refused_by_name_not_read_as_empty(
        db: str, command: list[str], tmp_path: Path) -> None:
    """Before, funnel, stuck, indicators, cohorts, variants and `audit --trail` printed zeros
    for a process that does not exist, export-log wrote an empty log, and the learner's
    commands said its map declared no outcomes."""
    written = tmp_path / ("never.csv" if command == ["export-log"] else "never.html")
    extra = ["-o", str(written)] if command in (["report"], ["export-log"]) else []
    code, text = run(*command, *extra, "--process", "prospect_journy", "--db", db)
    assert code == 4, text
    assert ("error: no deployed process named 'prospect_journy' (did you mean "
            "'prospect_journey'?)") in " ".join(text.split())
    assert not written.exists()


@pytest.mark.parametrize(("command", "option", "value", "said"), [
    (["funnel"], "--distributor", "EE", "distributor 'EE' (did you mean 'E'?)"),
    (["funnel"], "--market", "USA", "market 'USA' (did you mean 'US'?); markets with "
                                    "instances: MX, US"),
    (["stuck"], "--distributor", "DD", "distributor 'DD' (did you mean 'D'?)"),
    (["stuck"], "--market", "CA", "market 'CA'; markets with instances: MX, US"),
    (["indicators"], "--sponsor", "DD", "sponsor 'DD' (did you mean 'D'?)"),
    (["report"], "--distributor", "nobody", "distributor 'nobody'")])
def test_a_mistyped_person_or_market_is_refused_not_read_as_empty(
        db: str, command: list[str], option: str, value: str, said: str,
        tmp_path: Path) -> None:
    """Before, a distributor, sponsor or market no instance has gave a view of zeros."""
    written = tmp_path / "never.html"
    extra = ["-o", str(written)] if command == ["report"] else []
    process = [] if command == ["indicators"] else ["--process", "prospect_journey"]
    code, text = run(*command, *process, *extra, option, value, "--db", db)
    assert code == 4, text
    assert f"error: no instance has {said}" in " ".join(text.split())
    assert not written.exists()


def test_funnel_table_and_json(db: str) -> None:
    code, text = run("funnel", "--process", "prospect_journey", "--db", db)
    assert code == 0 and "Add a prospect" in text
    assert "4 instance(s), 1 reached 'customer_order+distributor_enrolled'" in text
    code, text = run("funnel", "--process", "prospect_journey", "--market", "MX",
                     "--outcome", "customer_order", "--json", "--db", db)
    data = json.loads(text)
    assert code == 0 and (data["instances"], data["market"], data["outcome"]) == (
        1, "MX", "customer_order")
    # the people's steps in map order: c skipped the first one
    assert [s["step_id"] for s in data["steps"]] == ["add_contact", "share_intro"]
    assert data["steps"][0]["skipped"] == 1
    code, text = run("funnel", "--process", "prospect_journey", "--all-elements", "--json",
                     "--db", db)
    assert [s["step_id"] for s in json.loads(text)["steps"]][:2] == ["Event_start",
                                                                     "add_contact"]
    code, text = run("funnel", "--process", "prospect_journey", "--since",
                     "2026-01-06T00:00:00Z", "--json", "--db", db)
    assert json.loads(text)["instances"] == 1
    code, text = run("funnel", "--process", "prospect_journey", "--outcome", "sael",
                     "--db", db)
    assert code == 3 and "did you mean 'sale'" in text
    code, text = run("funnel", "--process", "prospect_journey", "--since", "yesterday",
                     "--db", db)
    assert code == 3 and "not an ISO 8601 time" in text


def test_stuck_with_a_threshold_and_a_clock(db: str) -> None:
    code, text = run("stuck", "--process", "prospect_journey", "--older-than", "P3D",
                     "--now", "2026-01-12T09:00:00Z", "--json", "--db", db)
    data = json.loads(text)
    assert code == 0 and data["older_than_hours"] == 72.0
    # c waits at share_intro (E), d at add_contact (E), b at the conversation (D)
    assert {(g["step_id"], g["distributor_id"]) for g in data["groups"]} == {
        ("share_intro", "E"), ("add_contact", "E"), ("conversation", "D")}
    code, text = run("stuck", "--process", "prospect_journey", "--older-than", "3 days",
                     "--db", db)
    assert code == 3 and "--older-than" in text
    code, text = run("stuck", "--process", "prospect_journey", "--now",
                     "2026-01-12T09:00:00Z", "--db", db)
    assert code == 0 and "stuck instance(s)" in text


def test_indicators_and_cohorts(db: str) -> None:
    code, text = run("indicators", "--as-of", (T0.replace(day=20)).isoformat(), "--json",
                     "--db", db)
    data = json.loads(text)
    assert code == 0
    by_id = {d["distributor_id"]: d for d in data["distributors"]}
    assert by_id["D"]["counts"] == {"contacts_added": 2, "content_shared": 5,
                                    "meetings_calls": 1}
    assert by_id["D"]["days_to_first_sale"] == 0.75  # onboarding at T0, sale 18h later
    code, text = run("indicators", "--indicator", "calls=conversation@completed", "--db", db)
    assert code == 0 and "calls/wk" in text
    code, text = run("indicators", "--indicator", "oops", "--db", db)
    assert code == 3 and "NAME=ITEM" in text
    code, text = run("cohorts", "--json", "--db", db)
    weeks = json.loads(text)["weeks"]
    assert code == 0 and [(w["week"], w["distributors"]) for w in weeks] == [("2026-01-05", 2)]


def test_export_log_round_trips_through_import_log(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'a.db'}"
    copy = f"sqlite:///{tmp_path / 'b.db'}"
    assert run("import-log", str(LOGS / "running-example.xes"), "--process", "history",
               "--db", source)[0] == 0
    out = tmp_path / "log.csv"
    code, text = run("export-log", "--process", "history", "-o", str(out), "--db", source)
    assert code == 0 and "wrote 6 case(s), 42 event(s)" in text
    code, text = run("import-log", str(out), "--process", "again", "--json", "--db", copy)
    assert code == 0 and json.loads(text)["events_written"] == 42
    code, text = run("export-log", "--process", "history", "-o", str(tmp_path / "x.txt"),
                     "--db", source)
    assert code == 3 and "cannot tell the format" in text


JOURNEY = ["--process", "prospect_journey", "--outcome", "sale"]


@pytest.mark.parametrize(("args", "code", "said"), [
    (["evaluate", "uniform", *JOURNEY, "--hook", "intro_vidoe"], 4,
     "no content hook 'intro_vidoe' (did you mean 'intro_video'?)"),
    (["policy", "refresh", *JOURNEY, "--hook", "intro_vidoe"], 4,
     "no content hook 'intro_vidoe' (did you mean 'intro_video'?)"),
    (["policy", "refresh", *JOURNEY, "--reward",
      "intro_vidoe=Event_wait_for_video_video_played"], 4,
     "no content hook 'intro_vidoe' (did you mean 'intro_video'?)"),
    (["survival", "--hook", "intro_video"], 4,
     "no content hook 'intro_video' in process 'distributor_onboarding'; hooks: "),
    (["drift", *JOURNEY, "--hook", "intro_video"], 3, "--hook goes with --ack ITEM"),
    (["learn", *JOURNEY, "--horizon", "P0D", "--dry-run"], 3,
     "--horizon: 'P0D' is no time at all"),
    (["policy", "refresh", *JOURNEY, "--horizon", "PT0S"], 3,
     "--horizon: 'PT0S' is no time at all"),
    (["indicators", "--indicator", "contacts_added=add_contct@entered"], 4,
     "no deployed map has a step 'add_contct' (did you mean 'add_contact'?)"),
    (["cohorts", "--indicator", "shared=hook:intro_vidoe"], 4,
     "no content hook 'intro_vidoe' (did you mean 'intro_video'?)"),
    (["indicators", "--top", "0"], 2, "Invalid value for '--top'"),
])
def test_a_mistyped_hook_or_a_zero_horizon_is_refused_not_read_as_nothing(
        db: str, args: list[str], code: int, said: str) -> None:
    """Before, evaluate judged every hook, refresh said the hook had "fewer than two
    options" or ignored the reward, survival grouped nobody, drift ignored --hook, a zero
    horizon learned from outcomes that could never count, an indicator of a mistyped step or
    hook counted zero, and `--top -1` left out the last distributor."""
    versions = json.loads(run("policy", "history", "--json", "--db", db)[1])["versions"]
    found, text = run(*args, "--db", db)
    assert found == code, text
    assert said in " ".join(text.split())
    assert json.loads(run("policy", "history", "--json", "--db", db)[1])["versions"] == versions
