"""One duration parser (engine.durations) for validate, compile and the timers; `follow_up`
on a person's step is a real reminder timer, driven here through the engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine import Engine, ManualClock, load
from engine.clock import parse_duration
from engine.definitions.yaml_maps import load_yaml_map_text
from engine.durations import (
    DurationError,
    check_timer,
    duration_from,
    fixed_duration,
    is_timer_literal,
    parse_cycle,
    parse_iso_duration,
)
from engine.errors import DefinitionErrors
from tests.conftest import FIXTURES

SECOND = timedelta(seconds=1)
START = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "parts"), [
    ("P2D", {"days": 2}), ("PT36H", {"hours": 36}), ("P1DT12H", {"days": 1, "hours": 12}),
    ("P1W", {"weeks": 1}), ("p2d", {"days": 2}), ("PT1.5S", {"seconds": 1.5}),
    ("P1M", {"months": 1}), (" P30D ", {"days": 30}),
])
def test_durations_the_timers_can_schedule(text: str, parts: dict[str, float]) -> None:
    assert parse_iso_duration(text) == parts
    assert is_timer_literal(text, "timeDuration")


@pytest.mark.parametrize("text", ["2 days", "1D", "P", "PT", "P2DP", "P1W2D", "P1DT", "", "R3/P1D"])
def test_what_the_timers_would_fail_on_is_refused(text: str) -> None:
    with pytest.raises(DurationError):
        parse_iso_duration(text)
    assert not is_timer_literal(text, "timeDuration")


def test_months_count_calendar_days_from_the_start() -> None:
    assert duration_from("P1M", START) == timedelta(days=31)  # January
    assert duration_from("P1M", START.replace(month=2, day=1)) == timedelta(days=28)


def test_the_clock_reads_fixed_durations_with_the_same_parser() -> None:
    assert parse_duration("P1DT12H") == fixed_duration("P1DT12H") == timedelta(hours=36)
    assert parse_duration("P2W") == timedelta(days=14)
    for text in ("P1M", "2 days", "P1W2D"):
        with pytest.raises(ValueError, match="months and years are not accepted"):
            parse_duration(text)


def test_dates_and_cycles_are_checked_for_their_kind() -> None:
    check_timer("timeDate", "2026-02-01T09:00:00Z")
    check_timer("timeCycle", "R/2026-01-05T09:00:00Z/P1D")
    assert parse_cycle("R3/P1D", START) == (3, START + timedelta(days=1), timedelta(days=1))
    for kind, text in (("timeDate", "P2D"), ("timeCycle", "P2D"), ("timeCycle", "R3/2 days")):
        with pytest.raises(DurationError):
            check_timer(kind, text)


def test_a_yaml_duration_the_timers_cannot_read_is_a_schema_problem() -> None:
    with pytest.raises(DefinitionErrors) as caught:
        load_yaml_map_text("process: p\nsteps:\n  - id: a\n    stuck_after: P1W2D\n", "map.yaml")
    (problem,) = caught.value.problems
    assert (problem.code, problem.element, problem.line) == ("schema", "steps[0].stuck_after", 4)
    assert "durations are ISO 8601" in problem.message


# -- follow_up -------------------------------------------------------------------------------------


def test_follow_up_compiles_to_a_reminder_timer_on_the_step() -> None:
    (definition,) = load([FIXTURES / "yaml" / "follow_up.yaml"]).definitions
    timer = definition.step("Event_reach_out_follow_up")

    assert timer is not None
    assert (timer.type, timer.attached_to, timer.interrupting, timer.timer, timer.timer_kind) == (
        "boundaryEvent", "reach_out", False, "P1D", "timeDuration")
    assert timer.properties["purpose"] == "follow_up"


def test_follow_up_reminds_once_and_leaves_the_step_waiting(
    engine: Engine, clock: ManualClock
) -> None:
    engine.deploy([FIXTURES / "yaml" / "follow_up.yaml"])
    started = clock.now()
    instance = engine.start("follow_up_reminder", "p1", "d1")
    due = started + timedelta(days=1)
    (card,) = engine.cards("d1")
    assert (card.step_id, card.follow_up_at, card.overdue) == ("reach_out", due, False)
    assert instance.next_due_at == due

    clock.set(due - SECOND)
    assert engine.tick() == []
    clock.set(due)
    assert [(f.instance_id, f.step_id, f.kind, f.at) for f in engine.tick()] == [
        (instance.id, "Event_reach_out_follow_up", "timer", due)]
    assert engine.get(instance.id).waiting_steps == ["reach_out"]
    (card,) = engine.cards("d1")
    assert (card.step_id, card.overdue) == ("reach_out", True)
    clock.advance(timedelta(days=10))
    assert engine.tick() == []  # a reminder, not a nag

    done = engine.complete(instance.id, "reach_out", actor="d1")
    assert (done.status, done.waiting_steps) == ("completed", [])
    kinds = [(e.step_id, e.kind) for e in engine.history(instance.id)]
    assert ("Event_reach_out_follow_up_end", "completed") in kinds
