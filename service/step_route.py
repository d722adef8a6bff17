"""A person's step (`POST /instances/{id}/complete|skip|vary`) without FastAPI's general
request machinery when the request is plainly well formed.

FastAPI solves a route's dependencies and parameters through a generic solver (dependency
cache keys, one pydantic adapter per parameter, telemetry hooks): in-process it cost more
CPU per step than the rest of the request path together. `StepRoute` is an ordinary
`APIRoute` (the OpenAPI document comes from the same endpoint and signature) whose handler
first tries a short path that calls the route's own dependencies itself, in FastAPI's
order: the bearer scheme, `caller` and the role check (so 401 and 403 come first, as
before), then the path id, the `Idempotency-Key` header and the JSON body validated by the
same pydantic model, then the endpoint in a worker thread. Anything it does not take as
plainly valid (an id that is not plain digits, a content type other than
`application/json`, a query string, a body that does not parse or validate) goes to
FastAPI's own handler, which answers exactly as it always did (its 422s included). With
dependency overrides set (tests do that) every request goes FastAPI's way. The short path
does not fill FastAPI's optional OpenTelemetry request data (nextmove does not enable it).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from service._deps import _bearer, caller
from service.roles import Principal

PARAMETERS = ("instance_id", "body", "engine", "who", "idempotency_key")
_MAX_DIGITS = 18  # a longer id goes the general way (pydantic's int parsing has limits)
# The steps' threads: handing a call to a plain executor costs about 40 µs of CPU less than
# Starlette's `run_in_threadpool` (anyio's worker threads, limiter and cancel scope). As many
# threads as anyio's default limit; each call runs in a copy of the request's context, as there.
_STEPS = ThreadPoolExecutor(max_workers=40, thread_name_prefix="nextmove-step")


class StepRoute(APIRoute):
    """For endpoints `(instance_id: int, body: <model>, engine, who: <role check>,
    idempotency_key)`: the short path described in the module docstring."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        general = super().get_route_handler()
        names = tuple(inspect.signature(self.endpoint).parameters)
        if names != PARAMETERS:
            raise TypeError(f"{self.path}: StepRoute needs the parameters {PARAMETERS}, "
                            f"not {names}")
        model = self.body_field.field_info.annotation if self.body_field else None
        (check,) = [d.call for d in self.dependant.dependencies if d.name == "who"]
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or check is None:
            raise TypeError(f"{self.path}: StepRoute needs a body model and a role check")
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            if request.app.dependency_overrides:  # a test's overrides: FastAPI applies them
                return await general(request)
            engine = request.app.state.engine
            who: Principal = await check(await caller(request, engine, await _bearer(request)))
            raw_id = request.path_params.get("instance_id", "")
            content_type = request.headers.get("content-type", "")
            if not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= _MAX_DIGITS
                    and content_type.strip().lower() == "application/json"
                    and not request.scope["query_string"]):  # none taken: refused there
                return await general(request)
            raw_body = await request.body()
            try:
                body = model.model_validate(json.loads(raw_body))
            except (ValueError, ValidationError):  # JSONDecodeError is a ValueError
                return await general(request)
            call = functools.partial(
                contextvars.copy_context().run, endpoint, instance_id=int(raw_id), body=body,
                engine=engine, who=who, idempotency_key=request.headers.get("idempotency-key"))
            result: Response = await asyncio.get_running_loop().run_in_executor(_STEPS, call)
            return result

        return handler
