"""What the engine asks of a recommender, and what it gets back.

The engine calls `Recommender.recommend` when a person's step with a hook is entered, records
the shown option with its propensity on the step event (`Ranking.to_dict()`), and keeps the
ranking on the waiting step so action cards never recompute it. The interface lives here, with
the engine, so that the engine imports no recommender: `content_catalog.StoredRecommender`
implements it and `nextmove.open_engine` passes one in.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Protocol


class Ranking(Protocol):
    """A hook's options ranked for one context, with the one shown and its propensity."""

    def to_dict(self) -> dict[str, Any]:
        """The document kept on the waiting step: hook, policy_version, shown, propensity
        and ranked (option_id, score, probability; best first)."""
        ...


class Recommender(Protocol):
    """Ranks the content options of a hook for a prospect's context."""

    def recommend(
        self, hook: str, context: Mapping[str, Any], rng: random.Random
    ) -> Ranking | None:
        """A ranking for `hook` in `context`, or None when nothing fills the hook."""
        ...
