"""What a step event records (`step_event.kind`): one enum, and the subsets readers ask for.

`EventKind` members are strings (`EventKind.ENTERED == "entered"`), so they are written to
and compared with the column as they are; the subsets are ordered tuples, ready for
`column.in_(...)` and for messages listing them.

    ENTERED    a step became active (a person's task offered, a wait began)
    COMPLETED  a person did the step as suggested, or an automatic step / event happened
    SKIPPED    a person skipped the step
    VARIED     a person did the step their own way
    CANCELLED  the step was left unfinished (a boundary event or another branch won)
    TIMER      a timer fired at the step
    MESSAGE    a prospect event (message) arrived at the step
    SIGNAL     a BPMN signal (broadcast, or thrown inside the instance) arrived at the step
    OUTCOME    a business result recorded for the instance (its step id names the result)
    INCIDENT   a step failed at run time; the instance is in `incident` (data: the error,
               the step, what to run again on `retry`); nothing of the step was applied
    MIGRATED   the instance moved to another definition version (data: from, to)
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ACTED_KINDS",
    "CATCH_KINDS",
    "CLOSING_KINDS",
    "DEVIATED_KINDS",
    "DONE_KINDS",
    "EVENT_KINDS",
    "PATH_KINDS",
    "REACHED_KINDS",
    "SETTLED_KINDS",
    "VISIT_KINDS",
    "EventKind",
]


class EventKind(StrEnum):
    """The kind of one step event."""

    ENTERED = "entered"
    COMPLETED = "completed"
    SKIPPED = "skipped"
    VARIED = "varied"
    CANCELLED = "cancelled"
    TIMER = "timer"
    MESSAGE = "message"
    SIGNAL = "signal"
    OUTCOME = "outcome"
    INCIDENT = "incident"
    MIGRATED = "migrated"


_K = EventKind

EVENT_KINDS: tuple[EventKind, ...] = tuple(EventKind)
# A person acted at the step (the decisions the learner and the compliance trail count).
ACTED_KINDS = (_K.COMPLETED, _K.SKIPPED, _K.VARIED)
# The step was done: as suggested or the person's own way.
DONE_KINDS = (_K.COMPLETED, _K.VARIED)
# The person did not follow the suggestion.
DEVIATED_KINDS = (_K.SKIPPED, _K.VARIED)
# A catch event fired at the step.
CATCH_KINDS = (_K.TIMER, _K.MESSAGE, _K.SIGNAL)
# The visit closed by a person's act or a cancellation, not by a catch event firing there.
SETTLED_KINDS = (*ACTED_KINDS, _K.CANCELLED)
# What closes a visit to a step (see `engine.store.visits`).
CLOSING_KINDS = (*SETTLED_KINDS, *CATCH_KINDS)
# The events that make up step visits: `outcome` events neither open nor close one.
VISIT_KINDS = (_K.ENTERED, *CLOSING_KINDS)
# What makes up a case's path: a person's steps and the automatic ones that moved it.
PATH_KINDS = (*ACTED_KINDS, *CATCH_KINDS)
# Kinds whose step id can name an outcome reached: the step happened (not merely entered or
# skipped), or an outcome event was recorded.
REACHED_KINDS = (*DONE_KINDS, *CATCH_KINDS, _K.OUTCOME)
