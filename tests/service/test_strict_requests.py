"""A request that says something the route does not take is refused with Problem Details,
not half-read: an unknown body field or query parameter (with the nearest known name), a
cursor or a duration out of range, a route or a method that does not exist, a bad
Idempotency-Key."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from tests.service._server import SECRET, Running
from tests.service._world import start

PROBLEM = "application/problem+json"


def _invalid(answer: httpx.Response, *words: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["type"].endswith("/invalid-input")
    for word in words:
        assert word in answer.json()["detail"], (word, answer.json()["detail"])


def test_an_unknown_body_field_is_refused_with_the_nearest_name(sqlite_api: Running) -> None:
    run = sqlite_api
    instance = start(run, "p1", "d1")
    crm, d1 = run.client("integrator"), run.client("distributor")
    _invalid(crm.post("/outcomes", json={"prospect_id": "p1", "kind": "sale", "amout": 40}),
             "'amout'", "did you mean 'amount'?")
    assert not [e for e in run.engine.history(instance) if e.kind == "outcome"]
    _invalid(crm.post("/instances", json={"process": "prospect_journey", "prospect_id": "p2",
                                          "distributor_id": "d1", "sponsor_id": "s1"}),
             "'sponsor_id'", "did you mean 'context.sponsor_id'?")
    _invalid(crm.post("/instances/bulk", json={"process": "prospect_journey", "prospects": [
        {"prospect_id": "p3", "distributor_id": "d1", "sponsor_id": "s1"}]}),
             "prospects.0", "'context.sponsor_id'")
    assert run.engine.list_instances(prospect_id="p2") == []
    # a person's step: the short path hands it to FastAPI, which refuses it the same way
    _invalid(d1.post(f"/instances/{instance}/complete",
                     json={"step": "add_contact", "usd": "first_contact_checkin_short"}),
             "'usd'", "did you mean 'used'?")
    assert "add_contact" in run.engine.get(instance).waiting_steps
    _invalid(run.client("lead").post("/policies/intro_video/rollback", json={"reson": "x"}),
             "did you mean 'reason'?")
    _invalid(run.client("designer").post("/maps/prospect_journey/retire",
                                         json={"reason": "x", "by": "me"}), "'by'")


def test_a_webhook_event_may_carry_fields_of_its_own(sqlite_api: Running) -> None:
    run = sqlite_api
    start(run, "p1", "d1")
    body = json.dumps({"id": "evt-1", "prospect_id": "p1", "sender_field": 1}).encode()
    ts = str(int(run.clock.now().timestamp()))
    sig = "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body,
                               hashlib.sha256).hexdigest()
    answer = run.client().post("/events/video_played", content=body, headers={
        "X-Nextmove-Source": "vimeo", "X-Nextmove-Timestamp": ts,
        "X-Nextmove-Signature": sig, "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text


def test_an_unknown_query_parameter_is_refused_on_every_route(sqlite_api: Running) -> None:
    run = sqlite_api
    start(run, "p1", "d1")
    instance = start(run, "p2", "d2")
    crm = run.client("integrator")
    typo = crm.get("/instances", params={"distributer": "d1"})
    _invalid(typo, "'distributer'", "did you mean 'distributor'?")
    assert typo.json()["parameter"] == "distributer" and "distributor" in typo.json()["known"]
    for name in ("offset", "after"):
        _invalid(crm.get("/instances", params={name: "2"}), f"'{name}'")
    assert len(crm.get("/instances", params={"distributor": "d1", "limit": 5}).json()) == 1
    # a person's step (its short path), a page, a route without parameters, analytics
    _invalid(run.client("admin").post(f"/instances/{instance}/complete?as=d2",
                                      json={"step": "add_contact"}), "'as'")
    assert "add_contact" in run.engine.get(instance).waiting_steps
    _invalid(run.client().get("/healthz", params={"verbose": "1"}), "'verbose'")
    _invalid(run.client("lead").get("/analytics/stuck", params={
        "process": "prospect_journey", "olderthan": "P1D"}), "did you mean 'older_than'?")
    _invalid(run.client("distributor").get("/cards", params={"limt": 5}),
             "did you mean 'limit'?")
    assert run.client("distributor").get("/cards", params={"limit": 5}).status_code == 200


def test_out_of_range_cursors_and_durations_are_refused(sqlite_api: Running) -> None:
    run = sqlite_api
    start(run, "p1", "d1")
    d1 = run.client("distributor")
    for cursor in ("999999999999999999.3", "-999999999999999999.3", "1.99999999999999999999",
                   "+1.3", "1.-3"):
        _invalid(d1.get("/cards", params={"after": cursor}), "not a page cursor")
    lead = run.client("lead")
    for older_than in ("P999999999D", "P9999999999D", "PT99999999999999999999H"):
        _invalid(lead.get("/analytics/stuck", params={
            "process": "prospect_journey", "older_than": older_than}), "longer than 100 years")
    _invalid(lead.post("/learning/evaluate", json={
        "policy": "uniform", "process": "prospect_journey", "outcome": "sale",
        "horizon": "P999999999D"}), "horizon")
    assert lead.get("/analytics/stuck", params={"process": "prospect_journey",
                                                "older_than": "P3650D"}).status_code == 200


def test_no_route_and_a_wrong_method_are_problem_details(sqlite_api: Running) -> None:
    client = sqlite_api.client("distributor")
    missing = client.get("/no/such/route")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert missing.json()["type"].endswith("/not-found")
    assert missing.json()["instance"] == "/no/such/route"
    wrong = client.delete("/cards")
    assert wrong.status_code == 405 and wrong.headers["content-type"] == PROBLEM
    assert wrong.json()["status"] == 405 and wrong.json()["title"] == "Method Not Allowed"
    assert wrong.headers["allow"] == "GET"


def test_a_bad_idempotency_key_is_invalid_input_as_documented(sqlite_api: Running) -> None:
    crm = sqlite_api.client("integrator")
    body = {"process": "prospect_journey", "prospect_id": "p1", "distributor_id": "d1"}
    for key in ("", "k" * 201):
        _invalid(crm.post("/instances", json=body, headers={"Idempotency-Key": key}),
                 "Idempotency-Key")
    assert sqlite_api.engine.list_instances(prospect_id="p1") == []
