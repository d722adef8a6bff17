"""`nextmove serve --workers N` on PostgreSQL: each worker listens on its own SO_REUSEPORT
socket, so connections spread over the workers (uvicorn's shared socket let the first worker
up take a burst of them all); SIGTERM stops them all; a worker that dies stops the server."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import REPO


@contextmanager
def _serving(pg_url: str, workers: int) -> Iterator[tuple[subprocess.Popen[str], int,
                                                          queue.Queue[str], list[int]]]:
    """`nextmove serve --workers N` on a free port, once every worker has started: the
    process, its port, its log lines as they come, the workers' pids. Killed at the end if
    still running."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {**os.environ, "PYTHONPATH": str(REPO), "NEXTMOVE_DB": pg_url}
    server = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "serve", "--port",
                               str(port), "--workers", str(workers)], env=env,
                              stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in server.stderr or ()],
                     daemon=True).start()
    try:
        yield server, port, lines, _started(lines, workers)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=60)
        assert server.stderr is not None
        server.stderr.close()


def _started(lines: queue.Queue[str], workers: int) -> list[int]:
    """The workers' pids, once each has started its application (bounded by the timeout)."""
    pids: list[int] = []
    ready = 0
    while ready < workers:
        line = lines.get(timeout=60)
        if found := re.search(r"Started server process \[(\d+)\]", line):
            pids.append(int(found[1]))
        ready += "Application startup complete" in line
    return pids


def test_connections_spread_over_the_workers_and_sigterm_stops_them_all(pg_url: str) -> None:
    with _serving(pg_url, 2) as (server, port, _lines, pids):
        assert len(set(pids)) == 2
        served = set()
        for _ in range(24):  # 24 new connections: all on one of 2 sockets has odds 2**-23
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as one:
                answer = one.get("/healthz")
                assert answer.status_code == 200
                served.add(answer.headers["x-request-id"][:12])  # the process's prefix
        assert len(served) == 2
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=90) == 0
        for pid in pids:  # both gone (reaped by the server before it exited)
            assert not Path(f"/proc/{pid}").exists()


def test_a_worker_that_dies_stops_the_server_with_an_error(pg_url: str) -> None:
    with _serving(pg_url, 2) as (server, _port, lines, pids):
        os.kill(pids[0], signal.SIGKILL)
        assert server.wait(timeout=90) != 0
        rest = []
        while not lines.empty():
            rest.append(lines.get())
        assert any("exited with code -9" in line for line in rest), rest


def test_workers_stop_when_the_server_process_is_killed(pg_url: str) -> None:
    """SIGKILL gives the parent no chance to stop its workers: they notice and stop."""
    with _serving(pg_url, 2) as (server, port, _lines, pids):
        server.kill()
        server.wait(timeout=60)
        for pid in pids:  # each checks its parent once a second, then stops gracefully
            for _ in range(300):
                if not Path(f"/proc/{pid}").exists() or "zombie" in Path(
                        f"/proc/{pid}/status").read_text().lower():
                    break
                threading.Event().wait(0.1)
            else:
                raise AssertionError(f"worker {pid} still serves port {port}")
