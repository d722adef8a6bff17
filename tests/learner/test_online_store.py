"""Continuous learning on the real engine and store: refreshed versions in the hash-chained
policy log, exact propensities on the cards, the batch switch, the rollback and its hold."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from compliance.policy_chain import verify_policy_trail
from content_catalog import activate, get_policy, history, load_stored_catalog, store_catalog
from engine import ManualClock, Store
from engine.store.steplog import UnknownOutcome
from learner import decisions, refresh
from learner._read_online import OnlineLog
from learner.online import HELD, NOTE, ROLLBACK_MIN, rollback_test
from nextmove import open_engine, open_store
from simulator import LIFEVANTAGE, SimulationConfig
from simulator.arms import CONVERTED, JOURNEY, run_arm

# What the LifeVantage catalog's learn_from declares: the intro video learns from its playing.
REWARDS = {"intro_video": "Event_wait_for_video_video_played"}


@contextmanager
def stored(path: Path) -> Iterator[Store]:
    store = open_store(path)
    try:
        yield store
    finally:
        store.dispose()


SMALL = SimulationConfig(distributors=30, days=12, seed=5)


@pytest.fixture(scope="module")
def continuous_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("online") / "small.db"
    run_arm(path, SMALL, "continuous")
    return path


def test_every_card_logs_the_stored_tables_probability(continuous_db: Path) -> None:
    with stored(continuous_db) as store:
        catalog = load_stored_catalog(store)
        table = decisions(store, JOURNEY, outcome=CONVERTED)
        learned = {(v.hook, v.version) for v in history(store)
                   if (v.note or "").startswith(NOTE)}
        assert len(learned) >= 5 * (SMALL.days - 1)  # every hook, every day
        checked = 0
        cache: dict[tuple[str, int], object] = {}
        for i in range(len(table)):
            hook, version = str(table.hook[i]), int(table.policy_version[i])
            if (hook, version) not in learned or table.shown[i] is None:
                continue
            policy = cache.get((hook, version)) or get_policy(store, hook, version)
            cache[(hook, version)] = policy
            context = {k: v[i] for k, v in table.context.items()}
            ranked = {r.option_id: r.probability for r in
                      policy.rank(catalog.options_for(hook), context)}  # type: ignore[attr-defined]
            assert table.propensity[i] == pytest.approx(ranked[table.shown[i]], abs=1e-12)
            assert table.propensity[i] >= 0.02 - 1e-12  # the floor
            checked += 1
        assert checked > 200
        check = verify_policy_trail(store)
        assert check.ok, check


def test_the_policy_refresh_command_stores_a_version(continuous_db: Path,
                                                     tmp_path: Path) -> None:
    db = tmp_path / "copy.db"
    shutil.copy(continuous_db, db)
    now = (SMALL.start + timedelta(days=SMALL.days)).isoformat()
    result = CliRunner().invoke(app, ["policy", "refresh", "--process", JOURNEY, "--outcome",
                                      CONVERTED, "--now", now, "--db", str(db), "--json",
                                      "--reward", f"intro_video={REWARDS['intro_video']}"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert {h["hook"] for h in found["hooks"]} >= {"intro_video", "presentation"}
    assert {h["hook"]: h["reward"] for h in found["hooks"]}["intro_video"] == REWARDS[
        "intro_video"]
    assert all(h["version"] is not None and h["pending"] > 0 for h in found["hooks"])
    # held after a rollback: refreshes leave the hook alone until a person activates one
    with stored(db) as store:
        clock = ManualClock(SMALL.start + timedelta(days=SMALL.days))
        activate(store, "presentation", 1, reason=f"{HELD}: by hand in a test", clock=clock)
        held = refresh(store, JOURNEY, outcome=CONVERTED, clock=clock)
        assert "presentation" in held.skipped and "held" in held.skipped["presentation"]
        latest = max(v.version for v in history(store, "presentation"))
        activate(store, "presentation", latest, reason="resume", clock=clock)
        again = refresh(store, JOURNEY, outcome=CONVERTED, clock=clock)
        assert "presentation" in {h.hook for h in again.hooks}
        assert verify_policy_trail(store).ok


def test_the_intro_video_learns_from_the_video_being_played(continuous_db: Path,
                                                          tmp_path: Path) -> None:
    """A hook with a nearer reward learns from it (many more successes than conversions),
    the others from the outcome; an unknown reward step is refused before anything is
    stored."""
    db = tmp_path / "copy.db"
    shutil.copy(continuous_db, db)
    step = REWARDS["intro_video"]
    with stored(db) as store:
        assert get_policy(store, "intro_video").explain["online"]["reward"] == step
        assert get_policy(store, "presentation").explain["online"]["reward"] == CONVERTED
        clock = ManualClock(SMALL.start + timedelta(days=SMALL.days))
        assert load_stored_catalog(store).nearer_rewards() == REWARDS
        near = refresh(store, JOURNEY, outcome=CONVERTED, clock=clock,  # the catalog's
                       hooks=["intro_video"]).hooks[0]
        far = refresh(store, JOURNEY, outcome=CONVERTED, clock=clock,  # overridden by name
                      rewards={"intro_video": CONVERTED}, hooks=["intro_video"]).hooks[0]
        assert (near.reward, far.reward) == (step, CONVERTED)
        assert near.decisions == far.decisions and near.successes > 2 * far.successes
        before = len(history(store, "intro_video"))
        with pytest.raises(UnknownOutcome):
            refresh(store, JOURNEY, outcome=CONVERTED, clock=clock,
                    rewards={"intro_video": "no_such_step"})
        assert len(history(store, "intro_video")) == before


def test_a_batch_catalog_is_not_refreshed(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    shutil.copytree(LIFEVANTAGE, maps)
    catalog = maps / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("learning: continuous", "learning: batch"))

    with stored(tmp_path / "batch.db") as store:
        open_engine(store, recommend=False).deploy([maps])
        done = refresh(store, JOURNEY, outcome=CONVERTED, clock=ManualClock(SMALL.start))
        assert not done.hooks and set(done.skipped.values()) == {
            "the catalog says learning: batch"}


def _two_versions(n: int, before: float, after: float, seed: int) -> OnlineLog:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-01-05T00:00", "us")
    acted = start + (np.sort(rng.uniform(0, 40, 2 * n)) * 86_400e6).astype("timedelta64[us]")
    version = np.where(np.arange(2 * n) < n, 1, 2 + (np.arange(2 * n) - n) // 100)
    rate = np.where(version == 1, before, after)
    hit = rng.random(2 * n) < rate
    outcome = np.where(hit, acted + np.timedelta64(2, "D"), np.datetime64("NaT", "us"))
    obj = np.full(2 * n, "x", dtype=object)
    return OnlineLog(obj, obj, np.full(2 * n, 0.5), version.astype(np.int64), acted,
                     acted + np.timedelta64(14, "D"), outcome)


def test_the_rollback_test_fires_on_a_collapse_and_not_on_noise() -> None:
    from datetime import datetime

    later = datetime(2026, 4, 1)
    run = set(range(2, 40))
    fired = [rollback_test(_two_versions(1500, 0.15, 0.07, s), 1, run, later) for s in range(5)]
    assert all(f is not None and f.startswith(HELD) for f in fired), fired
    quiet = [rollback_test(_two_versions(1500, 0.15, 0.15, s), 1, run, later)
             for s in range(20)]
    assert sum(q is not None for q in quiet) <= 1, quiet
    assert rollback_test(_two_versions(ROLLBACK_MIN - 1, 0.15, 0.0, 0), 1, run, later) is None


def test_the_worker_refreshes_on_its_schedule(continuous_db: Path, tmp_path: Path) -> None:
    from commands._learn import learn_chores
    from engine.worker import run_worker

    db = tmp_path / "worker.db"
    shutil.copy(continuous_db, db)
    clock = ManualClock(SMALL.start + timedelta(days=SMALL.days))
    engine = open_engine(db, clock=clock)
    try:
        before = len(history(engine.store, "intro_video"))
        chores = learn_chores(engine, "P1D", JOURNEY, CONVERTED, "P14D", None)
        stats = run_worker(engine, poll_interval=0, max_loops=2, chores=chores,
                           handle_signals=False)
        assert stats.chores == 1  # at the start, then not again within the day
        assert len(history(engine.store, "intro_video")) == before + 1
        # the worker, like every refresh, learns as the catalog's learn_from says
        assert get_policy(engine.store, "intro_video").explain["online"]["reward"] == REWARDS[
            "intro_video"]
        with pytest.raises(Exception, match="--learn-process"):
            learn_chores(engine, "P1D", None, CONVERTED, "P14D", None)
    finally:
        engine.store.dispose()


def test_a_catalog_learn_from_step_the_process_lacks_skips_that_hook_only(
        continuous_db: Path, tmp_path: Path) -> None:
    """The catalog serves several maps: a learn_from step this process does not have leaves
    that hook unrefreshed, with the reason, and the other hooks are refreshed as usual.
    (`deploy` refuses a step that no map using the hook has; one that only another map has
    passes, and `store_catalog` on its own checks no map.)"""
    maps = tmp_path / "maps"
    shutil.copytree(LIFEVANTAGE, maps)
    catalog = maps / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace(
        "intro_video: Event_wait_for_video_video_played", "intro_video: Event_no_such_step"))
    db = tmp_path / "copy.db"
    shutil.copy(continuous_db, db)
    with stored(db) as store:
        store_catalog(store, catalog.read_text(), str(catalog))
        assert load_stored_catalog(store).nearer_rewards() == {
            "intro_video": "Event_no_such_step"}
        clock = ManualClock(SMALL.start + timedelta(days=SMALL.days))
        before = len(history(store, "intro_video"))
        done = refresh(store, JOURNEY, outcome=CONVERTED, clock=clock,
                       hooks=["intro_video", "presentation"])
        assert "Event_no_such_step" in done.skipped["intro_video"]
        assert [h.hook for h in done.hooks] == ["presentation"]
        assert len(history(store, "intro_video")) == before
