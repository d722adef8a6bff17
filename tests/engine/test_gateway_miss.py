"""A gateway without a default flow, accepted because the declared data proves its conditions
exhaustive, still meets data outside the declaration at run time: the step fails with an
`ExecutionError` naming the instance, the step and the gateway, and nothing is written (the
incident code catches this error). SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from engine import Engine, ExecutionError
from tests.conftest import FIXTURES

EXHAUSTIVE = FIXTURES / "yaml" / "declared" / "exhaustive.yaml"


@pytest.mark.parametrize(("data", "says"), [
    ({}, "required data 'plan' is missing"),
    ({"plan": "other"}, "No conditions satisfied for route"),
])
def test_a_runtime_miss_is_an_execution_error_and_writes_nothing(
    engine: Engine, data: dict[str, Any], says: str
) -> None:
    engine.deploy([EXHAUSTIVE])
    instance = engine.start("exhaustive", "p1", "d1")
    engine.forget()

    with pytest.raises(ExecutionError) as caught:
        engine.complete(instance.id, "talk", data)

    assert f"instance {instance.id}, step 'talk'" in str(caught.value)
    assert says in str(caught.value)
    after = engine.get(instance.id)
    assert (after.status, after.waiting_steps, after.version) == ("active", ["talk"], 1)
    assert engine.complete(instance.id, "talk", {"plan": "distributor"}).waiting_steps == [
        "enroll"]
