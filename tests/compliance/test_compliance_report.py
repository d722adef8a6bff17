"""Markdown, JSON and SARIF output. SARIF is validated against the SARIF 2.1.0 JSON schema
(vendored under tests/fixtures/compliance/sarif, see SOURCE.md there)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from compliance import (
    RULES,
    SOURCES,
    AuditReport,
    audit,
    sarif_log,
    to_json,
    to_markdown,
    to_sarif,
)
from compliance.catalogue import rule_sections
from tests.conftest import FIXTURES, REPO

CASES = FIXTURES / "compliance"
SCHEMA = json.loads((CASES / "sarif" / "sarif-2.1.0-rtm.5.json").read_text(encoding="utf-8"))
VALIDATOR = Draft4Validator(SCHEMA, format_checker=Draft4Validator.FORMAT_CHECKER)


def errors(log: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in VALIDATOR.iter_errors(log)]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> AuditReport:
    """Open, acknowledged and badly justified findings, a note-worthy map and a broken file."""
    broken = tmp_path_factory.mktemp("broken") / "broken.yaml"
    broken.write_text("process: broken\nsteps:\n  - id: a\n    next: nowhere\n", encoding="utf-8")
    return audit([CASES / "NM004" / "trigger.bpmn", CASES / "NM005" / "trigger.yaml",
                  CASES / "NM007" / "trigger.bpmn", CASES / "acks", broken], fail_on="medium")


def test_the_vendored_schema_is_sarif_2_1_0_and_rejects_bad_logs() -> None:
    Draft4Validator.check_schema(SCHEMA)
    assert SCHEMA["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    good = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": []}]}
    assert errors(good) == []
    for broken in ({"version": "2.0.0", "runs": []}, {"version": "2.1.0"},
                   {**good, "runs": [{"tool": {"driver": {}}}]}):
        assert errors(broken), broken


def test_sarif_output_is_valid_sarif_2_1_0(mixed: AuditReport) -> None:
    assert mixed.findings and mixed.acknowledged() and mixed.notes and mixed.problems
    assert errors(sarif_log(mixed)) == []
    assert errors(json.loads(to_sarif(mixed, root=REPO))) == []
    clean = audit([REPO / "processes" / "lifevantage"])
    assert errors(sarif_log(clean)) == []
    wrong = copy.deepcopy(sarif_log(mixed))
    wrong["runs"][0]["results"][0]["level"] = "fatal"
    assert errors(wrong)  # the validation is real


def test_sarif_results_carry_rules_levels_lines_and_suppressions(mixed: AuditReport) -> None:
    log = json.loads(to_sarif(mixed, root=REPO))
    assert (log["version"], log["$schema"]) == (
        "2.1.0", "https://json.schemastore.org/sarif-2.1.0.json")
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.id for r in RULES]
    assert rules[0]["name"] == "TrainingBeforeSelling"
    assert rules[0]["properties"]["tests"][0] == "IRS common-law factor 2: training"
    results = run["results"]
    assert len(results) == len(mixed.findings)
    levels = {"high": "error", "medium": "warning", "low": "note", "info": "note"}
    for finding, result in zip(mixed.findings, results, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == finding.rule
        assert result["level"] == levels[finding.severity]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == Path(finding.file).relative_to(
            REPO).as_posix()
        assert physical["region"] == {"startLine": finding.line}
        assert location["logicalLocations"][0]["fullyQualifiedName"] == (
            f"{finding.process}/{finding.step}")
        assert result["message"]["text"].startswith(finding.message)
        suppressed = result.get("suppressions")
        if finding.acknowledged:
            assert suppressed == [{"kind": "inSource", "status": "accepted",
                                   "justification": finding.justification}]
        else:
            assert suppressed is None
    fingerprints = [r["partialFingerprints"]["nextmoveFinding/v1"] for r in results]
    assert len(set(fingerprints)) == len(fingerprints)
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False  # the broken file was not audited
    levels_seen = [n["level"] for n in invocation["toolExecutionNotifications"]]
    assert levels_seen == ["error"] * len(mixed.problems) + ["note"] * len(mixed.notes)
    assert run["properties"] == {"failOn": "medium", "failed": True}


def test_a_finding_keeps_its_fingerprint_when_its_line_moves(tmp_path: Path) -> None:
    source = (CASES / "NM002" / "trigger.yaml").read_text(encoding="utf-8")
    moved = tmp_path / "trigger.yaml"
    moved.write_text("# a comment that moves every line down\n" + source, encoding="utf-8")
    before, after = (sarif_log(audit([p]))["runs"][0]["results"][0]
                     for p in (CASES / "NM002" / "trigger.yaml", moved))
    assert before["locations"][0]["physicalLocation"]["region"]["startLine"] + 1 == (
        after["locations"][0]["physicalLocation"]["region"]["startLine"])
    assert before["partialFingerprints"] == after["partialFingerprints"]


def test_json_output_is_the_report_with_the_rule_catalogue(mixed: AuditReport) -> None:
    body = json.loads(to_json(mixed))
    assert body["tool"] == "nextmove-audit" and body["version"]
    assert body["findings"] == [f.to_dict() for f in mixed.findings]
    assert body["failed"] is True and body["fail_on"] == "medium"
    assert [r["id"] for r in body["rules"]] == [r.id for r in RULES]
    assert body["counts"] == mixed.counts()
    assert {n["code"] for n in body["notes"]} == {
        "short-justification", "stale-justification", "unknown-rule"}


def test_markdown_reads_as_a_reviewers_report(mixed: AuditReport) -> None:
    text = to_markdown(mixed)
    assert text.startswith("# nextmove compliance audit\n")
    assert "**Result: FAILED**" in text and "at or above `medium`" in text
    for finding in mixed.findings:
        assert f"**{finding.rule} {finding.name}**" in text
        assert f"step `{finding.step}`" in text
    assert text.count("; acknowledged)") == len(mixed.acknowledged())
    assert "  - Justification: The FTC expects the disclosure" in text
    assert "## Files that could not be audited" in text and "## Notes" in text
    assert "| **NM009** quota-gate | high |" in text
    assert "| `nm002_trigger` |" not in text  # only what was audited is listed
    clean = to_markdown(audit([REPO / "processes" / "lifevantage"]))
    assert "**Result: PASSED**" in clean
    assert "None: every audited step reads as guidance" in clean
    assert "FTC guidance on earnings claims" in clean  # the enroll step's basis, listed


def test_every_rule_cites_its_sources_and_is_explained_in_the_docs() -> None:
    doc = (REPO / "docs" / "compliance.md").read_text(encoding="utf-8")
    assert rule_sections() in doc  # regenerate: python -m compliance.catalogue
    citations = {s.citation for s in SOURCES}
    for rule in RULES:
        cited = {s.citation for s in rule.sources}
        assert cited == citations, rule.id  # 87-41, Pub. 15-A, §3508, §2775, §148B, DOL
        assert f"\n## {rule.id} {rule.name}\n" in doc
        assert rule.why and rule.category.startswith("behavioral control")
        assert any(t.startswith("DOL economic reality") for t in rule.tests)
    for needle in ("Rev. Rul. 87-41", "Publication 15-A", "26 U.S.C. §3508",
                   "California Labor Code §2775", "G.L. c.149 §148B", "29 CFR part 795",
                   "behavioral control", "financial control", "relationship of the parties"):
        assert needle in doc, needle


def test_sarif_rules_link_to_their_section_and_carry_their_sources(mixed: AuditReport) -> None:
    rules = sarif_log(mixed, docs="https://example.invalid/compliance.md")["runs"][0][
        "tool"]["driver"]["rules"]
    for rule, descriptor in zip(RULES, rules, strict=True):
        assert descriptor["helpUri"] == f"https://example.invalid/compliance.md#{rule.anchor}"
        assert "Rev. Rul. 87-41" in descriptor["help"]["markdown"]
        assert "**Why it matters:**" in descriptor["help"]["markdown"]
        assert "IRC §3508" in descriptor["help"]["text"]
        assert descriptor["properties"]["sources"][0].startswith("Rev. Rul. 87-41")
    default = sarif_log(mixed)["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"]
    assert default == (REPO / "docs" / "compliance.md").as_uri() + "#nm001-training-before-selling"
    assert errors(sarif_log(mixed)) == []
