"""`start_csv` reads what a spreadsheet writes: UTF-8 only (another encoding's bytes are bad
rows, named), cells of declared fields as their declared types, each column once."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import Engine
from engine.errors import NextmoveError
from engine.runtime import start_csv

# Routes on a declared boolean and a declared integer, as a --context JSON start would.
TYPED = """\
process: typed_csv
name: Typed CSV
data:
  vip: boolean
  score: integer
  budget: number
  market: [US, CA]
  joined: date
steps:
  - id: route
    decide:
      - when: "vip"
        next: vip_call
      - when: "score == 5"
        next: five
      - otherwise: regular
  - id: vip_call
    card: A VIP.
    next: end
  - id: five
    card: Scored five.
    next: end
  - id: regular
    card: Everyone else.
"""


@pytest.fixture
def typed(engine: Engine, tmp_path: Path) -> Engine:
    path = tmp_path / "typed_csv.yaml"
    path.write_text(TYPED, encoding="utf-8")
    engine.deploy([path])
    return engine


def _csv(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "prospects.csv"
    path.write_bytes(text.encode(encoding))
    return path


def _by_prospect(engine: Engine) -> dict[str, tuple[dict[str, object], list[str]]]:
    return {i.prospect_id: (i.context, i.waiting_steps)
            for i in engine.list_instances(process_id="typed_csv")}


def test_a_cp1252_file_names_each_undecodable_row_and_starts_the_others(
        typed: Engine, tmp_path: Path) -> None:
    path = _csv(tmp_path, "prospect_id,distributor_id,first_name\n"
                          "p1,d1,José\n"
                          "p2,d1,Ann\n"
                          "p3,d1,Josè\n", encoding="cp1252")

    summary = start_csv(typed, "typed_csv", path)

    assert (summary.rows, summary.started, summary.existing) == (3, 1, 0)
    assert [b.row for b in summary.bad] == [2, 4]
    assert "byte 0xE9 (cell 3: 'Jos\ufffd'), not UTF-8" in summary.bad[0].reason
    assert "byte 0xE8" in summary.bad[1].reason
    assert 'must be UTF-8 (in Excel: Save As "CSV UTF-8")' in str(summary.bad[1])
    assert _by_prospect(typed) == {"p2": ({"first_name": "Ann"}, ["regular"])}

    path.write_text("prospect_id,distributor_id,first_name\np1,d1,José\np3,d1,Josè\n",
                    encoding="utf-8-sig")  # what Excel's "CSV UTF-8" writes: with a BOM
    assert start_csv(typed, "typed_csv", path).started == 2
    names = {k: v[0].get("first_name") for k, v in _by_prospect(typed).items()}
    assert names == {"p1": "José", "p2": "Ann", "p3": "Josè"}


def test_an_undecodable_header_refuses_the_file(typed: Engine, tmp_path: Path) -> None:
    path = _csv(tmp_path, "prospect_id,distributor_id,prénom\np1,d1,Ann\n", encoding="cp1252")
    with pytest.raises(NextmoveError, match="byte 0xE9 .*must be UTF-8"):
        start_csv(typed, "typed_csv", path)
    assert _by_prospect(typed) == {}


def test_declared_cells_take_their_declared_types_and_route_as_json_would(
        typed: Engine, tmp_path: Path) -> None:
    path = _csv(tmp_path, "prospect_id,distributor_id,vip,score,budget,market,joined,note\n"
                          "p1,d1,false,5,12.5,US,2026-01-02,5\n"
                          "p2,d1,No,7,3,CA,,false\n"
                          "p3,d1,YES,,,,,\n"
                          "p4,d1,0,-5,1e3,US,2026-01-02T10:00:00,\n")

    summary = start_csv(typed, "typed_csv", path)

    assert (summary.started, summary.bad) == (4, [])
    assert _by_prospect(typed) == {
        "p1": ({"vip": False, "score": 5, "budget": 12.5, "market": "US",
                "joined": "2026-01-02", "note": "5"}, ["five"]),  # undeclared: text
        "p2": ({"vip": False, "score": 7, "budget": 3, "market": "CA", "note": "false"},
               ["regular"]),
        "p3": ({"vip": True}, ["vip_call"]),  # empty cells: absent
        "p4": ({"vip": False, "score": -5, "budget": 1000.0, "market": "US",
                "joined": "2026-01-02T10:00:00"}, ["regular"]),
    }
    typed.start("typed_csv", "j1", "d1", {"vip": False, "score": 5})  # the same as JSON
    assert _by_prospect(typed)["j1"][1] == ["five"]


@pytest.mark.parametrize(("header", "cell", "reason"), [
    ("vip", "maybe", "vip: 'maybe' is not true, false, yes, no, 1 or 0 (declared boolean)"),
    ("score", "5.5", "score: '5.5' is not a whole number (declared integer)"),
    ("score", "five", "score: 'five' is not a whole number (declared integer)"),
    ("budget", "1,000", "budget: '1,000' is not a number (declared number)"),
    ("budget", "1e999", "budget: '1e999' is not a number (declared number)"),
    ("joined", "02/01/2026", "joined: '02/01/2026' is not an ISO 8601 date or time"),
    ("market", "UK", "market: 'UK' is not one of the declared values US, CA"),
    ("market", "us", "'us' is not one of the declared values US, CA (did you mean 'US'?)"),
])
def test_a_cell_that_is_not_its_declared_type_or_value_is_a_bad_row(
        typed: Engine, tmp_path: Path, header: str, cell: str, reason: str) -> None:
    path = _csv(tmp_path, f'prospect_id,distributor_id,{header}\np1,d1,\np2,d1,"{cell}"\n')

    summary = start_csv(typed, "typed_csv", path)

    (bad,) = summary.bad
    assert bad.row == 3 and reason in bad.reason, bad.reason
    assert sorted(_by_prospect(typed)) == ["p1"]


def test_a_map_that_declares_nothing_keeps_every_cell_as_text(
        engine: Engine, tmp_path: Path) -> None:
    engine.deploy([Path(__file__).resolve().parents[1] / "fixtures" / "bpmn" / "linear10.bpmn"])
    path = _csv(tmp_path, "prospect_id,distributor_id,vip,score\np1,d1,false,5\n")
    assert start_csv(engine, "prospect_linear", path).started == 1
    (instance,) = engine.list_instances(process_id="prospect_linear")
    assert instance.context == {"vip": "false", "score": "5"}


@pytest.mark.parametrize(("header", "named"), [
    ("prospect_id,distributor_id,prospect_id", "'prospect_id' is columns 1 and 3"),
    ("prospect_id,market,distributor_id, market", "'market' is columns 2 and 4"),
])
def test_a_header_that_repeats_a_column_refuses_the_file(
        typed: Engine, tmp_path: Path, header: str, named: str) -> None:
    path = _csv(tmp_path, f"{header}\np1,US,d1,CA\n")
    with pytest.raises(NextmoveError, match=f"the header repeats a column \\({named}\\)"):
        start_csv(typed, "typed_csv", path)
    assert _by_prospect(typed) == {}
