"""`nextmove tick` and `nextmove signal` through typer's CliRunner on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app
from tests.conftest import FIXTURES

EVENTS = FIXTURES / "events"
SIGNALS = FIXTURES / "bpmn" / "signals"
T0 = "2026-01-05T09:00:00Z"
SHARED = "2026-01-05T10:00:00Z"  # the video is shared an hour later
DUE = "2026-01-07T10:00:00Z"  # two days after that
PLAYED = "2026-01-06T08:00:00Z"  # the video is played before the follow-up is due
FIRED_KEYS = {"instance_id", "prospect_id", "process_id", "step_id", "kind", "at"}
SIGNAL_KEYS = {"message", "prospect_id", "message_id", "status", "delivered_to", "duplicate",
               "held", "expires_at", "fired", "schema_version"}

# Automatic tasks the two-day timer's firing runs, as `tick` reports them: the event-based
# gateway it waits behind and the timer event itself, up to the next person's step.
STEPS_AFTER_TWO_DAYS = 2
runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "events.db")
    ok(["deploy", str(EVENTS), "--db", path])
    return path


def ok(args: list[str], **kwargs: Any) -> str:
    result = runner.invoke(app, args, **kwargs)
    assert result.exit_code == 0, result.output
    return result.stdout


def ok_json(args: list[str], **kwargs: Any) -> Any:
    return json.loads(ok([*args, "--json"], **kwargs))


def video_shared(db: str, prospect: str = "p1") -> int:
    started = ok_json(["start", "video_follow_up", "-p", prospect, "-d", "d1", "--now", T0,
                       "--db", db])
    ok(["complete", "share_video", "--prospect", prospect, "--now", SHARED, "--db", db])
    return int(started["instance_id"])


def history(db: str, instance_id: int) -> list[dict[str, Any]]:
    return ok_json(["show", str(instance_id), "--db", db])["history"]  # type: ignore[no-any-return]


# -- tick --------------------------------------------------------------------------------------


def test_tick_fires_what_is_due_at_now_once(db: str) -> None:
    instance_id = video_shared(db)

    nothing = {"schema_version": 1, "fired": [], "steps": 0, "incidents": []}
    assert ok_json(["tick", "--now", "2026-01-07T09:59:59Z", "--db", db]) == nothing
    report = ok_json(["tick", "--now", DUE, "--db", db])
    assert report == {"schema_version": 1, "steps": STEPS_AFTER_TWO_DAYS, "incidents": [],
                      "fired": [{
        "instance_id": instance_id, "prospect_id": "p1", "process_id": "video_follow_up",
        "step_id": "two_days", "kind": "timer", "at": "2026-01-07T10:00:00+00:00"}]}
    assert set(report["fired"][0]) == FIRED_KEYS
    assert ok_json(["tick", "--now", "2026-02-01T00:00:00Z", "--db", db]) == nothing

    events = [(e["step_id"], e["kind"], e["at"]) for e in history(db, instance_id)]
    assert ("two_days", "timer", "2026-01-07T10:00:00+00:00") in events


def test_tick_prints_a_line_per_fired_timer(db: str) -> None:
    first = video_shared(db, "p1")
    second = video_shared(db, "p2")

    text = ok(["tick", "--now", DUE, "--db", db])

    assert text.splitlines() == [
        f"2026-01-07 10:00:00 fired timer two_days instance {first} "
        "(video_follow_up, prospect p1)",
        f"2026-01-07 10:00:00 fired timer two_days instance {second} "
        "(video_follow_up, prospect p2)",
        f"2 timer(s) fired, {2 * STEPS_AFTER_TWO_DAYS} step(s) run, 0 incident(s)",
    ]
    assert ok(["tick", "--now", DUE, "--db", db]).splitlines() == [
        "0 timer(s) fired, 0 step(s) run, 0 incident(s)"]


def test_tick_reads_now_from_the_environment(db: str) -> None:
    video_shared(db)
    report = ok_json(["tick", "--db", db], env={"NEXTMOVE_NOW": DUE})
    assert [f["at"] for f in report["fired"]] == ["2026-01-07T10:00:00+00:00"]


def test_a_bad_now_is_a_clear_error(db: str) -> None:
    result = runner.invoke(app, ["tick", "--now", "next tuesday", "--db", db, "--json"])
    assert result.exit_code == 3
    error = json.loads(result.stdout)
    assert (error["error"], error["code"]) == ("InvalidInput", "invalid-input")
    assert "--now: 'next tuesday' is not an ISO 8601 time" in error["message"]

    result = runner.invoke(app, ["tick", "--now", "next tuesday", "--db", db])
    assert result.exit_code == 3
    assert "is not an ISO 8601 time" in result.stderr
    assert "Traceback" not in result.output


# -- signal ------------------------------------------------------------------------------------


def test_signal_delivers_to_the_waiting_prospect(db: str) -> None:
    p1 = video_shared(db, "p1")
    p2 = video_shared(db, "p2")

    report = ok_json(["signal", "video_played", "--prospect", "p1", "--id", "evt-1",
                      "--data", '{"seconds_watched": 95}', "--now", "2026-01-06T08:00:00Z",
                      "--db", db])

    assert set(report) == SIGNAL_KEYS
    assert {k: report[k] for k in SIGNAL_KEYS - {"fired", "schema_version"}} == {
        "message": "video_played", "prospect_id": "p1", "message_id": "evt-1",
        "status": "delivered", "delivered_to": [p1], "duplicate": False, "held": False,
        "expires_at": None}
    assert report["fired"] == [{
        "instance_id": p1, "prospect_id": "p1", "process_id": "video_follow_up",
        "step_id": "video_played", "kind": "message", "at": "2026-01-06T08:00:00+00:00"}]
    (event,) = [e for e in history(db, p1) if e["kind"] == "message"]
    assert event["data"] == {"message_id": "evt-1", "seconds_watched": 95}
    assert not any(e["kind"] == "message" for e in history(db, p2))

    # p2 still follows up after two days; p1 does not
    fired = ok_json(["tick", "--now", DUE, "--db", db])["fired"]
    assert [f["instance_id"] for f in fired] == [p2]


def test_signal_text_output(db: str) -> None:
    p1 = video_shared(db, "p1")
    args = ["signal", "video_played", "-p", "p1", "--id", "evt-1", "--now", SHARED, "--db", db]

    assert ok(args).splitlines() == [
        f"2026-01-05 10:00:00 fired message video_played instance {p1} "
        "(video_follow_up, prospect p1)",
        "delivered to 1 instance(s)",
    ]
    assert ok(args).splitlines() == [
        "duplicate: message evt-1 was already received; no effect"]
    assert ok(["signal", "video_played", "-p", "p9", "--id", "evt-2", "--now", SHARED,
               "--db", db]).splitlines() == [
        "held: nothing of prospect p9 waits for 'video_played' yet; evt-2 is held until "
        "2026-02-04 10:00:00 and delivered when a step waits for it"]


def test_signal_twice_with_one_id_is_a_duplicate(db: str) -> None:
    p1 = video_shared(db)
    args = ["signal", "video_played", "-p", "p1", "--id", "evt-1", "--now", PLAYED, "--db", db]

    first = ok_json(args)
    again = ok_json(args)

    assert (first["delivered_to"], first["duplicate"]) == ([p1], False)
    assert (again["delivered_to"], again["duplicate"], again["held"], again["fired"],
            again["status"]) == ([], True, False, [], "duplicate")
    assert [e["kind"] for e in history(db, p1)].count("message") == 1


def test_signal_nothing_waits_for_is_held_with_exit_0(db: str) -> None:
    video_shared(db, "p1")
    report = ok_json(["signal", "form_submitted", "-p", "p1", "--now", SHARED, "--db", db])
    assert (report["status"], report["held"], report["delivered_to"], report["duplicate"]) == (
        "held", True, [], False)
    assert report["expires_at"] == "2026-02-04T10:00:00+00:00"  # received + P30D
    assert len(report["message_id"]) >= 16  # generated, so it can be looked up


@pytest.mark.parametrize(("data", "says"), [
    ("{not json", "--data: is not valid JSON"),
    ("[1, 2]", "--data: must be a JSON object"),
])
def test_signal_with_bad_data_is_a_clear_error(db: str, data: str, says: str) -> None:
    video_shared(db)
    result = runner.invoke(app, ["signal", "video_played", "-p", "p1", "--data", data,
                                 "--db", db, "--json"])
    assert result.exit_code == 3
    assert says in json.loads(result.stdout)["message"]
    # nothing was delivered or recorded
    assert ok_json(["signal", "video_played", "-p", "p1", "--now", PLAYED,
                    "--db", db])["status"] == "delivered"


def test_signal_needs_a_prospect(db: str) -> None:
    result = runner.invoke(app, ["signal", "video_played", "--db", db])
    assert result.exit_code == 2
    assert "--prospect" in result.output


def test_signal_takes_a_prospect_or_broadcast_not_both(db: str) -> None:
    result = runner.invoke(app, ["signal", "price_change", "-p", "p1", "--broadcast",
                                 "--db", db])
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())  # the rich box wraps lines
    assert "--prospect ID (a prospect event) or --broadcast" in said and "not both" in said


def test_signal_broadcast_moves_every_instance_waiting_on_the_bpmn_signal(db: str) -> None:
    ok(["deploy", str(SIGNALS), "--db", db])
    for prospect in ("p1", "p2"):
        ok(["start", "price_watch", "-p", prospect, "-d", "d1", "--now", T0, "--db", db])
        ok(["complete", "share_offer", "--prospect", prospect, "--now", T0, "--db", db])
    shown = ok(["show", "--prospect", "p1", "--db", db])
    assert "price_changed (Price changed) [signal]  signal=price_change" in shown

    text = ok(["signal", "price_change", "--broadcast", "--id", "s-1", "--now", SHARED,
               "--db", db])
    assert text.count("fired signal price_changed") == 2
    assert "signal 'price_change' (s-1) delivered to 2 instance(s)" in text

    report = ok_json(["signal", "price_change", "--broadcast", "--id", "s-1", "--db", db])
    assert set(report) == {"schema_version", "signal", "signal_id", "delivered_to",
                           "already_delivered_to", "failed", "fired"}
    assert report["delivered_to"] == [] and report["fired"] == []  # nobody waits any more


def test_show_lists_the_prospects_held_and_expired_events(db: str) -> None:
    instance_id = ok_json(["start", "video_follow_up", "-p", "p1", "-d", "d1", "--now", T0,
                           "--db", db])["instance_id"]
    ok(["signal", "form_submitted", "-p", "p1", "--id", "f-1", "--data", '{"page": 2}',
        "--now", T0, "--db", db])
    ok(["signal", "video_played", "-p", "p1", "--id", "v-1", "--now", SHARED, "--db", db])

    text = ok(["show", str(instance_id), "--db", db])
    assert "events of prospect p1 nothing waited for:" in text
    (line,) = [line.split() for line in text.splitlines() if "form_submitted" in line]
    assert line[1:6] == ["form_submitted", "f-1", "held", "2026-02-04", '{"page":']
    ok(["tick", "--now", "2026-02-04T09:30:00Z", "--db", db])
    held = ok_json(["show", str(instance_id), "--db", db])["held_events"]
    assert [(e["message_id"], e["status"], e["settled_at"]) for e in held] == [
        ("f-1", "expired", "2026-02-04T09:30:00+00:00"), ("v-1", "held", None)]
    # the video is shared: the held video_played is delivered by that step
    ok(["complete", "share_video", "-p", "p1", "--now", "2026-02-04T09:45:00Z", "--db", db])
    held = ok_json(["show", str(instance_id), "--db", db])["held_events"]
    assert [(e["message_id"], e["status"]) for e in held] == [("f-1", "expired")]


def test_a_mistyped_event_name_is_refused_with_the_nearest_one(tmp_path: Path) -> None:
    db = str(tmp_path / "typo.db")
    assert runner.invoke(app, ["deploy", str(EVENTS), "--db", db]).exit_code == 0
    result = runner.invoke(app, ["signal", "video_playd", "-p", "ann", "--db", db])
    assert result.exit_code == 3, result.output
    assert "did you mean 'video_played'" in result.output and "nothing was stored" in result.output


def test_a_mistyped_signal_broadcast_is_refused_with_the_nearest_one(db: str) -> None:
    ok(["deploy", str(SIGNALS), "--db", db])
    result = runner.invoke(app, ["signal", "price_chnage", "--broadcast", "--db", db])
    assert result.exit_code == 3, result.output
    assert "did you mean 'price_change'" in result.output and "delivered to" not in result.output
    said = json.loads(runner.invoke(app, ["signal", "price_chnage", "--broadcast", "--db", db,
                                          "--json"]).stdout)
    assert said["error"] == "UnknownSignal"


def test_a_tick_that_delivers_a_held_event_counts_it_apart_from_timers(tmp_path: Path) -> None:
    """The pause's timer fires; the catch it leads to takes the prospect's held form: one
    timer and one delivery, not "2 timer(s) fired"."""
    from tests.engine.test_held_late_tick import HELD

    (tmp_path / "held.yaml").write_text(HELD)
    db = str(tmp_path / "held.db")
    ok(["deploy", str(tmp_path / "held.yaml"), "--db", db])
    ok(["start", "held", "-p", "p1", "-d", "d1", "--now", "2026-01-01T09:00:00Z", "--db", db])
    ok(["complete", "call", "-p", "p1", "--now", "2026-01-01T10:00:00Z", "--db", db])
    ok(["signal", "form_submitted", "-p", "p1", "--id", "e1", "--now", "2026-01-01T11:00:00Z",
        "--db", db])
    lines = ok(["tick", "--now", "2026-01-04T10:00:00Z", "--db", db]).splitlines()
    assert [line.split()[3:5] for line in lines[:-1]] == [
        ["timer", "pause"], ["message", "Event_wait_form_form_submitted"]]
    assert lines[-1].startswith("1 timer(s) fired, 1 held event(s) delivered, ")
