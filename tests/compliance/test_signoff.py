"""Reviewers' sign-offs, on SQLite and PostgreSQL: a sign-off accepts one finding for one
version of its map (who, when, why); a changed map voids it and the finding is open again;
SARIF carries it as an external accepted suppression with the reviewer and date; `--fail-on`
ignores it; the sign-offs are hash-chained, so `audit --verify` names one edited, removed or
moved. Also through the CLI (`nextmove audit signoff`, `audit review`)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli import app
from compliance import (
    BadSignoff,
    SignoffRefused,
    UnknownFinding,
    audit,
    review_html,
    review_markdown,
    sarif_log,
    sign_off,
    signoffs,
    to_markdown,
    trail_summary,
    verify_signoffs,
    verify_trail,
)
from engine import ErrorCode, ManualClock, ProspectRef, Store
from nextmove import open_engine, open_store
from tests.compliance.test_compliance_report import errors
from tests.conftest import FIXTURES, REPO

CASES = FIXTURES / "compliance"
LIFEVANTAGE = REPO / "processes" / "lifevantage"
FINDING = "NM003:nm003_trigger/income_disclosure"  # medium: fixed order of required steps
REASON = "The FTC expects the disclosure before the agreement is sent."
AT = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
runner = CliRunner()


@pytest.fixture
def the_map(tmp_path: Path) -> Path:
    path = tmp_path / "maps" / "trigger.yaml"
    path.parent.mkdir()
    shutil.copy(CASES / "NM003" / "trigger.yaml", path)
    return path


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.dispose()


def _sign(store: Store, path: Path, finding: str = FINDING, reviewer: str = "Ana Ruiz",
          at: datetime = AT) -> None:
    report = audit([path], signoffs=signoffs(store))
    sign_off(store, report, finding, reviewer=reviewer, reason=REASON, at=at)


def test_a_signed_off_finding_is_accepted_with_who_when_and_why(store: Store,
                                                                the_map: Path) -> None:
    before = audit([the_map], fail_on="medium")
    (finding,) = before.findings
    assert finding.id == FINDING and before.failed()
    _sign(store, the_map)
    after = audit([the_map], fail_on="medium", signoffs=signoffs(store))
    (signed,) = after.findings
    assert signed.signoff is not None
    assert (signed.signoff.reviewer, signed.signoff.reason, signed.signoff.at) == (
        "Ana Ruiz", REASON, AT)
    assert signed.signoff.map_hash == finding.map_hash
    assert not after.failed() and not after.failed("info")  # --fail-on ignores it
    assert after.unacknowledged() == [] and after.signed_off() == [signed]
    assert after.counts()["medium"] == {"open": 0, "acknowledged": 0, "signed_off": 1}
    assert after.to_dict()["findings"][0]["signoff"]["reviewer"] == "Ana Ruiz"
    assert "Signed off by Ana Ruiz on 2026-03-02 10:30 UTC: The FTC expects" in to_markdown(
        after)
    with pytest.raises(SignoffRefused, match="already signed off by Ana Ruiz"):
        _sign(store, the_map)


def test_a_changed_map_voids_the_signoff_and_the_finding_reappears(store: Store,
                                                                   the_map: Path) -> None:
    _sign(store, the_map)
    the_map.write_text(the_map.read_text(encoding="utf-8").replace(
        "name: Send the distributor agreement", "name: Send the new distributor agreement"),
        encoding="utf-8")
    report = audit([the_map], fail_on="medium", signoffs=signoffs(store))
    (finding,) = report.findings
    assert finding.signoff is None and report.failed()
    (note,) = report.notes
    assert note.code == "voided-signoff" and "the map changed" in note.message
    assert "Ana Ruiz" in note.message
    _sign(store, the_map, reviewer="Bo Chen")  # the new version can be signed off again
    again = audit([the_map], signoffs=signoffs(store))
    assert again.findings[0].signoff is not None
    assert again.findings[0].signoff.reviewer == "Bo Chen" and again.notes == ()


def test_sarif_carries_the_signoff_as_an_external_accepted_suppression(
        store: Store, the_map: Path) -> None:
    _sign(store, the_map)
    log = sarif_log(audit([the_map], signoffs=signoffs(store)))
    (result,) = log["runs"][0]["results"]
    assert result["properties"]["finding"] == FINDING
    (suppression,) = result["suppressions"]
    assert suppression["kind"] == "external" and suppression["status"] == "accepted"
    assert suppression["justification"] == REASON
    assert suppression["properties"]["reviewer"] == "Ana Ruiz"
    assert suppression["properties"]["date"] == "2026-03-02T10:30:00+00:00"
    assert errors(log) == []


def test_signoffs_are_refused_for_unknown_findings_and_short_reasons(store: Store,
                                                                     the_map: Path) -> None:
    report = audit([the_map])
    with pytest.raises(UnknownFinding, match="did you mean") as missing:
        sign_off(store, report, FINDING.replace("NM003", "NM004"), reviewer="A", reason=REASON,
                 at=AT)
    assert missing.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(BadSignoff, match="too short"):
        sign_off(store, report, FINDING, reviewer="A", reason="fine by me", at=AT)
    with pytest.raises(BadSignoff, match="reviewer"):
        sign_off(store, report, FINDING, reviewer=" ", reason=REASON, at=AT)
    assert signoffs(store) == []


@pytest.mark.parametrize("tamper", ["edit", "delete last", "delete first"])
def test_audit_verify_names_a_tampered_signoff(store: Store, the_map: Path,
                                               tamper: str) -> None:
    _sign(store, the_map)
    other = the_map.parent / "nm002.yaml"
    shutil.copy(CASES / "NM002" / "trigger.yaml", other)
    _sign(store, other, finding="NM002:nm002_trigger/confirm_order", reviewer="Bo Chen")
    assert verify_signoffs(store).ok and verify_trail(store).ok
    with store.engine.begin() as conn:
        if tamper == "edit":
            conn.execute(text("UPDATE signoff SET reviewer = 'Someone Else' WHERE id = 1"))
        elif tamper == "delete last":
            conn.execute(text("DELETE FROM signoff WHERE id = 2"))
        else:
            conn.execute(text("DELETE FROM signoff WHERE id = 1"))
    check = verify_signoffs(store)
    assert not check.ok and not verify_trail(store).ok
    what = {t.what for t in check.tampered}
    assert what == {"edit": {"edited"}, "delete last": {"truncated"},
                    "delete first": {"removed"}}[tamper]


def test_the_cli_signs_off_verifies_and_writes_the_reviewers_report(
        tmp_path: Path, the_map: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = str(tmp_path / "review.db")
    # Not there yet: an audit never creates it (none named and no ./nextmove.db: no sign-offs)
    refused = runner.invoke(app, ["audit", str(the_map), "--db", db])
    assert refused.exit_code == 4 and "no database at" in refused.output
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEXTMOVE_DB", raising=False)
    failing = runner.invoke(app, ["audit", str(the_map), "--fail-on", "medium"])
    assert failing.exit_code == 1 and f"Finding `{FINDING}`" in failing.output
    signed = runner.invoke(app, ["audit", "signoff", FINDING, str(the_map), "--reviewer",
                                 "Ana Ruiz", "--reason", REASON, "--db", db, "--now",
                                 "2026-03-02T10:30:00Z", "--json"])
    assert signed.exit_code == 0, signed.output
    body = json.loads(signed.output)
    assert (body["finding_id"], body["reviewer"], body["at"]) == (
        FINDING, "Ana Ruiz", "2026-03-02T10:30:00+00:00")
    passing = runner.invoke(app, ["audit", str(the_map), "--fail-on", "medium", "--db", db,
                                  "--format", "sarif"])
    assert passing.exit_code == 0, passing.output
    sarif = json.loads(passing.output)
    assert sarif["runs"][0]["results"][0]["suppressions"][0]["properties"]["reviewer"] == (
        "Ana Ruiz")
    again = runner.invoke(app, ["audit", "signoff", FINDING, str(the_map), "--reviewer", "X",
                                "--reason", REASON, "--db", db])
    assert again.exit_code == 1 and "already signed off" in again.output
    unknown = runner.invoke(app, ["audit", "signoff", "NM009:nope/nope", str(the_map),
                                  "--reviewer", "X", "--reason", REASON, "--db", db])
    assert unknown.exit_code == 4
    verified = runner.invoke(app, ["audit", "--verify", "--db", db])
    assert verified.exit_code == 0 and "sign-offs intact: 1 records" in verified.output
    direct = open_store(db)
    with direct.engine.begin() as conn:
        conn.execute(text("UPDATE signoff SET reason = 'whatever you like' WHERE id = 1"))
    direct.dispose()
    tampered = runner.invoke(app, ["audit", "--verify", "--db", db])
    assert tampered.exit_code == 1 and "SIGN-OFFS TAMPERED" in tampered.output
    page = tmp_path / "review.html"
    written = runner.invoke(app, ["audit", "review", str(the_map), "--db", db, "--format",
                                  "html", "-o", str(page)])
    assert written.exit_code == 0, written.output
    assert "<h2 id=\"accepted\">" in page.read_text(encoding="utf-8")


def test_the_reviewers_report_lists_open_and_signed_off_findings_and_the_evidence(
        store: Store, the_map: Path) -> None:
    other = the_map.parent / "nm002.yaml"
    shutil.copy(CASES / "NM002" / "trigger.yaml", other)
    _sign(store, the_map)
    report = audit([the_map.parent], signoffs=signoffs(store))
    text_md = review_markdown(report, None)
    open_part, accepted_part = text_md.split("## Accepted findings")
    assert "NM002:nm002_trigger/confirm_order" in open_part and FINDING not in open_part
    assert FINDING in accepted_part and "Signed off by Ana Ruiz" in accepted_part
    assert "No runtime trail for these maps yet." in text_md
    page = review_html(report, None)
    assert page.startswith("<!doctype html>") and "Signed off by Ana Ruiz" in page
    assert "<script" not in page


def test_a_schema_4_database_is_upgraded_with_the_signoff_table(tmp_path: Path,
                                                                the_map: Path) -> None:
    db = str(tmp_path / "old.db")
    made = open_store(db)
    with made.engine.begin() as conn:  # as nextmove 4 left it: no signoff table
        conn.execute(text("DROP TABLE signoff"))
        conn.execute(text("UPDATE nextmove_meta SET value = '4' WHERE key = 'schema_version'"))
    made.dispose()
    upgraded = open_store(db)
    try:
        _sign(upgraded, the_map)
        assert [s.reviewer for s in signoffs(upgraded)] == ["Ana Ruiz"]
        assert verify_signoffs(upgraded).ok
        with upgraded.read() as conn:
            assert conn.execute(text("SELECT value FROM nextmove_meta WHERE key = "
                                     "'schema_version'")).scalar() == "8"
    finally:
        upgraded.dispose()


def test_the_reviewers_report_shows_what_contractors_did_at_each_step(tmp_path: Path) -> None:
    db = str(tmp_path / "evidence.db")
    store = open_store(db)
    try:
        lv = open_engine(store, clock=ManualClock(AT), recommend=False)
        lv.deploy([LIFEVANTAGE])
        lv.start("prospect_journey", "p1", "d1", actor="d1")
        lv.start("prospect_journey", "p2", "d2", actor="d2")
        lv.complete(ProspectRef("p1"), "add_contact", actor="d1")
        lv.vary(ProspectRef("p2"), "add_contact", "met in person", actor="d2")
        lv.skip(ProspectRef("p1"), "share_intro", "prefers to call", actor="d1")
        report = audit([LIFEVANTAGE], signoffs=signoffs(store))
        summary = trail_summary(store)
    finally:
        store.dispose()
    text_md = review_markdown(report, summary)
    assert "**Result: PASSED: no open finding at or above high.**" in text_md
    assert "| prospect_journey | Add a prospect | guidance | 2 | 1 | 0 | 1 | 50% |" in text_md
    assert "| prospect_journey | Share the intro video | guidance | 2 | 0 | 1 | 0 | 100% |" in (
        text_md)
    page = review_html(report, summary)
    assert "<td>Add a prospect</td>" in page and "<td class=n>50%</td>" in page
    written = runner.invoke(app, ["audit", "review", str(LIFEVANTAGE), "--db", db])
    assert written.exit_code == 0 and "| Add a prospect |" in written.output


def test_sarif_can_leave_accepted_findings_out_for_github(store: Store, the_map: Path) -> None:
    # GitHub code scanning does not honour suppressions by default: omitting accepted
    # results closes their alerts there.
    _sign(store, the_map)
    report = audit([the_map], signoffs=signoffs(store))
    assert len(sarif_log(report)["runs"][0]["results"]) == 1
    omitted = sarif_log(report, accepted="omit")
    assert omitted["runs"][0]["results"] == []
    assert omitted["runs"][0]["properties"]["acceptedOmitted"] == 1
    assert errors(omitted) == []
