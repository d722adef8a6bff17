"""Who may act on a step: the owner of its card (`service.roles`). A step with role sponsor
is the instance's sponsor's card, any other the instance's distributor's; the API's steps
and the card page's taps follow the one rule, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from lxml import html

from engine.store.kinds import EventKind
from nextmove import open_engine
from tests.service._server import Running
from tests.service._world import start

ONBOARDING = "distributor_onboarding"
CHECK_IN = {"step": "sponsor_check_in"}


def _onboarding(run: Running, distributor: str, sponsor: str | None = None) -> int:
    """A new distributor's onboarding, waiting at first_sale (the sponsor's check-in comes
    ten days later)."""
    context = {"sponsor_id": sponsor} if sponsor else {}
    started = run.engine.start(ONBOARDING, distributor, distributor, context, new=True).id
    run.engine.complete(started, "welcome", actor=distributor)
    run.engine.complete(started, "add_first_prospects", actor=distributor)
    return started


def _steps(run: Running, instance: int, step: str) -> list[tuple[str, str | None]]:
    return [(e.kind, e.actor) for e in run.engine.history(instance)
            if e.step_id == step and e.kind != EventKind.ENTERED]


def test_a_sponsor_step_is_the_sponsors_and_a_distributor_step_the_distributors(
        api: Running, db_url: str) -> None:
    run = api
    start(run, "p-d1", "d1", "s1")  # d1 is s1's downline, and so is d3 below
    onboarding = _onboarding(run, "d3", "d1")  # d1 (a distributor token) sponsors d3
    alone = _onboarding(run, "d2")  # no sponsor: its check-in is no scoped caller's
    d3 = run.client(token=run.token("distributor", "d3"))
    d2 = run.client(token=run.token("distributor", "d2"))
    d1 = run.client("distributor")
    # d3's first step goes through the server, which keeps the instance in memory...
    assert d3.post(f"/instances/{onboarding}/skip",
                   json={"step": "product_training"}).status_code == 200
    # ...and another process (a worker) fires the stuck timer: the check-in waits on d1.
    worker = open_engine(db_url, clock=run.clock)
    try:
        run.clock.advance(timedelta(days=10))
        assert sorted(f.step_id for f in worker.tick()) == ["Event_first_sale_stuck"] * 2
    finally:
        worker.store.dispose()
    assert [c.step_id for c in run.engine.cards("d1") if c.instance_id == onboarding] == [
        "sponsor_check_in"]

    for verb, extra in (("complete", {}), ("skip", {}), ("vary", {"note": "called"})):
        refused = d3.post(f"/instances/{onboarding}/{verb}", json={**CHECK_IN, **extra})
        assert refused.status_code == 403, (verb, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert d2.post(f"/instances/{alone}/{verb}",
                       json={**CHECK_IN, **extra}).status_code == 403
    assert _steps(run, onboarding, "sponsor_check_in") == []
    # d1 holds no card on d3's own steps
    assert d1.post(f"/instances/{onboarding}/skip",
                   json={"step": "first_sale"}).status_code == 403
    assert _steps(run, onboarding, "first_sale") == []

    # The sponsor acts on the card that is theirs, and a retry gets the stored answer.
    done = d1.post(f"/instances/{onboarding}/complete", json=CHECK_IN,
                   headers={"Idempotency-Key": "check-in"})
    assert done.status_code == 200, done.text
    again = d1.post(f"/instances/{onboarding}/complete", json=CHECK_IN,
                    headers={"Idempotency-Key": "check-in"})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert _steps(run, onboarding, "sponsor_check_in") == [(EventKind.COMPLETED, "d1")]
    # A step that no longer waits: the distributor hears "not waiting" (409), as before.
    late = d3.post(f"/instances/{onboarding}/complete", json=CHECK_IN)
    assert late.status_code == 409 and late.json()["type"].endswith("/refused")
    # d3 still acts on their own step; admin on a check-in without a sponsor.
    assert d3.post(f"/instances/{onboarding}/skip",
                   json={"step": "first_sale"}).status_code == 200
    assert run.client("admin").post(f"/instances/{alone}/complete",
                                    json=CHECK_IN).status_code == 200


def test_a_sponsor_token_acts_on_its_downlines_sponsor_steps(sqlite_api: Running) -> None:
    run = sqlite_api
    start(run, "p-d1", "d1", "s1")
    onboarding = _onboarding(run, "d3", "d1")
    run.clock.advance(timedelta(days=10))
    run.engine.tick()
    s1 = run.client("sponsor")  # d1, the check-in's owner, is s1's downline
    assert s1.post(f"/instances/{onboarding}/skip", json=CHECK_IN).status_code == 200
    assert run.client("sponsor").post(  # so is d3, whose step first_sale is
        f"/instances/{onboarding}/skip", json={"step": "first_sale"}).status_code == 200
    outsider = run.client(token=run.token("sponsor", "s9"))
    other = _onboarding(run, "d5", "d1")
    assert outsider.post(f"/instances/{other}/skip",
                         json={"step": "first_sale"}).status_code == 403


def test_the_card_page_refuses_a_tap_on_a_step_that_is_not_the_callers(
        sqlite_api: Running) -> None:
    run = sqlite_api
    onboarding = _onboarding(run, "d3", "d1")
    run.clock.advance(timedelta(days=10))
    run.engine.tick()

    d3 = run.client(follow_redirects=False)  # the distributor taps their sponsor's card
    d3.post("/login", data={"token": run.token("distributor", "d3")})
    csrf = html.fromstring(d3.get("/me/cards").text).xpath("//input[@name='csrf']/@value")[0]
    refused = d3.post("/me/cards/act", data={"csrf": csrf, "instance_id": str(onboarding),
                                             "step": "sponsor_check_in", "choice": "skip"})
    assert refused.headers["location"] == "/me/cards?problem=403"
    assert _steps(run, onboarding, "sponsor_check_in") == []

    d1 = run.client(follow_redirects=False)  # the sponsor holds a card on the instance
    d1.post("/login", data={"token": run.tokens["distributor"]})
    page = html.fromstring(d1.get("/me/cards").text)
    (form,) = [f for f in page.xpath("//form[@action='/me/cards/act']")
               if f.xpath(".//input[@name='step']/@value") == ["sponsor_check_in"]]
    fields = {i.get("name"): i.get("value") for i in form.xpath(".//input[@type='hidden']")}
    forged = d1.post("/me/cards/act", data={**fields, "step": "first_sale", "choice": "skip"})
    assert forged.headers["location"] == "/me/cards?problem=403"  # but not on d3's steps
    assert _steps(run, onboarding, "first_sale") == []
    tapped = d1.post("/me/cards/act", data={**fields, "choice": "skip"})
    assert tapped.headers["location"] == "/me/cards?done=skip"
    assert _steps(run, onboarding, "sponsor_check_in") == [(EventKind.SKIPPED, "d1")]
