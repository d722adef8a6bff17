"""Acting on drift: the watch demotes a drifted item in a new hash-chained policy version,
`drift --open` lists it, `drift --ack` records a review, the worker runs it on a schedule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from analytics.report import collect, render_html
from cli import app
from commands._drift import drift_chores
from content_catalog import activations, get_policy, load_stored_catalog
from engine import ManualClock, NextmoveError, Store
from engine.runtime.queries import DEFINITION, INSTANCE, STEP_EVENT
from engine.worker import Chore, run_worker
from learner import drift_records, review, watch
from learner.drift_watch import demote
from nextmove import open_engine, open_store
from simulator import LIFEVANTAGE
from tests.conftest import REPO

HOOK = "first_contact_message"
GOOD, BAD = "first_contact_permission", "first_contact_checkin_short"  # BAD leads
START = datetime(2026, 1, 5, 8, tzinfo=UTC)
END = START + timedelta(hours=3000)
DAY = timedelta(days=1)


def drifting_log(store: Store) -> None:
    """Prospects get one of two first-contact messages, one an hour; from the 1200th on,
    the short check-in (the catalog's pick) converts 10% instead of 30% (its 600th)."""
    open_engine(store, clock=ManualClock(START), recommend=False).deploy([LIFEVANTAGE])
    with store.read() as conn:
        definition = conn.execute(select(DEFINITION.c.id).where(
            DEFINITION.c.process_id == "prospect_journey")).scalar_one()
    rng = np.random.default_rng(3)
    instances, events = [], []
    for i in range(3000):  # explicit ids: one bulk insert per table
        at = (START + timedelta(hours=i)).replace(tzinfo=None)
        shown = (GOOD, BAD)[i % 2]
        rate = 0.1 if shown == BAD and i >= 1200 else 0.3
        instances.append({
            "id": i + 1, "definition_id": definition, "process_id": "prospect_journey",
            "prospect_id": f"p{i}", "distributor_id": "d1", "status": "completed",
            "context": "{}", "waiting": "[]", "state": "{}", "version": 1, "created_at": at,
            "updated_at": at})
        steps = [("add_contact", "entered", shown, None, 0.5),
                 ("add_contact", "completed", None, shown, None)]
        if rng.random() < rate:
            steps.append(("Event_end", "completed", None, None, None))
        events += [{"instance_id": i + 1, "step_id": step, "step_name": step, "kind": kind,
                    "hook": HOOK if step == "add_contact" else None, "content_shown": offered,
                    "content_used": used, "propensity": p, "policy_version": 1 if p else None,
                    "at": at + timedelta(minutes=n)}
                   for n, (step, kind, offered, used, p) in enumerate(steps)]
    with store.write() as conn:
        conn.execute(insert(INSTANCE), instances)
        conn.execute(insert(STEP_EVENT), events)


@pytest.fixture
def store(db_url: str) -> Store:
    found = open_store(db_url)
    drifting_log(found)
    return found


def shares(store: Store) -> dict[str, float]:
    """The probability each first-contact option is shown to a US prospect."""
    catalog = load_stored_catalog(store)
    ranked = get_policy(store, HOOK).rank(catalog.options_for(HOOK),
                                          {"market": "US", "locale": "en-US"})
    return {r.option_id: r.probability for r in ranked}


def test_an_alert_demotes_the_item_until_a_reviewer_decides(store: Store) -> None:
    before = get_policy(store, HOOK)
    assert max(shares(store).values()) == shares(store)[BAD]  # the card leads with it
    acted = watch(store, "prospect_journey", outcome="Event_end", horizon=DAY, now=END,
                  clock=ManualClock(END))
    assert [(a.alert.option_id, a.version is not None) for a in acted] == [(BAD, True)]
    alert = acted[0].alert
    assert alert.since is not None and alert.detected_at is not None
    assert START + timedelta(hours=1100) < alert.since <= alert.detected_at <= END
    live = get_policy(store, HOOK)
    assert live.version == acted[0].version == before.version + 1
    floor = live.exploration.epsilon / len(shares(store))
    assert shares(store)[BAD] == pytest.approx(floor)  # at its exploration floor
    last = activations(store, HOOK)[-1]
    assert last.version == live.version and last.reason is not None
    assert last.reason.startswith(f"drift: {BAD} converted") and "pending review" in last.reason
    [record] = drift_records(store, status="open")
    assert (record.hook, record.option_id, record.demoted_from) == (HOOK, BAD, before.version)
    # Idempotent: the same check again changes nothing.
    assert watch(store, "prospect_journey", outcome="Event_end", horizon=DAY, now=END) == []
    assert get_policy(store, HOOK).version == live.version

    restored = review(store, BAD, reviewer="ana", decision="restore", clock=ManualClock(END))
    assert (restored.status, restored.reviewer) == ("restored", "ana")
    assert get_policy(store, HOOK).default[BAD] == before.default[BAD]
    assert drift_records(store, status="open") == []
    assert activations(store, HOOK)[-1].reason == (
        f"drift review by ana: restore {BAD} (alert of policy v{live.version})")
    # Watched again from the review on: the old evidence raises nothing.
    assert watch(store, "prospect_journey", outcome="Event_end", horizon=DAY,
                 now=END + timedelta(days=3)) == []
    with pytest.raises(NextmoveError, match="no open drift alert"):
        review(store, BAD, reviewer="ana", decision="keep")
    store.dispose()


def test_keep_leaves_the_item_demoted_and_unwatched(store: Store) -> None:
    watch(store, "prospect_journey", outcome="Event_end", horizon=DAY, now=END)
    demoted = get_policy(store, HOOK)
    kept = review(store, BAD, reviewer="lee", decision="keep")
    assert kept.status == "kept"
    data = collect(store, "prospect_journey", now=END)  # the report lists it
    assert [(d["option_id"], d["status"]) for d in data.drift] == [(BAD, "kept (lee)")]
    page = render_html(data)
    assert 'id="drift"' in page and BAD in page.split('id="drift"')[1]
    assert get_policy(store, HOOK).default == demoted.default
    assert watch(store, "prospect_journey", outcome="Event_end", horizon=DAY, now=END) == []
    with pytest.raises(NextmoveError, match="keep or restore"):
        review(store, GOOD, reviewer="lee", decision="maybe")
    store.dispose()


def test_demote_puts_the_item_below_unscored_options_too() -> None:
    from content_catalog import Exploration, Policy, Rule

    policy = Policy(HOOK, default={BAD: 0.9}, exploration=Exploration(epsilon=0.1),
                    rules=(Rule({"market": "US"}, {BAD: 2.0, GOOD: 1.0}),))
    lowered = demote(policy, BAD, [GOOD, BAD, "other"])
    for table in (lowered.default, lowered.rules[0].scores):
        assert min(table, key=lambda o: table[o]) == BAD
        assert set(table) == {GOOD, BAD, "other"}


def test_the_worker_runs_the_check_on_its_schedule(db_url: str) -> None:
    store = open_store(db_url)
    drifting_log(store)
    clock = ManualClock(END - 2 * DAY)
    engine = open_engine(store, clock=clock, recommend=False)
    times: list[datetime] = []
    chores = [*drift_chores(engine, "P1D", "prospect_journey", "Event_end", "P1D"),
              Chore(DAY, times.append),
              Chore(timedelta(0), lambda now: clock.advance(timedelta(hours=12)))]
    stats = run_worker(engine, poll_interval=0, max_loops=5, chores=chores,
                       handle_signals=False)
    start = END - 2 * DAY
    assert times == [start, start + DAY, start + 2 * DAY]  # every day of the engine's clock
    assert stats.chores == 3 + 3 + 5
    [record] = drift_records(store, status="open")  # the drift chore acted on the first run
    assert record.option_id == BAD
    with pytest.raises(NextmoveError, match="--drift-process"):
        drift_chores(engine, "P1D", None, "Event_end", None)
    store.dispose()


def test_cli_drift_act_open_and_ack(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    store = open_store(db)
    drifting_log(store)
    store.dispose()
    runner = CliRunner()
    now = END.isoformat()
    common = ["--process", "prospect_journey", "--outcome", "Event_end", "--horizon", "P1D",
              "--db", db, "--now", now]
    found = runner.invoke(app, ["drift", *common, "--json"])
    assert found.exit_code == 0, found.output
    [alert] = json.loads(found.stdout)["alerts"]
    drift_schema = json.loads((REPO / "docs" / "json-schemas" / "drift.json").read_text("utf-8"))
    jsonschema.validate(json.loads(found.stdout), drift_schema,
                        cls=jsonschema.Draft202012Validator)
    assert alert["option_id"] == BAD and alert["demoted_in"] is None
    assert alert["since"] <= alert["detected_at"] and 0 < alert["p_value"] < 1
    acted = runner.invoke(app, ["drift", *common, "--act"])
    assert acted.exit_code == 0, acted.output
    assert "demoted to its exploration floor in policy v" in acted.stdout
    listed = runner.invoke(app, ["drift", "--open", "--db", db])
    assert f"{HOOK}/{BAD}" in listed.stdout and "open" in listed.stdout
    bad = runner.invoke(app, ["drift", "--ack", BAD, "--db", db])
    assert bad.exit_code == 3 and "--reviewer" in bad.output  # invalid input
    done = runner.invoke(app, ["drift", "--ack", BAD, "--reviewer", "ana", "--decision",
                               "keep", "--db", db, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["records"][0]["status"] == "kept"
    jsonschema.validate(json.loads(done.stdout), drift_schema,
                        cls=jsonschema.Draft202012Validator)
    empty = runner.invoke(app, ["drift", "--open", "--db", db])
    assert "no open drift alerts" in empty.stdout
