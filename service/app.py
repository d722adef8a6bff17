"""The FastAPI application: one engine per process (from `nextmove.open_engine`), the routes,
Problem Details for every error, and one JSON line per request on the
`nextmove.service.access` logger."""

from __future__ import annotations

import itertools
import json
import logging
import queue
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from importlib.resources import files
from logging.handlers import QueueHandler, QueueListener
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import nextmove
from engine import Engine, NextmoveError
from service import _tables, page, routes_insight, routes_instances, routes_maps, webhooks
from service._deps import EngineDep, caller
from service._strict import known_query
from service.problems import MEDIA_TYPE, TYPE_BASE, Problem, problem_response
from service.roles import Principal
from service.settings import Settings, from_environment

access = logging.getLogger("nextmove.service.access")
_ID_PREFIX = uuid.uuid4().hex[:12]  # this process's; request ids are unique across workers
_ids = itertools.count(1)
log = logging.getLogger("nextmove.service")
_WEBHOOK_LOG = logging.getLogger("nextmove.service.webhooks")
VERSION = "1"


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The application. Without `engine` it opens one on `settings.db` when it starts and
    disposes of it when it stops (each worker process has its own)."""
    settings = settings or from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = engine is None
        app.state.engine = nextmove.open_engine(settings.db) if own else engine
        _tables.prepare(app.state.engine.store)
        writers = [_write_behind(logger) for logger in (access, _WEBHOOK_LOG)]
        try:
            yield
        finally:  # uvicorn has let in-flight requests finish before this runs
            for stop in writers:
                stop()
            if own:
                app.state.engine.store.dispose()

    app = FastAPI(
        title="nextmove", version=VERSION, lifespan=lifespan,
        dependencies=[Depends(known_query)],  # every route refuses query parameters it lacks
        description="Guided-selling journeys as process maps, run per prospect: maps, "
                    "instances, action cards, prospect events, analytics, the trail and the "
                    "learner over HTTP. Authenticate with `Authorization: Bearer <token>` "
                    "(`nextmove token create`). Errors are Problem Details (RFC 9457).")
    app.state.settings = settings
    app.state.engine = engine
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(NextmoveError, _problem)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)  # no route, wrong method, ...
    app.add_exception_handler(Exception, _internal)
    app.add_middleware(_AccessLog)
    # A request is matched against the routes in order: a person's steps, the busiest, first
    # (no route of the other modules matches /instances/...; the OpenAPI paths are sorted).
    for module in (routes_instances, routes_maps, routes_insight, webhooks, page):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(files("service") / "static")),
              name="static")
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["operations"],
                      summary="The process is up")
    app.add_api_route("/readyz", readyz, methods=["GET"], tags=["operations"],
                      summary="The database answers", responses={503: {}})
    app.add_api_route("/me", me, methods=["GET"], tags=["operations"],
                      summary="Who the token is")
    return app


def _write_behind(logger: logging.Logger) -> Callable[[], None]:
    """Hand `logger`'s lines to a thread that writes them: the event loop then never blocks
    in a write (nor waits to get the interpreter back after one). Returns how to undo it."""
    handlers = list(logger.handlers)
    if not handlers:
        return lambda: None
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    writer = QueueListener(lines, *handlers, respect_handler_level=True)
    logger.handlers = [QueueHandler(lines)]
    writer.start()

    def stop() -> None:
        writer.stop()  # writes what is queued
        logger.handlers = handlers

    return stop


async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def readyz(engine: EngineDep) -> JSONResponse:
    try:
        engine.store.select(select(_tables.API_TOKEN.c.id).limit(1))
    except Exception as exc:  # any failure to reach the database means not ready
        return problem_response(Problem(503, "storage-unavailable", "Not ready",
                                        f"the database does not answer: {type(exc).__name__}"))
    return JSONResponse({"status": "ready"})


async def me(who: Annotated[Principal, Depends(caller)]) -> dict[str, object]:
    return who.to_dict()


async def _problem(request: Request, exc: Exception) -> Response:
    return problem_response(exc, request.url.path)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = json.loads(json.dumps(exc.errors(), default=str))
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return JSONResponse({"type": "https://nextmove.dev/problems/invalid-input",
                         "title": "The request is not valid", "status": 422,
                         "detail": f"{where}: {first.get('msg', 'invalid')}",
                         "errors": errors, "instance": request.url.path},
                        status_code=422, media_type=MEDIA_TYPE)


async def _http(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (404 for no route, 405 for a wrong method) as Problem
    Details: `not-found` for 404, else `about:blank` with the status's phrase (RFC 9457)."""
    assert isinstance(exc, StarletteHTTPException)
    kind = TYPE_BASE + "not-found" if exc.status_code == 404 else "about:blank"
    return JSONResponse({"type": kind, "title": HTTPStatus(exc.status_code).phrase,
                         "status": exc.status_code,
                         "detail": f"{request.method} {request.url.path}: {exc.detail}",
                         "instance": request.url.path},
                        status_code=exc.status_code, media_type=MEDIA_TYPE,
                        headers=exc.headers)


async def _internal(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(exc, request.url.path)


class _AccessLog:
    """One JSON line per request, and its id echoed as X-Request-Id. A plain ASGI middleware:
    Starlette's `BaseHTTPMiddleware` costs a task group and a stream per request. A request
    without an id gets this process's random prefix and a counter (no system call per
    request, as `uuid4` makes); the line is built only when the logger would write it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})  # where handlers put request.state.subject
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = given.decode("latin-1") if given else f"{_ID_PREFIX}{next(_ids):x}"
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), (
                    b"x-request-id", request_id.encode("latin-1"))]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if access.isEnabledFor(logging.INFO):
                _log_line(scope, state, request_id, status, started)


def _log_line(scope: Scope, state: dict[str, Any], request_id: str, status: int,
              started: float) -> None:
    client = scope.get("client")
    line: dict[str, Any] = {
        "ts": time.time(), "request_id": request_id, "method": scope["method"],
        "path": scope["path"], "status": status,
        "ms": round((time.perf_counter() - started) * 1000, 2),
        "subject": state.get("subject"),
        "client": client[0] if client else None,
    }
    access.info(json.dumps(line))


def from_environment_app() -> FastAPI:
    """The application configured by NEXTMOVE_* variables: what each uvicorn worker process
    builds (`uvicorn --factory service.app:from_environment_app`)."""
    return create_app(from_environment())


LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(message)s"},
                   "plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "line",
                          "stream": "ext://sys.stderr"},
                 "plain": {"class": "logging.StreamHandler", "formatter": "plain",
                           "stream": "ext://sys.stderr"}},
    "loggers": {
        "nextmove.service.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
        "nextmove.service.webhooks": {"handlers": ["json"], "level": "INFO",
                                      "propagate": False},
        "nextmove": {"handlers": ["plain"], "level": "INFO", "propagate": False},
        "uvicorn": {"handlers": ["plain"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}
