"""Property: whatever the interleaving of messages, timer due times, ticks and completes,
every event-based gateway visit takes exactly one branch, and each prospect ends where a
sequential replay in time order (a tick at every due time) ends. SQLite and PostgreSQL.

Both runs share one database (prospects named apart), so each example costs a few steps,
not a deploy. Boundary "stuck" timers are left out of the compared path: a person may do the
step before a late tick fires its watcher, which is their right (see docs/design.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Engine, ManualClock, ProspectRef, StepNotWaiting
from nextmove import open_engine
from tests.conftest import FIXTURES, REPO
from tests.engine._lifevantage import T0

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Journey:
    process: str
    path: str
    first: tuple[str, ...]  # the steps every prospect does first
    later: tuple[tuple[str, str | None], ...]  # (step or "signal", interest) to pick from
    entries: frozenset[str]  # steps that lead into the event-based gateway
    catches: frozenset[str]  # the gateway's catch events


LIFEVANTAGE = Journey(
    "prospect_journey", str(REPO / "processes" / "lifevantage"), ("add_contact", "share_intro"),
    (("signal", None), ("follow_up", None), ("conversation", "customer"),
     ("conversation", "distributor"), ("conversation", "not_now"), ("customer_order", None),
     ("enroll", None), ("nurture", None), ("check_in", "customer"), ("check_in", "not_now")),
    frozenset({"share_intro"}),
    frozenset({"Event_wait_for_video_video_played", "Event_wait_for_video_timer"}))
DEADLINE = Journey(
    "deadline_or_video", str(FIXTURES / "gateways"), ("share_video",),
    (("signal", None), ("follow_up", None), ("conversation", None), ("last_call", None)),
    frozenset({"share_video", "follow_up"}),
    frozenset({"video_played", "two_days", "offer_ends"}))

_runs = itertools.count()


@dataclass(frozen=True)
class Op:
    at: datetime
    prospect: int
    step: str  # a person's step, or "signal" (video_played)
    interest: str | None


def schedules(journey: Journey) -> st.SearchStrategy[tuple[list[Op], list[datetime]]]:
    delay = st.one_of(st.integers(1, 80), st.integers(690, 760))  # hours; P30D is 720
    later = st.lists(st.tuples(delay, st.sampled_from(journey.later)), max_size=5)
    prospect = st.tuples(st.integers(0, 72), st.lists(st.integers(0, 30), min_size=len(
        journey.first), max_size=len(journey.first)), later)

    def build(drawn: tuple[list[Any], list[int]]) -> tuple[list[Op], list[datetime]]:
        prospects, ticks = drawn
        ops: list[Op] = []
        for k, (start, firsts, rest) in enumerate(prospects):
            hours = start
            steps = [(h, (s, None)) for h, s in zip(firsts, journey.first, strict=True)]
            for gap, (step, interest) in [*steps, *rest]:
                hours += gap
                # distinct seconds: no two things happen at the same moment
                ops.append(Op(T0 + hours * HOUR + len(ops) * timedelta(seconds=1), k, step,
                              interest))
        return ops, sorted(T0 + h * HOUR + timedelta(minutes=30) for h in ticks)

    return st.tuples(st.lists(prospect, min_size=1, max_size=3),
                     st.lists(st.integers(0, 900), max_size=4)).map(build)


def apply(engine: Engine, name: str, op: Op, journey: Journey) -> str:
    if op.step == "signal":
        return "delivered" if engine.signal("video_played", name).delivered else "not delivered"
    try:
        data = {"interest": op.interest} if op.interest else None
        engine.complete(ProspectRef(name), op.step, data)
    except StepNotWaiting:
        return "not waiting"
    return "done"


def run(store: Any, journey: Journey, ops: list[Op], ticks: list[datetime] | None,
        end: datetime) -> dict[int, Any]:
    """Play `ops` in time order; with `ticks` None, tick at every due time (the replay)."""
    clock = ManualClock(T0)
    engine = open_engine(store, clock=clock, recommend=False)
    tag = f"r{next(_runs)}"
    names = {op.prospect: f"{tag}-{op.prospect}" for op in ops}
    outcomes: dict[int, list[str]] = {k: [] for k in names}
    started: set[int] = set()

    def catch_up(until: datetime) -> None:
        while ticks is None:
            dues = [i.next_due_at for k in started
                    if (i := engine.get(ProspectRef(names[k]))).next_due_at is not None]
            if not dues or min(dues) > until:
                return
            clock.set(min(dues))
            engine.tick()

    timeline = sorted([(op.at, op) for op in ops] + [(t, None) for t in ticks or []],
                      key=lambda pair: pair[0])
    for at, op in timeline:
        catch_up(at)
        clock.set(at)
        if op is None:
            engine.tick()
            continue
        if op.prospect not in started:
            engine.start(journey.process, names[op.prospect], "d1")
            started.add(op.prospect)
        outcomes[op.prospect].append(apply(engine, names[op.prospect], op, journey))
    catch_up(end)
    clock.set(end)
    engine.tick()
    return {k: (*state(engine, names[k], journey), outcomes[k]) for k in names}


def state(engine: Engine, name: str, journey: Journey) -> tuple[Any, ...]:
    instance = engine.get(ProspectRef(name))
    steps = engine.pipeline.definitions.steps_of(instance.definition_id)
    path = [(e.step_id, e.kind) for e in engine.history(instance.id)
            if e.kind in ("completed", "message", "timer")
            and steps.get(e.step_id, {}).get("type") in ("userTask", "intermediateCatchEvent")]
    visits = sum(1 for step, kind in path if step in journey.entries and kind == "completed")
    taken = sum(1 for step, _ in path if step in journey.catches)
    waiting_at_gateway = any(w.step_id in journey.catches for w in instance.waiting)
    assert taken == visits - waiting_at_gateway, f"{name}: {visits} visits, {taken} branches"
    assert len([w for w in instance.waiting if w.kind == "user"]) <= 1, instance.waiting
    return instance.status, sorted(instance.waiting_steps), path


@pytest.fixture
def deployed(db_url: str) -> Iterator[Any]:
    engine = open_engine(db_url, clock=ManualClock(T0), recommend=False)
    engine.deploy([LIFEVANTAGE.path, DEADLINE.path])
    yield engine.store
    engine.store.dispose()


@pytest.mark.parametrize("journey", [LIFEVANTAGE, DEADLINE], ids=lambda j: j.process)
def test_any_interleaving_ends_where_the_replay_in_time_order_ends(
    deployed: Any, journey: Journey
) -> None:
    @settings(max_examples=10, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(schedules(journey))
    def check(schedule: tuple[list[Op], list[datetime]]) -> None:
        ops, ticks = schedule
        end = max(op.at for op in ops) + timedelta(days=40)
        assert run(deployed, journey, ops, ticks, end) == run(deployed, journey, ops, None, end)

    check()
