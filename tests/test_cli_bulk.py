"""`nextmove start PROCESS --bulk prospects.csv` through typer's CliRunner on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cli import app
from engine.store import trail
from nextmove import open_engine
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
runner = CliRunner()


def run(args: list[Any], code: int = 0) -> Result:
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "240"})
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "cli.db")
    run(["deploy", LIFEVANTAGE, "--db", path])
    return path


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prospects.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_bulk_start_from_a_csv(db: str, tmp_path: Path) -> None:
    rows = "\n".join(f"p{i},d{i % 2},{'s1' if i % 3 == 0 else ''},US,ig" for i in range(12))
    path = write_csv(tmp_path, f"prospect_id,distributor_id,sponsor_id,market,source\n{rows}\n")

    summary = json.loads(run(["start", "prospect_journey", "--bulk", path, "--batch-size", "5",
                              "--actor", "import", "--db", db, "--json"]).stdout)

    assert summary == {"schema_version": 1, "process_id": "prospect_journey", "rows": 12,
                       "started": 12, "existing": 0, "batches": 3, "bad_rows": []}
    engine = open_engine(db, recommend=False)
    try:
        instances = engine.list_instances(process_id="prospect_journey")
        assert sorted(i.prospect_id for i in instances) == sorted(f"p{i}" for i in range(12))
        by_prospect = {i.prospect_id: i for i in instances}
        assert by_prospect["p3"].context == {"sponsor_id": "s1", "market": "US", "source": "ig"}
        assert by_prospect["p4"].context == {"market": "US", "source": "ig"}  # empty sponsor
        assert by_prospect["p4"].distributor_id == "d0"
        assert all(i.waiting for i in instances)
        first = engine.history(by_prospect["p0"].id)
        assert first and first[0].actor == "import"
        assert trail.verify(engine.store)[1] == []
        assert {c.prospect_id for c in engine.cards("d1")} == {f"p{i}" for i in range(1, 12, 2)}
    finally:
        engine.store.dispose()

    again = json.loads(run(["start", "prospect_journey", "--bulk", path, "--db", db,
                            "--json"]).stdout)
    assert (again["started"], again["existing"]) == (0, 12)


def test_bad_rows_are_reported_by_row_number_and_the_rest_start(db: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "prospect_id,distributor_id,market\n"
                               "ann,d1,US\n"
                               ",d1,US\n"
                               "bob,d1\n"
                               "\n"
                               "cy,,CA\n"
                               "dee,d2,CA\n")

    result = run(["start", "prospect_journey", "--bulk", path, "--db", db], code=1)
    assert "5 rows: 2 started, 0 already active, 3 bad" in result.stdout  # not the blank line
    assert "row 3: empty prospect_id" in result.stderr
    assert "row 4: 2 cells, the header has 3" in result.stderr
    assert "row 6: empty distributor_id" in result.stderr

    summary = json.loads(run(["start", "prospect_journey", "--bulk", path, "--db", db,
                              "--json"], code=1).stdout)
    assert [b["row"] for b in summary["bad_rows"]] == [3, 4, 6]
    assert (summary["started"], summary["existing"]) == (0, 2)


def test_a_file_without_the_required_columns_is_refused(db: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "prospect,distributor\nann,d1\n")
    result = run(["start", "prospect_journey", "--bulk", path, "--db", db], code=3)
    assert "lacks prospect_id, distributor_id" in result.stderr
    error = json.loads(run(["start", "prospect_journey", "--bulk", path, "--db", db, "--json"],
                           code=3).stdout)
    assert "lacks prospect_id" in json.dumps(error)


def test_bulk_and_single_prospect_options_do_not_mix(db: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "prospect_id,distributor_id\nann,d1\n")
    assert "--bulk" in run(["start", "prospect_journey", "--bulk", path, "-p", "ann", "--db", db],
                           code=2).output
    assert "--prospect and --distributor are required" in run(
        ["start", "prospect_journey", "-p", "ann", "--db", db], code=2).output


def test_a_header_that_repeats_a_column_is_refused(db: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "prospect_id,distributor_id,prospect_id\nann,d1,bob\n")
    result = run(["start", "prospect_journey", "--bulk", path, "--db", db], code=3)
    assert "the header repeats a column ('prospect_id' is columns 1 and 3)" in result.stderr
    path.write_text("prospect_id,distributor_id,market,market\nann,d1,US,CA\n", encoding="utf-8")
    error = json.loads(run(["start", "prospect_journey", "--bulk", path, "--db", db, "--json"],
                           code=3).stdout)
    assert "'market' is columns 3 and 4" in json.dumps(error)
    engine = open_engine(db, recommend=False)
    try:
        assert engine.list_instances(process_id="prospect_journey") == []
    finally:
        engine.store.dispose()


def test_a_file_that_is_not_utf8_names_its_rows_and_mangles_no_name(
        db: str, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"  # Excel's plain "CSV" on Windows: cp1252
    path.write_bytes("prospect_id,distributor_id,first_name,interest\n"
                     "p1,d1,José,\np2,d1,Josè,\np3,d1,Ann,Customer\np4,d1,Bo,customer\n"
                     .encode("cp1252"))
    result = run(["start", "prospect_journey", "--bulk", path, "--db", db], code=1)
    assert "4 rows: 1 started, 0 already active, 3 bad" in result.stdout
    assert "row 2: byte 0xE9 (cell 3: 'Jos\ufffd'), not UTF-8; the file must be UTF-8" \
        in result.stderr
    assert "row 3: byte 0xE8" in result.stderr
    assert "row 4: interest: 'Customer' is not one of the declared values customer, " \
           "distributor, not_now (did you mean 'customer'?)" in result.stderr
    engine = open_engine(db, recommend=False)
    try:
        (started,) = engine.list_instances(process_id="prospect_journey")
        assert (started.prospect_id, started.context) == (
            "p4", {"first_name": "Bo", "interest": "customer"})
    finally:
        engine.store.dispose()
