"""What route handlers depend on: the process's engine, and the authenticated caller.

The dependencies are coroutines: FastAPI runs a plain `def` dependency in a worker thread,
one thread hop each, and a step's request had four (engine, caller, role check, handler).
They run on the event loop now and only the handler (and a token not checked in the last
few seconds) goes to a thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from engine import Engine, Store
from service.problems import Problem
from service.roles import SCOPED, Principal, Role, reaches
from service.settings import Settings
from service.tokens import authenticate, remembered

_bearer = HTTPBearer(auto_error=False, description="An API token: `nextmove token create`.")


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def unauthenticated(detail: str) -> Problem:
    return Problem(401, "unauthenticated", "Authentication required", detail,
                   headers={"WWW-Authenticate": "Bearer"})


async def caller(request: Request, engine: EngineDep,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
                 ) -> Principal:
    if credentials is None:
        raise unauthenticated("send an API token: Authorization: Bearer nm_...")
    known = remembered(engine.store, credentials.credentials)
    if known is True:  # not checked lately: the lookup blocks, so in a thread
        who = await run_in_threadpool(authenticate, engine.store, credentials.credentials)
    else:
        who = known or None
    if who is None:
        raise unauthenticated("the token is unknown or revoked")
    request.state.subject = who.subject
    return who


def allow(*roles: Role) -> Any:
    """A dependency: the caller, if their role is one of `roles` (admin always is)."""
    permitted = frozenset(roles) | {Role.ADMIN}

    async def check(who: Annotated[Principal, Depends(caller)]) -> Principal:
        if who.role not in permitted:
            raise forbidden(who, "this route")
        return who

    return Depends(check)


def forbidden(who: Principal, what: str) -> Problem:
    return Problem(403, "forbidden", "Outside your scope",
                   f"a {who.role.value} token for {who.subject!r} may not use {what}")


def require_reach(store: Store, who: Principal, distributor_id: str, what: str) -> None:
    if not reaches(store, who, distributor_id):
        raise forbidden(who, what)


def require_step(engine: Engine, who: Principal, instance_id: int, step: str) -> None:
    """Refuse a scoped caller a step that is not theirs to act on (the rule in
    `service.roles`): the API's steps and the card page's taps both ask here. An unknown
    instance stays 404."""
    if who.role not in SCOPED:
        return
    owner = engine.step_owner(instance_id, step)
    if owner is None or not reaches(engine.store, who, owner):
        raise forbidden(who, f"step {step!r} of instance {instance_id}")


Checker = Callable[..., Principal]
