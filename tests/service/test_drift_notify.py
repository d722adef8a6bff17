"""Telling people about a drift alert: a signed POST to the brand's URL (a real HTTP receiver
on 127.0.0.1), a line in `nextmove cards` and a note on the sponsor's card page."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from commands._drift import drift_chores, drift_webhook
from engine import ManualClock, NextmoveError
from engine.worker import run_worker
from learner import drift_records, open_alerts_on, review, watch
from nextmove import open_engine, open_store
from service.notify import SECRET_VARIABLE, URL_VARIABLE, DriftWebhook
from tests.learner.test_drift_watch import BAD, DAY, END, HOOK, drifting_log
from tests.service._server import running

SECRET = "drift-secret-0123456789"


@dataclass
class Receiver:
    url: str
    status: int = 204
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on a free loopback port that records what it is sent."""
    found = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            found.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(found.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/drift"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


def test_the_workers_drift_check_posts_a_signed_alert(receiver: Receiver,
                                                      db_url: str) -> None:
    store = open_store(db_url)
    drifting_log(store)
    engine = open_engine(store, clock=ManualClock(END), recommend=False)
    hook = DriftWebhook.configured(receiver.url, {SECRET_VARIABLE: SECRET})
    chores = drift_chores(engine, "P1D", "prospect_journey", "Event_end", "P1D", hook)
    run_worker(engine, poll_interval=0, max_loops=2, chores=chores, handle_signals=False)
    [(headers, body)] = receiver.got  # one alert, sent once (the second loop is not due)
    stamp = headers["x-nextmove-timestamp"]
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    assert headers["x-nextmove-signature"] == "sha256=" + expected.hexdigest()
    assert abs(int(stamp) - time.time()) < 300  # signed at the time of sending
    assert headers["x-nextmove-source"] == "nextmove"
    assert headers["x-nextmove-event"] == "drift_alert"
    sent = json.loads(body)
    [record] = drift_records(store, status="open")
    assert (sent["hook"], sent["option_id"], sent["policy_version"]) == (
        HOOK, BAD, record.version)
    assert sent["id"] == f"drift:{HOOK}:{record.version}" and sent["demoted"] is True
    assert sent["alert"]["since"] <= sent["alert"]["detected_at"]
    assert "pending review" in sent["reason"] and "drift --ack" in sent["ack"]
    store.dispose()


def test_an_unreachable_or_refusing_receiver_does_not_stop_the_check(
        receiver: Receiver, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'n.db'}")
    drifting_log(store)
    actions = watch(store, "prospect_journey", outcome="Event_end", horizon=DAY, now=END)
    receiver.status = 403
    [refused] = DriftWebhook(receiver.url, SECRET).send(actions)
    assert (refused.ok, refused.status) == (False, 403)
    assert len(receiver.got) == 1  # a 4xx is final: not sent again
    with socket.socket() as sock:  # a port nobody listens on (bound, then closed)
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    [lost] = DriftWebhook(dead, SECRET, attempts=1).send(actions)
    assert not lost.ok and lost.status is None and "Connect" in (lost.error or "")
    store.dispose()


def test_a_webhook_needs_an_http_url_and_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DriftWebhook.configured(None, {}) is None
    with pytest.raises(NextmoveError, match=SECRET_VARIABLE):
        DriftWebhook.configured("http://127.0.0.1:9/x", {SECRET_VARIABLE: "short"})
    with pytest.raises(NextmoveError, match="not an http"):
        DriftWebhook.configured("ftp://example.org/x", {SECRET_VARIABLE: SECRET})
    monkeypatch.setenv(URL_VARIABLE, "http://127.0.0.1:9/x")
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    found = drift_webhook(None)
    assert found is not None and found.url == "http://127.0.0.1:9/x"


def test_cli_drift_act_notifies_the_configured_url(receiver: Receiver, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    db = str(tmp_path / "cli.db")
    store = open_store(db)
    drifting_log(store)
    store.dispose()
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    done = CliRunner().invoke(app, [
        "drift", "--process", "prospect_journey", "--outcome", "Event_end", "--horizon", "P1D",
        "--act", "--webhook", receiver.url, "--db", db, "--now", END.isoformat()])
    assert done.exit_code == 0, done.output
    [(_, body)] = receiver.got
    assert json.loads(body)["option_id"] == BAD


def test_cards_tell_the_sponsor_about_an_open_alert(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cards.db'}"
    store = open_store(db)
    drifting_log(store)
    watch(store, "prospect_journey", outcome="Event_end", horizon=DAY, now=END)
    store.dispose()
    with running(db, deploy=False) as run:
        run.engine.start("prospect_journey", "new-p", "s1", {}, new=True)
        shown = {(c.hook, s.option_id) for c in run.engine.cards("s1") if c.hook
                 for s in c.content}
        assert (HOOK, BAD) in shown  # still offered, at its exploration floor
        assert [r.option_id for r in open_alerts_on(run.engine.store, shown)] == [BAD]
        browser = run.client()
        assert browser.post("/login", data={"token": run.tokens["sponsor"]}).status_code == 303
        page = browser.get("/me/cards").text
        assert 'class="drift"' in page and "shown less until your lead reviews it" in page
        d1 = run.client()
        d1.post("/login", data={"token": run.tokens["distributor"]})
        run.engine.start("prospect_journey", "p-of-d1", "d1", {}, new=True)
        assert 'class="drift"' not in d1.get("/me/cards").text  # a distributor is not told

        runner = CliRunner()
        listed = runner.invoke(app, ["cards", "-d", "s1", "--db", db])
        assert listed.exit_code == 0, listed.output
        assert f"drift alert (for the sponsor or lead): {HOOK}/{BAD}" in listed.stdout
        review(run.engine.store, BAD, reviewer="lee", decision="keep")
        assert 'class="drift"' not in browser.get("/me/cards").text  # acknowledged
        again = runner.invoke(app, ["cards", "-d", "s1", "--db", db])
        assert "drift alert" not in again.stdout
