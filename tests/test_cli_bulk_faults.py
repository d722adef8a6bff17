"""Bulk work is per row (issue 17): `start --bulk` reports each bad row with its line and starts
the others, or with `--on-error reject` starts nothing; `import-log` skips a case with a bad
event whole, lists it, and imports it when the corrected file is imported again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nextmove import open_store
from tests._faults import LIFEVANTAGE, cli, snapshot
from tests.conftest import FIXTURES

BAD_LOGS = FIXTURES / "logs"


@pytest.fixture
def deployed(db_url: str) -> str:
    cli(["deploy", LIFEVANTAGE, "--db", db_url], 0)
    return db_url


def prospects(url: str) -> list[str]:
    rows = snapshot(url)["instance"]
    return sorted(str(r[3]) for r in rows)  # prospect_id


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prospects.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_nul_byte_in_one_row_loses_only_that_row(deployed: str, tmp_path: Path) -> None:
    path = write(tmp_path, "prospect_id,distributor_id,market\n"
                           "ann,d1,US\n"
                           "b\x00b,d1,US\n"
                           "cy,d1,US\n"
                           "dee,d1,U\x00S\n")
    result = cli(["start", "prospect_journey", "--bulk", path, "--db", deployed], 1)
    assert "4 rows: 2 started" in result.stdout
    assert "row 3: prospect: contains the control character U+0000" in result.stderr
    assert "row 5: context.market: contains a NUL character" in result.stderr
    assert prospects(deployed) == ["ann", "cy"]


def test_a_one_megabyte_field_is_reported_and_the_other_rows_start(
        deployed: str, tmp_path: Path) -> None:
    big = "x" * 1_000_000
    path = write(tmp_path, f"prospect_id,distributor_id,note\nann,d1,hi\nbob,d1,{big}\n"
                           "cy,d1,hi\n")
    summary = json.loads(cli(["start", "prospect_journey", "--bulk", path, "--db", deployed,
                              "--json"], 1).stdout)
    assert (summary["rows"], summary["started"]) == (3, 2)
    (bad,) = summary["bad_rows"]
    assert (bad["row"], bad["line"]) == (3, 3)
    assert "context: is 1,000,012 bytes as JSON; at most 65,536" in bad["reason"]
    assert prospects(deployed) == ["ann", "cy"]


def test_a_field_past_the_csv_bound_stops_the_reading_at_its_row(
        deployed: str, tmp_path: Path) -> None:
    huge = "x" * (16 << 20) + "y"
    path = write(tmp_path, f"prospect_id,distributor_id,note\nann,d1,hi\nbob,d1,{huge}\n"
                           "cy,d1,hi\n")
    result = cli(["start", "prospect_journey", "--bulk", path, "--db", deployed], 1)
    assert "row 3: not readable as CSV (field larger than field limit" in result.stderr
    assert "the rows after it were not read" in result.stderr
    assert prospects(deployed) == ["ann"]


def test_reject_starts_nothing_when_any_row_is_bad(deployed: str, tmp_path: Path) -> None:
    path = write(tmp_path, "prospect_id,distributor_id\nann,d1\n" + "x" * 300 + ",d1\ncy,d1\n")
    before = snapshot(deployed)
    result = cli(["start", "prospect_journey", "--bulk", path, "--on-error", "reject",
                  "--db", deployed], 1)
    assert "row 3: prospect: is 300 characters long; at most 200" in result.stderr
    assert snapshot(deployed) == before
    path.write_text("prospect_id,distributor_id\nann,d1\ncy,d1\n", encoding="utf-8")
    cli(["start", "prospect_journey", "--bulk", path, "--on-error", "reject", "--db", deployed],
        0)
    assert prospects(deployed) == ["ann", "cy"]


# -- import-log --------------------------------------------------------------------------------

LOG = ("case:concept:name,concept:name,time:timestamp,org:resource\n"
       "c1,register,2026-01-05T09:00:00Z,ann\n"
       "c1,check,2026-01-05T10:00:00Z,ann\n"
       "c2,register,2026-01-05T09:00:00Z,bob\n"
       "c2,check,{when},bob\n"
       "c2,decide,2026-01-05T12:00:00Z,bob\n")


def test_reject_without_json_is_one_line_and_imports_nothing(db_url: str,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(LOG.format(when="yesterday"), encoding="utf-8")
    open_store(db_url).dispose()  # an empty nextmove database
    before = snapshot(db_url)
    result = cli(["import-log", path, "--process", "history", "--on-error", "reject",
                  "--db", db_url], 3)
    assert "1 malformed row(s), nothing imported; first: row 4 (line 5) [case c2]: bad " \
           "timestamp 'yesterday'" in result.stderr
    assert snapshot(db_url) == before


def test_a_case_with_a_bad_event_is_skipped_whole_then_imported_when_fixed(
        db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(LOG.format(when="yesterday"), encoding="utf-8")
    result = cli(["import-log", path, "--process", "history", "--db", db_url], 1)
    assert "imported 1 case(s), 2 event(s)" in result.stdout
    assert "row 4 (line 5) [case c2]: bad timestamp 'yesterday'" in result.stderr
    assert "1 case(s) skipped whole: c2" in result.stderr
    assert prospects(db_url) == ["c1"]  # none of c2's three events, not even the good ones

    path.write_text(LOG.format(when="2026-01-05T11:00:00Z"), encoding="utf-8")
    report = json.loads(cli(["import-log", path, "--process", "history", "--json",
                             "--db", db_url], 0).stdout)
    assert (report["cases_written"], report["events_written"], report["cases_unchanged"]) == (
        1, 3, 1)
    assert prospects(db_url) == ["c1", "c2"]

    # the same cases in another file again: idempotent per case, nothing written twice
    again = tmp_path / "again.csv"
    again.write_text(LOG.format(when="2026-01-05T11:00:00Z") + "\n", encoding="utf-8")
    report = json.loads(cli(["import-log", again, "--process", "history", "--json",
                             "--db", db_url], 0).stdout)
    assert (report["cases_written"], report["cases_unchanged"], report["problems"]) == (0, 2, [])

    # a case id already imported with other content is reported, not overwritten
    other = tmp_path / "other.csv"
    other.write_text(LOG.format(when="2026-01-05T11:30:00Z"), encoding="utf-8")
    result = cli(["import-log", other, "--process", "history", "--db", db_url], 1)
    assert "[case c2]: case already imported into process 'history' with other content" \
        in result.stderr
