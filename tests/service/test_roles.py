"""Every bearer route for every role: allowed (a 2xx, or the route's own domain answer) or
refused with 403; and 401 for every route without a token or with a revoked one.

The table below is written out by hand — it is the specification — and is not read from the
service's code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

import service
from tests.conftest import FIXTURES
from tests.service._server import Running
from tests.service._world import World, map_files, start, world

ALL = {"designer", "integrator", "distributor", "sponsor", "lead", "reviewer", "admin"}


@dataclass
class Route:
    name: str
    allowed: set[str]
    call: Callable[[httpx.Client, Running, World], httpx.Response]
    ok: tuple[int, ...] = (200, 201)
    slow: bool = False
    tags: dict[str, Any] = field(default_factory=dict)


def _complete(owner: str, sponsor: str | None = None) -> Callable[..., httpx.Response]:
    def call(c: httpx.Client, run: Running, w: World) -> httpx.Response:
        target = start(run, f"x-{owner}", owner, sponsor)
        return c.post(f"/instances/{target}/complete", json={"step": "add_contact"})
    return call


def _skip(c: httpx.Client, run: Running, w: World) -> httpx.Response:
    target = start(run, "x-skip", "d1", "s1")
    return c.post(f"/instances/{target}/skip", json={"step": "add_contact", "reason": "no"})


def _vary(c: httpx.Client, run: Running, w: World) -> httpx.Response:
    target = start(run, "x-vary", "d3", "d1")
    return c.post(f"/instances/{target}/vary", json={"step": "add_contact", "note": "called"})


def _sign_off(c: httpx.Client, run: Running, w: World) -> httpx.Response:
    fixed_order = FIXTURES / "compliance" / "NM003" / "trigger.yaml"
    return c.post("/compliance/signoffs", files=[
        ("files", ("trigger.yaml", fixed_order.read_bytes(), "text/yaml"))], data={
        "finding": "NM003:nm003_trigger/income_disclosure",
        "reason": "The FTC expects the disclosure first."})


ROUTES = [
    Route("me", ALL, lambda c, r, w: c.get("/me")),
    Route("validate maps", {"designer", "reviewer", "admin"},
          lambda c, r, w: c.post("/maps/validate", files=map_files())),
    Route("deploy maps", {"designer", "admin"},
          lambda c, r, w: c.post("/maps", files=map_files())),
    Route("list maps", {"designer", "integrator", "lead", "reviewer", "admin"},
          lambda c, r, w: c.get("/maps")),
    Route("audit maps", {"designer", "reviewer", "admin"},
          lambda c, r, w: c.post("/compliance/audit", files=map_files())),
    Route("start", {"integrator", "admin"},
          lambda c, r, w: c.post("/instances", json={
              "process": "prospect_journey", "prospect_id": "new", "distributor_id": "d9"})),
    Route("bulk start", {"integrator", "admin"},
          lambda c, r, w: c.post("/instances/bulk", json={
              "process": "prospect_journey", "new": True, "prospects": [
                  {"prospect_id": "b1", "distributor_id": "d1"},
                  {"prospect_id": "b2", "distributor_id": "d2"}]})),
    Route("outcome", {"integrator", "admin"},
          lambda c, r, w: c.post("/outcomes", json={"prospect_id": "p-d1", "kind": "sale",
                                                    "amount": 40.0})),
    Route("show own (d1)", ALL - {"designer"}, lambda c, r, w: c.get(f"/instances/{w.d1}")),
    Route("show downline's (d3)", ALL - {"designer", "distributor"},
          lambda c, r, w: c.get(f"/instances/{w.d3}")),
    Route("show another's (d2)", {"integrator", "lead", "reviewer", "admin"},
          lambda c, r, w: c.get(f"/instances/{w.d2}")),
    Route("list", ALL - {"designer"}, lambda c, r, w: c.get("/instances")),
    Route("list d2's", {"integrator", "lead", "reviewer", "admin"},
          lambda c, r, w: c.get("/instances", params={"distributor": "d2"})),
    Route("complete own", {"distributor", "sponsor", "admin"}, _complete("d1", "s1")),
    Route("complete another's", {"admin"}, _complete("d2")),
    Route("skip own", {"distributor", "sponsor", "admin"}, _skip),
    Route("vary downline's", {"sponsor", "admin"}, _vary),
    Route("cards of d1", {"distributor", "sponsor", "reviewer", "admin"},
          lambda c, r, w: c.get("/cards", params={"distributor": "d1"})),
    Route("cards of d2", {"reviewer", "admin"},
          lambda c, r, w: c.get("/cards", params={"distributor": "d2"})),
    Route("funnel", {"lead", "reviewer", "admin"},
          lambda c, r, w: c.get("/analytics/funnel", params={"process": "prospect_journey"})),
    Route("stuck", {"lead", "reviewer", "admin"},
          lambda c, r, w: c.get("/analytics/stuck", params={"process": "prospect_journey",
                                                            "older_than": "PT1H"})),
    Route("report", {"lead", "reviewer", "admin"},
          lambda c, r, w: c.get("/analytics/report", params={"process": "prospect_journey"}),
          slow=True),
    Route("trail", {"reviewer", "admin"}, lambda c, r, w: c.get("/compliance/trail")),
    Route("verify", {"reviewer", "admin"}, lambda c, r, w: c.get("/compliance/verify")),
    Route("sign off a finding", {"reviewer", "admin"}, _sign_off,
          ok=(201, 409)),  # the second of admin and reviewer finds it signed off already
    Route("policies", {"lead", "reviewer", "admin"}, lambda c, r, w: c.get("/policies")),
    Route("rollback", {"lead", "admin"},
          lambda c, r, w: c.post("/policies/intro_video/rollback", json={"reason": "test"}),
          ok=(404,)),  # a freshly deployed hook has nothing to roll back to
    Route("learn", {"lead", "admin"},
          lambda c, r, w: c.post("/learning/learn", json={
              "process": "prospect_journey", "outcome": "sale", "dry_run": True}), slow=True),
    Route("evaluate", {"lead", "reviewer", "admin"},
          lambda c, r, w: c.post("/learning/evaluate", json={
              "policy": "uniform", "process": "prospect_journey", "outcome": "sale"}),
          slow=True),
    Route("sign-in link", {"distributor", "sponsor"},
          lambda c, r, w: c.post("/me/sign-in-link")),
    # last: nothing after it may start onboarding instances
    Route("retire a map", {"designer", "admin"},
          lambda c, r, w: c.post("/maps/distributor_onboarding/retire",
                                 json={"reason": "the brand onboards in person now"})),
]


def test_every_route_for_every_role(api: Running) -> None:
    w = world(api)
    wrong = []
    for route in ROUTES:
        for role in sorted(ALL):
            answer = route.call(api.client(role), api, w)
            if role in route.allowed and answer.status_code not in route.ok:
                wrong.append(f"{route.name} as {role}: {answer.status_code} "
                             f"{answer.text[:200]}")
            if role not in route.allowed:
                if answer.status_code != 403:
                    wrong.append(f"{route.name} as {role}: expected 403, got "
                                 f"{answer.status_code}")
                elif answer.headers["content-type"] != "application/problem+json":
                    wrong.append(f"{route.name} as {role}: 403 without Problem Details")
    assert not wrong, "\n".join(wrong)


def test_every_route_refuses_no_token_and_a_revoked_one(sqlite_api: Running) -> None:
    run = sqlite_api
    w = world(run)
    revoked = service.create_token(run.engine.store, "admin", "gone", run.clock)
    service.revoke_token(run.engine.store, revoked.info.id, run.clock)
    for route in ROUTES:
        for client in (run.client(), run.client(token=revoked.token),
                       run.client(token="nm_" + "x" * 43)):
            answer = route.call(client, run, w)
            assert answer.status_code == 401, (route.name, answer.text)
            assert answer.json()["type"].endswith("/unauthenticated")
            assert answer.headers["www-authenticate"] == "Bearer"
