"""`nextmove serve --workers N`: N worker processes, each listening on its own socket bound
with SO_REUSEPORT, so the kernel spreads new connections evenly across them.

Why not uvicorn's own `workers=`: its workers share one listening socket, and an event loop
woken for a burst of connections accepts all that are waiting. Sixteen keep-alive clients
connecting at once all landed on one worker, which then did ~95 % of the work while the other
idled (measured; BENCHMARKS.md section 8), so a second worker added almost nothing. With one
socket per worker the kernel hashes each connection to one of them.

The parent starts the workers, forwards SIGTERM and SIGINT to them (each stops as a single
`nextmove serve` does: in-flight requests and steps finish first) and waits. A worker that
exits on its own stops the others and the parent exits non-zero: the service manager (systemd,
Kubernetes) restarts the whole server, rather than this process hiding a crash loop.
Linux and the BSDs have SO_REUSEPORT; elsewhere `serve` says so and needs `--workers 1`.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.connection import wait
from types import FrameType
from typing import Any

from engine.errors import NextmoveError

STOP_SECONDS = 60  # a worker's graceful stop (30 s for in-flight requests) and some margin


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) that other workers may bind too (SO_REUSEPORT)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise NextmoveError("--workers above 1 needs SO_REUSEPORT (Linux, the BSDs); "
                            "serve with --workers 1 here")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise NextmoveError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


def _worker(host: str, port: int, options: dict[str, Any], parent: int) -> None:
    """One worker: its own socket, the app from NEXTMOVE_* (inherited environment). It stops
    gracefully if the parent dies (killed with SIGKILL, say), rather than serve on orphaned."""
    import uvicorn

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_parent, daemon=True, name="watch-parent").start()
    config = uvicorn.Config("service.app:from_environment_app", factory=True, host=host,
                            port=port, **options)
    uvicorn.Server(config).run(sockets=[listening_socket(host, port)])


def run(workers: int, host: str, port: int, options: dict[str, Any]) -> None:
    """Serve with `workers` processes until SIGTERM or SIGINT (then each finishes what is in
    flight). Raises `NextmoveError` when a worker stopped on its own."""
    listening_socket(host, port).close()  # the port is free: say so here, not per worker
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=_worker, args=(host, port, options, os.getpid()),
                           name=f"worker-{n}") for n in range(workers)]
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.pid is not None and proc.exitcode is None:
                proc.terminate()  # SIGTERM: uvicorn's graceful stop

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for proc in procs:
            proc.start()
        ended = wait([p.sentinel for p in procs])  # one ended: all on a stop, or a crash
        crashed = None
        if not stopping:
            crashed = next(p for p in procs if p.sentinel in ended)
            crashed.join()  # its exit code (the sentinel may close just before it is reaped)
            stop(signal.SIGTERM, None)
        for proc in procs:
            proc.join(STOP_SECONDS)
            if proc.exitcode is None:
                proc.kill()
                proc.join()
        if crashed is not None:
            raise NextmoveError(f"{crashed.name} exited with code {crashed.exitcode}; the "
                                "other workers were stopped")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
