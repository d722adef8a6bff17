"""The runtime on real databases: every test runs on a SQLite file and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine import (
    AmbiguousInstance,
    DefinitionNotFound,
    Engine,
    EngineRuntimeError,
    Instance,
    InstanceIncident,
    InstanceNotFound,
    ManualClock,
    ProspectRef,
    StepNotWaiting,
    StepRequired,
)
from nextmove import open_store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BPMN = FIXTURES / "bpmn"
LINEAR = BPMN / "linear10.bpmn"
LINEAR_STEPS = [
    "add_contact", "send_invite", "share_video", "follow_up", "answer_questions",
    "share_testimonial", "income_disclosure", "present_offer", "handle_objections", "close_sale",
]
JOURNEYS = ["journey_attrs", "journey_camunda", "journey_nextmove", "journey_spiff"]


def events(engine: Engine, instance: Instance) -> list[tuple[str, str]]:
    return [(e.step_id, e.kind) for e in engine.history(instance.id)]


def person_events(engine: Engine, instance: Instance, steps: set[str]) -> list[tuple[str, str]]:
    return [pair for pair in events(engine, instance) if pair[0] in steps]


def run_to_end(engine: Engine, instance: Instance) -> Instance:
    while instance.status == "active":
        instance = engine.complete(instance.id, instance.waiting_steps[0])
    return instance


# -- starting and walking ------------------------------------------------------------------------


def test_start_waits_at_the_first_step(engine: Engine, clock: ManualClock) -> None:
    (deployed,) = engine.deploy([LINEAR])
    instance = engine.start("prospect_linear", "p1", "d1", {"source": "instagram"})

    assert (deployed.process_id, deployed.version, deployed.created) == ("prospect_linear", 1, True)
    assert (instance.process_id, instance.prospect_id, instance.distributor_id) == (
        "prospect_linear", "p1", "d1")
    assert (instance.status, instance.version, instance.definition_version) == ("active", 1, 1)
    assert instance.context == {"source": "instagram"}
    (wait,) = instance.waiting
    assert (wait.step_id, wait.name, wait.kind, wait.hook, wait.control, wait.role) == (
        "add_contact", "Add contact", "user", "contact.add", "guidance", "distributor")
    assert wait.since == clock.now() == instance.created_at
    assert engine.get(instance.id) == instance

    with pytest.raises(DefinitionNotFound) as raised:
        engine.start("prospect_linera", "p2", "d1")
    assert raised.value.suggestion == "prospect_linear"


def test_completing_every_step_walks_the_map_to_its_end(engine: Engine, clock: ManualClock) -> None:
    engine.deploy([LINEAR])
    instance = engine.start("prospect_linear", "p1", "d1")

    for number, step in enumerate(LINEAR_STEPS):
        clock.advance(timedelta(hours=1))
        instance = engine.complete(instance.id, step, actor="d1")
        assert instance.version == number + 2
        assert instance.waiting_steps == LINEAR_STEPS[number + 1:number + 2]
        assert all(w.since == clock.now() for w in instance.waiting)

    assert instance.status == "completed"
    assert instance.updated_at == clock.now()
    completed = [step for step, kind in events(engine, instance) if kind == "completed"]
    assert completed == ["start", *LINEAR_STEPS, "end"]
    assert engine.get(ProspectRef("p1")).status == "completed"


# -- gateways, parallel, subprocess, call activity -----------------------------------------------


GATEWAY_ROUTES = [
    ({"interest": "high"}, "present_offer"),
    ({"interest": "low"}, "nurture"),
    ({"interest": "unsure"}, "send_info"),
    ({}, "send_info"),
]


def test_completing_with_data_routes_the_exclusive_gateway(engine: Engine) -> None:
    engine.deploy([BPMN / "gateway.bpmn"])
    branches = {"present_offer", "nurture", "send_info"}
    for number, (data, route) in enumerate(GATEWAY_ROUTES):
        instance = engine.start("prospect_qualify", f"p{number}", "d1")

        instance = engine.complete(instance.id, "qualify", data)
        assert instance.waiting_steps == [route], data
        instance = engine.complete(instance.id, route)
        assert instance.status == "completed"
        assert person_events(engine, instance, branches) == [
            (route, "entered"), (route, "completed")]

    # data given at start is instance data too
    instance = engine.start("prospect_qualify", "from-context", "d1", {"interest": "low"})
    assert engine.complete(instance.id, "qualify").waiting_steps == ["nurture"]


def test_failing_condition_parks_the_instance_in_incident_as_it_was(engine: Engine) -> None:
    engine.deploy([BPMN / "lead_score.bpmn"])
    instance = engine.start("lead_score", "p1", "d1")
    before = engine.history(instance.id)

    with pytest.raises(InstanceIncident) as raised:
        engine.complete(instance.id, "rate_lead", {"note": "no score given"})
    assert raised.value.step == "rate_lead" and "score >= 50" in str(raised.value)
    parked = engine.get(instance.id)  # the person's step was not applied:
    assert (parked.status, parked.waiting) == ("incident", instance.waiting)
    *kept, incident = engine.history(instance.id)
    assert kept == before and incident.kind == "incident"
    with pytest.raises(EngineRuntimeError, match="in incident"):
        engine.complete(instance.id, "rate_lead", {"score": 20})
    with pytest.raises(InstanceIncident):  # the map is unchanged: the step fails again
        engine.retry(instance.id)
    assert [e.kind for e in engine.history(instance.id)].count("incident") == 2


def test_parallel_split_waits_for_both_branches_before_the_join(engine: Engine) -> None:
    engine.deploy([BPMN / "parallel.bpmn"])
    instance = engine.start("prospect_parallel", "p1", "d1")
    assert sorted(instance.waiting_steps) == ["send_sample", "share_video"]

    instance = engine.complete(instance.id, "share_video")
    assert instance.waiting_steps == ["send_sample"]
    with pytest.raises(StepNotWaiting):
        engine.complete(instance.id, "meet")

    instance = engine.complete(instance.id, "send_sample")
    assert instance.waiting_steps == ["meet"]
    instance = engine.complete(instance.id, "meet")
    assert instance.status == "completed"
    assert person_events(engine, instance, {"meet"}) == [("meet", "entered"), ("meet", "completed")]


def test_embedded_subprocess_waits_inside_and_comes_back(engine: Engine) -> None:
    engine.deploy([BPMN / "subprocess.bpmn"])
    instance = engine.start("prospect_onboarding", "p1", "d1")

    instance = engine.complete(instance.id, "welcome_call")
    (wait,) = instance.waiting
    assert (wait.step_id, wait.hook) == ("pick_products", "order.picker")
    assert engine.complete(instance.id, "pick_products").waiting_steps == ["confirm_order"]
    assert engine.complete(instance.id, "confirm_order").waiting_steps == ["thank_you"]
    instance = engine.complete(instance.id, "thank_you")

    assert instance.status == "completed"
    assert events(engine, instance) == [
        ("start", "completed"),
        ("welcome_call", "entered"), ("welcome_call", "completed"),
        ("first_order_start", "completed"),
        ("pick_products", "entered"), ("pick_products", "completed"),
        ("confirm_order", "entered"), ("confirm_order", "completed"),
        ("first_order_end", "completed"), ("first_order", "completed"),
        ("thank_you", "entered"), ("thank_you", "completed"),
        ("end", "completed"),
    ]


def test_call_activity_runs_the_called_process_with_its_hooks(engine: Engine) -> None:
    deployed = engine.deploy([BPMN / "call_activity"])
    assert sorted(d.process_id for d in deployed) == ["fast_start_training", "recruit"]
    instance = engine.start("recruit", "new-distributor-1", "sponsor-1")

    instance = engine.complete(instance.id, "sign_up")
    (wait,) = instance.waiting
    assert (wait.step_id, wait.name, wait.hook) == (
        "watch_basics", "Watch the basics module", "training.basics")
    instance = engine.complete(instance.id, "watch_basics")
    assert instance.waiting_steps == ["first_prospects"]
    instance = engine.complete(instance.id, "first_prospects")

    assert instance.status == "completed"
    assert events(engine, instance) == [
        ("start", "completed"),
        ("sign_up", "entered"), ("sign_up", "completed"),
        ("training_start", "completed"),
        ("watch_basics", "entered"), ("watch_basics", "completed"),
        ("training_end", "completed"), ("training", "completed"),
        ("first_prospects", "entered"), ("first_prospects", "completed"),
        ("end", "completed"),
    ]


DIALECT_ROUTES = [
    ({"interest": "high", "score": 60}, ["income_disclosure", "present_offer"]),
    ({"interest": "high", "score": 40}, ["share_info"]),
    ({"interest": "low", "score": 90}, ["share_info"]),
]


def test_every_dialect_runs_the_same_journey(engine: Engine) -> None:
    engine.deploy([BPMN / "dialects"])
    hooks = {"income_disclosure": "compliance.ids", "present_offer": "offer.pack",
             "share_info": "info.brochure"}
    for case, (data, route) in enumerate(DIALECT_ROUTES):
        paths = {}
        for process in JOURNEYS:
            instance = engine.start(process, f"p{case}", "d1")
            instance = engine.complete(instance.id, "invite", data)
            walked = []
            while instance.status == "active":
                (wait,) = instance.waiting
                walked.append((wait.step_id, wait.hook, wait.control))
                instance = engine.complete(instance.id, wait.step_id)
            paths[process] = walked

        expected = [(s, hooks[s], "required" if s == "income_disclosure" else "guidance")
                    for s in route]
        assert paths == dict.fromkeys(JOURNEYS, expected), data


# -- skipping ------------------------------------------------------------------------------------


def test_a_guidance_step_can_be_skipped_a_required_one_cannot(engine: Engine) -> None:
    engine.deploy([LINEAR])
    instance = engine.start("prospect_linear", "p1", "d1")

    instance = engine.skip(instance.id, "add_contact", "already in my phone", actor="d1")

    assert instance.waiting_steps == ["send_invite"]
    assert instance.version == 2
    last = engine.history(instance.id)[-2]
    assert (last.step_id, last.kind, last.actor, last.data) == (
        "add_contact", "skipped", "d1", {"reason": "already in my phone"})

    for step in LINEAR_STEPS[1:6]:
        instance = engine.complete(instance.id, step)
    assert instance.waiting_steps == ["income_disclosure"]
    assert instance.waiting[0].control == "required"
    before = engine.history(instance.id)

    with pytest.raises(StepRequired) as raised:
        engine.skip(instance.id, "income_disclosure", "they did not ask", actor="d1")

    assert (raised.value.step, raised.value.basis) == ("income_disclosure", "FTC income disclosure")
    assert "FTC income disclosure" in str(raised.value)
    assert engine.get(instance.id) == instance
    assert engine.history(instance.id) == before
    assert engine.complete(instance.id, "income_disclosure").waiting_steps == ["present_offer"]


# -- one instance per prospect -------------------------------------------------------------------


def test_start_is_idempotent_per_prospect_and_process(engine: Engine) -> None:
    engine.deploy([LINEAR])
    first = engine.start("prospect_linear", "p1", "d1", {"source": "instagram"})
    first = engine.complete(first.id, "add_contact")

    again = engine.start("prospect_linear", "p1", "d1", {"source": "ignored"})
    assert again == first
    assert again.context == {"source": "instagram"}
    assert len(engine.list_instances(prospect_id="p1")) == 1
    assert events(engine, first).count(("start", "completed")) == 1

    second = engine.start("prospect_linear", "p1", "d1", new=True)
    assert second.id != first.id
    assert second.waiting_steps == ["add_contact"]
    assert [i.id for i in engine.list_instances(prospect_id="p1")] == [second.id, first.id]
    assert engine.resolve(ProspectRef("p1")) == second.id  # newest active one
    assert engine.start("prospect_linear", "p1", "d1").id == first.id  # still holds the key


def test_a_finished_journey_lets_the_prospect_start_again(engine: Engine) -> None:
    engine.deploy([BPMN / "parallel.bpmn"])
    first = run_to_end(engine, engine.start("prospect_parallel", "p1", "d1"))

    second = engine.start("prospect_parallel", "p1", "d1")

    assert first.status == "completed"
    assert second.id != first.id and second.status == "active"
    assert engine.resolve(ProspectRef("p1")) == second.id

    with pytest.raises(StepNotWaiting) as raised:
        engine.complete(first.id, "meet")
    assert raised.value.waiting == []
    assert "(waiting: nothing)" in str(raised.value)


def test_prospect_ref_resolves_and_reports_ambiguity(engine: Engine) -> None:
    engine.deploy([LINEAR, BPMN / "gateway.bpmn"])
    linear = engine.start("prospect_linear", "p1", "d1")
    qualify = engine.start("prospect_qualify", "p1", "d1")
    other = engine.start("prospect_linear", "p2", "d1")

    assert engine.resolve(ProspectRef("p2")) == other.id
    assert engine.resolve(linear.id) == linear.id
    with pytest.raises(AmbiguousInstance) as raised:
        engine.complete(ProspectRef("p1"), "add_contact")
    assert raised.value.processes == ["prospect_linear", "prospect_qualify"]
    assert engine.get(linear.id).version == 1

    done = engine.complete(ProspectRef("p1", "prospect_qualify"), "qualify", {"interest": "low"})
    assert done.id == qualify.id
    run_to_end(engine, done)
    assert engine.resolve(ProspectRef("p1")) == linear.id  # only one active instance left
    assert engine.resolve(ProspectRef("p1", "prospect_qualify")) == qualify.id  # latest, done

    with pytest.raises(InstanceNotFound):
        engine.resolve(ProspectRef("nobody"))
    with pytest.raises(InstanceNotFound):
        engine.resolve(ProspectRef("p2", "prospect_qualify"))
    with pytest.raises(InstanceNotFound):
        engine.get(999_999)


def test_step_not_waiting_says_what_is_waiting(engine: Engine) -> None:
    engine.deploy([LINEAR])
    instance = engine.start("prospect_linear", "p1", "d1")

    with pytest.raises(StepNotWaiting) as raised:
        engine.complete(instance.id, "add_contcat")
    assert (raised.value.step, raised.value.waiting) == ("add_contcat", ["add_contact"])
    assert str(raised.value).endswith(
        "step 'add_contcat' is not waiting (waiting: add_contact); did you mean 'add_contact'?")

    instance = engine.complete(instance.id, "add_contact")
    with pytest.raises(StepNotWaiting) as raised:
        engine.complete(instance.id, "add_contact")
    assert raised.value.waiting == ["send_invite"]
    with pytest.raises(StepNotWaiting):
        engine.skip(instance.id, "close_sale")
    assert engine.get(instance.id).version == 2


# -- history -------------------------------------------------------------------------------------


def test_history_records_entered_completed_and_skipped_in_order(
    engine: Engine, clock: ManualClock
) -> None:
    engine.deploy([LINEAR])
    t0 = clock.now()
    instance = engine.start("prospect_linear", "p1", "d1", actor="integration:crm")
    clock.advance(timedelta(minutes=5))
    engine.complete(instance.id, "add_contact", {"phone": "555-0100"}, actor="d1")
    clock.advance(timedelta(days=1))
    engine.skip(ProspectRef("p1"), "send_invite", "prefers DMs", actor="d1")
    clock.advance(timedelta(hours=2))
    engine.complete(ProspectRef("p1", "prospect_linear"), "share_video", actor="sponsor-7")

    history = engine.history(instance.id)
    assert [(e.step_id, e.kind, e.actor, e.data) for e in history] == [
        ("start", "completed", "integration:crm", None),
        ("add_contact", "entered", None, None),
        ("add_contact", "completed", "d1", {"phone": "555-0100"}),
        ("send_invite", "entered", None, None),
        ("send_invite", "skipped", "d1", {"reason": "prefers DMs"}),
        ("share_video", "entered", None, None),
        ("share_video", "completed", "sponsor-7", None),
        ("follow_up", "entered", None, None),
    ]
    minutes = [(e.at - t0) / timedelta(minutes=1) for e in history]
    assert minutes == [0, 0, 5, 5, 1445, 1445, 1565, 1565]
    assert [e.step_name for e in history[:3]] == ["Prospect added", "Add contact", "Add contact"]
    assert [e.id for e in history] == sorted(e.id for e in history)
    assert all(e.instance_id == instance.id for e in history)
    detail = engine.show(ProspectRef("p1"))
    assert detail.instance == engine.get(instance.id)
    assert detail.history == tuple(history)


# -- definition versions -------------------------------------------------------------------------


def test_running_instances_stay_on_their_definition_version(engine: Engine) -> None:
    (v1,) = engine.deploy([BPMN / "versions" / "offer_v1.bpmn"])
    (same,) = engine.deploy([BPMN / "versions" / "offer_v1.bpmn"])
    assert (v1.version, v1.created) == (1, True)
    assert (same.id, same.version, same.created) == (v1.id, 1, False)
    a = engine.start("offer_flow", "pa", "d1")

    (v2,) = engine.deploy([BPMN / "versions" / "offer_v2.bpmn"])
    assert (v2.version, v2.created) == (2, True)
    assert v2.content_hash != v1.content_hash
    b = engine.start("offer_flow", "pb", "d1")
    assert (a.definition_id, a.definition_version) == (v1.id, 1)
    assert (b.definition_id, b.definition_version) == (v2.id, 2)

    a = engine.complete(a.id, "qualify")
    b = engine.complete(b.id, "qualify")
    assert a.waiting_steps == ["present_offer"]
    assert b.waiting_steps == ["share_testimonial"]

    engine.forget()  # specs are rebuilt from each version's stored documents
    with pytest.raises(StepNotWaiting):
        engine.complete(a.id, "share_testimonial")
    a = engine.complete(a.id, "present_offer")
    b = engine.complete(b.id, "share_testimonial")
    b = engine.complete(b.id, "present_offer")
    assert (a.status, b.status) == ("completed", "completed")
    assert [d.version for d in engine.definitions("offer_flow")] == [1, 2]
    assert "share_testimonial" not in {s for s, _ in events(engine, a)}


# -- queries -------------------------------------------------------------------------------------


def test_list_instances_filters(engine: Engine) -> None:
    engine.deploy([LINEAR, BPMN / "gateway.bpmn"])
    p1 = engine.start("prospect_linear", "p1", "d1")
    p2 = engine.start("prospect_linear", "p2", "d1")
    p3 = engine.start("prospect_linear", "p3", "d2")
    p4 = engine.start("prospect_qualify", "p4", "d2")
    engine.complete(p2.id, "add_contact")
    run_to_end(engine, engine.complete(p4.id, "qualify", {"interest": "high"}))

    def ids(**filters: object) -> list[int]:
        return [i.id for i in engine.list_instances(**filters)]  # type: ignore[arg-type]

    assert ids() == [p4.id, p3.id, p2.id, p1.id]
    assert ids(process_id="prospect_linear") == [p3.id, p2.id, p1.id]
    assert ids(distributor_id="d2") == [p4.id, p3.id]
    assert ids(prospect_id="p2") == [p2.id]
    assert ids(step="add_contact") == [p3.id, p1.id]
    assert ids(step="send_invite") == [p2.id]
    assert ids(step="qualify") == []  # a real step nobody waits at now (typos: test_list.py)
    assert ids(status="completed") == [p4.id]
    assert ids(status="active", distributor_id="d2") == [p3.id]
    assert ids(process_id="prospect_linear", step="add_contact", distributor_id="d1") == [p1.id]
    assert ids(limit=2) == [p4.id, p3.id]
    assert ids(limit=2, offset=2) == [p2.id, p1.id]


# -- restarts and other processes ----------------------------------------------------------------


def test_instances_survive_forget_and_a_new_engine(
    engine: Engine, db_url: str, clock: ManualClock
) -> None:
    engine.deploy([LINEAR, BPMN / "call_activity"])
    linear = engine.start("prospect_linear", "p1", "d1")
    linear = engine.complete(linear.id, "add_contact", {"phone": "555-0100"})
    recruit = engine.complete(engine.start("recruit", "p2", "d1").id, "sign_up")

    engine.forget()
    linear = engine.complete(ProspectRef("p1"), "send_invite")
    assert linear.waiting_steps == ["share_video"]

    fresh = Engine(open_store(db_url), clock=clock)
    try:
        assert fresh.get(linear.id) == linear
        assert fresh.get(recruit.id) == recruit
        assert fresh.complete(ProspectRef("p2"), "watch_basics").waiting_steps == [
            "first_prospects"]
        linear = fresh.complete(linear.id, "share_video", actor="d1")
        assert linear.version == 4
        assert fresh.history(linear.id) == engine.history(linear.id)
        for step in LINEAR_STEPS[3:]:
            linear = fresh.complete(linear.id, step)
        assert linear.status == "completed"
    finally:
        fresh.store.dispose()


def test_a_stale_cached_instance_is_reloaded_not_overwritten(
    engine: Engine, db_url: str, clock: ManualClock
) -> None:
    engine.deploy([LINEAR])
    instance = engine.complete(engine.start("prospect_linear", "p1", "d1").id, "add_contact")
    other = Engine(open_store(db_url), clock=clock)  # another worker on the same database
    try:
        other.complete(instance.id, "send_invite", actor="other")

        # This engine's cached copy still waits at send_invite: the commit must not win.
        with pytest.raises(StepNotWaiting) as raised:
            engine.complete(instance.id, "send_invite", actor="me")
        assert raised.value.waiting == ["share_video"]
        after = engine.complete(instance.id, "share_video", actor="me")
        assert after.version == 4
        assert after.waiting_steps == ["follow_up"]
    finally:
        other.store.dispose()
    completions = [(e.step_id, e.actor) for e in engine.history(instance.id)
                   if e.kind == "completed" and e.step_id != "start"]
    assert completions == [("add_contact", None), ("send_invite", "other"),
                           ("share_video", "me")]

