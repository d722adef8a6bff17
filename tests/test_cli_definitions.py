"""`nextmove validate/export/deploy/start/complete/skip/show/list` through typer's CliRunner, on
real files and a real SQLite database. User mistakes exit 1 with a message, never a traceback.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from typer.testing import CliRunner, Result

from cli import app
from tests.conftest import FIXTURES, REPO

PROCESSES = REPO / "processes"
LIFEVANTAGE = PROCESSES / "lifevantage"
JOURNEY = LIFEVANTAGE / "prospect_journey.yaml"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
T0 = "2026-01-05T09:00:00Z"
T1 = "2026-01-05T10:00:00Z"

runner = CliRunner()


def run(args: list[str], code: int = 0) -> Result:
    """Invoke the CLI; check the exit code and that it ended on purpose, not by a crash."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.output
    return result


def run_json(args: list[str], code: int = 0) -> Any:
    return json.loads(run([*args, "--json"], code).stdout)


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "cli.db")
    run(["deploy", LIFEVANTAGE, "--db", path])
    return path


# -- validate ----------------------------------------------------------------------------------


def test_validate_the_repository_processes() -> None:
    text = run(["validate", PROCESSES]).stdout
    assert text.splitlines()[-1] == "ok: 3 file(s), 2 process(es), 0 error(s), 0 warning(s)"

    report = run_json(["validate", PROCESSES])
    assert set(report) == {"schema_version", "ok", "files", "process_ids", "problems"}
    assert report["ok"] is True
    assert sorted(Path(f).name for f in report["files"]) == [
        "catalog.yaml", "distributor_onboarding.bpmn", "prospect_journey.yaml"]
    assert sorted(report["process_ids"]) == ["distributor_onboarding", "prospect_journey"]
    assert report["problems"] == []


@pytest.fixture
def broken(tmp_path: Path) -> tuple[Path, set[tuple[str, int, str]]]:
    """A folder of broken files and every (file, line, code-or-element) problem expected."""
    folder = tmp_path / "broken"
    folder.mkdir()
    expected: set[tuple[str, int, str]] = set()
    # a YAML map whose every bad line says what is wrong with it ("# expect: CODE")
    yaml_map = shutil.copy(FIXTURES / "yaml" / "many_problems.yaml", folder)
    for n, line in enumerate(Path(yaml_map).read_text().splitlines(), start=1):
        if found := re.search(r"# expect: ([\w-]+)", line):
            expected.add(("many_problems.yaml", n, found.group(1)))
    # a modeler's BPMN with five problems, each on its element's line
    bpmn = Path(shutil.copy(FIXTURES / "bpmn" / "invalid" / "several_problems.bpmn", folder))
    lines = bpmn.read_text().splitlines()
    for element in ("gw_interest", "Flow_high", "push_to_crm", "compute_score", "send_gift"):
        n = next(i for i, text in enumerate(lines, start=1) if f'id="{element}"' in text)
        expected.add(("several_problems.bpmn", n, element))
    # YAML that does not parse: a tab where indentation was meant
    (folder / "tabbed.yaml").write_text("process: tabbed\nsteps:\n  - id: a\n\tnext: b\n")
    expected.add(("tabbed.yaml", 4, "yaml-syntax"))
    assert len(expected) == 14
    return folder, expected


def test_validate_lists_every_problem_of_a_broken_folder_with_file_and_line(
    broken: tuple[Path, set[tuple[str, int, str]]],
) -> None:
    folder, expected = broken

    report = run_json(["validate", folder], code=3)
    assert report["ok"] is False
    assert report["process_ids"] == []
    assert len(report["files"]) == 3
    found = {
        (Path(p["file"]).name, p["line"],
         p["element"] if p["file"].endswith(".bpmn") else p["code"])
        for p in report["problems"]}
    assert found == expected
    assert len(report["problems"]) == len(expected)
    assert all(p["severity"] == "error" and p["message"] for p in report["problems"])

    text = run(["validate", folder], code=3).stdout
    for name, line, _ in expected:
        assert f"{folder / name}:{line}:" in text, (name, line)
    assert len([t for t in text.splitlines() if t.startswith("error ")]) == len(expected)
    assert "did you mean 'conversation'?" in text
    assert text.splitlines()[-1] == "failed: 3 file(s), 0 process(es), 14 error(s), 0 warning(s)"


# -- export ------------------------------------------------------------------------------------


def test_export_writes_bpmn_that_validates(tmp_path: Path) -> None:
    target = tmp_path / "journey.bpmn"

    text = run(["export", JOURNEY, "-o", target]).stdout
    assert text.strip() == f"wrote {target} (process prospect_journey)"
    root = etree.parse(str(target)).getroot()
    assert (etree.QName(root).namespace, etree.QName(root).localname) == (BPMN_NS, "definitions")
    (process,) = root.findall(f"{{{BPMN_NS}}}process")
    assert (process.get("id"), process.get("isExecutable")) == ("prospect_journey", "true")
    ids = {el.get("id") for el in process.iter()}
    assert {"add_contact", "share_intro", "conversation", "enroll", "not_now"} <= ids

    report = run_json(["validate", target])
    assert (report["ok"], report["process_ids"], report["problems"]) == (
        True, ["prospect_journey"], [])
    # the export runs: deploy it and start a journey on it
    db = str(tmp_path / "export.db")
    deployment = run_json(["deploy", target, "--db", db])
    (deployed,) = deployment["processes"]
    assert deployment["catalogs"] == []
    assert (deployed["process_id"], deployed["source_file"]) == ("prospect_journey", str(target))
    started = run_json(["start", "prospect_journey", "-p", "ann", "-d", "d1", "--db", db])
    assert [w["step_id"] for w in started["waiting"]] == ["add_contact"]


def test_export_json_and_default_output_next_to_the_map(tmp_path: Path) -> None:
    source = Path(shutil.copy(JOURNEY, tmp_path))
    report = run_json(["export", source])
    target = tmp_path / "prospect_journey.bpmn"
    assert report == {"schema_version": 1, "process_id": "prospect_journey",
                      "output": str(target), "bytes": target.stat().st_size,
                      "flavour": "nextmove"}


def test_export_writes_the_flavour_a_modeler_shows(tmp_path: Path) -> None:
    """`--flavour camunda8` writes zeebe: properties; a BPMN map can be rewritten too, and
    both load as the original does (tests/engine/test_flavours.py compares them in depth)."""
    target = tmp_path / "journey.bpmn"
    text = run(["export", JOURNEY, "-o", target, "--flavour", "camunda8"]).stdout
    assert text.strip() == f"wrote {target} (process prospect_journey, camunda8 flavour)"
    assert b"<zeebe:property name=\"hook\"" in target.read_bytes()
    assert b"nextmove:property" not in target.read_bytes()

    report = run_json(["export", target, "--flavour", "spiff"])
    spiff = tmp_path / "journey.spiff.bpmn"
    assert report == {"schema_version": 1, "process_id": "prospect_journey",
                      "output": str(spiff), "bytes": spiff.stat().st_size, "flavour": "spiff"}
    assert b"<spiffworkflow:property name=\"hook\"" in spiff.read_bytes()
    assert run_json(["validate", spiff])["ok"] is True

    run(["export", target, "--flavour", "camunda9"], code=2)
    result = run(["export", target, "-o", target], code=3)
    assert "--output must differ" in result.stderr


def test_export_of_a_broken_map_lists_its_problems_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.bpmn"
    result = run(["export", FIXTURES / "yaml" / "many_problems.yaml", "-o", target], code=3)
    assert "many_problems.yaml:13: steps[2].wait[0].next: no step named 'conversaton'" \
        in result.stderr
    assert len(result.stderr.strip().splitlines()) == 8
    assert not target.exists()


# -- deploy ------------------------------------------------------------------------------------


def test_deploying_the_same_maps_twice_changes_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "deploy.db")
    first = run_json(["deploy", LIFEVANTAGE, "--db", db])
    again = run_json(["deploy", LIFEVANTAGE, "--db", db])

    assert set(first) == {"schema_version", "processes", "catalogs", "warnings"}
    assert [(d["process_id"], d["version"], d["created"]) for d in first["processes"]] == [
        ("distributor_onboarding", 1, True), ("prospect_journey", 1, True)]
    assert [(d["process_id"], d["version"], d["created"]) for d in again["processes"]] == [
        ("distributor_onboarding", 1, False), ("prospect_journey", 1, False)]
    assert [(d["definition_id"], d["content_hash"]) for d in again["processes"]] == [
        (d["definition_id"], d["content_hash"]) for d in first["processes"]]
    assert [(c["name"], c["version"], c["created"]) for c in first["catalogs"]] == [
        ("lifevantage-us", 1, True)]
    assert [(c["name"], c["version"], c["created"]) for c in again["catalogs"]] == [
        ("lifevantage-us", 1, False)]
    assert run(["deploy", LIFEVANTAGE, "--db", db]).stdout.splitlines() == [
        f"unchanged: distributor_onboarding v1 ({LIFEVANTAGE / 'distributor_onboarding.bpmn'})",
        f"unchanged: prospect_journey v1 ({JOURNEY})",
        f"unchanged: catalog lifevantage-us v1 ({LIFEVANTAGE / 'catalog.yaml'})",
    ]


def test_deploying_a_broken_folder_deploys_nothing(
    tmp_path: Path, broken: tuple[Path, set[tuple[str, int, str]]]
) -> None:
    db = str(tmp_path / "nothing.db")
    error = run_json(["deploy", broken[0], "--db", db], code=3)
    assert error["error"] == "DefinitionErrors"
    assert len(error["problems"]) == 14
    assert run_json(["list", "--db", db])["instances"] == []
    assert run(["list", "--db", db]).stdout == "no instances match\n"
    said = run(["list", "--status", "actve", "--db", db], code=3).output
    assert "status: one of active, completed, incident, not 'actve' (did you mean 'active'?)" \
        in " ".join(said.split())


# -- running instances -------------------------------------------------------------------------


def waiting(instance: dict[str, Any]) -> list[tuple[str, str]]:
    return [(w["step_id"], w["kind"]) for w in instance["waiting"]]


def test_start_complete_skip_show_and_list_a_prospect(db: str) -> None:
    started = run_json(["start", "prospect_journey", "--prospect", "ann", "--distributor", "d1",
                        "--context", '{"first_name": "Ann"}', "--now", T0, "--db", db])
    assert (started["process_id"], started["prospect_id"], started["distributor_id"],
            started["status"],
            started["context"], started["created_at"]) == (
        "prospect_journey", "ann", "d1", "active", {"first_name": "Ann"},
        "2026-01-05T09:00:00+00:00")
    assert waiting(started) == [("add_contact", "user")]
    again = run_json(["start", "prospect_journey", "-p", "ann", "-d", "d1", "--db", db])
    assert again["instance_id"] == started["instance_id"]  # their active instance, not a second one

    done = run_json(["complete", "add_contact", "--prospect", "ann", "--actor", "d1",
                     "--now", T1, "--db", db])
    assert sorted(waiting(done)) == [("Event_share_intro_stuck", "timer"),
                                     ("share_intro", "user")]
    (timer,) = [w for w in done["waiting"] if w["kind"] == "timer"]
    assert timer["due_at"] == "2026-01-10T10:00:00+00:00"

    skipped = run_json(["skip", "share_intro", "--prospect", "ann", "--reason", "sent by email",
                        "--actor", "d1", "--now", T1, "--db", db])
    assert sorted(waiting(skipped)) == [("Event_wait_for_video_timer", "timer"),
                                        ("Event_wait_for_video_video_played", "message")]

    detail = run_json(["show", "--prospect", "ann", "--db", db])
    assert detail["instance_id"] == started["instance_id"]
    history = [(e["step_id"], e["kind"]) for e in detail["history"]]
    assert history[:2] == [("Event_start", "completed"), ("add_contact", "entered")]
    assert ("add_contact", "completed") in history and ("share_intro", "skipped") in history
    (skip,) = [e for e in detail["history"] if e["kind"] == "skipped"]
    assert (skip["data"], skip["actor"], skip["at"]) == (
        {"reason": "sent by email"}, "d1", "2026-01-05T10:00:00+00:00")

    text = run(["show", str(started["instance_id"]), "--db", db]).stdout
    assert text.splitlines()[0] == (f"instance {started['instance_id']}  prospect_journey v1  "
                                    "prospect ann  distributor d1  [active]")
    assert "waiting: Event_wait_for_video_timer (After 2 days) [timer]  due 2026-01-07 10:00" \
        in text
    assert "skipped" in text

    run_json(["start", "prospect_journey", "-p", "bob", "-d", "d2", "--now", T0, "--db", db])
    listed = run_json(["list", "--prospect", "ann", "--db", db])["instances"]
    assert [(i["instance_id"], i["prospect_id"]) for i in listed] == [
        (started["instance_id"], "ann")]
    assert {i["prospect_id"] for i in run_json(["list", "--db", db])["instances"]} == {
        "ann", "bob"}
    assert [i["prospect_id"] for i in run_json(["list", "--distributor", "d2", "--db", db])[
        "instances"]] == ["bob"]
    assert run_json(["list", "--status", "completed", "--db", db])["instances"] == []
    table = run(["list", "--db", db]).stdout
    assert "ann" in table and "bob" in table and "prospect_journey" in table
    assert "more match" not in table and not run_json(["list", "--db", db])["more"]
    # cut at --limit: said, in text and --json, never a silently short list
    assert run_json(["list", "--limit", "1", "--db", db])["more"] is True
    assert "the newest 1 shown; more match" in run(["list", "--limit", "1", "--db", db]).stdout


def test_a_journey_runs_to_its_end_from_the_command_line(db: str) -> None:
    run(["start", "prospect_journey", "-p", "cy", "-d", "d1", "--now", T0, "--db", db])
    run(["complete", "add_contact", "-p", "cy", "--now", T0, "--db", db])
    run(["complete", "share_intro", "-p", "cy", "--now", T0, "--db", db])
    run(["signal", "video_played", "-p", "cy", "--now", T1, "--db", db])
    talked = run_json(["complete", "conversation", "-p", "cy", "--data",
                       '{"interest": "customer"}', "--now", T1, "--db", db])
    assert waiting(talked) == [("customer_order", "user")]
    assert talked["status"] == "active"

    text = run(["complete", "customer_order", "-p", "cy", "--now", T1, "--db", db]).stdout
    assert text.splitlines() == [f"instance {talked['instance_id']}  prospect_journey v1  "
                                 "prospect cy  distributor d1  [completed]"]
    (finished,) = run_json(["list", "--status", "completed", "--db", db])["instances"]
    assert (finished["prospect_id"], finished["waiting"]) == ("cy", [])
    history = run_json(["show", "-p", "cy", "--db", db])["history"]
    (talk,) = [e for e in history if (e["step_id"], e["kind"]) == ("conversation", "completed")]
    assert talk["data"] == {"interest": "customer"}


# -- mistakes ----------------------------------------------------------------------------------


def test_an_unknown_instance_is_exit_4(db: str) -> None:
    result = run(["show", "999", "--db", db], code=4)
    assert result.stderr.strip() == "error: no instance found for 999"
    error = run_json(["show", "--prospect", "nobody", "--db", db], code=4)
    assert error == {"schema_version": 1, "error": "InstanceNotFound", "code": "not-found",
                     "message": "no instance found for prospect 'nobody'"}
    run(["complete", "add_contact", "-p", "nobody", "--db", db], code=4)
    run(["skip", "add_contact", "999", "--db", db], code=4)


def test_a_step_that_is_not_waiting_is_exit_1_with_a_suggestion(db: str) -> None:
    started = run_json(["start", "prospect_journey", "-p", "ann", "-d", "d1", "--db", db])
    result = run(["complete", "ad_contact", "-p", "ann", "--db", db], code=1)
    assert result.stderr.strip() == (
        f"error: instance {started['instance_id']}: step 'ad_contact' is not waiting "
        "(waiting: add_contact); did you mean 'add_contact'?")
    error = run_json(["skip", "share_intro", str(started["instance_id"]), "--db", db], code=1)
    assert error["error"] == "StepNotWaiting"
    assert "step 'share_intro' is not waiting (waiting: add_contact)" in error["message"]
    # nothing moved
    assert waiting(run_json(["show", "-p", "ann", "--db", db])) == [("add_contact", "user")]


def test_skipping_a_required_step_is_exit_1(db: str) -> None:
    run(["start", "prospect_journey", "-p", "dee", "-d", "d1", "--db", db])
    for step in ("add_contact", "share_intro"):
        run(["complete", step, "-p", "dee", "--db", db])
    run(["signal", "video_played", "-p", "dee", "--db", db])
    run(["complete", "conversation", "-p", "dee", "--data", '{"interest": "distributor"}',
         "--db", db])
    error = run_json(["skip", "enroll", "-p", "dee", "--db", db], code=1)
    assert error["error"] == "StepRequired"
    assert "step 'enroll' is required (FTC guidance on earnings claims" in error["message"]
    assert waiting(run_json(["show", "-p", "dee", "--db", db])) == [("enroll", "user")]


@pytest.mark.parametrize(("context", "says"), [
    ("{bad", "--context: is not valid JSON"),
    ("[1, 2]", "--context: must be a JSON object"),
])
def test_bad_context_json_is_exit_3_and_starts_nothing(db: str, context: str, says: str) -> None:
    result = run(["start", "prospect_journey", "-p", "eve", "-d", "d1", "--context", context,
                  "--db", db], code=3)
    assert result.stderr.startswith(f"error: {says}")
    error = run_json(["start", "prospect_journey", "-p", "eve", "-d", "d1", "--context", context,
                      "--db", db], code=3)
    assert error["error"] == "InvalidInput" and says in error["message"]
    assert run_json(["list", "--db", db])["instances"] == []


def test_other_request_mistakes_are_exit_3_or_4_with_a_message(db: str) -> None:
    result = run(["start", "prospect_jorney", "-p", "ann", "-d", "d1", "--db", db], code=4)
    assert "no deployed process named 'prospect_jorney' (did you mean 'prospect_journey'?)" \
        in result.stderr
    result = run(["complete", "add_contact", "--db", db], code=3)
    assert "say which instance: an instance id or --prospect P" in result.stderr
    result = run(["complete", "add_contact", "1", "-p", "ann", "--db", db], code=3)
    assert "give an instance id or --prospect, not both" in result.stderr
    run(["complete", "add_contact", "-p", "ann", "--data", "{nope", "--db", db], code=3)
    assert run_json(["list", "--db", db])["instances"] == []


def test_deploy_shows_the_warnings_validate_would(tmp_path: Path) -> None:
    """A mistyped step property (`hok` for `hook`) is a warning: the map deploys without its
    hook. `deploy` dropped the warning; it prints it now (stderr), and lists it in --json."""
    bpmn = tmp_path / "onboarding.bpmn"
    bpmn.write_text((LIFEVANTAGE / "distributor_onboarding.bpmn").read_text(encoding="utf-8")
                    .replace('name="hook" value="welcome_training"',
                             'name="hok" value="welcome_training"'), encoding="utf-8")
    db = str(tmp_path / "warned.db")
    result = runner.invoke(app, ["deploy", str(bpmn), "--db", db])
    assert result.exit_code == 0, result.output
    assert "deployed: distributor_onboarding v1" in result.stdout
    assert (f"warning {bpmn}:8: welcome: unknown step property 'hok' (did you mean 'hook'?)"
            in " ".join(result.stderr.split()))
    again = run_json(["deploy", bpmn, "--db", db])
    assert [(w["code"], w["element"], w["suggestion"]) for w in again["warnings"]] == [
        ("unknown-property", "welcome", "hook")]


def test_retire_stops_new_starts_until_the_process_is_deployed_again(db: str) -> None:
    run(["deploy", str(LIFEVANTAGE), "--db", db])
    run(["start", "prospect_journey", "-p", "p1", "-d", "d1", "--now", T0, "--db", db])
    said = run(["retire", "prospect_journey", "--reason", "replaced by the live-event journey",
                "--actor", "ana", "--now", T1, "--db", db]).stdout
    assert said == ("retired: prospect_journey v1; 1 running instance(s) go on to their end; "
                    "deploy it again to reinstate it\n")
    again = run(["retire", "prospect_journey", "--reason", "twice", "--db", db]).stdout
    assert again.startswith("already retired: prospect_journey v1 on 2026-01-05 10:00 UTC "
                            "(replaced by the live-event journey)")
    refused = run(["start", "prospect_journey", "-p", "p2", "-d", "d1", "--db", db], code=1)
    assert "was retired on 2026-01-05 10:00 UTC by ana" in " ".join(refused.output.split())
    run(["complete", "add_contact", "-p", "p1", "--now", T1, "--db", db])  # p1 goes on
    back = run(["deploy", str(JOURNEY), "--db", db]).stdout
    assert "unchanged: prospect_journey v1" in back and "reinstated" in back
    run(["start", "prospect_journey", "-p", "p2", "-d", "d1", "--db", db])
    missing = run(["retire", "prospect_journy", "--reason", "typo", "--db", db], code=4)
    assert "did you mean 'prospect_journey'" in missing.output
