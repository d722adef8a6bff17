"""What the routes do, through a real server: steps land in the trail with the caller as the
actor, retries with an Idempotency-Key return the first answer, a raced step is a 409 with
Problem Details, and the OpenAPI document in docs/ is the one the code generates."""

from __future__ import annotations

import threading
from pathlib import PurePath

import httpx
import pytest

import service
from compliance import audit, signoffs
from content_catalog import stored_catalogs
from engine.store.kinds import EventKind
from tests.conftest import REPO
from tests.service._server import LIFEVANTAGE, Running
from tests.service._world import map_files, start

OPENAPI = REPO / "docs" / "openapi.json"


def test_a_distributor_works_a_card_and_the_trail_names_them(api: Running) -> None:
    crm, d1 = api.client("integrator"), api.client("distributor")
    made = crm.post("/instances", json={"process": "prospect_journey", "prospect_id": "p1",
                                        "distributor_id": "d1",
                                        "context": {"prospect_first_name": "Ana"}})
    assert made.status_code == 201 and made.json()["created"] is True
    instance = made.json()["id"]
    (card,) = d1.get("/cards").json()
    assert card["step_id"] == "add_contact" and card["content"]
    used = card["content"][0]["option_id"]
    typo = d1.post(f"/instances/{instance}/complete", json={"step": "add_contact",
                                                            "used": used + "s"})
    assert typo.status_code == 422 and f"did you mean '{used}'" in typo.json()["detail"]
    done = d1.post(f"/instances/{instance}/complete", json={"step": "add_contact",
                                                            "used": used})
    assert done.status_code == 200
    assert "share_intro" in [w["step_id"] for w in done.json()["waiting"]]
    skipped = d1.post(f"/instances/{instance}/skip", json={"step": "share_intro"})
    assert skipped.status_code == 200
    history = api.client("reviewer").get(f"/instances/{instance}").json()["history"]
    acted = [(e["step_id"], e["kind"], e.get("actor"), e.get("content_used"))
             for e in history if e["kind"] in ("completed", "skipped")]
    assert acted == [("Event_start", EventKind.COMPLETED, "crm", None),  # the start
                     ("add_contact", EventKind.COMPLETED, "d1", used),
                     ("share_intro", EventKind.SKIPPED, "d1", None)]
    outcome = crm.post("/outcomes", json={"prospect_id": "p1", "kind": "sale", "amount": 80})
    assert outcome.status_code == 201 and outcome.json()["actor"] == "crm"
    verified = api.client("reviewer").get("/compliance/verify").json()
    assert verified["ok"] is True


def test_maps_are_validated_and_deployed_by_upload(api: Running) -> None:
    designer = api.client("designer")
    checked = designer.post("/maps/validate", files=map_files())
    assert checked.json()["ok"] is True and "prospect_journey" in checked.json()["processes"]
    broken = designer.post("/maps/validate", files=[
        ("files", ("bad.yaml", b"process: x\nsteps:\n  - id: a\n    hook: 3\n", "text/yaml"))])
    assert broken.json()["ok"] is False and broken.json()["problems"][0]["file"] == "bad.yaml"
    refused = designer.post("/maps", files=[
        ("files", ("bad.yaml", b"process: x\nsteps: 3\n", "text/yaml"))])
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["problems"]
    deployed = designer.post("/maps", files=map_files())
    assert deployed.status_code == 201
    assert {PurePath(p["source_file"]).name for p in deployed.json()["processes"]} >= {
        "prospect_journey.yaml"}  # unchanged maps: the versions deployed before, as stored
    listed = designer.get("/maps", params={"process": "prospect_journey"}).json()
    assert listed and listed[0]["process_id"] == "prospect_journey"


def test_a_deployed_upload_records_its_file_name_not_the_scratch_path(api: Running) -> None:
    designer = api.client("designer")
    onboarding = (LIFEVANTAGE / "distributor_onboarding.bpmn").read_bytes().replace(
        b'name="Welcome aboard"', b'name="Welcome on board"')  # a new version
    deployed = designer.post("/maps", files=[
        ("files", ("onboarding.bpmn", onboarding, "application/xml"))])
    assert deployed.status_code == 201, deployed.text
    [process] = deployed.json()["processes"]
    assert process["source_file"] == "upload:onboarding.bpmn"
    stored = api.engine.definitions(process["process_id"])[-1]
    assert stored.source_file == "upload:onboarding.bpmn"  # not /tmp/nextmove-upload-.../
    linear = (REPO / "bench/maps/linear10.bpmn").read_bytes()  # hooks h1...h10: no content
    alone = designer.post("/maps", files=[("files", ("linear10.bpmn", linear, "application/xml"))])
    assert alone.status_code == 422  # as with the catalog (below): the stored one counts
    assert {p["file"] for p in alone.json()["problems"]} == {"linear10.bpmn"}
    catalog = (LIFEVANTAGE / "catalog.yaml").read_bytes() + b"\n# edited\n"
    deployed = designer.post("/maps", files=[("files", ("catalog.yaml", catalog, "text/yaml"))])
    assert deployed.status_code == 201, deployed.text
    assert [c["source_file"] for c in deployed.json()["catalogs"]] == ["upload:catalog.yaml"]
    assert [c.source_file for c in stored_catalogs(api.engine.store)][-1] == "upload:catalog.yaml"
    refused = designer.post("/maps", files=[  # its problems name the file as uploaded too
        ("files", ("linear10.bpmn", linear, "application/xml")),
        ("files", ("catalog.yaml", catalog, "text/yaml"))])
    assert refused.status_code == 422 and "nextmove-upload" not in refused.text
    assert {p["file"] for p in refused.json()["problems"]} == {"linear10.bpmn", "catalog.yaml"}
    started = api.engine.start(process["process_id"], "p-up", "d1", {"market": "US"}, new=True)
    assert started.status == "active"  # the relabelled documents still build the spec


def test_a_retry_with_the_same_idempotency_key_returns_the_first_answer(api: Running) -> None:
    crm = api.client("integrator")
    body = {"process": "prospect_journey", "prospect_id": "p7", "distributor_id": "d1",
            "new": True}
    first = crm.post("/instances", json=body, headers={"Idempotency-Key": "k1"})
    again = crm.post("/instances", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert len(api.engine.list_instances(prospect_id="p7")) == 1  # `new` did not start two
    other = crm.post("/instances", json={**body, "prospect_id": "p8"},
                     headers={"Idempotency-Key": "k1"})
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")
    d1 = api.client("distributor")
    step = {"step": "add_contact"}
    instance = first.json()["id"]
    done = d1.post(f"/instances/{instance}/complete", json=step, headers={"Idempotency-Key": "s"})
    retry = d1.post(f"/instances/{instance}/complete", json=step, headers={"Idempotency-Key": "s"})
    assert done.status_code == retry.status_code == 200 and retry.json() == done.json()
    completed = [e for e in api.engine.history(instance)
                 if e.kind == EventKind.COMPLETED and e.step_id == "add_contact"]
    assert len(completed) == 1
    # Without a key, the same request is a second attempt: the step is no longer waiting, so
    # it is refused (409, like a conflict, but retrying will not help).
    late = d1.post(f"/instances/{instance}/complete", json=step)
    assert late.status_code == 409 and late.json()["type"].endswith("/refused")


def test_racing_retries_with_one_key_get_one_answer_and_one_step(api: Running) -> None:
    instance = start(api, "race-key", "d1", "s1")
    barrier = threading.Barrier(3)
    answers: list[httpx.Response] = []

    def go() -> None:
        client = api.client("distributor")
        barrier.wait()
        answers.append(client.post(f"/instances/{instance}/complete",
                                   json={"step": "add_contact"},
                                   headers={"Idempotency-Key": "same"}))

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len({a.text for a in answers}) == 1  # the one stored answer, byte for byte
    assert len([e for e in api.engine.history(instance)
                if e.kind == EventKind.COMPLETED and e.step_id == "add_contact"]) == 1
    sale = {"prospect_id": "race-key", "kind": "sale", "amount": 5}
    crm = api.client("integrator")
    first = crm.post("/outcomes", json=sale, headers={"Idempotency-Key": "o"})
    again = crm.post("/outcomes", json=sale, headers={"Idempotency-Key": "o"})
    assert first.status_code == again.status_code == 201 and first.text == again.text
    assert len([e for e in api.engine.history(instance) if e.kind == "outcome"]) == 1


def test_a_raced_step_is_one_success_and_one_409(api: Running) -> None:
    instance = start(api, "race", "d1", "s1")
    clients = [api.client("distributor"), api.client("sponsor")]
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def go(client: httpx.Client) -> None:
        barrier.wait()
        answers.append(client.post(f"/instances/{instance}/complete",
                                   json={"step": "add_contact"}))

    threads = [threading.Thread(target=go, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200, 409]
    lost = next(a for a in answers if a.status_code == 409)
    assert lost.headers["content-type"] == "application/problem+json"
    problem = lost.json()
    assert problem["status"] == 409 and problem["title"] and problem["detail"]
    assert problem["error"] in ("VersionConflict", "StepNotWaiting")
    assert len([e for e in api.engine.history(instance)
                if e.kind == "completed" and e.step_id == "add_contact"]) == 1


def test_errors_are_problem_details(sqlite_api: Running) -> None:
    reviewer = sqlite_api.client("reviewer")
    missing = reviewer.get("/instances/999")
    assert missing.status_code == 404
    assert missing.json() == {"type": "https://nextmove.dev/problems/not-found",
                              "title": "Not found", "status": 404,
                              "detail": "no instance found for 999", "error": "InstanceNotFound",
                              "code": "not-found", "instance": "/instances/999"}
    bad = sqlite_api.client("integrator").post("/instances", json={"process": "x"})
    assert bad.status_code == 422 and bad.json()["type"].endswith("/invalid-input")
    unknown = sqlite_api.client("integrator").post("/instances", json={
        "process": "prospect_jorney", "prospect_id": "p", "distributor_id": "d"})
    assert unknown.status_code == 404 and "prospect_journey" in unknown.json()["detail"]
    # a mistyped process is not read as one with nothing in its funnel or nothing stuck
    for role, route in (("lead", "/analytics/funnel"), ("lead", "/analytics/stuck"),
                        ("reviewer", "/compliance/trail")):
        typo = sqlite_api.client(role).get(route, params={"process": "prospect_jorney"})
        assert typo.status_code == 404, route
        assert typo.json()["detail"] == ("no deployed process named 'prospect_jorney' "
                                         "(did you mean 'prospect_journey'?)")
    # nor a distributor or a market no instance has as one with no data
    start(sqlite_api, "p1", "d1")
    for route in ("/analytics/funnel", "/analytics/stuck"):
        for key, value in (("distributor", "d11"), ("market", "USA")):
            typo = sqlite_api.client("lead").get(route, params={
                "process": "prospect_journey", key: value})
            assert typo.status_code == 404, (route, key)
            assert typo.json()["detail"].startswith(f"no instance has {key} {value!r}")


def test_a_sponsor_reaches_their_downline_transitively(sqlite_api: Running) -> None:
    run = sqlite_api
    start(run, "a", "d1", "s1")
    start(run, "b", "d3", "d1")
    start(run, "c", "d4", "d3")
    start(run, "z", "d2")
    sponsor = run.client("sponsor")
    for distributor, status in (("d1", 200), ("d3", 200), ("d4", 200), ("d2", 403)):
        assert sponsor.get("/instances", params={"distributor": distributor}).status_code \
            == status, distributor
        assert sponsor.get("/cards", params={"distributor": distributor}).status_code == status
    assert service.Principal  # the public API names the caller type


def test_health_and_readiness(sqlite_api: Running) -> None:
    anonymous = sqlite_api.client()
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    assert anonymous.get("/readyz").json() == {"status": "ready"}
    assert anonymous.get("/healthz").headers["x-request-id"]


def test_the_checked_in_openapi_document_is_current() -> None:
    from service.openapi import document

    generated = document()
    if not OPENAPI.exists() or OPENAPI.read_text(encoding="utf-8") != generated:
        pytest.fail("docs/openapi.json is out of date: run "
                    "`PYTHONPATH=. python -m service.openapi > docs/openapi.json`")


def test_a_reviewer_signs_off_a_finding_through_the_api(api: Running) -> None:
    fixed_order = REPO / "tests" / "fixtures" / "compliance" / "NM003" / "trigger.yaml"
    upload = [("files", ("trigger.yaml", fixed_order.read_bytes(), "text/yaml"))]
    finding = "NM003:nm003_trigger/income_disclosure"
    reviewer = api.client("reviewer")
    before = reviewer.post("/compliance/audit", files=upload).json()
    assert [f["id"] for f in before["findings"]] == [finding]
    assert before["findings"][0]["signoff"] is None
    reason = "The FTC expects the disclosure before the agreement."
    signed = reviewer.post("/compliance/signoffs", files=upload,
                           data={"finding": finding, "reason": reason})
    assert signed.status_code == 201, signed.text
    body = signed.json()
    assert (body["finding"], body["reason"], body["map_hash"]) == (
        finding, reason, before["findings"][0]["map_hash"])
    assert body["reviewer"]  # the token's subject
    after = reviewer.post("/compliance/audit", files=upload).json()
    assert after["findings"][0]["signoff"]["reviewer"] == body["reviewer"]
    assert after["counts"]["medium"]["signed_off"] == 1
    # the same map audited from the command line binds to the same version
    local = audit([fixed_order], signoffs=signoffs(api.engine.store))
    assert local.findings[0].signoff is not None
    missing = reviewer.post("/compliance/signoffs", files=upload,
                            data={"finding": "NM009:x/y", "reason": reason})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert reviewer.get("/compliance/verify").json()["signoffs"]["records"] == 1


def test_a_designer_retires_a_process_and_a_deploy_brings_it_back(sqlite_api: Running) -> None:
    designer, crm = sqlite_api.client("designer"), sqlite_api.client("integrator")
    start(sqlite_api, "p1", "d1")
    retired = designer.post("/maps/prospect_journey/retire",
                            json={"reason": "replaced by the live-event journey"})
    assert retired.status_code == 200
    assert {k: retired.json()[k] for k in ("process_id", "version", "actor", "running",
                                           "created")} == {
        "process_id": "prospect_journey", "version": 1, "actor": "dana", "running": 1,
        "created": True}
    listed = {d["process_id"]: d for d in designer.get("/maps").json()}
    assert listed["prospect_journey"]["retired_at"] == retired.json()["retired_at"]
    assert listed["distributor_onboarding"]["retired_at"] is None
    refused = crm.post("/instances", json={"process": "prospect_journey", "prospect_id": "p2",
                                           "distributor_id": "d1"})
    assert refused.status_code == 409
    assert "retired on" in refused.json()["detail"] and "nothing was written" in (
        refused.json()["detail"])
    assert designer.post("/maps/prospect_jorney/retire", json={"reason": "x"}).status_code == 404
    assert designer.post("/maps/prospect_journey/retire", json={}).status_code == 422
    back = designer.post("/maps", files=map_files())
    (journey,) = [p for p in back.json()["processes"] if p["process_id"] == "prospect_journey"]
    assert journey["reinstated"] is True
    assert crm.post("/instances", json={"process": "prospect_journey", "prospect_id": "p2",
                                        "distributor_id": "d1"}).status_code == 201
