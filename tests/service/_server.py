"""A real uvicorn server on 127.0.0.1 (a free port) in a thread, and real HTTP clients.

The listening socket is bound before the thread starts, so a client's first request waits in
the backlog until uvicorn accepts it: nothing polls or sleeps."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import uvicorn
from fastapi import FastAPI

import service
from engine import Engine, ManualClock
from nextmove import open_engine
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECRET = "vimeo-secret-0123456789"


@dataclass
class Running:
    url: str
    engine: Engine
    clock: ManualClock
    tokens: dict[str, str] = field(default_factory=dict)  # role -> token
    app: FastAPI | None = None  # the served application (in this process)
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, role: str | None = None, token: str | None = None,
               **options: object) -> httpx.Client:
        token = token or (self.tokens[role] if role else None)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        made = httpx.Client(base_url=self.url, headers=headers, timeout=60,
                            **options)  # type: ignore[arg-type]
        self.clients.append(made)
        return made

    def token(self, role: str, subject: str) -> str:
        return service.create_token(self.engine.store, role, subject, self.clock).token


SUBJECTS = {"designer": "dana", "integrator": "crm", "distributor": "d1", "sponsor": "s1",
            "lead": "lee", "reviewer": "rey", "admin": "root"}


@contextmanager
def running(db: str, *, deploy: bool = True) -> Iterator[Running]:
    clock = ManualClock(T0)
    engine = open_engine(db, clock=clock)
    if deploy:
        engine.deploy([LIFEVANTAGE])
    service.prepare_tables(engine.store)
    settings = service.Settings(db=db, webhook_secrets={"vimeo": SECRET})
    app = service.create_app(settings, engine=engine)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    logging.getLogger("nextmove.service.access").setLevel(logging.INFO)
    thread.start()
    run = Running(f"http://127.0.0.1:{port}", engine, clock, app=app)
    run.tokens = {role: run.token(role, subject) for role, subject in SUBJECTS.items()}
    try:
        yield run
    finally:
        for made in run.clients:
            made.close()
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        engine.store.dispose()
        assert not thread.is_alive(), "the server did not stop"
