"""A BPMN signal thrown inside an instance is broadcast at the moment it is thrown: a catch
that is not waiting then misses it, and what nothing caught is not kept in the saved state
(SpiffWorkflow keeps it in `bpmn_events` for an embedding app to route; nextmove routes none).
SQLite and PostgreSQL, with a reload (a fresh process's caches) between calls."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from engine import Engine
from engine.store import INSTANCE
from tests.conftest import FIXTURES

SIGNALS = FIXTURES / "bpmn" / "signals"


@pytest.fixture
def deployed(engine: Engine) -> Engine:
    engine.deploy([SIGNALS])
    engine.forget()
    return engine


def saved(engine: Engine, instance_id: int) -> dict[str, Any]:
    with engine.store.read() as conn:
        text = conn.execute(select(INSTANCE.c.state).where(INSTANCE.c.id == instance_id)).scalar()
    workflow: dict[str, Any] = json.loads(text)["workflow"]
    return workflow


@pytest.mark.parametrize("reload", [True, False], ids=["reloaded", "hot"])
def test_a_signal_nothing_catches_is_not_kept_in_the_saved_state(
    deployed: Engine, reload: bool,
) -> None:
    instance = deployed.start("early_throw", "ann", "d1").id
    deployed.complete(instance, "prepare_pack")  # throws pack_ready: nothing waits for it
    assert saved(deployed, instance)["bpmn_events"] == []
    if reload:
        deployed.forget()
    moved = deployed.complete(instance, "book_call")
    assert moved.waiting_steps == ["pack_is_ready"]
    assert saved(deployed, instance)["bpmn_events"] == []


def test_a_catch_that_starts_waiting_after_the_throw_misses_it(deployed: Engine) -> None:
    instance = deployed.start("early_throw", "ann", "d1").id
    deployed.complete(instance, "prepare_pack")
    deployed.forget()
    assert deployed.complete(instance, "book_call").waiting_steps == ["pack_is_ready"]
    assert [e.step_id for e in deployed.history(instance) if e.kind == "signal"] == []

    # a signal sent now reaches it, from outside as from any instance's broadcast
    deployed.forget()
    assert deployed.broadcast("pack_ready", signal_id="s-1").delivered == (instance,)
    assert deployed.get(instance).waiting_steps == ["call_prospect"]
    done = deployed.complete(instance, "call_prospect")  # ends by throwing call_done
    assert done.status == "completed"
    assert saved(deployed, instance)["bpmn_events"] == []


def test_a_signal_thrown_and_caught_inside_the_instance_still_moves_it(
    deployed: Engine,
) -> None:
    instance = deployed.start("handoff", "ann", "d1").id
    deployed.forget()
    assert deployed.complete(instance, "prepare_pack").waiting_steps == ["call_prospect"]
    assert saved(deployed, instance)["bpmn_events"] == []


@pytest.mark.parametrize("fast", [True, False], ids=["first-wait template", "run"])
def test_a_signal_thrown_by_a_start_is_not_kept_either(deployed: Engine, fast: bool) -> None:
    deployed.pipeline.fast_starts = fast
    first, second = (deployed.start("opening_throw", p, "d1") for p in ("ann", "bob"))
    for instance in (first, second):
        assert instance.waiting_steps == ["greet"]
        assert saved(deployed, instance.id)["bpmn_events"] == []
