"""The learning routes read the log as the CLI does: with a horizon, a case whose horizon has
not passed by now (the server's clock, or a simulation's recorded one) is left out and
counted, not taken as a failure."""

from __future__ import annotations

from tests.service._server import Running
from tests.service._world import start


def test_learn_and_evaluate_leave_out_cases_whose_horizon_has_not_passed(
        sqlite_api: Running) -> None:
    run = sqlite_api
    for n in range(3):  # three decisions at add_contact, each shown with its propensity
        run.engine.complete(start(run, f"p{n}", "d1"), "add_contact", actor="d1")
    lead = run.client("lead")
    asked = {"process": "prospect_journey", "outcome": "customer_order",
             "horizon": "P14D"}
    judged = lead.post("/learning/evaluate", json={"policy": "uniform", **asked}).json()
    learned = lead.post("/learning/learn", json={**asked, "dry_run": True}).json()
    for found in (judged, learned):
        assert found["not_yet_observed"] >= 3, found
        assert found["observed_until"] is not None
    assert "first_contact_message" not in {h["hook"] for h in judged["hooks"]}
