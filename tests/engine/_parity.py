"""Run one BPMN process through SpiffWorkflow directly and through nextmove, the same way.

Both runs start with no data and, step after step, complete the first ready person's task
(Spiff: the first READY manual task in tree order; nextmove: the first waiting `user` step),
at most `MAX_STEPS` times. nextmove runs on a real SQLite file through `nextmove.open_engine`
and forgets every cached instance and spec between calls, as each CLI call starts afresh.

A run's `Outcome`: the completed steps as a multiset, the completed steps of each call in
order (a multiset per call: inside one call Spiff's order is its tree walk), and the end
state (completed / failed / waiting on which steps). A step that fails is compared as not
applied: nextmove writes nothing for it, so Spiff's half-run step is set aside as well.
The Spiff side reads Spiff's own task states, not nextmove's reading of them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import EventBasedGateway
from SpiffWorkflow.bpmn.specs.mixins.exclusive_gateway import ExclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.inclusive_gateway import InclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from engine import Engine, NextmoveError

MAX_STEPS = 25
_GATEWAYS = (ExclusiveGateway, InclusiveGateway, ParallelGateway, EventBasedGateway)
_CAUGHT = ("completed", "timer", "message", "signal")


@dataclass
class Outcome:
    done: Counter[str] = field(default_factory=Counter)
    per_call: list[Counter[str]] = field(default_factory=list)
    status: str = "active"  # active | completed | failed
    waiting: list[tuple[str, str]] = field(default_factory=list)  # sorted (kind, step)

    def end(self) -> tuple[Any, ...]:
        return (self.done, self.status, self.waiting)


def spiff_parser(path: Path) -> BpmnParser:
    """SpiffBpmnParser for files in SpiffArena's dialect, Spiff's plain BpmnParser otherwise."""
    spiff_dialect = b"spiffworkflow.org/bpmn/schema" in path.read_bytes()
    parser = SpiffBpmnParser() if spiff_dialect else BpmnParser()
    parser.add_bpmn_file(str(path))
    return parser


def _kind(definition: Any) -> str:
    for cls, kind in ((TimerEventDefinition, "timer"), (MessageEventDefinition, "message"),
                      (SignalEventDefinition, "signal")):
        if isinstance(definition, cls):
            return kind
    return type(definition).__name__


def _spiff_done(workflow: BpmnWorkflow) -> Counter[str]:
    # Spiff's task dictionaries, not its tree iterator (which lists a multi-instance task's
    # instances only once the whole task has completed).
    tasks = [*workflow.tasks.values()]
    for sub in workflow.subprocesses.values():
        tasks.extend(sub.tasks.values())
    return Counter(t.task_spec.bpmn_id for t in tasks if t.state == TaskState.COMPLETED
                   and getattr(t.task_spec, "bpmn_id", None)
                   and not isinstance(t.task_spec, _GATEWAYS))


def _spiff_waiting(workflow: BpmnWorkflow) -> list[tuple[str, str]]:
    out = []
    for task in workflow.get_tasks(state=TaskState.READY | TaskState.WAITING):
        spec = task.task_spec
        if task.state == TaskState.READY and spec.manual:
            out.append(("user", spec.bpmn_id))
        elif task.state == TaskState.WAITING and isinstance(spec, EventBasedGateway):
            out.extend((_kind(d), o.bpmn_id) for o, d in zip(
                spec.outputs, spec.event_definition.event_definitions, strict=False))
        elif task.state == TaskState.WAITING and isinstance(spec, CatchingEvent):
            definition = spec.event_definition
            alternatives = definition.event_definitions \
                if isinstance(definition, MultipleEventDefinition) else [definition]
            out.extend((_kind(d), spec.bpmn_id) for d in alternatives)
    return sorted(out)


def run_spiff(parser: BpmnParser, process_id: str) -> Outcome:
    workflow = BpmnWorkflow(parser.get_spec(process_id),
                            parser.get_subprocess_specs(process_id))
    outcome = Outcome()
    before: Counter[str] = Counter()
    try:
        workflow.do_engine_steps()
        for _ in range(MAX_STEPS + 1):
            now = _spiff_done(workflow)
            outcome.per_call.append(now - before)
            before, outcome.done, outcome.waiting = now, now, _spiff_waiting(workflow)
            ready = workflow.get_tasks(state=TaskState.READY, manual=True)
            if workflow.completed or not ready:
                break
            ready[0].run()
            workflow.do_engine_steps()
    except Exception:  # any failure of the map is the outcome "failed"
        outcome.status = "failed"  # done and waiting stay as before the failed step
        return outcome
    outcome.status = "completed" if workflow.completed else "active"
    if workflow.completed:
        outcome.waiting = []
    return outcome


def run_nextmove(engine: Engine, process_id: str, prospect: str) -> Outcome:
    outcome = Outcome()
    try:
        instance = engine.start(process_id, prospect, "d1", new=True)
    except NextmoveError:
        outcome.status = "failed"
        return outcome
    seen = 0
    for _ in range(MAX_STEPS + 1):
        engine.forget()  # the next call starts from the database, as a new CLI process does
        events = engine.history(instance.id)
        outcome.per_call.append(Counter(e.step_id for e in events[seen:] if e.kind in _CAUGHT))
        seen = len(events)
        instance = engine.get(instance.id)
        users = [w.step_id for w in instance.waiting if w.kind == "user"]
        if instance.status != "active" or not users:
            break
        try:
            engine.complete(instance.id, users[0])
        except NextmoveError:
            outcome.status = "failed"
            break
    outcome.done = sum(outcome.per_call, Counter())
    if outcome.status != "failed":
        outcome.status = instance.status
    if outcome.status != "completed":
        outcome.waiting = sorted((w.kind, w.step_id) for w in instance.waiting)
    return outcome
