"""What a person records with a step must fit the map: the content they name must be the
step's (`_used`), the data they give what the map declares (docs/data.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow

from engine.definitions.data import DataDeclaration
from engine.errors import InvalidInput
from engine.expressions import declared_data
from engine.recommend import Recommender
from engine.runtime import tokens
from engine.runtime._used import check_used
from engine.runtime.waiting import Waiting


def check_person(replay: Mapping[str, Any], workflow: BpmnWorkflow, waits: Sequence[Waiting],
                 steps: Mapping[str, Any], recommender: Recommender | None) -> None:
    """Refuse a person's step (`incidents.person_replay`) whose `used` or data is wrong."""
    step = replay["step"]
    if replay.get("used") is not None:
        check_used(step, replay["used"], waits, recommender)
    check_step_data(workflow, step, replay["kind"], replay.get("data") or {},
                    steps.get(step, {}).get("properties", {}))


def check_step_data(workflow: BpmnWorkflow, step: str, kind: str, data: Mapping[str, Any],
                    properties: Mapping[str, Any]) -> None:
    """Refuse what the step would record wrongly, before it runs (nothing is written):
    data the declaration says no condition could read as meant (`interest: "maybe"` where
    interest takes customer, distributor or not_now; `intrest` for `interest`), which a
    gateway would route as if it were absent; and a step left without a value it declares
    (its `data` property) that the map requires, which the gateway after it could not route:
    the instance would be parked in an incident no retry can mend. A step that does not wait
    here is left to the step itself to refuse. The `note` of a varied step is free text."""
    task = tokens.find_ready(workflow, step)
    declared = None if task is None else declared_data(task)
    if task is None or not isinstance(declared, DataDeclaration) or (
            kind == "skipped" and properties.get("control") == "required"):
        return  # not waiting, no declaration, or a required step: the step refuses itself
    given = {} if kind == "skipped" else {
        k: v for k, v in data.items() if k != "note" or kind != "varied"}
    problems = declared.problems_in(given, known=(*task.data, *_items(task)))
    missing = [name for name in _step_names(properties)
               if (field := declared.fields.get(name)) is not None and field.required
               and given.get(name, task.data.get(name)) is None]
    if missing and kind == "skipped":
        problems.append(f"it records {', '.join(map(repr, missing))}, which the map requires "
                        "to go on: complete it with the data instead of skipping it")
    elif missing:
        problems += [f"{name!r} is required" for name in missing]
    if problems:
        raise InvalidInput("data", f"step {step!r}: " + "; ".join(problems)
                           + ": nothing was recorded")


def _step_names(properties: Mapping[str, Any]) -> list[str]:
    """The names a step's `data` property declares (what completing it asks for)."""
    try:
        found = json.loads(properties.get("data") or "{}")
    except ValueError:
        return []
    return list(found) if isinstance(found, dict) else []


def _items(task: Any) -> list[str]:
    """The names a multi-instance step's own instance reads and writes (its input and output
    items, e.g. `person` and `answer`)."""
    parent = getattr(task.parent, "task_spec", None)
    return [ref.bpmn_id for ref in (getattr(parent, "input_item", None),
                                    getattr(parent, "output_item", None))
            if ref is not None and getattr(ref, "bpmn_id", None)]
