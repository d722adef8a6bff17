"""What the catalog's recommenders give the engine: a ranking of a hook's options.

The engine calls `Recommender.recommend` when a person's step with a hook is entered, records
the shown option with its propensity on the step event, and keeps the ranking on the waiting
step so action cards never recompute it. The engine states what it asks in `engine.recommend`
(it imports nothing from here); `Recommender` below is that interface with this package's
`Recommendation` as the result.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from engine.recommend import Recommender as EngineRecommender


@dataclass(frozen=True)
class Ranked:
    """One content option in a ranking: its score and the probability it was the one shown."""

    option_id: str
    score: float
    probability: float


@dataclass(frozen=True)
class Recommendation:
    hook: str
    policy_version: int
    ranked: tuple[Ranked, ...]  # best first
    shown: str  # the option the card leads with (sampled: the policy explores)
    propensity: float  # probability with which `shown` was chosen

    def to_dict(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "policy_version": self.policy_version,
            "shown": self.shown,
            "propensity": self.propensity,
            "ranked": [asdict(r) for r in self.ranked],
        }

    @classmethod
    def from_dict(cls, dct: Mapping[str, Any]) -> Recommendation:
        return cls(
            hook=dct["hook"],
            policy_version=dct["policy_version"],
            ranked=tuple(Ranked(**r) for r in dct["ranked"]),
            shown=dct["shown"],
            propensity=dct["propensity"],
        )


class Recommender(EngineRecommender, Protocol):
    """Ranks the content options of a hook for a prospect's context."""

    def recommend(
        self, hook: str, context: Mapping[str, Any], rng: random.Random
    ) -> Recommendation | None:
        """A ranking for `hook` in `context`, or None when nothing fills the hook."""
        ...
