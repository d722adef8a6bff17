"""What a person records with a step must fit the map's declared data (docs/data.md): a value
outside a field's values, of another type, or a name a typo away from a declared one would
route as if the value were absent. Refused with nothing written; SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from engine import Engine, InvalidInput, ManualClock, ProspectRef, StepNotWaiting
from engine.definitions.data import DataDeclaration, DataField
from tests.conftest import FIXTURES

ANN = ProspectRef("ann")
DECLARED = FIXTURES / "yaml" / "declared"


@pytest.fixture
def at_conversation(lv: Engine) -> Engine:
    """LifeVantage (`lv`: tests/engine/conftest.py) with ann waiting at the conversation."""
    lv.start("prospect_journey", "ann", "d1")
    lv.complete(ANN, "add_contact")
    lv.complete(ANN, "share_intro")
    lv.signal("video_played", "ann")
    assert "conversation" in lv.show(ANN).instance.waiting_steps
    return lv


@pytest.mark.parametrize(("data", "said"), [
    ({"interest": "maybe"}, "'interest' takes 'customer', 'distributor', 'not_now', not 'maybe'"),
    ({"interest": "distributer"}, "not 'distributer' (did you mean 'distributor'?)"),
    ({"intrest": "customer"}, "'intrest' is not declared data (did you mean 'interest'?)"),
    ({"interest": 3}, "'interest' is declared string, not int (3)"),
])
def test_data_the_map_does_not_declare_is_refused_and_nothing_written(
        at_conversation: Engine, data: dict[str, object], said: str) -> None:
    lv = at_conversation
    before = lv.history(ANN)
    with pytest.raises(InvalidInput) as refused:
        lv.complete(ANN, "conversation", data)
    assert said in str(refused.value) and "nothing was recorded" in str(refused.value)
    assert refused.value.field == "data"
    with pytest.raises(InvalidInput):
        lv.vary(ANN, "conversation", "talked on the phone", data=data)
    assert lv.history(ANN) == before
    assert "conversation" in lv.show(ANN).instance.waiting_steps


def test_declared_values_free_notes_and_none_are_taken(at_conversation: Engine) -> None:
    lv = at_conversation
    done = lv.complete(ANN, "conversation", {"interest": "distributor", "heard_about": "gym"})
    assert "enroll" in done.waiting_steps


def test_skipping_takes_no_data_to_check(at_conversation: Engine) -> None:
    assert "nurture" in at_conversation.skip(ANN, "conversation", "not now").waiting_steps


def test_a_step_left_without_the_data_the_map_requires_is_refused_not_parked(
        engine: Engine) -> None:
    """The gateway after `talk` has no default: without `plan` it could not route, and the
    instance would sit in an incident that retrying (the same empty data) never mends."""
    engine.deploy([DECLARED / "records_plan.yaml"])
    engine.start("records_plan", "ann", "d1")
    for attempt in (lambda: engine.complete(ANN, "talk"),
                    lambda: engine.vary(ANN, "talk", "phoned instead")):
        with pytest.raises(InvalidInput, match="'plan' is required: nothing was recorded"):
            attempt()
    with pytest.raises(InvalidInput, match="records 'plan', which the map requires to go on"):
        engine.skip(ANN, "talk", "no time")
    assert engine.get(ANN).status == "active"
    assert engine.complete(ANN, "talk", {"plan": "customer"}).waiting_steps == ["order"]


def test_a_declared_field_named_note_reaches_the_conditions(engine: Engine) -> None:
    engine.deploy([DECLARED / "note_routes.yaml"])
    engine.start("note_routes", "ann", "d1")
    assert engine.complete(ANN, "talk", {"note": "call back"}).waiting_steps == ["call_back"]
    engine.start("note_routes", "bo", "d1")  # a varied step's note is the person's words
    bo = ProspectRef("bo")
    assert engine.vary(bo, "talk", "call back").waiting_steps == ["done"]


def test_a_start_context_outside_the_declaration_is_refused_and_nothing_started(
        lv: Engine) -> None:
    """The prospect's own attributes (a CRM's) pass as they are; a field the map declares
    must hold one of its values, or the gateway would route as if it were absent."""
    with pytest.raises(InvalidInput, match="'interest' takes 'customer', 'distributor', "
                       "'not_now', not 'maybe': nothing was started"):
        lv.start("prospect_journey", "cy", "d1", {"interest": "maybe"})
    assert lv.list_instances(prospect_id="cy") == []
    started = lv.start("prospect_journey", "cy", "d1",
                       {"interest": "customer", "prospect_interst": "kept as given"})
    assert started.status == "active"


def test_the_declarations_rules() -> None:
    declared = DataDeclaration({
        "plan": DataField("plan", "string", ("a", "b"), required=True),
        "age": DataField("age", "integer"), "score": DataField("score", "number"),
        "vip": DataField("vip", "boolean"), "since": DataField("since", "date"),
        "anything": DataField("anything")})
    ok = {"plan": "a", "age": 3, "score": 2.5, "vip": False, "since": "2026-12-07",
          "anything": [1, {"x": None}], "comment": "free text", "age_group": "40s"}
    assert declared.problems_in(ok) == []
    assert declared.problems_in({"age": 3.0, "since": "2026-12-07T10:00:00+00:00"}) == []
    assert declared.problems_in({"age": None}) == []  # clears an optional field
    assert len(declared.problems_in({"plan": None, "age": True, "score": "2",
                                     "vip": "yes", "since": "7 Dec"})) == 5
    inferred = DataDeclaration({"plan": DataField("plan")}, inferred=True)
    assert inferred.problems_in({"plam": 1}) == []  # a file that declares nothing: no rules


def test_a_step_whose_deadline_passed_unticked_says_so(engine: Engine,
                                                       clock: ManualClock) -> None:
    """The worker has not recorded the expiry yet: the step still shows as waiting, but the
    deadline due by now moves the journey first. The refusal says that, not "not waiting
    (waiting: invite, ...)"."""
    from datetime import timedelta

    engine.deploy([FIXTURES / "yaml" / "invite_expires.yaml"])
    instance = engine.start("invite_expires", "ann", "d1")
    assert "invite" in instance.waiting_steps
    clock.set(clock.now() + timedelta(days=7))
    before = engine.history(instance.id)
    with pytest.raises(StepNotWaiting, match="step 'invite' no longer waits: a timer due by "
                       "now .* nothing was applied"):
        engine.complete(instance.id, "invite")
    assert engine.history(instance.id) == before
    engine.tick()
    assert engine.get(instance.id).waiting_steps == ["lost"]
