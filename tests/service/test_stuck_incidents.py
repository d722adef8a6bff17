"""`GET /analytics/stuck` lists the instances in incident as `nextmove stuck --json` does
(a step failed: they wait for an operator's retry), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli import app
from engine import InstanceIncident
from tests.conftest import FIXTURES
from tests.service._server import Running

PROCESS = "order_check"  # its condition fails when no amount was given


def test_stuck_lists_the_incidents_as_the_cli_does(api: Running, db_url: str) -> None:
    run = api
    run.engine.deploy([FIXTURES / "incidents" / "v1"])
    broken = []
    for prospect, distributor in (("p1", "d1"), ("p2", "d2")):
        instance = run.engine.start(PROCESS, prospect, distributor, {}).id
        with pytest.raises(InstanceIncident):
            run.engine.complete(instance, "take_order", actor=distributor)
        broken.append(instance)
    run.engine.start(PROCESS, "p3", "d1", {})  # waiting, not broken

    lead = run.client("lead")
    answer = lead.get("/analytics/stuck", params={"process": PROCESS})
    assert answer.status_code == 200, answer.text
    incidents = answer.json()["incidents"]
    assert sorted((i["instance_id"], i["step_id"]) for i in incidents) == [
        (broken[0], "route"), (broken[1], "route")]
    assert all("amount" in i["error"] for i in incidents)
    now = run.clock.now().isoformat()
    cli = CliRunner().invoke(app, ["stuck", "--process", PROCESS, "--json", "--db", db_url,
                                   "--now", now])
    assert cli.exit_code == 0, cli.output
    assert incidents == json.loads(cli.stdout)["incidents"]

    mine = lead.get("/analytics/stuck", params={"process": PROCESS, "distributor": "d1"})
    assert [i["instance_id"] for i in mine.json()["incidents"]] == [broken[0]]
