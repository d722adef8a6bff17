"""`nextmove serve` as a user runs it: a real process, a token from `nextmove token create`,
the README's curl line, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

import service
from engine.store import INSTANCE
from nextmove import open_engine
from tests.conftest import REPO


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_serve_answers_the_readme_curl_and_stops_on_sigterm(tmp_path: Path) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NEXTMOVE_DB": str(tmp_path / "n.db")}
    assert _cli("deploy", str(REPO / "processes" / "lifevantage"), env=env).returncode == 0
    made = _cli("token", "create", "--role", "lead", "--subject", "me", "--json", env=env)
    token = json.loads(made.stdout)["token"]
    listed = _cli("token", "list", "--json", env=env)
    assert token not in listed.stdout
    assert json.loads(listed.stdout)["tokens"][0]["subject"] == "me"
    with socket.socket() as probe:  # a free port, handed to the server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "serve", "--port",
                               str(port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        for line in server.stderr:  # blocks until uvicorn says it listens
            if "Uvicorn running" in line:
                break
        answer = subprocess.run(
            [curl, "-s", "-H", f"Authorization: Bearer {token}",
             f"http://127.0.0.1:{port}/analytics/funnel?process=prospect_journey"],
            capture_output=True, text=True, timeout=60, check=True)
        assert json.loads(answer.stdout)["process_id"] == "prospect_journey"
        server.send_signal(signal.SIGTERM)
        rest = server.stderr.read()
        # uvicorn shuts down cleanly, then re-raises the signal for the parent to see.
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=60)
        if server.stderr is not None:
            server.stderr.close()
    logged = [json.loads(x) for x in rest.splitlines() if x.startswith("{")]
    assert not logged or all("path" in entry for entry in logged)
    assert "Application shutdown complete" in rest and "Finished server process" in rest
    revoked = _cli("token", "revoke", "1", env=env)
    assert revoked.returncode == 0 and "revoked token 1" in revoked.stdout


def test_serve_refuses_workers_on_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NEXTMOVE_DB": str(tmp_path / "n.db")}
    done = _cli("serve", "--workers", "2", env=env)
    assert done.returncode == 3 and "needs PostgreSQL" in done.stderr  # invalid input


@pytest.mark.postgres
def test_sigterm_lets_a_step_in_flight_commit_and_answer(pg_url: str) -> None:
    """A step is held up mid-write (the test holds its instance row locked); SIGTERM arrives
    while it waits; uvicorn stops accepting, lets it finish, answers it, then exits."""
    engine = open_engine(pg_url)
    engine.deploy([REPO / "processes" / "lifevantage"])
    service.prepare_tables(engine.store)
    instance = engine.start("prospect_journey", "p-term", "d1", {}, new=True)
    token = service.create_token(engine.store, "distributor", "d1").token
    env = {**os.environ, "PYTHONPATH": str(REPO), "NEXTMOVE_DB": pg_url}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "serve", "--port",
                               str(port)], env=env, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert server.stderr is not None
    threading.Thread(target=lambda: [lines.put(x) for x in server.stderr or ()],
                     daemon=True).start()
    answers: list[httpx.Response] = []
    holder = engine.store.engine.connect()
    try:
        _wait_for(lines, "Uvicorn running")
        locked = holder.begin()
        holder.execute(select(INSTANCE.c.id).where(INSTANCE.c.id == instance.id)
                       .with_for_update())
        step = threading.Thread(target=lambda: answers.append(httpx.post(
            f"http://127.0.0.1:{port}/instances/{instance.id}/complete",
            json={"step": "add_contact"}, headers={"Authorization": f"Bearer {token}"},
            timeout=60)))
        step.start()
        _wait_for_lock(engine.store.engine, holder)  # the step is now writing, blocked
        server.send_signal(signal.SIGTERM)
        _wait_for(lines, "Shutting down")  # the server is stopping with the step in flight
        assert server.poll() is None and not answers
        locked.rollback()  # let the step's write through
        step.join(timeout=60)
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)
        [answer] = answers
        assert answer.status_code == 200, answer.text
        assert "add_contact" not in [w["step_id"] for w in answer.json()["waiting"]]
        done = [(e.step_id, e.actor) for e in engine.history(instance.id)
                if e.kind == "completed" and e.step_id == "add_contact"]
        assert done == [("add_contact", "d1")]  # committed once, the caller as its actor
    finally:
        holder.close()
        if server.poll() is None:
            server.kill()
            server.wait(timeout=60)
        server.stderr.close()
        engine.store.dispose()


def _wait_for(lines: queue.Queue[str], text: str) -> None:
    while True:  # bounded by the queue's timeout: a silent server fails the test
        if text in lines.get(timeout=60):
            return


def _wait_for_lock(db: Any, holder: Any) -> None:
    """Until some other session of this database waits for a lock (the step's UPDATE)."""
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
    for _ in range(1200):  # a poll of the database's state, bounded (about a minute)
        with db.connect() as conn:
            if conn.execute(query).scalar_one():
                return
        time.sleep(0.05)
    raise AssertionError("the step never reached its write")
