"""Signed prospect events: a good signature moves the instance; a bad, stale, unsigned or
unknown-source request is refused (401) and logged; a replayed event has no second effect."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from service import signature
from tests.conftest import FIXTURES
from tests.service._server import SECRET, Running
from tests.service._world import start


def _waiting_for_video(run: Running) -> int:
    instance = start(run, "p-video", "d1")
    run.engine.complete(instance, "add_contact", actor="d1")
    run.engine.complete(instance, "share_intro", actor="d1")
    return instance


def _send(client: httpx.Client, body: bytes, *, secret: str = SECRET, at: int,
          source: str = "vimeo", sign: bool = True,
          message: str = "video_played") -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if sign:
        headers.update({"X-Nextmove-Source": source, "X-Nextmove-Timestamp": str(at),
                        "X-Nextmove-Signature": signature(secret, str(at), body)})
    return client.post(f"/events/{message}", content=body, headers=headers)


def test_signed_events_are_delivered_once_and_bad_ones_refused(
        api: Running, caplog: pytest.LogCaptureFixture) -> None:
    instance = _waiting_for_video(api)
    client = api.client()
    now = int(api.clock.now().timestamp())
    body = json.dumps({"id": "evt-1", "prospect_id": "p-video",
                       "data": {"seconds": 95}}).encode()
    refused = {
        "unsigned": _send(client, body, at=now, sign=False),
        "bad signature": _send(client, body, at=now, secret="someone-elses-secret-123"),
        "body changed": client.post("/events/video_played", content=body + b" ", headers={
            "X-Nextmove-Source": "vimeo", "X-Nextmove-Timestamp": str(now),
            "X-Nextmove-Signature": signature(SECRET, str(now), body)}),
        "stale": _send(client, body, at=now - 301),
        "from the future": _send(client, body, at=now + 301),
        "unknown source": _send(client, body, at=now, source="shopify"),
    }
    for name, answer in refused.items():
        assert answer.status_code == 401, name
        assert answer.json()["type"].endswith("/bad-signature"), name
    logged = [json.loads(r.getMessage()) for r in caplog.records
              if r.name == "nextmove.service.webhooks"]
    assert len(logged) == len(refused)
    assert {entry["event"] for entry in logged} == {"webhook_refused"}
    assert any("stale" in entry["reason"] for entry in logged)
    assert "conversation" not in api.engine.get(instance).waiting_steps  # nothing moved

    good = _send(client, body, at=now - 120)  # inside the window
    assert good.status_code == 200, good.text
    assert good.json()["delivered_to"] == [instance] and not good.json()["duplicate"]
    assert "conversation" in api.engine.get(instance).waiting_steps
    replayed = _send(client, body, at=now - 120)
    assert replayed.status_code == 200 and replayed.json()["duplicate"] is True
    resigned = _send(client, body, at=now)  # the same event id, signed again: still once
    assert resigned.json()["duplicate"] is True
    events = [e for e in api.engine.history(instance) if e.kind == "message"]
    assert len(events) == 1


def test_the_window_follows_the_engines_clock(sqlite_api: Running) -> None:
    run = sqlite_api
    _waiting_for_video(run)
    signed_at = int(run.clock.now().timestamp())
    body = json.dumps({"id": "evt-2", "prospect_id": "p-video"}).encode()
    run.clock.advance(timedelta(minutes=6))
    assert _send(run.client(), body, at=signed_at).status_code == 401
    malformed = json.dumps({"prospect_id": "p-video"}).encode()  # no event id
    answer = _send(run.client(), malformed, at=int(run.clock.now().timestamp()))
    assert answer.status_code == 422 and answer.json()["type"].endswith("/invalid-input")


def test_an_event_whose_step_failed_is_refused_once_then_a_duplicate(api: Running) -> None:
    api.engine.deploy([FIXTURES / "incidents" / "messages" / "v1"])
    instance = api.engine.start("video_check", "p-broken", "d1").id
    client = api.client()
    now = int(api.clock.now().timestamp())
    body = json.dumps({"id": "evt-9", "prospect_id": "p-broken"}).encode()

    failed = _send(client, body, at=now)  # no `minutes`: the map's decide fails
    assert failed.status_code == 409 and failed.json()["incident"] is True
    assert api.engine.get(instance).status == "incident"
    again = _send(client, body, at=now)  # the sender retries its delivery
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True and again.json()["status"] == "duplicate"
    assert [(h.message_id, h.status) for h in api.engine.held_events("p-broken")] == [
        ("vimeo:evt-9", "incident")]


def test_an_event_no_map_catches_is_refused_with_its_nearest_name(api: Running) -> None:
    """A sender configured with a mistyped event name hears so (422), instead of its events
    being held for a catch that never comes."""
    client = api.client()
    body = json.dumps({"id": "evt-typo", "prospect_id": "p-video"}).encode()
    refused = _send(client, body, at=int(api.clock.now().timestamp()), message="video_playd")
    assert refused.status_code == 422, refused.text
    assert "did you mean 'video_played'" in refused.json()["detail"]
