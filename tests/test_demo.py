"""`nextmove demo` end to end, at a size CI can afford: the LifeVantage journeys deployed, a
simulated field force driving them, and the report read back from the step log."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from cli import app
from tests.conftest import REPO

runner = CliRunner()
FUNNEL_KEYS = {"step_id", "step_name", "instances", "entered", "completed", "skipped", "varied",
               "moved_on", "waiting", "dropped", "median_hours", "p90_hours", "converted",
               "conversion"}
WAIT_KEYS = {"step_id", "step_name", "count", "waiting_now", "median_hours", "p90_hours"}
CONTENT_KEYS = {"hook", "shown", "used_suggestion", "used_other", "skipped", "varied"}


def _demo(tmp_path_factory: pytest.TempPathFactory, *extra: str) -> tuple[dict[str, Any], Path]:
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    result = runner.invoke(app, ["demo", "--distributors", "15", "--days", "20", "--seed", "3",
                                 "--db", str(db), "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), db  # nothing but the JSON on stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    return _demo(tmp_path_factory)


@pytest.fixture(scope="module")
def batch_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    return _demo(tmp_path_factory, "--learning", "batch")


def test_demo_json_reports_funnel_waits_first_sales_and_content(
    demo: tuple[dict[str, Any], Path],
) -> None:
    report, db = demo
    schema = json.loads((REPO / "docs" / "json-schemas" / "demo.json").read_text("utf-8"))
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
    assert report["schema_version"] == 1
    assert (report["database"], report["distributors"], report["days"], report["seed"],
            report["content_strength"]) == (str(db), 15, 20, 3, 1.0)
    assert report["prospects"] > 15 and report["actions"] > report["prospects"]

    funnel = report["funnel"]
    assert funnel and {frozenset(f) for f in funnel} == {frozenset(FUNNEL_KEYS)}
    steps = {f["step_id"]: f for f in funnel}
    assert steps["add_contact"]["entered"] == steps["add_contact"]["instances"] == report[
        "prospects"]
    for step in funnel:
        assert step["completed"] + step["skipped"] + step["varied"] <= step["entered"]
        assert step["moved_on"] + step["waiting"] + step["dropped"] <= step["entered"]
    # Everyone who converted (ordered or enrolled: the journey's end) added a contact first.
    assert steps["add_contact"]["converted"] == report["arms"]["arms"]["continuous"][
        "conversion"]["hits"]

    waits = report["waits"]
    assert waits and {frozenset(w) for w in waits} == {frozenset(WAIT_KEYS)}
    medians = [w["median_hours"] for w in waits]
    assert medians == sorted(medians, reverse=True) and medians[0] > 0

    first = report["first_sale_within_14_days"]
    assert first["days"] == 14 and 0 < first["distributors"] <= 15
    assert 0.0 <= first["share"] <= 1.0
    assert first["share"] == pytest.approx(first["within"] / first["distributors"])
    # one definition: the arms' table counts the learning run's first sales as its report does
    continuous = report["arms"]["arms"]["continuous"]["first_sale_within_14_days"]
    assert (continuous["hits"], continuous["n"]) == (first["within"], first["distributors"])

    content = report["content"]
    assert {frozenset(c) for c in content} == {frozenset(CONTENT_KEYS)}
    hooks = {c["hook"]: c for c in content}
    assert {"first_contact_message", "intro_video", "presentation"} <= set(hooks)
    # Content is offered on every main hook (a hook reached only by a prospect in a market
    # the catalog has no content for can show nothing in so small a run).
    assert all(hooks[h]["shown"] > 0 for h in ("first_contact_message", "intro_video",
                                                "presentation"))
    assert hooks["intro_video"]["used_suggestion"] > hooks["intro_video"]["used_other"]


def test_the_demo_report_is_what_the_database_it_leaves_says(
    demo: tuple[dict[str, Any], Path],
) -> None:
    report, db = demo
    with sqlite3.connect(db) as conn:
        processes = dict(conn.execute(
            "SELECT process_id, count(*) FROM instance GROUP BY process_id").fetchall())
        outcomes = dict(conn.execute(
            "SELECT step_id, count(*) FROM step_event WHERE kind = 'outcome' AND step_id != "
            "'sale' GROUP BY step_id").fetchall())
    assert processes == {"distributor_onboarding": report["distributors"],
                         "prospect_journey": report["prospects"]}
    assert outcomes == report["outcomes"]


def test_demo_prints_a_readable_report_and_replaces_an_old_database(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    db.write_bytes(b"not a database: the demo starts from scratch")
    result = runner.invoke(app, ["demo", "--distributors", "3", "--days", "6", "--seed", "1",
                                 "--db", str(db)])
    assert result.exit_code == 0, result.output
    for heading in ("LifeVantage demo: 3 distributors", "Funnel by step",
                    "Where prospects wait longest", "First sale within 14 days",
                    "Content shown vs used", "Add a prospect", "intro_video"):
        assert heading in result.stdout, heading
    with sqlite3.connect(db) as conn:
        (onboarded,) = conn.execute("SELECT count(*) FROM instance WHERE process_id = "
                                    "'distributor_onboarding'").fetchone()
    assert onboarded == 3


def test_the_batch_demo_learns_and_compares_the_same_field_force_before_and_after(
    batch_demo: tuple[dict[str, Any], Path],
) -> None:
    report, db = batch_demo
    learned = report["learned"]
    assert learned["outcome"] == "Event_end" and learned["decisions"] > 0
    # Every hook of the journey is either proposed (with its estimates) or skipped with why.
    proposed = {h["hook"]: h for h in learned["hooks"]}
    assert {"first_contact_message", "intro_video", "presentation"} <= (
        set(proposed) | set(learned["skipped"]))
    for hook in proposed.values():
        dr = hook["lift"]["dr"]
        assert dr["low"] <= dr["value"] <= dr["high"]
        assert (hook["hook"] in report["applied"]) == hook["beats"]
    comparison = report["comparison"]
    before, after = comparison["before"], comparison["after"]
    assert before["policy"] == "catalog, exploring 100%" and before["database"] == str(db)
    assert before["prospects"] == report["prospects"]
    after_db = Path(after["database"])
    assert after_db == db.with_name("demo.after.db") and after_db.exists()
    assert after["policy"] == ("learned" if report["applied"] else
                               "catalog (nothing learned beat it)")
    for run in (before, after):
        assert run["conversion"] == pytest.approx(run["converted"] / run["prospects"])
    change = comparison["conversion_difference"]
    assert change["value"] == pytest.approx(after["conversion"] - before["conversion"])
    assert change["low"] < change["value"] < change["high"]
    # The second run recommended with exactly the policies applied after the first.
    with sqlite3.connect(db) as first, sqlite3.connect(after_db) as second:
        query = ("SELECT p.hook, p.kind FROM policy_active a JOIN policy p "
                 "ON p.hook = a.hook AND p.version = a.version ORDER BY p.hook")
        assert first.execute(query).fetchall() == second.execute(query).fetchall()
        (converted,) = second.execute(
            "SELECT count(*) FROM step_event WHERE kind = 'outcome' AND step_id IN "
            "('customer_order', 'distributor_enrolled')").fetchone()
    assert converted == after["converted"]


def test_the_demo_compares_three_arms_on_the_same_field_force(
    demo: tuple[dict[str, Any], Path],
) -> None:
    """Catalog default, continuous learning from day one (on --db) and the oracle: the same
    distributors and hidden world, each with its conversion and first sales and 95% CIs."""
    report, db = demo
    arms = report["arms"]
    assert report["learning"] == "continuous" and arms["content_strength"] == 1.0
    assert set(arms["arms"]) == {"catalog", "continuous", "oracle"}
    assert arms["arms"]["continuous"]["database"] == str(db)
    assert db.with_name("demo.oracle.db").exists() and db.with_name("demo.catalog.db").exists()
    for arm in arms["arms"].values():
        for rate in (arm["conversion"], arm["first_sale_within_14_days"]):
            assert rate["low"] <= rate["value"] <= rate["high"]
            assert rate["value"] == pytest.approx(rate["hits"] / rate["n"])
        assert arm["first_sale_within_14_days"]["n"] == arms["arms"]["catalog"][
            "first_sale_within_14_days"]["n"]  # the same distributors, observed as long
    assert arms["arms"]["continuous"]["refreshes"] >= 5 * 19
    with sqlite3.connect(db) as conn:
        (learned,) = conn.execute("SELECT count(*) FROM policy WHERE note LIKE "
                                  "'continuous learning%'").fetchone()
    assert learned == arms["arms"]["continuous"]["refreshes"]
