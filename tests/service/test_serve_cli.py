"""`nextmove serve` as a user runs it: a real process, a token from `nextmove token create`,
the README's curl line, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

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
