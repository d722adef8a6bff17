"""The audit as a whole: written justifications, the failure threshold, files that cannot be
audited, and the reference brand passing clean."""

from __future__ import annotations

from pathlib import Path

import pytest

import compliance
from compliance import AuditReport, Finding, Note, UnknownSeverity, audit, justifications
from engine.definitions import load
from engine.errors import NextmoveError
from tests.conftest import FIXTURES, REPO

CASES = FIXTURES / "compliance"
LIFEVANTAGE = REPO / "processes" / "lifevantage"
JUSTIFIED_TIMER = ("Leads asked to be called back within two days; the sponsor only steps in "
                   "so the prospect is not left waiting.")
JUSTIFIED_ORDER = "The FTC expects the disclosure before any enrollment paperwork is sent."


def test_the_lifevantage_maps_pass_with_no_finding_at_all() -> None:
    report = audit([LIFEVANTAGE], fail_on="info")
    assert (report.findings, report.problems, report.notes) == ((), (), ())
    assert sorted(m.process for m in report.maps) == ["distributor_onboarding",
                                                      "prospect_journey"]
    assert not report.failed()
    # The one step contractors cannot skip, with the reason the reviewer can check.
    (enroll,) = report.required
    source = (LIFEVANTAGE / "prospect_journey.yaml").read_text(encoding="utf-8").splitlines()
    assert (enroll.process, enroll.step, enroll.line) == (
        "prospect_journey", "enroll", source.index("  - id: enroll") + 1)
    assert enroll.basis and "Income Disclosure Statement" in enroll.basis


def test_the_onboarding_source_and_its_exported_bpmn_audit_alike() -> None:
    yaml_report = audit([FIXTURES / "yaml" / "distributor_onboarding.yaml"], fail_on="info")
    bpmn_report = audit([LIFEVANTAGE / "distributor_onboarding.bpmn"], fail_on="info")
    assert yaml_report.findings == bpmn_report.findings == ()
    assert [m.steps for m in yaml_report.maps] == [m.steps for m in bpmn_report.maps]


@pytest.mark.parametrize("fmt", ["yaml", "bpmn"])
def test_acknowledged_findings_are_listed_marked_and_never_fail(fmt: str) -> None:
    path = CASES / "acks" / f"acknowledged.{fmt}"
    report = audit([path], fail_on="info")
    assert [(f.rule, f.step, f.element, f.acknowledged, f.justification)
            for f in report.findings] == [
        ("NM005", "follow_up_leads", "Event_follow_up_leads_expired", True, JUSTIFIED_TIMER),
        ("NM003", "income_disclosure", None, True, JUSTIFIED_ORDER),
    ]
    assert report.notes == ()
    assert not report.failed("info")
    assert report.unacknowledged() == []
    assert report.acknowledged() == list(report.findings)
    none = {"open": 0, "acknowledged": 0, "signed_off": 0}
    assert report.counts() == {"high": {**none, "acknowledged": 1},
                               "medium": {**none, "acknowledged": 1},
                               "low": none, "info": none}


def test_justifications_that_do_not_count_are_named_in_notes() -> None:
    path = CASES / "acks" / "bad_acks.yaml"
    report = audit([path])
    (finding,) = report.findings
    assert (finding.rule, finding.acknowledged, finding.justification) == ("NM002", False, None)
    assert report.failed()  # NM002 is high and its justification is too short to count
    assert [(n.code, n.step, n.line) for n in report.notes] == [
        ("short-justification", "confirm_order", 11),
        ("stale-justification", "confirm_order", 11),
        ("unknown-rule", "confirm_order", 11),
    ]
    assert "legal said ok" in report.notes[0].message
    assert "did you mean NM002?" in report.notes[2].message
    step = load([path]).definitions[0].map.step("confirm_order")
    assert step is not None and justifications(step) == {
        "NM002": "legal said ok", "NM007": "Reviewed by counsel and approved for every market.",
        "NM02": "Some justification with enough words here."}


def test_fail_on_is_a_severity_threshold_over_unacknowledged_findings() -> None:
    fixed_order = CASES / "NM003" / "trigger.yaml"  # one medium finding
    report = audit([fixed_order])
    assert [f.severity for f in report.findings] == ["medium"]
    assert not report.failed()  # the default threshold is high
    assert (report.failed("high"), report.failed("medium"), report.failed("low"),
            report.failed("info")) == (False, True, True, True)
    assert audit([fixed_order], fail_on="medium").failed()
    assert not audit([fixed_order], fail_on="medium").failed("high")  # the argument wins
    no_way_around = audit([CASES / "NM008" / "trigger.bpmn"], fail_on="medium")
    assert [f.severity for f in no_way_around.findings] == ["low"]
    assert not no_way_around.failed() and no_way_around.failed("low")


def test_an_unknown_threshold_is_refused_with_a_suggestion() -> None:
    with pytest.raises(UnknownSeverity) as refused:
        audit([LIFEVANTAGE], fail_on="hihg")
    assert isinstance(refused.value, NextmoveError) and isinstance(refused.value, ValueError)
    assert str(refused.value) == ("unknown severity 'hihg'; one of info, low, medium, high "
                                  "(did you mean 'high'?)")
    with pytest.raises(UnknownSeverity):
        audit([LIFEVANTAGE]).failed("critical")


def test_a_file_that_cannot_be_audited_fails_the_audit(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("process: broken\nsteps:\n  - id: a\n    next: nowhere\n", encoding="utf-8")
    report = audit([broken, CASES / "NM010" / "near_miss.yaml"], fail_on="high")
    assert report.findings == ()
    assert [m.process for m in report.maps] == ["nm010_near_miss"]  # the rest is audited
    assert [(p.file, p.line, p.code) for p in report.problems] == [
        (str(broken), 4, "unknown-step")]
    assert report.failed()
    assert report.to_dict()["failed"] is True


def test_findings_are_ordered_by_file_and_line_and_serialise() -> None:
    report = audit([CASES / "NM007" / "trigger.yaml", CASES / "NM002" / "trigger.bpmn"])
    assert [(Path(f.file).parent.name, f.line) for f in report.findings] == [
        ("NM002", 7), ("NM007", 5), ("NM007", 10)]
    body = report.to_dict()
    assert body["fail_on"] == "high" and body["failed"] is True
    assert body["findings"][0] == report.findings[0].to_dict()
    assert set(body["findings"][0]) == {
        "rule", "name", "severity", "factor", "file", "line", "process", "step", "message",
        "fix", "element", "acknowledged", "justification", "id", "map_hash", "signoff"}
    assert body["required_steps"] == [{
        "process": "nm002_trigger", "step": "confirm_order",
        "name": "Send the order confirmation", "file": str(CASES / "NM002" / "trigger.bpmn"),
        "line": 7, "basis": None}]


def test_the_package_exports_exactly_its_public_api() -> None:
    exported = {name for name in dir(compliance) if not name.startswith("_")}
    modules = {"report", "rules", "trail", "policy_chain", "catalogue", "review", "signoff",
               "anchor"}
    assert set(compliance.__all__) == exported - modules
    assert compliance.__all__ == sorted(compliance.__all__, key=lambda n: (not n.isupper(), n))
    for name in compliance.__all__:
        if not name.isupper():  # constants are plain values
            assert getattr(compliance, name).__module__.startswith("compliance."), name
    assert isinstance(audit([CASES / "NM002" / "near_miss.yaml"]), AuditReport)
    assert Finding.__doc__ and Note.__doc__
