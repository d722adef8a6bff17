"""Drive the real engine with a synthetic population on a simulated clock.

Each simulated day, distributors who enroll start their onboarding and add up to ten
prospects; every distributor opens their action cards at some hour and acts on some of them —
usually using the suggested content, sometimes another option, skipping or doing something
else. Prospects answer as the hidden `ResponseModel` says: they play the intro video (a
`video_played` event), land as customer, distributor or not now. Timers fire through
`engine.tick()`. Everything goes through the engine's public API, so the event log is exactly
what a live deployment would record.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select

from engine import Engine, ManualClock, ProspectRef, StepNotWaiting, StepRequired, Store
from engine.runtime.cards import ActionCard
from engine.store import ACTED_KINDS, INSTANCE, STEP_EVENT
from engine.store.recorded_clock import record_simulated_clock
from simulator.world import (
    Distributor,
    ProspectState,
    ResponseModel,
    make_distributors,
    make_prospect,
)

DAY_START, DAY_END = 8, 22  # the simulated working day, in hours
JOURNEY = "prospect_journey"
ONBOARDING = "distributor_onboarding"


@dataclass(frozen=True)
class SimulationConfig:
    distributors: int = 300
    days: int = 60
    seed: int = 7  # the population and their behaviour
    world: int = 2018  # the hidden response model: keep it fixed to compare policies
    content_strength: float = 1.0  # the world's content effects × this (`ResponseModel`)
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    # A content item that stops working: {"item": option id, "at_day": d, "factor": f}
    # multiplies the conversion of prospects shown it by f from day d on.
    degrade: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.distributors < 1 or self.days < 1:  # else a run of nothing reads as zeros
            raise ValueError("a simulation needs at least one distributor and one day")
        if self.content_strength < 0:
            raise ValueError("content_strength must be 0 or more")


@dataclass
class SimulationResult:
    config: SimulationConfig
    distributors: int = 0
    prospects: int = 0
    actions: int = 0
    videos_played: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    # distributor -> whole simulated days to their first sale: what moves the simulated field
    # force (the figure reported is the declared indicator, read from the database)
    first_sale_day: dict[str, int] = field(default_factory=dict)
    enrolled_day: dict[str, int] = field(default_factory=dict)
    # Soundness counts, both zero in a healthy run (see `soundness`):
    completed_twice: int = 0  # instances with a step done twice on one path
    stalled: int = 0  # active instances with nothing waiting and no timer


class Simulation:
    """One seeded run of the world against an engine whose clock the simulation owns."""

    def __init__(self, engine: Engine, config: SimulationConfig, model: ResponseModel) -> None:
        if not isinstance(engine.clock, ManualClock):
            raise TypeError("the simulation needs an engine with a ManualClock")
        self.engine, self.config, self.model = engine, config, model
        self.clock: ManualClock = engine.clock
        self.rng = random.Random(config.seed)
        self.result = SimulationResult(config)
        self.distributors = make_distributors(self.rng, config.distributors, config.days)
        self.by_id = {d.id: d for d in self.distributors}
        self.prospects: dict[str, ProspectState] = {}
        self.added: dict[str, int] = {}
        self.boost: dict[str, float] = {}  # sponsor check-ins make a distributor more active
        self.pending: list[tuple[datetime, int, str]] = []  # (when, seq, prospect): video plays
        self._seq = 0

    def run(self, progress: Callable[[int], None] | None = None) -> SimulationResult:
        for day in range(self.config.days):
            self._day(day)
            # commands reading this database take "now" from the simulated clock
            record_simulated_clock(self.engine.store, self.clock.now())
            if progress is not None:
                progress(day + 1)
        self.result.completed_twice, self.result.stalled = soundness(self.engine.store)
        return self.result

    def _day(self, day: int) -> None:
        midnight = self.config.start + timedelta(days=day)
        sessions: dict[int, list[Distributor]] = {}
        for dist in self.distributors:
            if dist.enrolled_day > day:
                continue
            if dist.enrolled_day == day:
                self._enroll(dist, midnight + timedelta(hours=DAY_START))
            if dist.enrolled_day == day or self.rng.random() < self._activity(dist, day):
                hour = self.rng.randrange(DAY_START + 1, DAY_END)
                sessions.setdefault(hour, []).append(dist)
        for hour in range(DAY_START, DAY_END + 1):
            self.clock.set(midnight + timedelta(hours=hour))
            self._deliver_until(self.clock.now())
            self.engine.tick()
            for dist in sessions.get(hour, []):
                self._session(dist, day)

    def _activity(self, dist: Distributor, day: int) -> float:
        """How likely a distributor opens the app today: falls off without an early sale."""
        active = 0.25 + 0.7 * dist.diligence + self.boost.get(dist.id, 0.0)
        since = day - dist.enrolled_day
        if since > 14 and dist.id not in self.result.first_sale_day:
            active *= 0.45  # the "what's next" trap: no first sale, motivation wanes
        return min(active, 0.98)

    def _enroll(self, dist: Distributor, at: datetime) -> None:
        self.clock.set(at)
        self.engine.start(ONBOARDING, dist.id, dist.id, dist.context(), actor=dist.id)
        self.result.distributors += 1
        self.result.enrolled_day[dist.id] = dist.enrolled_day

    def _add_prospects(self, dist: Distributor, count: int, day: int) -> None:
        for _ in range(count):
            n = self.added.get(dist.id, 0)
            self.added[dist.id] = n + 1
            prospect = make_prospect(self.rng, dist, n)
            self.prospects[prospect.id] = ProspectState(prospect, contacted_day=day)
            self.engine.start(JOURNEY, prospect.id, dist.id, prospect.context(), actor=dist.id)
            self.result.prospects += 1

    def _session(self, dist: Distributor, day: int) -> None:
        if day == dist.enrolled_day:
            self._add_prospects(dist, min(10, 2 + round(8 * dist.diligence)), day)
        elif self.added.get(dist.id, 0) < 25 and self.rng.random() < 0.12 * dist.diligence:
            self._add_prospects(dist, 1, day)
        for card in self.engine.cards(dist.id):
            if card.overdue or self.rng.random() < 0.35 + 0.6 * dist.diligence:
                self._act(dist, card, day)

    def _act(self, dist: Distributor, card: ActionCard, day: int) -> None:
        try:
            if card.process_id == ONBOARDING:
                if not self._onboarding(dist, card):
                    return
            else:
                self._prospect_step(dist, card, day)
        except (StepNotWaiting, StepRequired):
            return  # the card moved on meanwhile (a timer or another event)
        self.result.actions += 1

    def _onboarding(self, dist: Distributor, card: ActionCard) -> bool:
        """Act on an onboarding card; False if there is nothing to do on it yet."""
        ref, step = card.instance_id, card.step_id
        top = card.content[0].option_id if card.content else None
        if card.role == "sponsor":  # the sponsor reaches out: the distributor picks up pace
            owner = card.prospect_id
            self.boost[owner] = self.boost.get(owner, 0.0) + 0.15
            self.engine.complete(ref, step, actor=dist.id, used=top)
        elif card.hook == "first_sale_tips":
            if card.prospect_id not in self.result.first_sale_day:
                return False  # looking at the card is no action until they have sold
            self.engine.complete(ref, step, actor=dist.id, used=top)
        elif card.hook == "first_ten_contacts":
            self.engine.complete(ref, step, {"contacts": self.added.get(dist.id, 0)},
                                 actor=dist.id, used=top)
        elif self.rng.random() < (0.65 if dist.experience == "new" else 0.25):
            self.engine.complete(ref, step, actor=dist.id, used=top)
        else:
            self.engine.skip(ref, step, "knows it already", actor=dist.id)
        return True

    def _prospect_step(self, dist: Distributor, card: ActionCard, day: int) -> None:
        state = self.prospects[card.prospect_id]
        used = self._choose_content(card)
        asks_interest = card.asks is not None and "interest" in card.asks
        roll = self.rng.random()
        if card.control != "required" and not asks_interest and roll < 0.05:
            self.engine.skip(card.instance_id, card.step_id, "not the right moment",
                             actor=dist.id)
            return
        if card.hook and used:
            state.content[card.hook] = used  # before the answer: this content is part of it
        data: dict[str, Any] = {}
        if asks_interest:
            data["interest"] = self.model.interest(state, day, self.rng)
        if roll < 0.11:
            self.engine.vary(card.instance_id, card.step_id, "talked in person instead",
                             actor=dist.id, data=data, used=used)
        else:
            self.engine.complete(card.instance_id, card.step_id, data, actor=dist.id, used=used)
        self._after(dist, card, state, day)

    def _choose_content(self, card: ActionCard) -> str | None:
        if not card.content:
            return None
        if len(card.content) > 1 and self.rng.random() < 0.12:
            return self.rng.choice(card.content[1:]).option_id  # their own pick
        return card.content[0].option_id  # the suggestion the card leads with

    def _after(self, dist: Distributor, card: ActionCard, state: ProspectState, day: int) -> None:
        """The world's answer to what the distributor just did."""
        if card.hook == "intro_video" and self.rng.random() < self.model.p_watch(state):
            when = self.clock.now() + timedelta(hours=self.rng.expovariate(1 / 20))
            self._seq += 1
            heapq.heappush(self.pending, (when, self._seq, state.prospect.id))
        elif card.hook == "order_link":
            self._outcome(state, "customer_order", day, amount=round(self.rng.uniform(60, 220)))
        elif card.hook == "enroll_invitation":
            self._outcome(state, "distributor_enrolled", day)

    def _outcome(self, state: ProspectState, kind: str, day: int, amount: float | None = None
                 ) -> None:
        ref = ProspectRef(state.prospect.id, JOURNEY)
        self.engine.outcome(ref, kind, amount=amount, actor=state.prospect.distributor.id)
        self.result.outcomes[kind] = self.result.outcomes.get(kind, 0) + 1
        if kind == "customer_order":
            self.engine.outcome(ref, "sale", amount=amount, actor=state.prospect.distributor.id)
            dist = state.prospect.distributor
            self.result.first_sale_day.setdefault(dist.id, day - dist.enrolled_day)

    def _deliver_until(self, now: datetime) -> None:
        while self.pending and self.pending[0][0] <= now:
            _, _, prospect_id = heapq.heappop(self.pending)
            self.prospects[prospect_id].watched = True
            self.engine.signal("video_played", prospect_id, message_id=f"{prospect_id}:video")
            self.result.videos_played += 1


def soundness(store: Store) -> tuple[int, int]:
    """(instances with a step a person did twice, active instances that wait for nothing).

    The simulated journeys have no loops, so a step done twice means a second token took a
    path it should not have (an event-based gateway taking two branches); an active instance
    with no waiting step, message or timer can never move again."""
    twice = (select(STEP_EVENT.c.instance_id)
             .where(STEP_EVENT.c.kind.in_([str(k) for k in ACTED_KINDS]))
             .group_by(STEP_EVENT.c.instance_id, STEP_EVENT.c.step_id)
             .having(func.count() > 1).subquery())
    with store.read() as conn:
        repeated = conn.execute(select(func.count(func.distinct(twice.c.instance_id)))
                                ).scalar_one()
        stalled = conn.execute(select(func.count()).select_from(INSTANCE).where(
            INSTANCE.c.status == "active", INSTANCE.c.next_due_at.is_(None),
            or_(INSTANCE.c.waiting.is_(None), INSTANCE.c.waiting == "[]"))).scalar_one()
    return int(repeated), int(stalled)
