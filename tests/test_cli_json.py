"""The --json contract: every command's output is an object with `schema_version`, valid
against its JSON Schema in docs/json-schemas/, with the same key names everywhere.

One small real SQLite database (the LifeVantage maps, a short simulation, an imported log,
an incident) is driven through every command with --json; each output is validated against
its schema. `demo --json` is checked in tests/test_demo.py (it is too slow to run twice).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from cli import app
from commands._output import SCHEMA_VERSION
from tests.conftest import FIXTURES, LOGS, REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
SCHEMAS = REPO / "docs" / "json-schemas"
T0 = "2026-01-05T09:00:00Z"
# Commands whose --json output is checked elsewhere or cannot run here (a server, a loop).
ELSEWHERE = {"demo": "tests/test_demo.py", "worker": "one JSON object per line, a loop"}
# Ids are named `<thing>_id`, everywhere; these bare names are the old, inconsistent ones.
BARE_IDS = {"id", "prospect", "instance", "distributor", "process", "step", "rule"}
# Objects whose keys are data (the user's context, step data, counts by name), not ours.
FREE_FORM = {"context", "data", "outcomes", "per_week", "counts", "features", "why_not",
             "by_kind", "activities", "skipped", "summary", "properties"}

runner = CliRunner()


def run(*args: str, code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"], env={"COLUMNS": "200"})
    assert result.exit_code == code, (args, result.output)
    data = json.loads(result.stdout)
    assert isinstance(data, dict), args
    return data


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each command's --json output, by schema name, from one small real database."""
    tmp = tmp_path_factory.mktemp("contract")
    db = ("--db", str(tmp / "n.db"))
    sim = ("--db", str(tmp / "sim.db"))
    now = ("--now", T0)
    got: dict[str, dict[str, Any]] = {}
    got["validate"] = run("validate", str(LIFEVANTAGE))
    got["validate-problems"] = run("validate", str(FIXTURES / "yaml" / "many_problems.yaml"),
                                   code=3)
    got["export"] = run("export", str(LIFEVANTAGE / "prospect_journey.yaml"), "-o",
                        str(tmp / "journey.bpmn"))
    got["deploy"] = run("deploy", str(LIFEVANTAGE), *db)
    got["start"] = run("start", "prospect_journey", "-p", "p1", "-d", "d1", "--context",
                       '{"market": "US", "locale": "en-US"}', *db, *now)
    rows = tmp / "people.csv"
    rows.write_text("prospect_id,distributor_id,market\np2,d1,US\np3,d2,MX\n,d2,US\n",
                    encoding="utf-8")
    got["start-bulk"] = run("start", "prospect_journey", "--bulk", str(rows), *db, *now, code=1)
    got["cards"] = run("cards", "-d", "d1", *db, *now)
    got["complete"] = run("complete", "add_contact", "-p", "p1", *db, *now)
    got["skip"] = run("skip", "add_contact", "-p", "p2", "--reason", "met", *db, *now)
    got["vary"] = run("vary", "add_contact", "-p", "p3", "--note", "called", *db, *now)
    run("complete", "share_intro", "-p", "p1", *db, *now)
    got["signal"] = run("signal", "video_played", "-p", "p1", "--id", "e1", *db, *now)
    got["signal-held"] = run("signal", "video_played", "-p", "p9", "--id", "e2", *db, *now)
    run("deploy", str(FIXTURES / "bpmn" / "signals" / "signal_catch.bpmn"), *db)
    got["signal-broadcast"] = run("signal", "price_change", "--broadcast", *db, *now)
    got["outcome"] = run("outcome", "sale", "-p", "p1", "--amount", "80", *db, *now)
    got["show"] = run("show", "-p", "p1", *db)
    got["list"] = run("list", *db)
    got["tick"] = run("tick", *db, "--now", "2026-01-20T09:00:00Z")
    got["recommend"] = run("recommend", "--hook", "intro_video", "--context",
                           '{"market": "US"}', "--seed", "1", *db)
    got["policy-history"] = run("policy", "history", *db)
    got["policy-activate"] = run("policy", "activate", "intro_video", "1", *db)
    got["funnel"] = run("funnel", "--process", "prospect_journey", *db)
    got["stuck"] = run("stuck", "--process", "prospect_journey", "--older-than", "PT1H", *db,
                       "--now", "2026-01-30T09:00:00Z")
    got["indicators"] = run("indicators", *db)
    got["funnel-person"] = run("funnel", "--process", "prospect_journey", "--sponsor", "d1",
                               *db)
    got["stuck-person"] = run("stuck", "--process", "prospect_journey", "--older-than", "PT1H",
                              "--distributor", "d1", *db, "--now", "2026-01-30T09:00:00Z")
    got["indicators-person"] = run("indicators", "--distributor", "d1", *db)
    got["cohorts"] = run("cohorts", *db)
    got["report"] = run("report", "--process", "prospect_journey", "-o",
                        str(tmp / "report.html"), "--trail", *db, *now)
    got["report-plain"] = run("report", "--process", "prospect_journey", "-o",
                              str(tmp / "plain.html"), *db, *now)
    got["report-person"] = run("report", "--process", "prospect_journey", "--sponsor", "d1",
                               "-o", str(tmp / "report-d1.html"), *db, *now)
    got["export-log"] = run("export-log", "--process", "prospect_journey", "-o",
                            str(tmp / "log.csv"), *db)
    got["import-log"] = run("import-log", str(LOGS / "running-example.xes"), "--process",
                            "history", *db)
    got["audit"] = run("audit", str(LIFEVANTAGE))
    got["audit-findings"] = run("audit", str(FIXTURES / "compliance" / "NM001"),
                                str(FIXTURES / "compliance" / "acks"), "--fail-on", "info",
                                code=1)
    trigger = str(FIXTURES / "compliance" / "NM001" / "trigger.yaml")
    found = run("audit", trigger, "--fail-on", "info", *db, code=1)["findings"][0]
    got["audit-signoff"] = run("audit", "signoff", found["finding_id"], trigger, "--reviewer",
                               "Ana Ruiz", "--reason", "the brand must show this by law", *db)
    got["audit-signed"] = run("audit", trigger, "--fail-on", "info", *db, code=1)
    got["audit-verify"] = run("audit", "--verify", *db)
    got["audit-trail"] = run("audit", "--trail", *db)
    got["token-create"] = run("token", "create", "--role", "lead", "--subject", "ann", *db)
    got["token-list"] = run("token", "list", *db)
    got["token-revoke"] = run("token", "revoke", str(got["token-create"]["token_id"]), *db)
    got["simulate"] = run("simulate", "--distributors", "12", "--days", "16", "--seed", "3",
                          *sim)
    got["variants"] = run("variants", "--process", "prospect_journey", "--outcome",
                          "customer_order", *sim)
    got["learn"] = run("learn", "--process", "prospect_journey", "--outcome",
                       "customer_order", "--dry-run", *sim)
    got["evaluate"] = run("evaluate", "uniform", "--process", "prospect_journey", "--outcome",
                          "customer_order", *sim)
    got["drift"] = run("drift", "--process", "prospect_journey", "--outcome", "customer_order",
                       *sim)
    got["drift-open"] = run("drift", "--open", *sim)
    got["survival"] = run("survival", *sim)
    got["policy-refresh"] = run("policy", "refresh", "--process", "prospect_journey",
                                "--outcome", "customer_order", *sim)
    incidents = ("--db", str(tmp / "incident.db"))
    run("deploy", str(FIXTURES / "incidents" / "v1"), *incidents)
    run("start", "order_check", "-p", "p1", "-d", "d1", *incidents, *now)
    got["error"] = run("complete", "take_order", "-p", "p1", *incidents, *now, code=1)
    run("deploy", str(FIXTURES / "incidents" / "v2"), *incidents)
    got["stuck-incident"] = run("stuck", "--process", "order_check", *incidents, *now)
    got["migrate-instance"] = run("migrate-instance", "-p", "p1", "--to-version", "2",
                                  *incidents, *now)
    got["retry"] = run("retry", "1", *incidents, *now)
    got["retire"] = run("retire", "order_check", "--reason", "orders are checked in the CRM",
                        *incidents)
    if os.environ.get("NEXTMOVE_JSON_SAMPLES"):  # to look at, when a schema is written
        folder = Path(os.environ["NEXTMOVE_JSON_SAMPLES"])
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in got.items():
            (folder / f"{name}.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    return got


def schema_of(sample: str) -> str:
    """The schema a sample is checked against: its command (`signal-held` is `signal`)."""
    variants = {"start-bulk": "start", "signal-held": "signal", "signal-broadcast": "signal",
                "drift-open": "drift", "audit": "audit-maps", "audit-findings": "audit-maps",
                "audit-verify": "audit-maps", "audit-trail": "audit-maps",
                "audit-signed": "audit-maps",
                "stuck-incident": "stuck", "stuck-person": "stuck",
                "funnel-person": "funnel", "indicators-person": "indicators",
                "report-person": "report", "report-plain": "report",
                "validate-problems": "validate"}
    return variants.get(sample, sample)


def load_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    return schema


def json_commands() -> set[str]:
    """Every command that takes --json, named as its schema is (`policy history` →
    `policy-history`)."""
    found: set[str] = set()

    def visit(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):  # a group (typer vendors its own click)
            for name, sub in command.commands.items():
                visit(sub, [*path, name])
        elif any("--json" in p.opts for p in command.params):
            found.add("-".join(path))

    visit(typer.main.get_command(app), [])
    return found


def test_every_command_with_json_has_a_schema_and_is_checked_here() -> None:
    commands = json_commands()
    assert {"cards", "start", "policy-history", "token-list", "audit-maps"} <= commands
    schemas = {p.stem for p in SCHEMAS.glob("*.json")}
    assert commands - schemas == set()
    assert schemas - commands == {"error"}  # the shape of any command's error


def test_the_schemas_are_valid_json_schemas() -> None:
    for path in SCHEMAS.glob("*.json"):
        schema = load_schema(path.stem)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["title"].startswith("nextmove ") and schema["description"], path


def test_every_output_is_an_object_valid_against_its_commands_schema(
    outputs: dict[str, dict[str, Any]],
) -> None:
    checked = {schema_of(name) for name in outputs}
    assert json_commands() - checked == set(ELSEWHERE) | {"policy-rollback"}
    for name, data in outputs.items():
        assert data["schema_version"] == SCHEMA_VERSION
        assert next(iter(data)) == "schema_version", name
        validator = jsonschema.Draft202012Validator(load_schema(schema_of(name)))
        problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                    for e in validator.iter_errors(data)]
        assert problems == [], (name, problems[:5])


def test_a_renamed_key_breaks_the_schema(outputs: dict[str, dict[str, Any]]) -> None:
    card = dict(outputs["cards"]["cards"][0])
    card["prospect"] = card.pop("prospect_id")
    validator = jsonschema.Draft202012Validator(load_schema("cards"))
    assert not validator.is_valid({**outputs["cards"], "cards": [card]})
    assert not validator.is_valid({**outputs["cards"], "schema_version": 2})


def test_ids_are_named_the_same_way_everywhere(outputs: dict[str, dict[str, Any]]) -> None:
    def bare(value: Any, where: str) -> list[str]:
        if isinstance(value, dict):
            found = [f"{where}.{key}" for key in value if key in BARE_IDS]
            for key, item in value.items():
                if key not in FREE_FORM:
                    found += bare(item, f"{where}.{key}")
            return found
        if isinstance(value, list):
            return [hit for item in value for hit in bare(item, f"{where}[]")]
        return []

    assert [hit for name, data in outputs.items() for hit in bare(data, name)] == []
    assert outputs["show"]["instance_id"] == outputs["start"]["instance_id"]
    assert outputs["cards"]["cards"][0]["prospect_id"] == "p1"
    assert outputs["signal"]["prospect_id"] == "p1"
    assert {i["instance_id"] for i in outputs["list"]["instances"]} >= {
        outputs["start"]["instance_id"]}
    assert outputs["stuck-incident"]["incidents"][0]["instance_id"] == 1
    assert outputs["error"]["code"] == "refused" and outputs["error"]["instance_id"] == 1
    signed = [f for f in outputs["audit-signed"]["findings"] if f["signoff"]]
    assert [f["signoff"]["signoff_id"] for f in signed] == [outputs["audit-signoff"]["signoff_id"]]


def test_the_documentation_lists_every_schema() -> None:
    text = (REPO / "docs" / "json.md").read_text(encoding="utf-8")
    for path in SCHEMAS.glob("*.json"):
        assert re.search(rf"`json-schemas/{re.escape(path.name)}`", text), path.name


def test_per_person_views_say_whose_figures_they_are(outputs: dict[str, dict[str, Any]]) -> None:
    # d1 sponsors nobody here: their downline is themself
    assert outputs["funnel"]["scope"] is None and outputs["indicators"]["scope"] is None
    assert outputs["funnel-person"]["scope"] == {"distributor_id": None, "sponsor_id": "d1",
                                                 "distributor_ids": ["d1"]}
    assert outputs["indicators-person"]["scope"]["distributor_ids"] == ["d1"]
    assert [d["distributor_id"] for d in outputs["indicators-person"]["distributors"]] == ["d1"]
    assert {d["distributor_id"] for d in outputs["indicators"]["distributors"]} > {"d1"}
    assert outputs["funnel-person"]["instances"] < outputs["funnel"]["instances"]
    assert {g["distributor_id"] for g in outputs["stuck-person"]["groups"]} <= {"d1"}
    assert outputs["report-plain"]["trail"] is None  # for everybody, only with --trail
    person = outputs["report-person"]
    assert person["scope"]["sponsor_id"] == "d1"
    assert [d["distributor_id"] for d in person["distributors"]] == ["d1"]
    assert person["trail"]["steps"] and outputs["report"]["trail"]["contractors"] >= \
        person["trail"]["contractors"]
