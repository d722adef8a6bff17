"""A fast world for continuous learning: one hook, a few offers, segments with their own best
offer, outcomes that arrive days after the decision. Each simulated day the hook's policy is
refreshed with `learner.online.thompson_policy` from everything seen so far (pending outcomes
censored) and the day's decisions are drawn from that stored table through `Policy.rank`, so
the logged propensities are the recommender's own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from content_catalog import Catalog, Policy, catalog_policy, load_catalog_text
from learner._read_online import OnlineLog, exposure
from learner._thompson import Settings
from learner.online import thompson_policy

HOOK = "offer"
OFFERS = ("offer_a", "offer_b", "offer_c")
SEGMENTS = ("tier", "channel")
TIERS, CHANNELS = ("gold", "silver", "bronze", "iron"), ("web", "phone")
START = datetime(2026, 1, 5)
HORIZON = timedelta(days=14)
CATALOG = "catalog: world\nbrand: Test\nlocale: en-US\nitems:\n" + "".join(
    f"  - {{id: {o}, kind: message_template, title: {o}, body: hi, hooks: [{HOOK}],"
    f" weight: {1 - 0.2 * i:.1f}}}\n" for i, o in enumerate(OFFERS))


def catalog() -> Catalog:
    return load_catalog_text(CATALOG)


def rates(base: float, effect: float, seed: int = 3) -> dict[tuple[str, str], np.ndarray]:
    """The true rate of each offer per segment: one offer per segment is `effect` better."""
    rng = np.random.default_rng(seed)
    out = {}
    for t in TIERS:
        for c in CHANNELS:
            r = np.full(len(OFFERS), base)
            r[rng.integers(len(OFFERS))] *= 1 + effect
            out[(t, c)] = r
    return out


@dataclass
class Run:
    log: OnlineLog
    reward: np.ndarray  # the outcome of each decision, eventually (0/1)
    policies: list[Policy]
    true_rate: np.ndarray  # the chosen offer's true rate, per decision


def run(days: int, per_day: int, seed: int, *, base: float = 0.1, effect: float = 0.5,
        settings: Settings | None = None, permute: bool = False, learn: bool = True) -> Run:
    """`days` of `per_day` decisions; outcomes arrive 0-10 days after the decision."""
    settings = settings or Settings()
    rng = np.random.default_rng(seed)
    truth = rates(base, effect)
    options = catalog().options_for(HOOK)
    live: Policy = catalog_policy(catalog(), HOOK)
    cols: dict[str, list[object]] = {k: [] for k in ("shown", "mu", "version", "acted",
                                                      "outcome", "tier", "channel")}
    rewards: list[int] = []
    truths: list[float] = []
    policies = [live]
    for day in range(days):
        now = START + timedelta(days=day)
        if learn and day > 0:
            log = _log(cols)
            success, weight = exposure(log, now)
            live, _ = thompson_policy(HOOK, options, log, success, weight, SEGMENTS, live,
                                      settings, rng)
            live = Policy.from_dict({**live.to_dict(), "version": day + 1})
            policies.append(live)
        tier = rng.choice(TIERS, per_day)
        channel = rng.choice(CHANNELS, per_day)
        for i in range(per_day):
            ranked = live.rank(options, {"tier": tier[i], "channel": channel[i]})
            p = np.array([r.probability for r in ranked])
            j = int(rng.choice(len(ranked), p=p / p.sum()))
            shown = ranked[j].option_id
            rate = float(truth[(str(tier[i]), str(channel[i]))][OFFERS.index(shown)])
            acted = now + timedelta(hours=float(rng.uniform(8, 20)))
            hit = bool(rng.random() < rate)
            rewards.append(int(hit))
            truths.append(rate)
            delay = timedelta(days=float(rng.uniform(0, 10)))
            cols["shown"].append(shown)
            cols["mu"].append(ranked[j].probability)
            cols["version"].append(live.version)
            cols["acted"].append(acted)
            cols["outcome"].append(acted + delay if hit else None)
            cols["tier"].append(str(tier[i]))
            cols["channel"].append(str(channel[i]))
    out = np.array(rewards, dtype=np.int64)
    if permute:
        order = rng.permutation(out.size)
        out = out[order]
        acted = cols["acted"]
        cols["outcome"] = [acted[i] + timedelta(days=1) if out[i] else None  # type: ignore
                           for i in range(out.size)]
    return Run(_log(cols), out, policies, np.array(truths))


def _log(cols: dict[str, list[object]]) -> OnlineLog:
    n = len(cols["shown"])

    def obj(values: list[object]) -> np.ndarray:
        a = np.empty(n, dtype=object)
        a[:] = values
        return a

    def times(values: list[object]) -> np.ndarray:
        return np.array([np.datetime64(v, "us") if v is not None else np.datetime64("NaT")
                         for v in values], dtype="datetime64[us]")

    acted = times(cols["acted"])
    # a case starts at its decision here: the horizon runs from it
    return OnlineLog(obj([HOOK] * n), obj(cols["shown"]), np.array(cols["mu"], dtype=float),
                     np.array(cols["version"], dtype=np.int64), acted,
                     acted + np.timedelta64(HORIZON), times(cols["outcome"]),
                     {"tier": obj(cols["tier"]), "channel": obj(cols["channel"])})


def best_rate(base: float = 0.1, effect: float = 0.5) -> float:
    return float(np.mean([r.max() for r in rates(base, effect).values()]))


def uniform_rate(base: float = 0.1, effect: float = 0.5) -> float:
    return float(np.mean([r.mean() for r in rates(base, effect).values()]))
