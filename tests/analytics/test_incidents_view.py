"""An instance in incident waits for an operator, not for a person: `stuck` lists it (CLI,
API and the report, from one read), and the funnel counts it as waiting where its step
failed, never as a drop-out. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

import analytics
from analytics.report import collect, render_html
from engine import Engine, InstanceIncident, ProspectRef
from tests.conftest import FIXTURES

BROKEN = FIXTURES / "yaml" / "incidents" / "divide_by_zero.yaml"


def test_an_incident_is_listed_by_stuck_and_the_report_and_is_no_drop_out(
        engine: Engine) -> None:
    engine.deploy([BROKEN])
    instance = engine.start("inc_check", "pi1", "d7").id
    engine.start("inc_check", "pi2", "d7")
    engine.start("inc_check", "pi3", "d8")
    with pytest.raises(InstanceIncident):
        engine.complete(ProspectRef("pi1"), "ask", {"level": "low"})
    now = engine.clock.now()

    found = analytics.stuck(engine.store, "inc_check", now)
    (incident,) = found.to_dict()["incidents"]
    assert (incident["instance_id"], incident["distributor_id"], incident["step_id"]) == (
        instance, "d7", "route")  # the decision that failed
    assert "division by zero" in incident["error"]
    assert analytics.stuck(engine.store, "inc_check", now, distributor="d8").incidents == ()

    (ask,) = [s for s in analytics.funnel(engine.store, "inc_check").steps if s.step_id == "ask"]
    assert (ask.entered, ask.waiting, ask.dropped) == (3, 3, 0)

    data = collect(engine.store, "inc_check", now=now)
    assert [i["instance_id"] for i in data.incidents] == [instance]
    page = render_html(data)
    assert "Waiting for an operator" in page and "division by zero" in page
