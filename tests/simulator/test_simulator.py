"""The simulator drives the real engine on real SQLite files: a seed replays the same run, the
log it leaves agrees with the result it reports, and its hidden world favours different content
for different prospects."""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from content_catalog import load_catalog_text
from engine import ManualClock
from nextmove import open_engine, open_store
from simulator import (
    LIFEVANTAGE,
    SimulationConfig,
    SimulationResult,
    oracle_policies,
    response_model,
    simulate,
)
from simulator.run import Simulation, soundness
from simulator.world import INTERESTS, PERSONALITIES, ProspectState, ResponseModel
from tests.conftest import FIXTURES

SMALL = {"distributors": 8, "days": 10}
CATALOG = load_catalog_text((LIFEVANTAGE / "catalog.yaml").read_text(encoding="utf-8"))
SEGMENTS = [(p, i) for p in PERSONALITIES for i in INTERESTS]
LOG = """
    SELECT i.process_id, i.prospect_id, e.step_id, e.kind, e.actor, e.hook, e.content_shown,
           e.content_used, e.propensity, e.policy_version, e.data, e.at
    FROM step_event e JOIN instance i ON i.id = e.instance_id
    ORDER BY e.id
"""


class Run:
    """One simulation on a fresh SQLite file, and the step log it left."""

    def __init__(self, directory: Path, seed: int) -> None:
        self.path = directory / f"seed{seed}.db"
        self.config = SimulationConfig(**SMALL, seed=seed)
        days: list[int] = []
        self.result: SimulationResult = simulate(str(self.path), self.config,
                                                 progress=days.append)
        self.progress = days
        with sqlite3.connect(self.path) as conn:
            conn.row_factory = sqlite3.Row
            self.log = [dict(r) for r in conn.execute(LOG)]
            self.instances = Counter(p for (p,) in conn.execute(
                "SELECT process_id FROM instance"))
            self.distributors = [json.loads(c) for (c,) in conn.execute(
                "SELECT context FROM instance WHERE process_id = 'distributor_onboarding' "
                "ORDER BY prospect_id")]

    def sequence(self) -> list[tuple[Any, ...]]:
        return [(e["prospect_id"], e["step_id"], e["kind"], e["content_shown"],
                 e["content_used"], e["at"]) for e in self.log]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Seed 5 twice (each on its own fresh file) and seed 6 once."""
    return {
        "first": Run(tmp_path_factory.mktemp("first"), 5),
        "again": Run(tmp_path_factory.mktemp("again"), 5),
        "other": Run(tmp_path_factory.mktemp("other"), 6),
    }


def test_the_same_seed_replays_the_same_log_and_result(runs: dict[str, Run]) -> None:
    first, again = runs["first"], runs["again"]
    assert first.path != again.path
    assert len(first.log) > 500
    assert first.sequence() == again.sequence()
    assert first.log == again.log  # actors, propensities, policy versions and data too
    assert asdict(first.result) == asdict(again.result)
    assert first.progress == again.progress == list(range(1, SMALL["days"] + 1))


def test_another_seed_gives_another_run(runs: dict[str, Run]) -> None:
    first, other = runs["first"], runs["other"]
    assert first.distributors != other.distributors  # another field force
    assert first.sequence() != other.sequence()
    assert asdict(first.result) != asdict(other.result)
    assert first.result.distributors == other.result.distributors == SMALL["distributors"]


def test_the_log_agrees_with_the_result_and_the_simulated_calendar(
    runs: dict[str, Run],
) -> None:
    for run in runs.values():
        result, log = run.result, run.log
        assert run.instances == {"distributor_onboarding": result.distributors,
                                 "prospect_journey": result.prospects}
        outcomes = Counter(e["step_id"] for e in log if e["kind"] == "outcome")
        sold = result.outcomes.get("customer_order", 0)  # every customer order is a sale
        assert outcomes == Counter({**result.outcomes, "sale": sold})
        sales = [e for e in log if (e["kind"], e["step_id"]) == ("outcome", "sale")]
        assert all(e["actor"] and e["prospect_id"].startswith(e["actor"]) for e in sales)
        acted = [e for e in log if e["kind"] in ("completed", "skipped", "varied")
                 and e["actor"] and e["step_id"] != "Event_start"]
        assert len(acted) == result.actions
        played = [e for e in log if e["kind"] == "message"]
        assert played and len(played) <= result.videos_played

        start = run.config.start.replace(tzinfo=None)
        end = start + timedelta(days=run.config.days)
        moments = [datetime.fromisoformat(e["at"]) for e in log]
        assert start <= min(moments) and max(moments) < end
        assert set(result.first_sale_day) <= set(result.enrolled_day)


def test_no_run_completes_a_step_twice_or_leaves_an_instance_stalled(
    runs: dict[str, Run],
) -> None:
    for run in runs.values():
        assert (run.result.completed_twice, run.result.stalled) == (0, 0)
        done = Counter((e["prospect_id"], e["step_id"]) for e in run.log
                       if e["kind"] in ("completed", "skipped", "varied"))
        assert max(done.values()) == 1  # the log says the same


def test_soundness_counts_a_step_done_twice(tmp_path: Path) -> None:
    """A journey that loops (follow up, then wait again) does its step twice: counted."""
    clock = ManualClock(datetime(2026, 1, 6, 9))
    engine = open_engine(f"sqlite:///{tmp_path / 'loop.db'}", clock=clock, recommend=False)
    engine.deploy([FIXTURES / "gateways"])
    instance = engine.complete(engine.start("deadline_or_video", "p1", "d1").id, "share_video")
    assert soundness(engine.store) == (0, 0)
    for _ in range(2):
        clock.advance(timedelta(days=2))
        engine.complete(instance.id, "follow_up")
    assert soundness(engine.store) == (1, 0)
    engine.store.dispose()


def test_every_recommendation_in_the_log_carries_its_propensity(runs: dict[str, Run]) -> None:
    log = runs["first"].log
    offered = [e for e in log if e["kind"] == "entered" and e["content_shown"]]
    assert len(offered) > 100
    for event in offered:
        assert 0.0 < event["propensity"] <= 1.0, event
        assert event["hook"] and event["policy_version"] is not None, event
    assert any(e["propensity"] < 1.0 for e in offered)  # the policies explore
    assert not [e for e in log if e["propensity"] is not None and not e["content_shown"]]
    unhooked = [e for e in log if e["kind"] == "entered" and e["hook"] is None]
    assert unhooked and all(e["propensity"] is None for e in unhooked)

    # What distributors used is mostly what the card led with, sometimes another option.
    shown = {(e["prospect_id"], e["step_id"]): e["content_shown"] for e in offered}
    used = [(e["content_used"], shown[(e["prospect_id"], e["step_id"])]) for e in log
            if e["kind"] in ("completed", "varied") and e["content_used"]
            and (e["prospect_id"], e["step_id"]) in shown]
    same = sum(1 for u, s in used if u == s)
    assert 0 < len(used) - same < same


def test_the_hidden_world_favours_different_content_for_different_segments() -> None:
    model = response_model(CATALOG, 2018)
    favourites = {hook: {model.best_option(hook, segment) for segment in SEGMENTS}
                  for hook in CATALOG.hooks}
    assert any(len(best) > 1 for best in favourites.values()), favourites
    assert all(None not in best for best in favourites.values())
    # The same world seed is the same world; another seed is another world.
    again, other = response_model(CATALOG, 2018), response_model(CATALOG, 2019)
    effects = [(h, o.id, s) for h in sorted(CATALOG.hooks) for o in CATALOG.options_for(h)
               for s in SEGMENTS]
    assert [model.effect(*k) for k in effects] == [again.effect(*k) for k in effects]
    assert [model.effect(*k) for k in effects] != [other.effect(*k) for k in effects]

    # The oracle's rule for each segment ranks that segment's best option first.
    for policy in oracle_policies(CATALOG, model):
        for segment in SEGMENTS:
            context = {"prospect_personality": segment[0], "prospect_interest": segment[1]}
            scores = policy.scores_for(context)
            assert max(scores, key=scores.__getitem__) == model.best_option(policy.hook,
                                                                            segment)


def test_an_unknown_policy_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="active, catalog, oracle"):
        simulate(str(tmp_path / "sim.db"), SimulationConfig(**SMALL), policy="best")
    assert not (tmp_path / "sim.db").exists()


class _Witness(ResponseModel):
    """The simulator's world, noting what content each prospect had seen when they answered."""

    def __init__(self, seed: int, options: dict[str, list[str]]) -> None:
        super().__init__(seed, options)
        self.seen_at_answer: list[dict[str, str]] = []

    def interest(self, state: ProspectState, day: int, rng: random.Random) -> str:
        self.seen_at_answer.append(dict(state.content))
        return super().interest(state, day, rng)


def test_a_prospect_answers_after_the_content_of_that_conversation(tmp_path: Path) -> None:
    """The presentation shared in a conversation is part of the answer to it (and a check-in's
    nurture message part of that answer): the world records content before it draws."""
    store = open_store(str(tmp_path / "sim.db"))
    config = SimulationConfig(distributors=10, days=14, seed=5)
    engine = open_engine(store, clock=ManualClock(config.start), rng=random.Random(6))
    engine.deploy([LIFEVANTAGE])
    world = _Witness(config.world, {h: [o.id for o in CATALOG.options_for(h)]
                                    for h in CATALOG.hooks})
    Simulation(engine, config, world).run()
    store.dispose()
    answers = world.seen_at_answer
    with_presentation = sum("presentation" in seen for seen in answers)
    # Every answer but those where no presentation was available (a market without one)
    # or none used; before the fix no first conversation had its presentation in the answer.
    assert len(answers) > 10 and with_presentation >= 0.9 * len(answers), (
        with_presentation, len(answers))


def test_content_strength_scales_every_content_effect() -> None:
    options = {h: [o.id for o in CATALOG.options_for(h)] for h in CATALOG.hooks}
    calibrated, strong = ResponseModel(2018, options), ResponseModel(2018, options, 3.0)
    for hook, ids in options.items():
        for option in ids:
            for segment in SEGMENTS:
                assert strong.effect(hook, option, segment) == pytest.approx(
                    3.0 * calibrated.effect(hook, option, segment))
    assert strong.effect("intro_video", None, SEGMENTS[0]) == calibrated.effect(
        "intro_video", None, SEGMENTS[0])  # sharing nothing is no content to scale
