"""Multi-instance person steps across reloads, as every CLI call reloads: each flavour
(sequential or parallel; a cardinality or a collection) is completed instance by instance, the
engine forgetting its deserialized instances and parsed specs between steps. SQLite and
PostgreSQL.
"""

from __future__ import annotations

import pytest

from engine import Engine
from tests.conftest import FIXTURES

MULTI = FIXTURES / "bpmn" / "multi_instance"
FLAVOURS = ["sequential_cardinality", "parallel_cardinality", "sequential_collection",
            "parallel_collection"]
PEOPLE = ["ann", "bob", "cy"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_every_instance_is_completed_across_reloads_and_the_process_moves_on(
    engine: Engine, flavour: str
) -> None:
    engine.deploy([MULTI / f"{flavour}.bpmn"])
    engine.forget()
    instance = engine.start(f"mi_{flavour}", "p1", "d1", {"people": PEOPLE})
    parallel = flavour.startswith("parallel")
    assert instance.waiting_steps == ["call"] * (3 if parallel else 1)

    for done in range(3):
        engine.forget()  # the next call starts from the database, as a new CLI process does
        instance = engine.complete(instance.id, "call", {"answer": f"answer {done}"})
        left = 2 - done
        expected = ["call"] * (left if parallel else min(left, 1)) or ["follow_up"]
        assert (instance.status, instance.waiting_steps) == ("active", expected)

    engine.forget()
    instance = engine.complete(instance.id, "follow_up")

    assert instance.status == "completed"
    calls = [e for e in engine.history(instance.id) if e.step_id == "call"]
    # three instances, then the multi-instance step itself
    assert [e.kind for e in calls if e.kind == "completed"] == ["completed"] * 4


def test_answers_of_a_collection_are_gathered_in_order_across_reloads(engine: Engine) -> None:
    engine.deploy([MULTI / "sequential_collection.bpmn"])
    instance = engine.start("mi_sequential_collection", "p1", "d1", {"people": PEOPLE})
    for person in PEOPLE:
        engine.forget()
        instance = engine.complete(instance.id, "call", {"answer": f"{person}: yes"})

    engine.forget()
    workflow = engine.pipeline.workflow(instance.id)
    assert workflow.last_task is not None
    assert workflow.last_task.data["answers"] == ["ann: yes", "bob: yes", "cy: yes"]
