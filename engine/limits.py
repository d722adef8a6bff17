"""Bounded work: how much one command may do to one instance, and what happens past it.

Every step (a person's act, a timer, a prospect event, a start, a retry) runs inside a
`Budget` of the engine's `Limits`. Going past a limit raises `WorkLimitExceeded`; the
pipeline turns it into an incident on the instance (nothing of the step is applied), so a
map can never make a command run without end, and never stops silently either.

    limit          default  counts
    engine_steps     2000   automatic tasks (gateways, events, tasks) one step runs
    loop_passes       100   runs of the same automatic step within one step (a loop)
    cardinality      1000   instances a multi-instance activity may create
    call_depth         10   nesting of call activities and subprocesses
    catch_up          100   missed occurrences a catch-up cycle timer may fire at once

A late cycle timer fires once and is rescheduled to its next occurrence after now (as
Camunda does); a timer whose map sets the property `catch_up: true` fires every missed
occurrence instead, up to `catch_up` of them. See docs/limits.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from engine.errors import ExecutionError

__all__ = ["DEFAULT_LIMITS", "Budget", "Limits", "WorkLimitExceeded", "budget",
           "check_cardinality", "current_budget", "run_engine_steps"]


@dataclass(frozen=True)
class Limits:
    """The work one command may do to one instance (see the module docstring)."""

    engine_steps: int = 2000
    loop_passes: int = 100
    cardinality: int = 1000
    call_depth: int = 10
    catch_up: int = 100

    def to_dict(self) -> dict[str, int]:
        return {"engine_steps": self.engine_steps, "loop_passes": self.loop_passes,
                "cardinality": self.cardinality, "call_depth": self.call_depth,
                "catch_up": self.catch_up}


DEFAULT_LIMITS = Limits()


class WorkLimitExceeded(ExecutionError):
    """A step asked for more work than a limit allows; nothing of the step was applied."""

    def __init__(
        self, limit: str, value: int, allowed: int, element: str | None,
        instance_id: int | None = None, step: str | None = None,
    ) -> None:
        self.limit = limit
        self.value = value
        self.allowed = allowed
        self.element = element
        where = f"{element!r}: " if element else ""
        super().__init__(instance_id, step, f"{where}work limit {limit}={allowed} exceeded "
                                            f"({value}); see docs/limits.md")

    def at(self, instance_id: int | None, step: str | None) -> WorkLimitExceeded:
        """The same error, naming the instance and the step it happened in."""
        return WorkLimitExceeded(self.limit, self.value, self.allowed, self.element,
                                 instance_id, step)


def _bpmn_id(task: Any) -> str | None:
    return getattr(task.task_spec, "bpmn_id", None)


class Budget:
    """The work the current step has done: counted as Spiff runs each automatic task."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.steps = 0
        self.passes: Counter[str] = Counter()
        self.current: str | None = None  # the automatic step running (an incident names it)
        self.fired: set[Any] = set()  # cycle timers fired in this step (they fire once)

    def before_task(self, task: Any) -> None:
        """Spiff's `will_complete_task` callback: count the task, refuse past a limit."""
        step = _bpmn_id(task)
        self.current = step or self.current
        self.steps += 1
        if self.steps > self.limits.engine_steps:
            raise WorkLimitExceeded("engine_steps", self.steps, self.limits.engine_steps, step)
        depth = int(getattr(task.workflow, "depth", 0) or 0)
        if depth > self.limits.call_depth:
            raise WorkLimitExceeded("call_depth", depth, self.limits.call_depth, step)
        from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask

        parent = task.parent
        instance_of = parent is not None and isinstance(parent.task_spec, MultiInstanceTask) \
            and parent.task_spec.task_spec == task.task_spec.name
        if step is not None and not instance_of:  # multi-instance: bounded by cardinality
            self.passes[step] += 1
            if self.passes[step] > self.limits.loop_passes:
                raise WorkLimitExceeded("loop_passes", self.passes[step],
                                        self.limits.loop_passes, step)


_BUDGET: ContextVar[Budget | None] = ContextVar("nextmove_budget", default=None)


def current_budget() -> Budget | None:
    """The budget of the step running in this context, if any."""
    return _BUDGET.get()


@contextmanager
def budget(limits: Limits) -> Iterator[Budget]:
    """Run one step within `limits`."""
    spent = Budget(limits)
    token = _BUDGET.set(spent)
    try:
        yield spent
    finally:
        _BUDGET.reset(token)


def run_engine_steps(workflow: Any) -> None:
    """`workflow.do_engine_steps()`, counted against the current step's budget."""
    spent = _BUDGET.get()
    if spent is None:
        workflow.do_engine_steps()
    else:
        workflow.do_engine_steps(will_complete_task=spent.before_task)


def check_cardinality(task: Any, expression: str, value: Any) -> None:
    """Refuse a multi-instance cardinality above the limit, before Spiff creates the
    instances (a cardinality of 10**6 would take minutes and gigabytes)."""
    if expression != getattr(task.task_spec, "cardinality", None):
        return
    spent = _BUDGET.get()
    allowed = (spent.limits if spent is not None else DEFAULT_LIMITS).cardinality
    if isinstance(value, int) and value > allowed:
        raise WorkLimitExceeded("cardinality", value, allowed, _bpmn_id(task))
