"""The simulated world of the million-instance database: when things happen and how often.

Each prospect's journey and each distributor's onboarding is a list of moves (a step done, a
timer fired, a video played) drawn from realistic drop-offs and lognormal gaps, seeded.
`bench._million` turns the moves into the rows the engine would have written.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday; enrollments over the following year
NOW = START + timedelta(days=400)
JOURNEY, ONBOARDING = "prospect_journey", "distributor_onboarding"
MARKETS = (("US", "en-US", 0.92), ("MX", "es-MX", 0.08))
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
# how each kind of step closes: completed / varied / skipped shares
SKIPPABLE = {"add_contact", "share_intro", "follow_up", "nurture"}

Action = tuple[str, ...]  # ("do", step[, interest]) | ("timer",) | ("msg",)


def _lognormal(rng: random.Random, median: timedelta, sigma: float) -> timedelta:
    return median * math.exp(rng.gauss(0.0, sigma))


def prospect_path(rng: random.Random, t0: datetime) -> tuple[list[tuple[datetime, Action]],
                                                              str | None]:
    """The moves of one prospect's journey (until they stop), and how it ended."""
    moves: list[tuple[datetime, Action]] = []
    t = t0
    tick = lambda: timedelta(minutes=rng.uniform(1, 15))  # noqa: E731 - the worker's delay

    def step(name: str, drop: float, median: timedelta, stuck: timedelta | None = None,
             interest: str | None = None) -> bool:
        nonlocal t
        gap = _lognormal(rng, median, 1.0)
        dropped = rng.random() < drop
        if stuck is not None and (dropped or gap > stuck):
            moves.append((t + stuck + tick(), ("timer",)))
        if dropped:
            return False
        t += gap
        moves.append((t, ("do", name, interest) if interest else ("do", name)))
        return True

    def landed(customer: float, distributor: float) -> str:
        roll = rng.random()
        return "customer" if roll < customer else (
            "distributor" if roll < customer + distributor else "not_now")

    if not step("add_contact", 0.12, 8 * HOUR):
        return moves, None
    if not step("share_intro", 0.18, 20 * HOUR, stuck=5 * DAY):
        return moves, None
    delay = timedelta(hours=rng.expovariate(1 / 20))
    if rng.random() < 0.55 and delay < 2 * DAY:
        t += delay
        moves.append((t, ("msg",)))
    else:
        t += 2 * DAY + tick()
        moves.append((t, ("timer",)))
        if not step("follow_up", 0.3, DAY):
            return moves, None
    interest = landed(0.22, 0.07)
    if not step("conversation", 0.25, 2 * DAY, stuck=7 * DAY, interest=interest):
        return moves, None
    if interest == "not_now":
        if not step("nurture", 0.35, DAY):
            return moves, None
        t += 30 * DAY + tick()
        moves.append((t, ("timer",)))
        interest = landed(0.08, 0.02)
        if not step("check_in", 0.45, 2 * DAY, interest=interest):
            return moves, None
        if interest == "not_now":
            return moves, "not_now"
    if interest == "customer":
        return moves, ("customer" if step("customer_order", 0.1, 10 * HOUR) else None)
    return moves, ("distributor" if step("enroll", 0.1, DAY) else None)


def onboarding_path(rng: random.Random, t0: datetime, first_sale: datetime | None
                    ) -> list[tuple[datetime, Action]]:
    moves: list[tuple[datetime, Action]] = []
    welcome = t0 + timedelta(hours=rng.uniform(0.2, 6))
    moves.append((welcome, ("do", "welcome")))
    listed = welcome + timedelta(hours=rng.uniform(0.1, 3))
    moves.append((listed, ("do", "add_first_prospects")))
    roll = rng.random()
    if roll < 0.6:
        moves.append((listed + timedelta(days=rng.uniform(0.5, 12)),
                      ("do", "product_training")))
    stuck_at = listed + 10 * DAY + timedelta(minutes=rng.uniform(1, 15))
    if first_sale is None or first_sale > stuck_at:
        moves.append((stuck_at, ("timer",)))
        if rng.random() < 0.7:
            moves.append((stuck_at + timedelta(days=rng.uniform(0.5, 4)),
                          ("do", "sponsor_check_in")))
    if first_sale is not None:
        moves.append((max(first_sale, listed) + timedelta(hours=rng.uniform(1, 30)),
                      ("do", "first_sale")))
    moves.sort(key=lambda m: m[0])
    return moves
