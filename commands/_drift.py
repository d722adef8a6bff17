"""The worker's scheduled drift check (the engine's worker runs it; the learner does it)."""

from __future__ import annotations

from datetime import datetime

from commands._options import duration
from commands._output import err
from engine import Engine, NextmoveError
from engine.worker import Chore


def drift_chores(engine: Engine, every: str | None, process: str | None, outcome: str | None,
                 horizon: str | None) -> list[Chore]:
    """The drift chore for `worker --drift-every`, or none without that option."""
    interval = duration(every, "--drift-every")
    if interval is None:
        return []
    if process is None or outcome is None:
        raise NextmoveError("--drift-every needs --drift-process and --drift-outcome")
    window = duration(horizon, "--drift-horizon")

    def check(now: datetime) -> None:
        import learner

        for action in learner.watch(engine.store, process, outcome=outcome, horizon=window,
                                    now=now, clock=engine.clock):
            where = (f"demoted in policy v{action.version}" if action.version is not None
                     else action.why)
            err.print(f"drift: {action.alert.hook}/{action.alert.option_id} "
                      f"{action.alert.rate_before:.1%} → {action.alert.rate_after:.1%}; "
                      f"{where}", markup=False)

    return [Chore(interval, check)]
