"""`follow_up` / `stuck_after` set in Camunda Modeler (the nextmove step template) do what
the same keys do in a YAML map: a boundary timer the card shows, flagged once it fires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from engine import ManualClock
from engine.definitions import load
from engine.definitions.compile import export_bpmn
from nextmove import open_engine, open_store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CAMUNDA7 = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs" targetNamespace="t">
  <bpmn:process id="callback" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call" />
    <bpmn:userTask id="call" name="Call them back" camunda:modelerTemplate="dev.nextmove.step">
      <bpmn:extensionElements>
        <!-- written by Camunda Modeler's nextmove step template -->
        <camunda:properties>
          <camunda:property name="hook" value="callback" />
          <camunda:property name="follow_up" value="P2D" />
          <camunda:property name="stuck_after" value="P5D" />
        </camunda:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="done" />
    <bpmn:endEvent id="done"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def drawn(tmp_path: Path) -> Path:
    path = tmp_path / "callback.bpmn"
    path.write_text(CAMUNDA7, encoding="utf-8")
    return path


def test_the_properties_become_the_timers_yaml_would_compile(drawn: Path) -> None:
    report = load([drawn])
    assert report.ok, [p.to_dict() for p in report.problems]
    (definition,) = report.definitions
    timers = {s.id: (s.attached_to, s.timer, s.interrupting, s.properties.get("purpose"))
              for s in definition.map.all_steps() if s.type == "boundaryEvent"}
    assert timers == {"Event_call_follow_up": ("call", "P2D", False, "follow_up"),
                      "Event_call_stuck": ("call", "P5D", False, "stuck")}
    # what gets deployed (and built by SpiffWorkflow) is the document with the timers
    stored = etree.fromstring(definition.documents[str(drawn)])
    assert stored.find(".//{*}boundaryEvent[@id='Event_call_follow_up']") is not None


def test_a_map_that_draws_its_timers_is_left_as_it_is(tmp_path: Path) -> None:
    yaml_map = Path(__file__).resolve().parents[2] / "processes/lifevantage/prospect_journey.yaml"
    compiled = tmp_path / "journey.bpmn"
    export_bpmn(yaml_map, compiled, "camunda7")
    (definition,) = load([compiled]).definitions
    assert definition.documents[str(compiled)] == compiled.read_bytes()


def test_the_card_shows_the_follow_up_and_the_step_is_flagged_when_stuck(
    drawn: Path, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    store = open_store(f"sqlite:///{tmp_path / 'nm.db'}")
    try:
        engine = open_engine(store, clock=clock, recommend=False)
        engine.deploy([drawn])
        engine.start("callback", "ann", "D")
        (card,) = engine.cards("D")
        assert (card.step_id, card.hook, card.follow_up_at) == ("call", "callback",
                                                                T0 + timedelta(days=2))
        assert not card.overdue
        clock.set(T0 + timedelta(days=2, hours=1))
        engine.tick()
        (card,) = engine.cards("D")
        assert card.overdue and card.step_id == "call"  # still waiting, flagged as due
        clock.set(T0 + timedelta(days=5, hours=1))
        engine.tick()
        (card,) = engine.cards("D")
        assert card.overdue and card.step_id == "call"
    finally:
        store.dispose()


def test_empty_template_fields_count_as_absent(tmp_path: Path) -> None:
    """Camunda Modeler writes a template's untouched fields as empty properties."""
    path = tmp_path / "empty.bpmn"
    path.write_text(CAMUNDA7.replace('value="P2D"', 'value=""').replace('value="P5D"', 'value=""')
                    .replace('value="callback"', 'value=""'), encoding="utf-8")
    report = load([path])
    assert report.ok, [p.to_dict() for p in report.problems]
    (definition,) = report.definitions
    assert [s.type for s in definition.map.all_steps()].count("boundaryEvent") == 0
    step = definition.map.step("call")
    assert step is not None and dict(step.properties) == {}


def test_a_follow_up_that_is_not_a_duration_is_refused_on_its_step(tmp_path: Path) -> None:
    path = tmp_path / "bad.bpmn"
    path.write_text(CAMUNDA7.replace('value="P2D"', 'value="two days"'), encoding="utf-8")
    report = load([path])
    assert not report.ok
    (problem,) = report.errors
    assert problem.code == "bad-timer" and "two days" in problem.message
    assert problem.element == "Event_call_follow_up"
    assert problem.line == CAMUNDA7.splitlines().index(
        next(line for line in CAMUNDA7.splitlines() if 'id="call"' in line)) + 1


def test_a_zero_wait_is_refused_with_the_property_named(tmp_path: Path) -> None:
    """`stuck_after: P0D` would flag the step the moment it is entered: a slip, refused in a
    modeler's map as in a YAML one, at the step's line."""
    drawn = tmp_path / "zero.bpmn"
    drawn.write_text(CAMUNDA7.replace('value="P5D"', 'value="P0D"'), encoding="utf-8")
    yaml_map = tmp_path / "zero.yaml"
    yaml_map.write_text("process: zero\nsteps:\n  - id: call\n    follow_up: PT0S\n"
                        "    expires_after: P0DT0H\n  - id: done\n", encoding="utf-8")
    modeler = load([drawn])
    (problem,) = modeler.problems
    assert (problem.code, problem.element, problem.line) == ("bad-timer", "Event_call_stuck", 7)
    assert "a stuck_after of 'P0D' is no wait at all" in problem.message
    found = sorted((p.line, p.element, p.message.split(" is ")[0])
                   for p in load([yaml_map]).problems)
    assert found == [(4, "steps[0].follow_up", "a follow_up of 'PT0S'"),
                     (5, "steps[0].expires_after", "an expires_after of 'P0DT0H'")]
    fine = tmp_path / "fine.yaml"
    fine.write_text("process: fine\nsteps:\n  - id: call\n    stuck_after: PT1H\n",
                    encoding="utf-8")
    assert load([fine]).ok
