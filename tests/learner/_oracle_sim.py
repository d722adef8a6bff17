"""Simulations for the learned-versus-oracle test: the simulator's population, journeys and
hidden response model on the real engine.

The metric is each prospect's exact chance to convert at their first conversation (customer
or distributor), read from the response model at the moment the simulation draws the answer,
averaged over all prospects (0 for those never reaching a conversation). It has the
expectation of the realized first-conversation conversion rate without the last coin flip's
noise, which would otherwise need ~30x more prospects to compare policies.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from content_catalog import (
    Exploration,
    Policy,
    StoredRecommender,
    catalog_policy,
    load_stored_catalog,
    save_policy,
)
from engine import ManualClock
from nextmove import open_engine, open_store
from simulator import LIFEVANTAGE, SimulationConfig, use_policy
from simulator.run import Simulation
from simulator.world import ProspectState, ResponseModel


class World(ResponseModel):
    """The simulator's response model, noting for each prospect the chance its first
    conversation converts (customer or distributor)."""

    def __init__(self, seed: int, options: dict[str, list[str]], strength: float) -> None:
        super().__init__(seed, options, strength)
        self.chance: dict[str, float] = {}

    def interest(self, state: ProspectState, day: int, rng: random.Random) -> str:
        if state.prospect.id not in self.chance:
            self.chance[state.prospect.id] = sum(self.conversion(state))
        return super().interest(state, day, rng)


@dataclass(frozen=True)
class Arm:
    which: str  # explore | catalog | oracle | learned
    seed: int
    prospects: int
    expected: float  # mean chance to convert at the first conversation
    realized: float  # share of prospects who became customers or distributors

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run(db: Path, which: str, config: SimulationConfig, policies: Sequence[Policy] = ()) -> Arm:
    """Simulate on a fresh database: `explore` (every hook uniformly random), `catalog`,
    `oracle`, or `learned` (`policies` saved and activated)."""
    store = open_store(str(db))
    try:
        engine = open_engine(store, clock=ManualClock(config.start),
                             rng=random.Random(config.seed + 1))
        recommender = engine.recommender
        assert isinstance(recommender, StoredRecommender)
        recommender.refresh_seconds = 3600.0
        engine.deploy([LIFEVANTAGE])
        catalog = load_stored_catalog(store)
        world = World(config.world, {h: [o.id for o in catalog.options_for(h)]
                                     for h in catalog.hooks}, config.content_strength)
        if which == "explore":
            for hook in sorted(catalog.hooks):
                save_policy(store, catalog_policy(catalog, hook, Exploration(epsilon=1.0)),
                            activate=True, note="exploration: uniformly random content")
        elif which == "learned":
            for policy in policies:
                save_policy(store, policy, activate=True, note="learned")
        else:
            use_policy(store, which, world, catalog)
        recommender.refresh()
        result = Simulation(engine, config, world).run()
    finally:
        store.dispose()
    converted = sum(result.outcomes.get(k, 0) for k in ("customer_order",
                                                        "distributor_enrolled"))
    n = max(result.prospects, 1)
    return Arm(which, config.seed, result.prospects, sum(world.chance.values()) / n,
               converted / n)
