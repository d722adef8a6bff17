"""A synthetic direct-selling world: distributors, prospects, and how they really respond.

The response model is hidden from the engine and the learner: it is the ground truth the
simulator samples from. As the LifeVantage seeds describe, some content works better for some
kinds of prospect, a skilled distributor converts more, and speed matters — prospects
contacted soon after a distributor enrolls convert better, and a first sale within two weeks
keeps a distributor active. Content effects are drawn once from the seed, per hook, option
and prospect segment, so any catalog works and every run with the same seed is the same world.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PERSONALITIES = ("introvert", "extrovert")
INTERESTS = ("energy", "healthy_aging", "skin_care", "extra_income")
# The reference catalog is LifeVantage's US catalog, with a little Spanish content for Mexico.
MARKETS = (("US", "en-US", 0.92), ("MX", "es-MX", 0.08))
EXPERIENCE = ("new", "experienced")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass(frozen=True)
class Distributor:
    id: str
    skill: float  # 0..1: how well their conversations go
    diligence: float  # 0..1: how often they act on a card on a given day
    personality: str
    market: str
    locale: str
    experience: str
    enrolled_day: int
    sponsor_id: str | None

    def context(self) -> dict[str, Any]:
        return {
            "market": self.market,
            "locale": self.locale,
            "distributor_personality": self.personality,
            "distributor_experience": self.experience,
            "distributor_skill": "high" if self.skill >= 0.6 else "low",
            "sponsor_id": self.sponsor_id,
        }


@dataclass(frozen=True)
class Prospect:
    id: str
    distributor: Distributor
    personality: str
    interest: str
    warmth: float  # -1..1: how well they know the distributor

    @property
    def segment(self) -> tuple[str, str]:
        return self.personality, self.interest

    def context(self) -> dict[str, Any]:
        return {
            **self.distributor.context(),
            "prospect_personality": self.personality,
            "prospect_interest": self.interest,
            "prospect_first_name": self.id.split("-")[-1].title(),
        }


@dataclass
class ProspectState:
    """What the hidden world remembers about a prospect while the journey runs."""

    prospect: Prospect
    content: dict[str, str] = field(default_factory=dict)  # hook -> option used
    watched: bool = False
    contacted_day: int = 0


class ResponseModel:
    """The ground truth: effects of content by segment, and the odds of each prospect answer."""

    def __init__(self, seed: int, options: Mapping[str, Iterable[str]],
                 content_strength: float = 1.0,
                 degrade: Mapping[str, Any] | None = None) -> None:
        self.seed = seed
        self.degrade = dict(degrade) if degrade else None
        self.options = {hook: tuple(ids) for hook, ids in options.items()}
        # How much the choice of content matters, as a multiple of the calibrated effects
        # (1.0: the seeds' lift of first sales within 14 days, about ten points for an oracle).
        self.content_strength = content_strength

    def _draw(self, *key: str) -> float:
        digest = hashlib.sha256("|".join((str(self.seed), *key)).encode()).digest()
        return random.Random(digest).gauss(0.0, 1.0)

    def effect(self, hook: str, option: str | None, segment: tuple[str, str]) -> float:
        """Logit lift of showing `option` for `hook` to a prospect of `segment`."""
        if option is None:
            return -0.3  # nothing shared: worse than any content
        drawn = 0.25 * self._draw("base", hook, option) + 0.9 * self._draw(
            "segment", hook, option, *segment)
        return self.content_strength * drawn

    def best_option(self, hook: str, segment: tuple[str, str]) -> str | None:
        """What an oracle who knows this model would show."""
        candidates = self.options.get(hook, ())
        return max(candidates, key=lambda o: self.effect(hook, o, segment), default=None)

    def p_watch(self, state: ProspectState) -> float:
        p = state.prospect
        return _sigmoid(0.2 + 0.6 * p.warmth
                        + self.effect("intro_video", state.content.get("intro_video"), p.segment))

    def conversion(self, state: ProspectState) -> tuple[float, float]:
        """The chances that a conversation now ends with a customer and with a distributor,
        given the content the prospect has seen so far."""
        p, d = state.prospect, state.prospect.distributor
        content = sum(self.effect(h, state.content.get(h), p.segment) for h in
                      ("first_contact_message", "presentation")) / 2
        later = sum(self.effect(h, state.content[h], p.segment)
                    for h in ("follow_up_message", "nurture_message") if h in state.content)
        days_since_enrolled = max(0, state.contacted_day - d.enrolled_day)
        base = (-3.1 + 1.0 * (d.skill - 0.5) + 0.7 * p.warmth + 0.6 * state.watched
                + 0.8 * content + 0.3 * later - 0.035 * days_since_enrolled)
        customer = math.exp(base)
        distributor = math.exp(base - 1.2 + (1.0 if p.interest == "extra_income" else 0.0))
        total = 1.0 + customer + distributor
        return customer / total, distributor / total

    def interest(self, state: ProspectState, day: int, rng: random.Random) -> str:
        """Where the prospect lands after the conversation: customer, distributor, not_now."""
        customer, distributor = self.conversion(state)
        d = self.degrade
        if d and day >= d["at_day"] and d["item"] in state.content.values():
            customer, distributor = customer * d["factor"], distributor * d["factor"]
        roll = rng.random()
        if roll < customer:
            return "customer"
        if roll < customer + distributor:
            return "distributor"
        return "not_now"


def make_distributors(rng: random.Random, count: int, days: int) -> list[Distributor]:
    """Distributors enrolling over the first part of the run (each observed ≥ 14 days)."""
    last_enrollment = max(0, days - 15)
    leaders = max(1, count // 20)
    out: list[Distributor] = []
    for n in range(count):
        market, locale = _market(rng)
        sponsor = None if n < leaders else out[rng.randrange(min(len(out), leaders * 4))].id
        out.append(Distributor(
            id=f"d{n:04d}", skill=rng.betavariate(2, 2), diligence=rng.betavariate(3, 2),
            personality=rng.choice(PERSONALITIES), market=market, locale=locale,
            experience=rng.choices(EXPERIENCE, (0.8, 0.2))[0],
            enrolled_day=0 if n < leaders else rng.randint(0, last_enrollment),
            sponsor_id=sponsor,
        ))
    return out


def make_prospect(rng: random.Random, distributor: Distributor, n: int) -> Prospect:
    return Prospect(
        id=f"{distributor.id}-p{n:02d}", distributor=distributor,
        personality=rng.choice(PERSONALITIES), interest=rng.choice(INTERESTS),
        warmth=max(-1.0, min(1.0, rng.gauss(0.1, 0.45))),
    )


def _market(rng: random.Random) -> tuple[str, str]:
    market, locale, _ = rng.choices(MARKETS, [w for *_, w in MARKETS])[0]
    return market, locale
