"""Errors as Problem Details (RFC 9457): `application/problem+json` with type, title, status,
detail, plus the error's own fields.

`classify` is the one place an error becomes an HTTP status, in the same taxonomy as the
CLI's exit codes: invalid input (400/422), not found (404), conflict (409), not our database
or storage unavailable (503), internal (500). Any other failure is a 500 whose body says
nothing of the server's insides (the log has the traceback).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from engine import (
    AmbiguousInstance,
    DefinitionError,
    DefinitionNotFound,
    ExecutionError,
    ExpressionError,
    InstanceNotFound,
    NextmoveError,
    StepNotWaiting,
    StepRequired,
    StoreError,
    VersionConflict,
)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://nextmove.dev/problems/"


class Problem(Exception):
    """An HTTP-level refusal raised by the service itself (401, 403, a bad signature, ...)."""

    def __init__(self, status: int, kind: str, title: str, detail: str,
                 headers: dict[str, str] | None = None, **fields: Any) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.headers = headers
        self.fields = fields


def classify(exc: BaseException) -> tuple[int, str, str]:
    """(HTTP status, problem type, title) for an error nextmove raised."""
    if isinstance(exc, Problem):
        return exc.status, exc.kind, exc.title
    if isinstance(exc, VersionConflict | StepNotWaiting):
        return 409, "conflict", "The instance is not in the state the request expects"
    if isinstance(exc, InstanceNotFound | DefinitionNotFound):
        return 404, "not-found", "Not found"
    if isinstance(exc, DefinitionError):
        return 422, "invalid-map", "The map or catalog cannot be used as written"
    if isinstance(exc, StepRequired | AmbiguousInstance | ExecutionError | ExpressionError):
        return 422, "invalid-input", "The request cannot be carried out"
    if isinstance(exc, StoreError):
        return 503, "storage-unavailable", "The database cannot be used"
    if isinstance(exc, OperationalError):
        return 503, "storage-unavailable", "The database cannot be reached"
    if isinstance(exc, NextmoveError):
        return 400, "invalid-input", "The request is not valid"
    return 500, "internal", "Internal error"


def problem_body(exc: BaseException, instance: str | None = None) -> dict[str, Any]:
    status, kind, title = classify(exc)
    body: dict[str, Any] = {"type": TYPE_BASE + kind, "title": title, "status": status}
    if isinstance(exc, Problem):
        body["detail"] = exc.detail
        body.update(exc.fields)
    elif status < 500 or isinstance(exc, NextmoveError):
        body["detail"] = str(exc)
        if isinstance(exc, NextmoveError):
            body.update({k: v for k, v in exc.to_dict().items() if k != "message"})
    if instance:
        body["instance"] = instance
    return body


def problem_response(exc: BaseException, instance: str | None = None) -> JSONResponse:
    body = problem_body(exc, instance)
    headers = exc.headers if isinstance(exc, Problem) else None
    return JSONResponse(json.loads(json.dumps(body, default=str)), status_code=body["status"],
                        media_type=MEDIA_TYPE, headers=headers)
