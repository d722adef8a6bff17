"""`migrate-instance` moves an instance the way a step does: the new version's automatic steps
run within the work limits (a failure parks it in incident, on the new version), and a catch
the new version makes wait takes the prospect's oldest held event in the same transaction.
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine import Engine, InstanceIncident, ManualClock
from engine.store import trail


def _map(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "journey.yaml").write_text(text)
    return directory


V1_CALL = "process: journey\nsteps:\n  - id: call\n  - id: talk\n"
V2_CALL_AUTO = "process: journey\nsteps:\n  - id: call\n    auto: true\n  - id: talk\n"
V2_CALL_FAILS = ("process: journey\nsteps:\n  - id: call\n    auto: true\n  - id: route\n"
                 "    decide:\n      - when: \"amount > 100\"\n        next: talk\n"
                 "      - otherwise: talk\n  - id: talk\n")
V1_PAUSE = ("process: journey\nsteps:\n  - id: call\n  - id: pause\n    wait:\n"
            "      after: P3D\n  - id: talk\n  - id: other\n")
V2_PAUSE = ("process: journey\nsteps:\n  - id: call\n  - id: pause\n    wait:\n"
            "      - message: form_submitted\n        next: other\n"
            "      - after: P3D\n        next: talk\n  - id: talk\n  - id: other\n")


def test_a_step_made_automatic_runs_on_when_the_instance_moves(
    engine: Engine, tmp_path: Path,
) -> None:
    engine.deploy([_map(tmp_path / "v1", V1_CALL)])
    instance = engine.start("journey", "p1", "d1")
    assert instance.waiting_steps == ["call"]
    engine.deploy([_map(tmp_path / "v2", V2_CALL_AUTO)])

    moved = engine.migrate_instance(instance.id, 2, actor="ops")
    assert (moved.status, moved.waiting_steps) == ("active", ["talk"])
    history = [(e.step_id, e.kind) for e in engine.history(instance.id)]
    assert ("journey", "migrated") in history
    assert history.index(("journey", "migrated")) < history.index(("call", "completed"))
    assert history[-1] == ("talk", "entered")
    assert trail.verify(engine.store, [instance.id])[1] == []
    engine.complete(instance.id, "talk", actor="d1")
    assert engine.get(instance.id).status == "completed"


def test_an_automatic_step_that_fails_after_the_move_is_an_incident_on_the_new_version(
    engine: Engine, tmp_path: Path,
) -> None:
    engine.deploy([_map(tmp_path / "v1", V1_CALL)])
    instance = engine.start("journey", "p1", "d1")
    engine.deploy([_map(tmp_path / "v2", V2_CALL_FAILS)])

    with pytest.raises(InstanceIncident):
        engine.migrate_instance(instance.id, 2, actor="ops")
    detail = engine.show(instance.id)
    assert (detail.instance.status, detail.instance.definition_version) == ("incident", 2)
    kinds = [(e.step_id, e.kind) for e in detail.history]
    assert kinds[-2:] == [("journey", "migrated"), ("route", "incident")]
    assert detail.incident is not None and detail.incident.data is not None
    assert detail.incident.data["replay"] == {"type": "engine"}
    assert trail.verify(engine.store, [instance.id])[1] == []
    with pytest.raises(InstanceIncident):  # the retry runs it again, on version 2
        engine.retry(instance.id)


def test_a_held_event_reaches_the_catch_the_new_version_waits_at(
    engine: Engine, clock: ManualClock, tmp_path: Path,
) -> None:
    engine.deploy([_map(tmp_path / "v1", V1_PAUSE)])
    instance = engine.start("journey", "p2", "d1")
    engine.complete(instance.id, "call", actor="d1")
    assert engine.get(instance.id).waiting_steps == ["pause"]
    engine.deploy([_map(tmp_path / "v2", V2_PAUSE)])
    assert engine.signal("form_submitted", "p2", message_id="e1").held

    moved = engine.migrate_instance(instance.id, 2)
    assert moved.waiting_steps == ["other"]
    assert [(h.message_id, h.status) for h in engine.held_events("p2")] == []
    delivered = [e for e in engine.history(instance.id) if e.kind == "message"]
    assert delivered and delivered[0].data is not None
    assert delivered[0].data["message_id"] == "e1"
    clock.advance(timedelta(days=4))
    engine.tick()
    assert engine.get(instance.id).waiting_steps == ["other"]  # not the timer's branch
    assert trail.verify(engine.store, [instance.id])[1] == []
