"""`nextmove variants / learn / evaluate` on a simulated database: what counts as the outcome,
which cases count under a horizon, and when the log is too thin for a verdict."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app
from engine.store.recorded_clock import simulated_clock
from nextmove import open_store
from tests.conftest import REPO

runner = CliRunner()
JOURNEY = ["--process", "prospect_journey"]
CONVERTING = "customer_order+distributor_enrolled"  # what the LifeVantage map declares


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result.output


def run_json(*args: str) -> Any:
    return json.loads(run(*args, "--json"))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    from simulator import SimulationConfig, simulate

    path = str(tmp_path_factory.mktemp("learning") / "sim.db")
    run("deploy", str(REPO / "processes" / "lifevantage"), "--db", path)
    store = open_store(path, durable=False)  # what `nextmove simulate` runs
    try:
        simulate(store, SimulationConfig(distributors=40, days=30, seed=5))
    finally:
        store.dispose()
    return path


def test_variants_split_a_joined_outcome_like_the_other_commands(db: str) -> None:
    """Before, `--outcome customer_order+distributor_enrolled` converted nobody while the
    map's default (the same two outcomes) converted every path that reached one."""
    default = run_json("variants", *JOURNEY, "--db", db)["variants"]
    joined = run_json("variants", *JOURNEY, "--outcome", CONVERTING, "--db", db)["variants"]
    assert sum(v["converted"] for v in default) > 0
    assert [(v["steps"], v["converted"]) for v in joined] == [
        (v["steps"], v["converted"]) for v in default]


@pytest.mark.parametrize("outcome", ["+", "customer_order++distributor_enrolled",
                                     "customer_order+"])
@pytest.mark.parametrize("command", [
    ["variants"], ["learn", "--dry-run"], ["evaluate", "uniform"], ["drift"],
    ["drift", "--act"], ["policy", "refresh"], ["funnel"]])
def test_an_outcome_with_an_empty_name_is_refused_before_anything_is_stored(
        db: str, command: list[str], outcome: str) -> None:
    """Before, `+` named nothing and checked nothing: `policy refresh --outcome +` stored
    and activated policies learned from no outcome at all."""
    versions = run_json("policy", "history", "--db", db)["versions"]
    text = run(*command, *JOURNEY, "--outcome", outcome, "--db", db, code=3)
    assert "has an empty name beside a '+'" in " ".join(text.split())
    assert run_json("policy", "history", "--db", db)["versions"] == versions


def _started_before(db: str, horizon: timedelta) -> tuple[int, int]:
    """(cases whose horizon has passed by the simulated clock, all cases)."""
    import learner

    store = open_store(db)
    try:
        now = simulated_clock(store)
        assert now is not None
        every = learner.cases(store, "prospect_journey", outcome=CONVERTING)
    finally:
        store.dispose()
    return sum(c.started_at + horizon <= now for c in every), len(every)


def test_variants_count_only_cases_whose_horizon_has_passed(db: str) -> None:
    """Before, a case started in the last 14 days counted as not converted."""
    observed, every = _started_before(db, timedelta(days=14))
    assert 0 < observed < every
    found = run_json("variants", *JOURNEY, "--horizon", "P14D", "--db", db)
    assert sum(v["cases"] for v in found["variants"]) == observed
    assert found["not_yet_observed"] == every - observed
    text = run("variants", *JOURNEY, "--horizon", "P14D", "--db", db)
    assert f"{every - observed} case(s) left out as not yet observed" in text
    # --now moves "now": two months on, every case is observed
    later = run_json("variants", *JOURNEY, "--horizon", "P14D", "--now",
                     "2026-06-01T00:00:00Z", "--db", db)
    assert later["not_yet_observed"] == 0
    assert sum(v["cases"] for v in later["variants"]) == every


def test_a_horizon_longer_than_the_log_leaves_nothing_and_says_so(db: str) -> None:
    """Before, `--horizon P365D` on a 30-day log judged every decision, as a failure unless
    it converted, and printed a rate."""
    args = (*JOURNEY, "--horizon", "P365D", "--db", db)
    text = run("variants", *args)
    assert "no case whose horizon has passed" in text and "%" not in text
    hook = ("--hook", "first_contact_message")
    judged = run_json("evaluate", "active", *hook, *args)
    assert judged["hooks"] == [] and judged["not_yet_observed"] > 0
    assert judged["skipped"] == {
        "first_contact_message": "no decision of this hook whose horizon has passed"}
    text = run("evaluate", "active", *hook, *args)
    assert "left out as not yet observed" in text and "ipw" not in text
    learned = run_json("learn", "--dry-run", *args)
    assert learned["decisions"] == 0 and learned["hooks"] == []
    assert learned["not_yet_observed"] > 0
    assert "nothing to learn from" in run("learn", "--dry-run", *args)


def test_learn_and_evaluate_leave_out_the_decisions_still_pending(db: str) -> None:
    import learner

    store = open_store(db)
    try:
        now = simulated_clock(store)
        every = learner.decisions(store, "prospect_journey", outcome=CONVERTING)
        seen = learner.decisions(store, "prospect_journey", outcome=CONVERTING,
                                 horizon=timedelta(days=14), observed_until=now)
    finally:
        store.dispose()
    assert now is not None
    hook = "first_contact_message"
    pending = seen.pending[hook]
    assert pending > 0 and len(seen) + sum(seen.pending.values()) == len(every)
    judged = run_json("evaluate", "active", *JOURNEY, "--hook", hook, "--horizon", "P14D",
                      "--db", db)
    assert judged["not_yet_observed"] == pending
    assert judged["hooks"][0]["decisions"] == int((seen.hook == hook).sum())
    learned = run_json("learn", "--dry-run", *JOURNEY, "--horizon", "P14D", "--db", db)
    assert learned["not_yet_observed"] == sum(seen.pending.values())
    assert learned["observed_until"] == now.isoformat()


def test_evaluate_gives_no_verdict_on_a_handful_of_decisions(db: str, tmp_path: Path) -> None:
    """Before, 8 decisions gave `ipw 0.3846 [0.3846, 0.3846]` as if it were certain."""
    hook = ("--hook", "enroll_invitation")
    found = run_json("evaluate", "uniform", *JOURNEY, *hook, "--db", db)
    assert found["hooks"] == []
    assert "fewer than min_support=50" in found["skipped"]["enroll_invitation"]
    text = run("evaluate", "uniform", *JOURNEY, *hook, "--db", db)
    assert "enroll_invitation: not judged (" in text and "[" not in text
    # the thick hooks are judged, and no interval is printed without spread
    text = run("evaluate", "uniform", *JOURNEY, "--db", db)
    assert "intro_video" in text and "order_link: not judged" in text
    assert "(no spread)" not in text
