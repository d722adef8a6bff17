"""`Idempotency-Key`: a retried write returns the first answer instead of acting twice.

The first request with a key claims it (an INSERT that only one request can win), acts, and
stores its answer — success or a client error alike. A retry with the same key and the same
request gets that answer back (`Idempotent-Replayed: true`); the same key on a different
request is refused (422); a retry while the first is still being answered gets 409. A server
error releases the key, so the retry acts. Keys are per subject.

The answer is stored just after the step commits, not in the step's own transaction. A crash
between the two cannot apply the step twice: the claim was committed before the step began
and only a failure the server saw (a 5xx it raised) releases it, so the key stays claimed
without an answer and every retry with it gets 409 (tests/service/test_idempotency_crash.py
kills a process right after its step commits). The 409 says the step may have been applied:
the client looks at the instance before acting again under a new key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi.responses import Response
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
         work: Callable[[], Any], status: int = 200) -> Response:
    """Answer with `work()` (as JSON, `status`), once per (subject, key)."""
    if key is None:
        return _answer(_encode(work()), status, "application/json")
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
        text, code, media = _encode(work()), status, "application/json"
    except NextmoveError as exc:
        body, media = problem_body(exc), MEDIA_TYPE
        code = body["status"]
        if code >= 500:
            _release(engine, where)
            raise
        text = _encode(body)
    except Problem as exc:
        text, media, code = _encode(problem_body(exc)), MEDIA_TYPE, exc.status
    except BaseException:
        _release(engine, where)
        raise
    with store.write() as conn:
        conn.execute(update(KEY).where(*where).values(status=code, body=text))
    return _answer(text, code, media)


def _replay(engine: Engine, who: Principal, key: str, request_print: str) -> Response:
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
                      f"the first request with Idempotency-Key {key!r} is still being "
                      "answered, or its server stopped before storing the answer: it may "
                      "have been applied; look before acting again under a new key",
                      claimed_at=str(row["created_at"]))
    media = MEDIA_TYPE if row["status"] >= 400 else "application/json"
    return _answer(row["body"], row["status"], media, {"Idempotent-Replayed": "true"})


def _release(engine: Engine, where: tuple[Any, ...]) -> None:
    with engine.store.write() as conn:
        conn.execute(delete(KEY).where(*where))


def _encode(value: Any) -> str:
    """The answer as JSON text, encoded once (datetimes as ISO text)."""
    return json.dumps(value, default=str, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"))


def _answer(text: str, status: int, media: str,
            headers: dict[str, str] | None = None) -> Response:
    return Response(text, status_code=status, media_type=media, headers=headers)
