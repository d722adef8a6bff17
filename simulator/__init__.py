"""A seeded, synthetic LifeVantage field force that drives the real engine.

    from simulator import SimulationConfig, simulate
    result = simulate("sim.db", SimulationConfig(distributors=300, days=60, seed=7))

`policy` chooses what the cards recommend while simulating: "active" (whatever is active in
the database, e.g. a learned policy), "catalog" (the catalog's default weights) or "oracle"
(a policy that knows the hidden response model: the ceiling a learner can approach).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from content_catalog import (
    Catalog,
    Exploration,
    Policy,
    Rule,
    StoredRecommender,
    activate,
    history,
    load_stored_catalog,
    save_policy,
)
from engine import ManualClock, Store
from nextmove import open_engine
from simulator.run import Simulation as _Simulation
from simulator.run import SimulationConfig, SimulationResult
from simulator.world import INTERESTS, PERSONALITIES, ResponseModel

POLICIES = ("active", "catalog", "oracle")
LIFEVANTAGE = Path(__file__).resolve().parent.parent / "processes" / "lifevantage"

__all__ = [
    "LIFEVANTAGE",
    "POLICIES",
    "ResponseModel",
    "SimulationConfig",
    "SimulationResult",
    "oracle_policies",
    "response_model",
    "simulate",
    "use_policy",
]


def response_model(catalog: Catalog, seed: int, content_strength: float = 1.0,
                   degrade: Mapping[str, Any] | None = None) -> ResponseModel:
    """The hidden world for a catalog: content effects drawn from the seed."""
    return ResponseModel(seed, {h: [o.id for o in catalog.options_for(h)] for h in catalog.hooks},
                         content_strength, degrade)


def oracle_policies(catalog: Catalog, model: ResponseModel) -> list[Policy]:
    """Per hook, a rule per prospect segment scoring options by their true effect."""
    policies = []
    for hook in sorted(catalog.hooks):
        rules = []
        for personality in PERSONALITIES:
            for interest in INTERESTS:
                segment = (personality, interest)
                scores = {o.id: model.effect(hook, o.id, segment)
                          for o in catalog.options_for(hook)}
                rules.append(Rule({"prospect_personality": personality,
                                   "prospect_interest": interest}, scores))
        default = {o.id: o.weight for o in catalog.options_for(hook)}
        policies.append(Policy(hook, default=default, rules=tuple(rules), kind="manual",
                               exploration=Exploration(epsilon=0.05),
                               reasons=("oracle: knows the simulator's hidden response model",)))
    return policies


def use_policy(store: Store, which: str, model: ResponseModel, catalog: Catalog) -> None:
    """Make the catalog default or the oracle the active policy of every hook."""
    if which == "active":
        return
    if which == "catalog":
        for hook in catalog.hooks:
            first = min((v.version for v in history(store, hook) if v.kind == "catalog"),
                        default=None)
            if first is not None:
                activate(store, hook, first, reason="simulation: catalog default")
        return
    for policy in oracle_policies(catalog, model):
        save_policy(store, policy, activate=True, note="oracle (simulation ceiling)",
                    reason="simulation: oracle")


def simulate(
    db: str | Store,
    config: SimulationConfig,
    *,
    policy: str = "active",
    processes: Path = LIFEVANTAGE,
    progress: Callable[[int], None] | None = None,
    daily: Callable[[Store, datetime], object] | None = None,
) -> SimulationResult:
    """Deploy the journeys (if needed) and run the simulated field force against them.

    `daily(store, end of day)` runs after each simulated day (e.g. the worker's drift
    check); the cards use what it changed from the next day on."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    engine = open_engine(db, clock=ManualClock(config.start), rng=random.Random(config.seed + 1))
    store, recommender = engine.store, engine.recommender
    assert isinstance(recommender, StoredRecommender)
    recommender.refresh_seconds = 3600.0  # policies fixed per run
    engine.deploy([processes])
    catalog = load_stored_catalog(store)
    model = response_model(catalog, config.world, config.content_strength, config.degrade)
    use_policy(store, policy, model, catalog)
    recommender.refresh()
    if daily is None:
        return _Simulation(engine, config, model).run(progress)

    def day_done(day: int) -> None:
        daily(store, config.start + timedelta(days=day))
        recommender.refresh()
        if progress is not None:
            progress(day)

    return _Simulation(engine, config, model).run(day_done)
