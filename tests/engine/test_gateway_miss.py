"""A gateway without a default flow, accepted because the declared data proves its conditions
exhaustive, still meets data outside the declaration at run time: the step fails with an
`ExecutionError` naming the instance, the step and the gateway, and nothing is written (the
incident code catches this error). SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from engine import Engine, ExecutionError
from engine.errors import InstanceIncident
from tests.conftest import FIXTURES

EXHAUSTIVE = FIXTURES / "yaml" / "declared" / "exhaustive.yaml"


@pytest.mark.parametrize(("context", "says"), [
    ({}, "required data 'plan' is missing"),
])
def test_a_runtime_miss_is_an_incident_and_applies_nothing(
    engine: Engine, context: dict[str, Any], says: str
) -> None:
    """What reaches a gateway is checked where it comes in (a start's context, a person's
    step: tests/engine/test_step_data.py); a required value nobody gave still fails there."""
    engine.deploy([EXHAUSTIVE])
    instance = engine.start("exhaustive", "p1", "d1", context)
    engine.forget()

    with pytest.raises(InstanceIncident) as caught:
        engine.complete(instance.id, "talk")

    assert isinstance(caught.value, ExecutionError)
    assert f"instance {instance.id}, step 'talk'" in str(caught.value)
    assert says in str(caught.value)
    after = engine.get(instance.id)
    # the step is not applied: still waiting at talk, parked in incident (one chained event)
    assert (after.status, after.waiting_steps, after.version) == ("incident", ["talk"], 2)
    assert [e.kind for e in engine.history(instance.id)][-1] == "incident"
    with pytest.raises(InstanceIncident):  # the same data fails the same way on retry
        engine.retry(instance.id)
