"""A simulated randomized log for the null and calibration tests: one hook, five offers,
decisions logged uniformly at random, a known conversion rate per context and offer.

Context: two text attributes (`tier`, `channel`), a count (`visits`, 0 to 9), a flag
(`returning`, 0/1) and an amount (`basket`, continuous). The true rate of offer a in context x
is `base` × (1 + `effect` where a is the segment's best offer, else 1): the best offer depends on
`tier` and on whether `visits` is at least 5, so a numeric attribute defines a real segment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from content_catalog import Catalog, Policy, catalog_policy, load_catalog_text
from learner._segments import probabilities

HOOK = "offer"
OFFERS = ("offer_a", "offer_b", "offer_c", "offer_d", "offer_e")
CATALOG = "catalog: sparse\nbrand: Test\nlocale: en-US\nitems:\n" + "".join(
    f"  - {{id: {o}, kind: message_template, title: {o}, body: hi, hooks: [{HOOK}],"
    f" weight: {1 - 0.1 * i:.1f}}}\n" for i, o in enumerate(OFFERS))


def catalog() -> Catalog:
    return load_catalog_text(CATALOG)


def contexts(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "tier": rng.choice(["gold", "silver", "bronze"], n).astype(object),
        "channel": rng.choice(["web", "phone"], n).astype(object),
        "visits": rng.integers(0, 10, n).astype(np.float64),
        "returning": rng.integers(0, 2, n).astype(np.float64),
        "basket": np.round(rng.gamma(2.0, 40.0, n), 2),
        "market": np.full(n, "US", dtype=object),
        "locale": np.full(n, "en-US", dtype=object),
    }


def best(ctx: Mapping[str, np.ndarray]) -> np.ndarray:
    """The index of each row's best offer: by tier, shifted for frequent visitors."""
    tier = np.select([ctx["tier"] == "gold", ctx["tier"] == "silver"], [0, 1], 2)
    return (tier + 2 * (ctx["visits"] >= 5)) % len(OFFERS)


def rates(ctx: Mapping[str, np.ndarray], base: float, effect: float) -> np.ndarray:
    """(rows, offers): the true conversion rate of every offer in every row."""
    n = len(ctx["tier"])
    out = np.full((n, len(OFFERS)), base)
    out[np.arange(n), best(ctx)] *= 1 + effect
    return out


def log(n: int, seed: int, *, base: float = 0.005, effect: float = 0.0,
        permute: bool = False) -> dict[str, np.ndarray]:
    """`n` decisions logged uniformly at random; `permute` shuffles the rewards across rows
    (the permuted twin: the same outcomes, no relation left to context or offer)."""
    rng = np.random.default_rng(seed)
    ctx = contexts(n, rng)
    shown = rng.integers(0, len(OFFERS), n)
    reward = (rng.random(n) < rates(ctx, base, effect)[np.arange(n), shown]).astype(np.int8)
    if permute:
        reward = rng.permutation(reward)
    return {
        "case_id": np.array([f"p{seed}_{i}" for i in range(n)], dtype=object),
        "hook": np.full(n, HOOK, dtype=object),
        "step_id": np.full(n, HOOK, dtype=object),
        "shown": np.array(OFFERS, dtype=object)[shown],
        "propensity": np.full(n, 1 / len(OFFERS)),
        "reward": reward,
        "step_index": np.zeros(n, dtype=np.int64),
        "hours_since_start": np.zeros(n),
        **ctx,
    }


def active() -> dict[str, Policy]:
    return {HOOK: catalog_policy(catalog(), HOOK)}


def true_value(policy: Policy, *, base: float, effect: float, n: int = 40_000,
               seed: int = 10_001) -> float:
    """The policy's expected conversion rate over the population (fresh contexts)."""
    rng = np.random.default_rng(seed)
    ctx: dict[str, Any] = contexts(n, rng)
    ctx["shown"] = np.full(n, OFFERS[0], dtype=object)
    pi = probabilities(policy, catalog().options_for(HOOK), ctx)
    return float((pi * rates(ctx, base, effect)).sum(axis=1).mean())
