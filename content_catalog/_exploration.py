"""Exploration: how a policy turns scores into the probability of showing each option.

* epsilon-greedy: the best (ties: catalog order) with 1 - ε + ε/n, every other with ε/n;
* softmax: option i with exp(score_i / τ) / Σ exp(score_j / τ), computed stably;
* table: the scores are the probabilities themselves (negative ones count as 0), divided by
  their sum over the options available: a continuous learner's stored table of how often
  each option leads, sampled as stored.

`pick` turns one uniform draw into an option, never one of probability 0, so what was shown
was shown with exactly the probability recorded.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from content_catalog._errors import PolicyError
from content_catalog.recommend import Ranked
from engine.errors import did_you_mean

METHODS = ("epsilon", "softmax", "table")


@dataclass(frozen=True)
class Exploration:
    """How a policy explores: epsilon-greedy (default, ε = 0.2), softmax (temperature τ) or
    table (the scores are the probabilities)."""

    method: str = "epsilon"
    epsilon: float = 0.2
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise PolicyError(f"unknown method {self.method!r}; use one of {', '.join(METHODS)}",
                              field="exploration.method",
                              suggestion=did_you_mean(str(self.method), METHODS))
        if not (is_number(self.epsilon) and 0.0 <= self.epsilon <= 1.0):
            raise PolicyError(f"epsilon must be a number from 0 to 1, not {self.epsilon!r}",
                              field="exploration.epsilon")
        if not (is_number(self.temperature) and self.temperature > 0):
            raise PolicyError(f"temperature must be a number above 0, not {self.temperature!r}",
                              field="exploration.temperature")

    def probabilities(self, scores: Sequence[float]) -> list[float]:
        """The probability of showing each option, for scores sorted best first."""
        n = len(scores)
        if n == 0:
            return []
        if self.method == "epsilon":
            share = self.epsilon / n
            return [1.0 - self.epsilon + share] + [share] * (n - 1)
        if self.method == "table":
            clipped = [max(0.0, s) for s in scores]
            total = math.fsum(clipped)
            return [c / total for c in clipped] if total > 0 else [1.0 / n] * n
        top = max(scores)  # subtracting the maximum keeps exp() from overflowing
        weights = [math.exp((s - top) / self.temperature) for s in scores]
        total = math.fsum(weights)
        return [w / total for w in weights]

    def to_dict(self) -> dict[str, Any]:
        if self.method == "epsilon":
            return {"method": "epsilon", "epsilon": self.epsilon}
        if self.method == "table":
            return {"method": "table"}
        return {"method": "softmax", "temperature": self.temperature}

    @classmethod
    def from_dict(cls, dct: Mapping[str, Any]) -> Exploration:
        """Read {"method": "epsilon", "epsilon": ε}, {"method": "softmax", "temperature": τ}
        or {"method": "table"}."""
        if not isinstance(dct, Mapping):
            raise PolicyError("must be an object", field="exploration")
        method = dct.get("method", "epsilon")
        allowed = {"epsilon": ("method", "epsilon"), "softmax": ("method", "temperature"),
                   "table": ("method",)}
        for key in dct:
            if key not in allowed.get(method, ("method",)):
                raise PolicyError(f"unexpected key {key!r} for method {method!r}",
                                  field="exploration",
                                  suggestion=did_you_mean(key, allowed.get(method, ())))
        if method == "softmax" and "temperature" not in dct:
            raise PolicyError("softmax needs a temperature", field="exploration.temperature")
        return cls(method=method, epsilon=dct.get("epsilon", 0.2),
                   temperature=dct.get("temperature", 1.0))


def cumulative(ranked: Sequence[Ranked]) -> tuple[float, ...]:
    """Running sums of the ranked probabilities, for `pick`."""
    total, out = 0.0, []
    for r in ranked:
        total += r.probability
        out.append(total)
    return tuple(out)


def pick(cumulative_probabilities: Sequence[float], u: float) -> int:
    """The index drawn by a uniform `u` in [0, 1): never an option of probability 0."""
    index = bisect_right(cumulative_probabilities, u)
    if index < len(cumulative_probabilities):
        return index
    # u beyond a total rounded below 1: the last option with any probability.
    last = len(cumulative_probabilities) - 1
    while last > 0 and cumulative_probabilities[last] == cumulative_probabilities[last - 1]:
        last -= 1
    return last


def is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))
