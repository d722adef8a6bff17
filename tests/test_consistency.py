"""One simulated database, every command: the numbers a sales lead compares agree.

The demo writes the database on a simulated clock and records it; report, funnel, stuck,
indicators and cohorts read "now" from it and conversion from the map's declared outcomes.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app
from tests.conftest import FIXTURES

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


def test_conversion_and_first_sales_are_one_number_everywhere(
    demo: tuple[dict[str, Any], str], tmp_path: Path,
) -> None:
    report, db = demo
    # the map declares what converts: an order or an enrollment
    assert report["outcome"] == "customer_order+distributor_enrolled"
    assert report["converted"] == sum(report["outcomes"].values())
    assert report["conversion"] == report["converted"] / report["prospects"]
    funnel = run_json("funnel", "--process", JOURNEY, "--db", db)
    page = run_json("report", "--process", JOURNEY, "-o", str(tmp_path / "r.html"), "--db", db)
    assert (funnel["outcome"], page["outcome"]) == (report["outcome"], report["outcome"])
    assert (funnel["instances"], funnel["converted"]) == (report["prospects"],
                                                          report["converted"])
    assert page["summary"]["converted"] == report["converted"]
    variants = run_json("variants", "--process", JOURNEY, "--db", db)["variants"]
    assert sum(v["cases"] for v in variants) == report["prospects"]
    assert sum(v["converted"] for v in variants) == report["converted"]
    assert funnel["conversion"] == page["summary"]["conversion"] == report["conversion"]
    # the declared first-sale indicator, judged at the simulated clock
    first = report["first_sale_within_14_days"]
    indicators = run_json("indicators", "--db", db)
    # the leading indicators count each distributor's prospects and conversions the same way
    assert (indicators["journey"], indicators["outcome"]) == (JOURNEY, report["outcome"])
    assert (indicators["prospects"], indicators["converted"]) == (report["prospects"],
                                                                  report["converted"])
    assert indicators["conversion"] == report["conversion"]
    assert indicators["window_days"] == first["days"] == 14
    assert indicators["observed"] == first["distributors"] == page["summary"][
        "distributors_observed"]
    assert indicators["first_sale_share"] == first["share"] == page["summary"][
        "first_sale_share"]


@pytest.mark.slow  # a second demo run of the same seed
def test_the_demo_prints_the_same_conversion(demo: tuple[dict[str, Any], str],
                                             tmp_path: Path) -> None:
    report, _db = demo
    db = tmp_path / "again.db"
    result = runner.invoke(app, ["demo", "--distributors", "20", "--days", "20", "--seed", "3",
                                 "--no-learn", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert (f"Converted (customer_order or distributor_enrolled): {report['converted']} of "
            f"{report['prospects']} prospects ({report['conversion']:.1%})") in result.stdout
    assert f"First sale within 14 days: {report['first_sale_within_14_days']['share']:.1%}" \
        in result.stdout


def test_stuck_agrees_with_show_for_every_listed_instance(
    demo: tuple[dict[str, Any], str],
) -> None:
    _report, db = demo
    found = run_json("stuck", "--process", JOURNEY, "--db", db)
    now = datetime.fromisoformat(found["now"])
    assert found["groups"], "the simulated month leaves someone stuck"
    # the map's stuck_after sets the limit where it declares one (Talk it through: P7D)
    assert found["limit_sources"]["conversation"] == "stuck_after"
    assert found["limits_hours"]["conversation"] == 168.0
    # the 30-day pause is a deliberate wait: listed apart, never stuck
    assert "nurture_pause" not in found["limits_hours"]
    assert [w["step_id"] for w in found["deliberate_waits"]] == ["nurture_pause"]
    for group in found["groups"]:
        step, limit = group["step_id"], group["limit_hours"]
        listed = run_json("list", "--process", JOURNEY, "--distributor",
                          group["distributor_id"], "--step", step, "--db", db)["instances"]
        past = []
        for item in listed:
            shown = run_json("show", "--prospect", item["prospect_id"], "--process", JOURNEY,
                             "--db", db)
            (waiting,) = [w for w in shown["waiting"] if w["step_id"] == step]
            since = datetime.fromisoformat(waiting["since"])
            if found["limit_sources"][step] == "stuck_after":  # show says when it got stuck
                stuck = waiting["stuck_since"] is not None and datetime.fromisoformat(
                    waiting["stuck_since"]) <= now
                assert stuck == (since <= now - timedelta(hours=limit))
            else:
                stuck = since <= now - timedelta(hours=limit)
            if stuck:
                past.append(since)
        assert len(past) == group["instances"], group
        assert min(past) == datetime.fromisoformat(group["oldest_since"]), group


def test_the_learner_reads_the_maps_definition_of_conversion(
    demo: tuple[dict[str, Any], str], tmp_path: Path,
) -> None:
    report, db = demo
    converting = report["outcome"]
    assert converting == "customer_order+distributor_enrolled"
    # no --outcome: learn, evaluate and drift judge content by what the map says converts
    assert run_json("learn", "--process", JOURNEY, "--dry-run", "--db", db)[
        "outcome"] == converting
    assert run_json("evaluate", "uniform", "--process", JOURNEY, "--db", db)[
        "outcome"] == converting
    assert isinstance(run_json("drift", "--process", JOURNEY, "--db", db)["alerts"], list)
    # and a case converts for the learner exactly when the demo and the funnel say it did
    import learner
    from nextmove import open_store

    store = open_store(db)
    try:
        cases = learner.cases(store, JOURNEY, outcome=converting)
    finally:
        store.dispose()
    assert len(cases) == report["prospects"]
    assert sum(c.converted for c in cases) == report["converted"] > 0
    # --outcome still overrides
    assert run_json("evaluate", "uniform", "--process", JOURNEY, "--outcome", "customer_order",
                    "--db", db)["outcome"] == "customer_order"
    # a map that declares no conversion needs --outcome
    other = str(tmp_path / "plain.db")
    assert runner.invoke(app, ["deploy", str(FIXTURES / "incidents" / "v1"), "--db",
                               other]).exit_code == 0
    refused = runner.invoke(app, ["learn", "--process", "order_check", "--dry-run", "--db",
                                  other])
    assert refused.exit_code != 0 and "declares no converting outcomes" in refused.output


def test_commands_that_write_on_a_demo_database_follow_its_clock(
    demo: tuple[dict[str, Any], str], tmp_path: Path,
) -> None:
    _report, db = demo
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    clock = "2026-01-24T22:00:00+00:00"  # where the simulation's clock stopped
    with sqlite3.connect(copy) as conn:
        due = [datetime.fromisoformat(t).replace(tzinfo=UTC) for (t,) in conn.execute(
            "SELECT next_due_at FROM instance WHERE next_due_at IS NOT NULL")]
    stopped = datetime.fromisoformat(clock)
    # by today's date every timer would be months overdue; by the demo's clock few or none
    assert len(due) > 10 and all(t < datetime.now(UTC) for t in due)
    expected = sum(1 for t in due if t <= stopped)
    assert expected < len(due)
    fired = run_json("tick", "--db", str(copy))["fired"]
    assert len(fired) == expected
    # new work is dated on the same clock
    started = run_json("start", "prospect_journey", "-p", "late-prospect", "-d", "d0001",
                       "--db", str(copy))
    assert started["waiting"][0]["since"] == clock
    # --now still wins
    later = run_json("tick", "--now", "2026-12-31T00:00:00Z", "--db", str(copy))["fired"]
    assert len(later) >= len(due) - expected > 0
