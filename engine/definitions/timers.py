"""SpiffWorkflow timer definitions that read nextmove's clock instead of the wall clock.

Spiff's timers call `datetime.now()`; ours ask the workflow's script engine for its `clock`
(the engine's injectable clock), so tests and simulations move time by hand and a timer fires
exactly when the simulated time passes its due time. Without a clock they behave as Spiff's.
Timer values are read by `engine.durations`, the parser `validate` checks them with.

Each timer keeps its own due time. Spiff keeps one `event_value` per task, which is right for
a catch event or a boundary event (one timer each) but not for an event-based gateway, whose
task carries every following event: there each timer has its own slot, named after the catch
event it leads to (`event_value:<bpmn id>`). A gateway stored with the single shared slot
(before release 2) is read once and moved to per-timer slots (`_adopt_shared_slot`).

`pinned(workflow, moment)` makes the timers of one workflow read `moment` as now: nextmove
fires due timers one due time after another, each at its own due time, so a late tick ends
where ticks on time would have (see `engine.runtime.events.fire_timers`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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

_PINNED = "nextmove_now"  # our own attribute on a workflow object, never serialized


@contextmanager
def pinned(workflow: Any, moment: datetime) -> Iterator[None]:
    """While inside, the timers of `workflow` (and its subprocesses) read `moment` as now."""
    setattr(workflow, _PINNED, moment)
    try:
        yield
    finally:
        delattr(workflow, _PINNED)


def task_now(my_task: Any) -> datetime:
    """Now, by the clock of the engine running this task's workflow (or the pinned moment)."""
    moment = getattr(my_task.workflow.top_workflow, _PINNED, None)
    if moment is not None:
        return moment  # type: ignore[no-any-return]
    return clock_now(my_task)


def clock_now(my_task: Any) -> datetime:
    """Now, by the engine's clock, whatever moment the timers are pinned to."""
    clock = getattr(my_task.workflow.top_workflow.script_engine, "clock", None)
    return clock.now() if clock is not None else datetime.now(UTC)


def _gateway_timers(my_task: Any) -> list[tuple[str, Any]]:
    """(catch event id, timer definition) of an event-based gateway task, in output order;
    empty for any other task."""
    members = getattr(my_task.task_spec.event_definition, "event_definitions", None)
    if members is None:
        return []
    return [(getattr(output, "bpmn_id", None) or output.name, definition)
            for output, definition in zip(my_task.task_spec.outputs, members, strict=False)
            if isinstance(definition, TimerEventDefinition)]


def slots(my_task: Any, definition: Any) -> tuple[str, str]:
    """Internal-data names of `definition`'s due value and fired flag on `my_task`."""
    for key, member in _gateway_timers(my_task):
        if member is definition:
            _adopt_shared_slot(my_task)
            return f"event_value:{key}", f"event_fired:{key}"
    return "event_value", "event_fired"


def due_at(my_task: Any, definition: Any) -> datetime | None:
    """When `definition` (a timer waiting on `my_task`) is due, once it has been armed."""
    value = internal_value(my_task, slots(my_task, definition)[0])
    if isinstance(value, str):
        try:
            return _utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    if isinstance(value, dict) and isinstance(value.get("next"), str) and value["cycles"] != 0:
        return _utc(datetime.fromisoformat(value["next"]))
    return None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _adopt_shared_slot(my_task: Any) -> None:
    """Move a gateway's shared `event_value` (written before release 2 by whichever timer was
    evaluated first, i.e. the first in output order) into per-timer slots: the first timer
    keeps it; a later duration timer counts from the moment the first one was armed."""
    shared = internal_value(my_task, "event_value")
    members = _gateway_timers(my_task)
    if shared is None or not members:
        return
    my_task.internal_data.pop("event_value", None)
    (first_key, first), *others = members
    values = {f"event_value:{first_key}": shared}
    armed = _armed_at(my_task, first, shared)
    for key, definition in others:
        if isinstance(definition, DurationTimerEventDefinition) and armed is not None:
            expression = my_task.workflow.script_engine.evaluate(my_task, definition.expression)
            values[f"event_value:{key}"] = (armed + duration_from(expression, armed)).isoformat()
        elif not isinstance(definition, CycleTimerEventDefinition):
            values[f"event_value:{key}"] = shared  # as it was read before: no better guess
    set_internal_values(my_task, **values)


def _armed_at(my_task: Any, first: Any, shared: Any) -> datetime | None:
    if not isinstance(first, DurationTimerEventDefinition) or not isinstance(shared, str):
        return None
    due = _utc(datetime.fromisoformat(shared))
    expression = my_task.workflow.script_engine.evaluate(my_task, first.expression)
    return due - duration_from(expression, due)


class ClockTimeDate(TimeDateEventDefinition):  # type: ignore[misc]
    def has_fired(self, my_task: Any) -> bool:
        value_slot, fired_slot = slots(my_task, self)
        value = internal_value(my_task, value_slot)
        if value is None:
            value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            set_internal_values(my_task, **{value_slot: value})
        due = parse_time_or_duration(value)
        if isinstance(due, dict):  # a duration where a date was expected: Spiff compares a dict
            raise DurationError(f"timer {self.expression!r} gives a duration, not a date-time")
        if due <= task_now(my_task):
            set_internal_values(my_task, **{fired_slot: True})
        return bool(internal_value(my_task, fired_slot, False))


class ClockDuration(DurationTimerEventDefinition):  # type: ignore[misc]
    def has_fired(self, my_task: Any) -> bool:
        value_slot, fired_slot = slots(my_task, self)
        value = internal_value(my_task, value_slot)
        now = task_now(my_task)
        if value is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            value = (now + duration_from(expression, now)).isoformat()
            set_internal_values(my_task, **{value_slot: value})
        if TimerEventDefinition.get_datetime(value) <= now:
            set_internal_values(my_task, **{fired_slot: True})
        return bool(internal_value(my_task, fired_slot, False))


class ClockCycle(CycleTimerEventDefinition):  # type: ignore[misc]
    """A cycle timer. Late (a worker was down, or a tick came long after), it fires once and
    moves to its next occurrence after now, as Camunda does; a timer whose map sets the
    property `catch_up: true` fires each missed occurrence instead (one per firing, at most
    the `catch_up` work limit of them). A zero-length cycle is an error, not a busy loop."""

    def cycle_complete(self, my_task: Any) -> bool:
        value_slot, fired_slot = slots(my_task, self)
        value = internal_value(my_task, value_slot)
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
                # a late cycle moves past the real now, not past the moment it is fired at
                value["next"] = _next_occurrence(my_task, due, value["duration"],
                                                 max(now, clock_now(my_task)))
                value["cycles"] -= 1
                ready = True
        else:
            my_task.internal_data.pop(value_slot, None)
            my_task.internal_data[fired_slot] = True
        set_internal_values(my_task, **{value_slot: value})
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
