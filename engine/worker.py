"""The timer worker: fire due timers in a loop until told to stop.

Run as many as you like against PostgreSQL, on one host or many: they share the due
instances through leased claims (`FOR UPDATE SKIP LOCKED`). SIGINT or SIGTERM stops a worker
cleanly: it finishes the step in hand, hands back the rest of its claimed batch and returns.
`chores` run on a schedule of the engine's clock between polls (e.g. the drift check, which
the `worker` command passes in: the engine does not know the learner).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType

from engine.runtime import Engine
from engine.runtime.model import Fired


@dataclass
class WorkerStats:
    loops: int = 0
    fired: int = 0
    incidents: int = 0  # instances a failing timer step put into incident
    stopped_by: str | None = None
    chores: int = 0


@dataclass(frozen=True)
class Chore:
    """Work to do every `every` of the engine's clock, the first time when the worker starts;
    `run` gets the clock's time."""

    every: timedelta
    run: Callable[[datetime], object]


def run_worker(
    engine: Engine,
    *,
    poll_interval: float = 5.0,
    batch: int = 100,
    name: str | None = None,
    on_fired: Callable[[Fired], None] | None = None,
    stop: threading.Event | None = None,
    max_loops: int | None = None,
    handle_signals: bool = True,
    chores: Sequence[Chore] = (),
) -> WorkerStats:
    """Poll for due timers every `poll_interval` seconds; return when stopped."""
    stop = stop or threading.Event()
    stats = WorkerStats()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stats.stopped_by = signal.Signals(signum).name
        stop.set()

    previous = {}
    if handle_signals and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _on_signal)
    due = [engine.clock.now() for _ in chores]
    try:
        while not stop.is_set():
            for i, chore in enumerate(chores):
                now = engine.clock.now()
                if now >= due[i]:
                    chore.run(now)
                    stats.chores += 1
                    due[i] = now + chore.every
            fired = engine.fire_due(batch, name, should_stop=stop.is_set)
            stats.incidents += len(fired.incidents)
            for item in fired:
                stats.fired += 1
                if on_fired is not None:
                    on_fired(item)
            stats.loops += 1
            if max_loops is not None and stats.loops >= max_loops:
                break
            if len(fired) == 0:
                stop.wait(poll_interval)  # idle: wait for the next poll or a stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return stats
