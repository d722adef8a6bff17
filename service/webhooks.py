"""Signed prospect events: `POST /events/{message}` from video hosts, shops and forms.

The sender signs `"{timestamp}.{body}"` with HMAC-SHA256 and its own secret, and sends

    X-Nextmove-Source:     the source's name (its secret is looked up by it)
    X-Nextmove-Timestamp:  Unix seconds when it signed
    X-Nextmove-Signature:  sha256=<hex digest>

with a JSON body `{"id": "evt_123", "prospect_id": "p1", "data": {...}}`. A request that
is unsigned, from an unknown source, wrongly signed, or signed outside the replay window
(default ±5 minutes of the engine's clock) is refused with 401 and logged. The event id makes
delivery idempotent: a replayed event (the same source and id) has no second effect.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from service._deps import EngineDep, SettingsDep
from service.problems import Problem

log = logging.getLogger("nextmove.service.webhooks")
router = APIRouter(tags=["events"])
MAX_BODY = 64_000


class ProspectEvent(BaseModel):
    id: str = Field(min_length=1, max_length=200, description="The sender's event id.")
    prospect_id: str = Field(min_length=1)
    data: dict[str, Any] = Field(default_factory=dict)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Nextmove-Signature` value for a body signed at `timestamp`."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _refuse(message: str, source: str | None, why: str) -> Problem:
    log.warning(json.dumps({"event": "webhook_refused", "message": message, "source": source,
                            "reason": why}))
    return Problem(401, "bad-signature", "Event refused", why)


@router.post("/events/{message}", summary="A prospect event, signed by its source",
             responses={401: {"description": "Unsigned, unknown source, bad or stale "
                                             "signature"}})
async def event(
    message: str, request: Request, engine: EngineDep, settings: SettingsDep,
    source: Annotated[str | None, Header(alias="X-Nextmove-Source")] = None,
    timestamp: Annotated[str | None, Header(alias="X-Nextmove-Timestamp")] = None,
    signed: Annotated[str | None, Header(alias="X-Nextmove-Signature")] = None,
) -> dict[str, Any]:
    body = await request.body()
    if not (source and timestamp and signed):
        raise _refuse(message, source, "unsigned: X-Nextmove-Source, X-Nextmove-Timestamp "
                      "and X-Nextmove-Signature are required")
    secret = settings.webhook_secrets.get(source.lower())
    if secret is None:
        raise _refuse(message, source, f"unknown source {source!r}")
    if len(body) > MAX_BODY:
        raise Problem(413, "too-large", "Too large", f"an event has at most {MAX_BODY} "
                      "bytes")
    if not hmac.compare_digest(signature(secret, timestamp, body), signed):
        raise _refuse(message, source, "the signature does not match the body and timestamp")
    try:
        age = engine.clock.now().timestamp() - int(timestamp)
    except ValueError:
        raise _refuse(message, source, "X-Nextmove-Timestamp is not Unix seconds") from None
    if abs(age) > settings.webhook_window:
        raise _refuse(message, source, f"stale: signed {age:.0f} s from the server's time, "
                      f"outside the {settings.webhook_window} s window")
    try:
        found = ProspectEvent.model_validate_json(body)
    except ValidationError as exc:
        raise Problem(422, "invalid-input", "Bad event", exc.errors()[0]["msg"],
                      errors=json.loads(exc.json(include_url=False))) from None
    request.state.subject = f"webhook:{source.lower()}"
    result = await run_in_threadpool(
        engine.signal, message, found.prospect_id, message_id=f"{source.lower()}:{found.id}",
        data=found.data)
    out: dict[str, Any] = result.to_dict()
    return out
