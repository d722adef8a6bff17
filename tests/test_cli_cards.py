"""`nextmove cards`, `complete --used`, `vary`, `outcome` and `recommend` through typer's
CliRunner on real SQLite files with the LifeVantage journeys deployed."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cli import app
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
T0 = "2026-01-05T09:00:00Z"
LATER = "2026-01-05T10:00:00Z"
STUCK = "2026-01-10T10:00:00Z"  # five days and an hour after the video step was reached
US = {"market": "US", "locale": "en-US"}
MX = {"market": "MX", "locale": "es-MX"}
CARD_KEYS = {
    "instance_id", "process_id", "prospect_id", "distributor_id", "role", "step_id",
    "step_name", "control", "guidance", "basis", "hook", "asks", "since", "follow_up_at",
    "overdue", "waiting_for", "content", "suggested_message", "policy_version", "propensity",
    "no_content",
}
RECOMMENDATION_KEYS = {"hook", "policy_version", "shown", "propensity", "ranked"}

runner = CliRunner()


def run(args: list[str]) -> Result:
    return runner.invoke(app, args)


def ok(args: list[str]) -> str:
    result = run(args)
    assert result.exit_code == 0, result.output
    return result.stdout


def ok_json(args: list[str]) -> Any:
    return json.loads(ok([*args, "--json"]))


def refused(args: list[str], code: int = 3) -> Result:
    """A user mistake: exit 3 (invalid input) with a message, never a traceback."""
    result = run(args)
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("deployed") / "nextmove.db"
    ok(["deploy", str(LIFEVANTAGE), "--db", str(path)])
    with sqlite3.connect(path) as conn:  # fold the WAL into the file before copying it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def db(deployed: Path, tmp_path: Path) -> str:
    target = tmp_path / "nextmove.db"
    shutil.copyfile(deployed, target)
    return str(target)


def start(db: str, prospect: str, distributor: str, context: dict[str, str],
          now: str = T0) -> int:
    started = ok_json(["start", "prospect_journey", "-p", prospect, "-d", distributor,
                       "--context", json.dumps(context), "--now", now, "--db", db])
    return int(started["instance_id"])


def history(db: str, prospect: str) -> list[dict[str, Any]]:
    return ok_json(["show", "-p", prospect, "--db", db])["history"]  # type: ignore[no-any-return]


def event(db: str, prospect: str, step: str, kind: str) -> dict[str, Any]:
    (found,) = [e for e in history(db, prospect) if (e["step_id"], e["kind"]) == (step, kind)]
    return found


# -- cards -----------------------------------------------------------------------------------


def test_cards_json_gives_each_waiting_step_with_ranked_content_and_a_message(db: str) -> None:
    start(db, "ann", "D", {**US, "prospect_first_name": "Ann"})
    start(db, "lupe", "D", {**MX, "prospect_first_name": "Lupe"})
    start(db, "otto", "E", {**US, "prospect_first_name": "Otto"})

    cards = ok_json(["cards", "-d", "D", "--now", LATER, "--db", db])["cards"]
    assert [(c["prospect_id"], c["step_id"]) for c in cards] == [
        ("ann", "add_contact"), ("lupe", "add_contact")]  # oldest first; not Otto's
    for card in cards:
        assert set(card) == CARD_KEYS
        assert (card["control"], card["role"], card["hook"]) == (
            "guidance", "distributor", "first_contact_message")
        assert card["guidance"].startswith("Reach out in your own words")
        top = card["content"][0]
        assert top["top"] and not any(s["top"] for s in card["content"][1:])
        assert math.isclose(sum(s["probability"] for s in card["content"]), 1.0)
        logged = event(db, card["prospect_id"], "add_contact", "entered")
        assert (logged["content_shown"], logged["propensity"], logged["policy_version"]) == (
            top["option_id"], card["propensity"], card["policy_version"])
    ann, lupe = cards
    assert "Ann" in ann["suggested_message"] and "{prospect_first_name}" not in (
        ann["suggested_message"])
    assert lupe["suggested_message"].startswith("¡Hola Lupe")
    assert ok_json(["cards", "-d", "nobody", "--db", db])["cards"] == []


def test_cards_human_output_shows_guidance_the_top_pick_and_what_is_overdue(db: str) -> None:
    start(db, "ann", "D", {**US, "prospect_first_name": "Ann"})
    (card,) = ok_json(["cards", "-d", "D", "--now", T0, "--db", db])["cards"]
    top = card["content"][0]

    text = ok(["cards", "-d", "D", "--now", T0, "--db", db])
    assert "Add a prospect — prospect ann (prospect_journey)" in text
    assert "Reach out in your own words" in text
    assert f"→ {top['option_id']}" in text
    for other in card["content"][1:]:
        assert f"→ {other['option_id']}" not in text and other["option_id"] in text
    assert card["suggested_message"].startswith(("Hi Ann", "Hey Ann"))
    assert f"message: {card['suggested_message']}" in text
    assert "OVERDUE" not in text

    ok(["complete", "add_contact", "-p", "ann", "--now", T0, "--db", db])
    text = ok(["cards", "-d", "D", "--now", STUCK, "--db", db])
    assert "OVERDUE Share the intro video — prospect ann" in text
    assert "follow up by 2026-01-10 09:00" in text
    assert "no cards" in ok(["cards", "-d", "nobody", "--db", db])


# -- acting on a card ------------------------------------------------------------------------


def test_complete_used_vary_note_and_outcome_are_recorded(db: str) -> None:
    start(db, "ann", "D", {**US, "prospect_first_name": "Ann"})
    (card,) = ok_json(["cards", "-d", "D", "--now", T0, "--db", db])["cards"]
    other = card["content"][1]["option_id"]

    moved = ok_json(["complete", "add_contact", "-p", "ann", "--used", other, "--actor", "D",
                     "--now", LATER, "--db", db])
    assert {w["step_id"] for w in moved["waiting"]} == {"share_intro", "Event_share_intro_stuck"}
    (video,) = ok_json(["cards", "-d", "D", "--now", LATER, "--db", db])["cards"]
    shown = video["content"][0]["option_id"]
    moved = ok_json(["vary", "share_intro", "-p", "ann", "--note", "showed it on my phone",
                     "--used", shown, "--actor", "D", "--now", LATER, "--db", db])
    assert {w["step_id"] for w in moved["waiting"]} == {
        "Event_wait_for_video_video_played", "Event_wait_for_video_timer"}
    sale = ok_json(["outcome", "sale", "-p", "ann", "--amount", "120", "--actor", "D",
                    "--now", LATER, "--db", db])
    assert (sale["step_id"], sale["kind"], sale["data"], sale["actor"]) == (
        "sale", "outcome", {"amount": 120.0}, "D")
    assert "recorded lost for prospect ann" in ok(["outcome", "lost", "-p", "ann", "--db", db])

    done = event(db, "ann", "add_contact", "completed")
    assert (done["content_used"], done["actor"]) == (other, "D")
    assert event(db, "ann", "add_contact", "entered")["content_shown"] == (
        card["content"][0]["option_id"])
    varied = event(db, "ann", "share_intro", "varied")
    assert (varied["data"], varied["content_used"]) == ({"note": "showed it on my phone"}, shown)
    assert [e["step_id"] for e in history(db, "ann") if e["kind"] == "outcome"] == [
        "sale", "lost"]


def test_a_mistyped_used_option_exits_3_and_records_nothing(db: str) -> None:
    start(db, "ann", "D", US)
    (card,) = ok_json(["cards", "-d", "D", "--now", T0, "--db", db])["cards"]
    top = card["content"][0]["option_id"]
    result = refused(["complete", "add_contact", "-p", "ann", "--used", top + "s", "--now",
                      LATER, "--db", db])
    assert f"did you mean '{top}'?" in result.stderr and "nothing was recorded" in result.stderr
    assert [e["kind"] for e in history(db, "ann") if e["step_id"] == "add_contact"] == [
        "entered"]
    as_json = json.loads(refused(["vary", "add_contact", "-p", "ann", "--note", "n", "--used",
                                  "nope", "--db", db, "--json"]).stdout)
    assert as_json["error"] == "UnknownContent"


def test_an_unknown_outcome_exits_3_with_a_suggestion(db: str) -> None:
    start(db, "ann", "D", US)
    result = refused(["outcome", "sales", "-p", "ann", "--db", db])
    assert "did you mean 'sale'?" in result.stderr and result.stdout == ""
    as_json = json.loads(refused(["outcome", "sales", "-p", "ann", "--db", db, "--json"]).stdout)
    assert as_json["error"] == "NextmoveError" and "did you mean 'sale'" in as_json["message"]
    assert "no instance found for prospect 'nobody'" in refused(
        ["outcome", "sale", "-p", "nobody", "--db", db], code=4).stderr
    assert not [e for e in history(db, "ann") if e["kind"] == "outcome"]


# -- recommend -------------------------------------------------------------------------------


def test_recommend_ranks_a_hook_for_a_context_reproducibly_with_a_seed(db: str) -> None:
    args = ["recommend", "--hook", "intro_video", "--context", json.dumps(US), "--seed", "4",
            "--db", db]
    found = ok_json(args)
    assert ok_json(args) == found
    assert set(found) == RECOMMENDATION_KEYS | {"why", "schema_version"}
    assert found["hook"] == "intro_video"
    # The catalog policy has no segment rules: the why names the overall ranking.
    assert found["why"][0].startswith("no segment rule matches this context")
    assert any("catalog" in line for line in found["why"][1:])
    probabilities = {r["option_id"]: r["probability"] for r in found["ranked"]}
    assert math.isclose(sum(probabilities.values()), 1.0)
    assert found["propensity"] == probabilities[found["shown"]]
    scores = [r["score"] for r in found["ranked"]]
    assert scores == sorted(scores, reverse=True)

    text = ok(args)
    assert ok(args) == text
    assert f"→  {found['shown']}" in text
    assert f"policy v{found['policy_version']}; shown {found['shown']} with propensity" in text
    assert "nothing in the catalog fills hook 'nope'" in refused(
        ["recommend", "--hook", "nope", "--db", db]).stderr


def test_recommend_scores_a_jsonl_file_one_line_per_context(db: str, tmp_path: Path) -> None:
    contexts = [US if n % 3 else MX for n in range(30)]
    path = tmp_path / "contexts.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in contexts), encoding="utf-8")

    def scored(seed: int) -> str:
        return ok(["recommend", "--hook", "intro_video", "--contexts", str(path),
                   "--seed", str(seed), "--db", db])

    out = scored(11)
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == len(contexts)
    for context, found in zip(contexts, lines, strict=True):
        assert set(found) == RECOMMENDATION_KEYS
        options = {r["option_id"] for r in found["ranked"]}
        assert found["shown"] in options and 0 < found["propensity"] <= 1
        assert all(o.startswith("protandim_intro_es") for o in options) == (context is MX)
    assert scored(11) == out
    assert scored(12) != out


def test_recommend_points_at_the_line_of_a_bad_jsonl_file(db: str, tmp_path: Path) -> None:
    path = tmp_path / "contexts.jsonl"
    path.write_text(json.dumps(US) + "\n\n" + '{"market": "US",\n' + json.dumps(MX) + "\n",
                    encoding="utf-8")
    args = ["recommend", "--hook", "intro_video", "--contexts", str(path), "--db", db]
    result = refused(args)
    assert f"{path}:3: is not valid JSON" in result.stderr and result.stdout == ""
    as_json = json.loads(refused([*args, "--json"]).stdout)
    assert as_json["message"].startswith(f"{path}:3: is not valid JSON")

    path.write_text(json.dumps(US) + "\n[1, 2]\n", encoding="utf-8")
    assert f"{path}:2: must be a JSON object" in refused(args).stderr
