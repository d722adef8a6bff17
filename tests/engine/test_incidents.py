"""Incidents (issue 15, defect 6): a step that fails at run time parks its instance in
`incident` with the error in the trail; operators see it, distributors do not; `retry`
runs it again after `migrate-instance` moved it to the fixed version. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import (
    Engine,
    InstanceIncident,
    ManualClock,
    MigrationRefused,
    NextmoveError,
)
from engine.store import trail
from tests.conftest import FIXTURES

V1 = FIXTURES / "incidents" / "v1"
V2 = FIXTURES / "incidents" / "v2"
VERSIONS = FIXTURES / "bpmn" / "versions"


def test_a_failing_step_is_an_incident_in_the_chained_trail(
    engine: Engine, clock: ManualClock,
) -> None:
    engine.deploy([V1])
    instance = engine.start("order_check", "p1", "d1")
    with pytest.raises(InstanceIncident) as raised:
        engine.complete(instance.id, "take_order", {"note": "no amount"}, actor="d1")
    assert (raised.value.instance_id, raised.value.step) == (instance.id, "take_order")

    detail = engine.show(instance.id)
    assert detail.instance.status == "incident"
    assert detail.instance.waiting_steps == ["take_order"]  # as before the failing step
    incident = detail.incident
    assert incident is not None and incident.data is not None
    assert (incident.step_id, incident.at) == ("route", clock.now())
    assert "amount > 100" in incident.data["error"]
    assert incident.data["replay"] == {"type": "person", "step": "take_order",
                                       "kind": "completed", "data": {"note": "no amount"},
                                       "used": None, "actor": "d1"}
    assert detail.to_dict()["incident"]["kind"] == "incident"
    checked, breaks = trail.verify(engine.store, [instance.id])
    assert (checked, breaks) == (len(detail.history), [])

    # operators see it; the distributor is shown nothing broken
    assert [i.id for i in engine.list_instances(status="incident")] == [instance.id]
    assert engine.cards("d1") == []


def test_migrate_then_retry_runs_the_failed_step_on_the_fixed_version(engine: Engine) -> None:
    engine.deploy([V1])
    instance = engine.start("order_check", "p1", "d1")
    with pytest.raises(InstanceIncident):
        engine.complete(instance.id, "take_order", actor="d1")
    with pytest.raises(NextmoveError, match="nothing to retry"):
        engine.retry(engine.start("order_check", "p2", "d1").id)

    engine.deploy([V2])
    moved = engine.migrate_instance(instance.id, 2, actor="ops")
    assert (moved.definition_version, moved.status) == (2, "incident")
    retried = engine.retry(instance.id, actor="ops")
    assert (retried.status, retried.waiting_steps) == ("active", ["thank"])
    kinds = [(e.step_id, e.kind, e.actor) for e in engine.history(instance.id)]
    assert kinds[-3:] == [("order_check", "migrated", "ops"),
                          ("take_order", "completed", "d1"), ("thank", "entered", None)]
    assert "thank" in [c.step_id for c in engine.cards("d1")]


def test_migration_moves_a_waiting_instance_and_refuses_a_missing_step(engine: Engine) -> None:
    engine.deploy([VERSIONS / "offer_v1.bpmn"])
    waiting = engine.start("offer_flow", "p1", "d1")
    engine.deploy([VERSIONS / "offer_v2.bpmn"])
    moved = engine.migrate_instance(waiting.id, 2)
    assert moved.definition_version == 2 and moved.waiting_steps == ["qualify"]
    # the new version's step (share_testimonial) is now on the way
    assert engine.complete(waiting.id, "qualify").waiting_steps == ["share_testimonial"]

    # back from v2 to v1: the instance waits at a step v1 does not have
    with pytest.raises(MigrationRefused, match="share_testimonial"):
        engine.migrate_instance(waiting.id, 1)
    with pytest.raises(MigrationRefused, match="already runs version 2"):
        engine.migrate_instance(waiting.id, 2)
    assert engine.get(waiting.id).definition_version == 2


def test_a_failing_timer_step_is_an_incident_and_the_tick_goes_on(
    engine: Engine, clock: ManualClock,
) -> None:
    engine.deploy([FIXTURES / "limits"])
    broken = engine.start("minute_cycle_catch_up", "p1", "d1")
    clock.advance(timedelta(days=1))
    fine = engine.start("minute_cycle", "p2", "d1")
    clock.advance(timedelta(minutes=1))
    report = engine.tick()
    assert [i.instance_id for i in report.incidents] == [broken.id]
    assert [f.instance_id for f in report] == [fine.id]
    assert report.to_dict()["incidents"][0]["limit"] == "catch_up"
    assert engine.get(broken.id).status == "incident"
    assert engine.list_instances(status="incident")[0].id == broken.id
