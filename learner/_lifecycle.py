"""The XES lifecycle extension: how the engine's event kinds map to `lifecycle:transition`.

A step visit is logged as `entered` then a closing kind; written under one activity name with
no transition, process-mining tools count every step twice. With `start` on the entered event
and `complete` (or an abort / skip) on the closing one they pair the two into one activity
instance. Outcome events name a result, sometimes the same as a step's id (`customer_order`),
so they go out as `outcome:<id>`: an activity of their own, never a second count of the step.
"""

from __future__ import annotations

from engine.store import EventKind

LIFECYCLE = "lifecycle:transition"
OUTCOME_PREFIX = "outcome:"

_K = EventKind
TRANSITION: dict[str, str] = {
    _K.ENTERED: "start", _K.COMPLETED: "complete", _K.VARIED: "complete",
    _K.TIMER: "complete", _K.MESSAGE: "complete", _K.SIGNAL: "complete",
    _K.OUTCOME: "complete", _K.SKIPPED: "manualskip", _K.CANCELLED: "ate_abort",
    _K.INCIDENT: "unknown", _K.MIGRATED: "unknown",
}
# What a log from another tool means by its transitions (lower-cased); others stay data.
KIND_OF: dict[str, str] = {
    "start": _K.ENTERED, "complete": _K.COMPLETED, "manualskip": _K.SKIPPED,
    "autoskip": _K.SKIPPED, "ate_abort": _K.CANCELLED, "pi_abort": _K.CANCELLED,
}


def transition(kind: str) -> str:
    """The XES transition an event of `kind` is written with."""
    return TRANSITION.get(kind, "unknown")


def activity_name(step_id: str, kind: str) -> str:
    """The `concept:name` of an event: its step id, or `outcome:<id>` for an outcome."""
    return OUTCOME_PREFIX + step_id if kind == _K.OUTCOME else step_id


def step_of(activity: str, kind: str) -> str:
    """The step id back from an activity name (the inverse of `activity_name`)."""
    if kind == _K.OUTCOME and activity.startswith(OUTCOME_PREFIX):
        return activity[len(OUTCOME_PREFIX):] or activity
    return activity
