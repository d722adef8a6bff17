"""SpiffWorkflow timer definitions that read nextmove's clock instead of the wall clock.

Spiff's timers call `datetime.now()`; ours ask the workflow's script engine for its `clock`
(the engine's injectable clock), so tests and simulations move time by hand and a timer fires
exactly when the simulated time passes its due time. Without a clock they behave as Spiff's.
Timer values are read by `engine.durations`, the parser `validate` checks them with.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)

from engine._spiff_private import internal_value, set_internal_values
from engine.durations import DurationError, duration_from, parse_cycle, parse_time_or_duration
from engine.limits import DEFAULT_LIMITS, WorkLimitExceeded, current_budget


def task_now(my_task: Any) -> datetime:
    """Now, by the clock of the engine running this task's workflow."""
    clock = getattr(my_task.workflow.top_workflow.script_engine, "clock", None)
    return clock.now() if clock is not None else datetime.now(UTC)


class ClockTimeDate(TimeDateEventDefinition):  # type: ignore[misc]
    def has_fired(self, my_task: Any) -> bool:
        value = internal_value(my_task, "event_value")
        if value is None:
            value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            set_internal_values(my_task, event_value=value)
        due = parse_time_or_duration(value)
        if isinstance(due, dict):  # a duration where a date was expected: Spiff compares a dict
            raise DurationError(f"timer {self.expression!r} gives a duration, not a date-time")
        if due <= task_now(my_task):
            set_internal_values(my_task, event_fired=True)
        return bool(internal_value(my_task, "event_fired", False))


class ClockDuration(DurationTimerEventDefinition):  # type: ignore[misc]
    def has_fired(self, my_task: Any) -> bool:
        value = internal_value(my_task, "event_value")
        now = task_now(my_task)
        if value is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            value = (now + duration_from(expression, now)).isoformat()
            set_internal_values(my_task, event_value=value)
        if TimerEventDefinition.get_datetime(value) <= now:
            set_internal_values(my_task, event_fired=True)
        return bool(internal_value(my_task, "event_fired", False))


class ClockCycle(CycleTimerEventDefinition):  # type: ignore[misc]
    """A cycle timer. Late (a worker was down, or a tick came long after), it fires once and
    moves to its next occurrence after now, as Camunda does; a timer whose map sets the
    property `catch_up: true` fires each missed occurrence instead (one per firing, at most
    the `catch_up` work limit of them). A zero-length cycle is an error, not a busy loop."""

    def cycle_complete(self, my_task: Any) -> bool:
        value = internal_value(my_task, "event_value")
        now = task_now(my_task)
        if value is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            cycles, start, duration = parse_cycle(expression, now)
            value = {"cycles": cycles, "next": start.isoformat(),
                     "duration": duration.total_seconds()}
        ready = False
        if value["cycles"] != 0:
            due = datetime.fromisoformat(value["next"])
            if due <= now and _first_fire_in_step(my_task):
                value["next"] = _next_occurrence(my_task, due, value["duration"], now)
                value["cycles"] -= 1
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
        set_internal_values(my_task, event_value=value)
        return ready


def _first_fire_in_step(my_task: Any) -> bool:
    """A cycle fires at most once per step, so every firing is a step event of its own (a
    catch-up timer fires its missed times over as many steps)."""
    spent = current_budget()
    if spent is None:
        return True
    if my_task.id in spent.fired:
        return False
    spent.fired.add(my_task.id)
    return True


def _next_occurrence(my_task: Any, due: datetime, seconds: float, now: datetime) -> str:
    """When a cycle that was due at `due` fires next (see `ClockCycle`)."""
    element = getattr(my_task.task_spec, "bpmn_id", None)
    if seconds <= 0:
        raise DurationError(f"timer {element!r}: a cycle of zero length would fire without end")
    step = timedelta(seconds=seconds)
    missed = int((now - due) / step) + 1  # occurrences due by now, this one included
    properties = getattr(my_task.task_spec, "extensions", {}).get("properties", {})
    if str(properties.get("catch_up", "")).lower() not in ("true", "yes", "1"):
        return (due + missed * step).isoformat()  # fire once, skip the missed ones
    spent = current_budget()
    allowed = (spent.limits if spent is not None else DEFAULT_LIMITS).catch_up
    if missed > allowed:
        raise WorkLimitExceeded("catch_up", missed, allowed, element)
    return (due + step).isoformat()


CLOCK_TIMERS: dict[type, type] = {
    TimeDateEventDefinition: ClockTimeDate,
    DurationTimerEventDefinition: ClockDuration,
    CycleTimerEventDefinition: ClockCycle,
}


def with_clock(definition: Any) -> Any:
    """The clock-reading equivalent of a timer definition Spiff's parser built."""
    cls = CLOCK_TIMERS.get(type(definition))
    if cls is None:
        return definition
    return cls(definition.name, definition.expression, description=definition.description)
