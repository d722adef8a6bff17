"""The worker's scheduled drift check (the engine's worker runs it; the learner does it) and
its signed notification (the service's drift webhook)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from commands._options import duration
from commands._outcome import resolve_outcome
from commands._output import err
from engine import Engine, NextmoveError
from engine.worker import Chore

if TYPE_CHECKING:
    from learner import DriftAction
    from service.notify import DriftWebhook

URL_VARIABLE = "NEXTMOVE_DRIFT_WEBHOOK_URL"  # service.notify's (not imported: FastAPI is slow)


def drift_webhook(url: str | None) -> DriftWebhook | None:
    """The drift webhook of `--drift-webhook`/`--webhook` or NEXTMOVE_DRIFT_WEBHOOK_URL, checked
    now (a missing secret is a usage error before the worker starts); None without either."""
    if not (url or os.environ.get(URL_VARIABLE)):
        return None
    from service.notify import DriftWebhook

    return DriftWebhook.configured(url)


def drift_chores(engine: Engine, every: str | None, process: str | None, outcome: str | None,
                 horizon: str | None, webhook: DriftWebhook | None = None) -> list[Chore]:
    """The drift chore for `worker --drift-every`, or none without that option; each alert it
    acts on is also POSTed, signed, to `webhook`."""
    interval = duration(every, "--drift-every", positive=True)
    if interval is None:
        return []
    if process is None:
        raise NextmoveError("--drift-every needs --drift-process")
    outcome = resolve_outcome(engine.store, process, outcome)
    window = duration(horizon, "--drift-horizon", positive=True)

    def check(now: datetime) -> None:
        import learner

        actions = learner.watch(engine.store, process, outcome=outcome, horizon=window,
                                now=now, clock=engine.clock)
        for action in actions:
            where = (f"demoted in policy v{action.version}" if action.version is not None
                     else action.why)
            err.print(f"drift: {action.alert.hook}/{action.alert.option_id} "
                      f"{action.alert.rate_before:.1%} → {action.alert.rate_after:.1%}; "
                      f"{where}", markup=False)
        notify(webhook, actions)

    return [Chore(interval, check)]


def notify(webhook: DriftWebhook | None, actions: Sequence[DriftAction]) -> None:
    """Send the alerts acted on to the webhook, if one is configured; say what failed."""
    if webhook is None or not actions:
        return
    for delivery in webhook.send(actions):
        if not delivery.ok:
            err.print(f"drift webhook: {delivery.id} not delivered to {webhook.url} "
                      f"({delivery.error or f'HTTP {delivery.status}'})", markup=False)
