"""Outgoing signed notifications: drift alerts POSTed to a URL the brand configures.

    hook = DriftWebhook.configured(url=None)        # NEXTMOVE_DRIFT_WEBHOOK_URL / _SECRET
    deliveries = hook.send(actions)                 # one POST per alert acted on

Signed as incoming prospect events are (`service.webhooks`): HMAC-SHA256 over
`"{timestamp}.{body}"` with the shared secret, sent as

    X-Nextmove-Source:     nextmove
    X-Nextmove-Event:      drift_alert
    X-Nextmove-Timestamp:  Unix seconds when it was signed
    X-Nextmove-Signature:  sha256=<hex digest>

and a JSON body `{"id": "drift:<hook>:<policy version>", "event": "drift_alert", "hook",
"option_id", "policy_version", "demoted", "reason", "alert": {...}, "ack": "<command>"}`.
The receiver checks the signature with its copy of the secret and refuses a timestamp outside
its window; `id` is stable, so a receiver can drop a repeat. Delivery is best effort: a few
attempts, then a logged warning (the alert itself is stored as a policy version either way;
`nextmove drift --open` lists every open one).

    NEXTMOVE_DRIFT_WEBHOOK_URL     where to POST (or `worker --drift-webhook URL`,
                                   `drift --act --webhook URL`)
    NEXTMOVE_DRIFT_WEBHOOK_SECRET  the shared secret, at least 16 characters (environment only,
                                   never a flag: flags show in process lists)
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from engine import NextmoveError
from service.webhooks import signature

if TYPE_CHECKING:  # the learner loads LightGBM: only its type is needed here
    from learner import DriftAction

log = logging.getLogger("nextmove.service.notify")
URL_VARIABLE = "NEXTMOVE_DRIFT_WEBHOOK_URL"
SECRET_VARIABLE = "NEXTMOVE_DRIFT_WEBHOOK_SECRET"


@dataclass(frozen=True)
class Delivery:
    """What became of one notification: the receiver's status, or the error."""

    id: str
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class DriftWebhook:
    url: str
    secret: str
    timeout: float = 10.0
    attempts: int = 3

    @classmethod
    def configured(cls, url: str | None = None,
                   env: Mapping[str, str] | None = None) -> DriftWebhook | None:
        """The webhook `url` (else NEXTMOVE_DRIFT_WEBHOOK_URL) with its secret from
        NEXTMOVE_DRIFT_WEBHOOK_SECRET; None when no URL is configured."""
        env = os.environ if env is None else env
        url = url or env.get(URL_VARIABLE) or None
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise NextmoveError(f"drift webhook URL {url!r} is not an http(s) URL")
        secret = env.get(SECRET_VARIABLE, "")
        if len(secret) < 16:
            raise NextmoveError(f"a drift webhook needs {SECRET_VARIABLE} (at least 16 "
                                "characters) to sign with")
        return cls(url, secret)

    def send(self, actions: Iterable[DriftAction]) -> list[Delivery]:
        """POST one signed notification per acted-on alert (`learner.DriftAction`), signed at
        the wall-clock time of sending (the receiver checks it against its own clock, whatever
        the engine's clock says)."""
        out = []
        with httpx.Client(timeout=self.timeout) as http:
            for action in actions:
                body = json.dumps(payload(action), sort_keys=True).encode("utf-8")
                out.append(self._post(http, json.loads(body)["id"], body))
        return out

    def _post(self, http: httpx.Client, event_id: str, body: bytes) -> Delivery:
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Nextmove-Source": "nextmove",
                   "X-Nextmove-Event": "drift_alert", "X-Nextmove-Timestamp": stamp,
                   "X-Nextmove-Signature": signature(self.secret, stamp, body)}
        found = Delivery(event_id, None, "not sent")
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(0.5 * 2 ** (attempt - 1))  # back off before sending again
            try:
                answer = http.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                found = Delivery(event_id, None, f"{type(exc).__name__}: {exc}")
                continue
            found = Delivery(event_id, answer.status_code)
            if found.ok or 400 <= answer.status_code < 500:
                break  # delivered, or refused for good: sending it again changes nothing
        if not found.ok:
            log.warning(json.dumps({"event": "drift_webhook_failed", "id": event_id,
                                    "url": self.url, "status": found.status,
                                    "error": found.error}))
        return found


def payload(action: DriftAction) -> dict[str, object]:
    """The notification's body for an acted-on alert."""
    alert, version = action.alert, action.version
    key = version if version is not None else f"{alert.option_id}:{alert.detected_at}"
    return {"id": f"drift:{alert.hook}:{key}", "event": "drift_alert", "hook": alert.hook,
            "option_id": alert.option_id, "policy_version": version,
            "demoted": version is not None, "reason": action.why,
            "alert": alert.to_dict(),
            "ack": f"nextmove drift --ack {alert.option_id} --reviewer NAME "
                   "--decision keep|restore"}
