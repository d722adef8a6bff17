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
    DefinitionError,
    NextmoveError,
)
from engine.errors import ErrorCode
from engine.faults import describe

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


# The CLI's error taxonomy (engine.errors.ErrorCode, the exit codes) as HTTP statuses.
_STATUS = {
    ErrorCode.REFUSED: (409, "The instance is not in a state that allows this"),
    ErrorCode.USAGE: (400, "The request is not well formed"),
    ErrorCode.INVALID_INPUT: (422, "The request cannot be carried out as written"),
    ErrorCode.NOT_FOUND: (404, "Not found"),
    ErrorCode.CONFLICT: (409, "Another request changed the instance first; nothing was applied"),
    ErrorCode.DATABASE: (503, "The database is not one this server can use"),
    ErrorCode.STORAGE: (503, "The database cannot be reached or written"),
    ErrorCode.INTERNAL: (500, "Internal error"),
}


def classify(exc: BaseException) -> tuple[int, str, str]:
    """(HTTP status, problem type, title) for an error: the type is the CLI's error code
    (`refused`, `invalid-input`, `not-found`, `conflict`, `database`, `storage`, `internal`),
    or `invalid-map` for a map or catalog that cannot be used."""
    if isinstance(exc, Problem):
        return exc.status, exc.kind, exc.title
    if isinstance(exc, DefinitionError):
        return 422, "invalid-map", "The map or catalog cannot be used as written"
    if isinstance(exc, NextmoveError | OperationalError):
        code = describe(exc).code
        status, title = _STATUS[code]
        return status, str(code), title
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
