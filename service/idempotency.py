"""`Idempotency-Key`: a retried write returns the first answer instead of acting twice.

The first request with a key claims it (an INSERT that only one request can win), acts, and
stores its answer — success or a client error alike. A retry with the same key and the same
request gets that answer back (`Idempotent-Replayed: true`); the same key on a different
request is refused (422); a retry while the first is still being answered gets 409. A server
error releases the key, so the retry acts. Keys are per subject.

The answer is stored just after the step commits, not in the step's own transaction: a crash
between the two leaves the key claimed without an answer, and its retries get 409 rather
than a second step.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from engine import Engine, NextmoveError
from service._tables import IDEMPOTENCY_KEY as KEY
from service.problems import MEDIA_TYPE, Problem, problem_body
from service.roles import Principal

MAX_KEY = 200


def fingerprint(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def once(engine: Engine, who: Principal, key: str | None, request_print: str,
         work: Callable[[], Any], status: int = 200) -> JSONResponse:
    """Answer with `work()` (as JSON, `status`), once per (subject, key)."""
    if key is None:
        return JSONResponse(_jsonable(work()), status_code=status)
    if not key or len(key) > MAX_KEY:
        raise Problem(400, "invalid-input", "Bad Idempotency-Key",
                      f"an Idempotency-Key has 1 to {MAX_KEY} characters")
    store = engine.store
    where = (KEY.c.subject == who.subject, KEY.c.key == key)
    try:
        with store.write() as conn:
            conn.execute(KEY.insert().values(subject=who.subject, key=key,
                                             fingerprint=request_print,
                                             created_at=engine.clock.now()))
    except IntegrityError:
        return _replay(engine, who, key, request_print)
    try:
        body, code, media = _jsonable(work()), status, "application/json"
    except NextmoveError as exc:
        body, media = problem_body(exc), MEDIA_TYPE
        code = body["status"]
        if code >= 500:
            _release(engine, where)
            raise
    except Problem as exc:
        body, media, code = problem_body(exc), MEDIA_TYPE, exc.status
    except BaseException:
        _release(engine, where)
        raise
    with store.write() as conn:
        conn.execute(update(KEY).where(*where).values(status=code, body=json.dumps(body)))
    return JSONResponse(body, status_code=code, media_type=media)


def _replay(engine: Engine, who: Principal, key: str, request_print: str) -> JSONResponse:
    rows = engine.store.select(select(KEY).where(KEY.c.subject == who.subject, KEY.c.key == key))
    if not rows:  # released by a failed first request meanwhile
        raise Problem(409, "conflict", "Retry", "the first request with this key failed; "
                      "send it again")
    row = rows[0]
    if row["fingerprint"] != request_print:
        raise Problem(422, "idempotency-key-reused", "Idempotency-Key reused",
                      f"Idempotency-Key {key!r} was used for a different request")
    if row["status"] is None:
        raise Problem(409, "conflict", "Request in progress",
                      f"the first request with Idempotency-Key {key!r} is still being answered")
    media = MEDIA_TYPE if row["status"] >= 400 else "application/json"
    return JSONResponse(json.loads(row["body"]), status_code=row["status"], media_type=media,
                        headers={"Idempotent-Replayed": "true"})


def _release(engine: Engine, where: tuple[Any, ...]) -> None:
    with engine.store.write() as conn:
        conn.execute(delete(KEY).where(*where))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
