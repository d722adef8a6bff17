"""`Idempotency-Key`: a retried write returns the first answer instead of acting twice.

A person's step and an outcome store their answer in the step's own transaction: the engine
writes the answer row along with the step (`engine.Along`), so the step and its answer commit
together or not at all. A crash after the commit leaves the answer stored, and the retry gets
it back (`Idempotent-Replayed: true`); a crash before it leaves neither, and the retry acts.
Two requests with the same key racing each other write one step: the second finds the
instance moved on or the key taken (`AlreadyRecorded`, nothing written) and answers with
what the first stored. A refusal (4xx) writes no step, so its answer is stored on its own;
a conflict (another writer moved the instance first: retrying is safe) and a server error
are not stored, and the retry acts.

Starting instances (`once_claimed`) claims the key first (an INSERT only one request can
win), acts, then stores the answer: a retry while the first is being answered gets 409, and
so does a retry after a crash between the start and the answer (the start is applied; the
client looks before acting under a new key). A start without `new` is idempotent by itself:
the prospect's active instance comes back.

The same key on a different request is refused (422). Keys are per subject.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi.responses import Response
from sqlalchemy import RowMapping, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine import Along, AlreadyRecorded, Engine, ErrorCode, NextmoveError
from service._tables import IDEMPOTENCY_KEY as KEY
from service.problems import MEDIA_TYPE, Problem, problem_body
from service.roles import Principal

MAX_KEY = 200
JSON = "application/json"


def fingerprint(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def once(engine: Engine, who: Principal, key: str | None, request_print: str,
         work: Callable[[Along | None], object], status: int = 200) -> Response:
    """Answer with what `work(along)` did, once per (subject, key). `work` hands `along` to
    the engine's step; the step's result (its `to_dict()`, as JSON) is the answer, stored in
    the step's transaction when there is a key."""
    if key is None:
        return _answer(_encode(_to_dict(work(None))), status, JSON)
    _check(key)
    stored = _stored(engine, who, key)
    if stored is not None:
        return _replay(stored, key, request_print)
    answer: list[str] = []

    def row(result: object) -> dict[str, Any]:
        answer[:] = [_encode(_to_dict(result))]
        return {"subject": who.subject, "key": key, "fingerprint": request_print,
                "status": status, "body": answer[0], "created_at": engine.clock.now()}

    try:
        work(Along(KEY, row))
    except AlreadyRecorded:  # a request with the same key answered first: its answer
        return _replay_stored(engine, who, key, request_print)
    except (NextmoveError, Problem) as exc:
        body = problem_body(exc)
        if body["status"] >= 500:
            raise
        if getattr(exc, "code", None) == ErrorCode.CONFLICT:
            # Another writer moved the instance first: nothing was written and retrying is
            # safe, so the key keeps no answer (unless a request with it answered meanwhile).
            stored = _stored(engine, who, key)
            if stored is not None:
                return _replay(stored, key, request_print)
            return _answer(_encode(body), body["status"], MEDIA_TYPE)
        return _store_refusal(engine, who, key, request_print, body)
    return _answer(answer[0], status, JSON)


def once_claimed(engine: Engine, who: Principal, key: str | None, request_print: str,
                 work: Callable[[], Any], status: int = 200) -> Response:
    """Answer with `work()` (as JSON, `status`), once per (subject, key), claiming the key
    before acting (see the module docstring)."""
    if key is None:
        return _answer(_encode(work()), status, JSON)
    _check(key)
    where = (KEY.c.subject == who.subject, KEY.c.key == key)
    try:
        with engine.store.write() as conn:
            conn.execute(KEY.insert().values(subject=who.subject, key=key,
                                             fingerprint=request_print,
                                             created_at=engine.clock.now()))
    except IntegrityError:
        return _replay_stored(engine, who, key, request_print)
    try:
        text, code, media = _encode(work()), status, JSON
    except (NextmoveError, Problem) as exc:
        body = problem_body(exc)
        code, media, text = body["status"], MEDIA_TYPE, _encode(body)
        if code >= 500:
            _release(engine, where)
            raise
    except BaseException:
        _release(engine, where)
        raise
    with engine.store.write() as conn:
        conn.execute(update(KEY).where(*where).values(status=code, body=text))
    return _answer(text, code, media)


def _check(key: str) -> None:
    if not key or len(key) > MAX_KEY:
        raise Problem(422, "invalid-input", "Bad Idempotency-Key",
                      f"an Idempotency-Key has 1 to {MAX_KEY} characters")


def _stored(engine: Engine, who: Principal, key: str) -> RowMapping | None:
    rows = engine.store.select(select(KEY).where(KEY.c.subject == who.subject, KEY.c.key == key))
    return rows[0] if rows else None


def _store_refusal(engine: Engine, who: Principal, key: str, request_print: str,
                   body: dict[str, Any]) -> Response:
    """Store a refusal (nothing was written) as the key's answer, unless a request with the
    same key answered meanwhile: then that answer."""
    text = _encode(body)
    try:
        with engine.store.write() as conn:
            conn.execute(insert(KEY).values(subject=who.subject, key=key,
                                            fingerprint=request_print, status=body["status"],
                                            body=text, created_at=engine.clock.now()))
    except IntegrityError:
        return _replay_stored(engine, who, key, request_print)
    return _answer(text, body["status"], MEDIA_TYPE)


def _replay_stored(engine: Engine, who: Principal, key: str, request_print: str) -> Response:
    stored = _stored(engine, who, key)
    if stored is None:  # released by a failed first request meanwhile
        raise Problem(409, "conflict", "Retry", "the first request with this key failed; "
                      "send it again")
    return _replay(stored, key, request_print)


def _replay(row: RowMapping, key: str, request_print: str) -> Response:
    if row["fingerprint"] != request_print:
        raise Problem(422, "idempotency-key-reused", "Idempotency-Key reused",
                      f"Idempotency-Key {key!r} was used for a different request")
    if row["status"] is None:
        raise Problem(409, "conflict", "Request in progress",
                      f"the first request with Idempotency-Key {key!r} is still being "
                      "answered, or its server stopped before storing the answer: it may "
                      "have been applied; look before acting again under a new key",
                      claimed_at=str(row["created_at"]))
    media = MEDIA_TYPE if row["status"] >= 400 else JSON
    return _answer(row["body"], row["status"], media, {"Idempotent-Replayed": "true"})


def _release(engine: Engine, where: tuple[Any, ...]) -> None:
    with engine.store.write() as conn:
        conn.execute(delete(KEY).where(*where))


def _to_dict(result: object) -> Any:
    to_dict = getattr(result, "to_dict", None)
    return to_dict() if callable(to_dict) else result


def _encode(value: Any) -> str:
    """The answer as JSON text, encoded once (datetimes as ISO text)."""
    return json.dumps(value, default=str, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"))


def _answer(text: str, status: int, media: str,
            headers: dict[str, str] | None = None) -> Response:
    return Response(text, status_code=status, media_type=media, headers=headers)
