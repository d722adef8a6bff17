"""The worker's scheduled continuous learning (the engine's worker runs it; the learner does
it): every `--learn-every`, and sooner once `--learn-outcomes` new outcomes were recorded."""

from __future__ import annotations

from datetime import datetime, timedelta

from commands._options import duration
from commands._outcome import resolve_outcome
from commands._output import err
from engine import Engine, NextmoveError
from engine.worker import Chore

POLL = timedelta(minutes=5)  # how often the outcome count is looked at


def learn_chores(engine: Engine, every: str | None, process: str | None, outcome: str | None,
                 horizon: str | None, outcomes: int | None) -> list[Chore]:
    """The continuous-learning chore for `worker --learn-every`, or none without it."""
    interval = duration(every, "--learn-every", positive=True)
    if interval is None:
        if outcomes is not None:
            raise NextmoveError("--learn-outcomes needs --learn-every")
        return []
    if process is None:
        raise NextmoveError("--learn-every needs --learn-process")
    outcome = resolve_outcome(engine.store, process, outcome)
    window = duration(horizon, "--learn-horizon", positive=True) or timedelta(days=14)
    state: dict[str, datetime | int | None] = {"at": None, "seen": None}

    def check(now: datetime) -> None:
        import learner

        count = learner.outcome_count(engine.store, process, outcome)
        last, seen = state["at"], state["seen"]
        due = last is None or now - last >= interval  # type: ignore[operator]
        many = (outcomes is not None and isinstance(seen, int)
                and count - seen >= outcomes)
        if not (due or many):
            return
        done = learner.refresh(engine.store, process, outcome=outcome, horizon=window,
                               clock=engine.clock)
        state["at"], state["seen"] = now, count
        for h in done.hooks:
            what = (f"rolled back to v{h.rolled_back_to}" if h.rolled_back_to is not None
                    else f"v{h.version} ({h.decisions} decisions, {h.pending} pending)")
            err.print(f"learn: {h.hook} {what}", markup=False)

    return [Chore(min(interval, POLL) if outcomes is not None else interval, check)]
