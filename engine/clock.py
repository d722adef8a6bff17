"""Injectable time: engine code never calls datetime.now() itself.

Timestamps are timezone-aware UTC. Tests and simulations use `ManualClock` and move it
forward; the CLI's `--now` pins one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, simulations, `--now`)."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = as_utc(moment)


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already (as the database stores them)."""
    zone = moment.tzinfo
    if zone is None:
        return moment.replace(tzinfo=UTC)
    if zone is UTC:  # already: several times cheaper than converting (every step asks)
        return moment
    return moment.astimezone(UTC)


def parse_instant(text: str) -> datetime:
    """An ISO 8601 timestamp such as 2026-01-05T09:00:00Z (naive means UTC)."""
    return as_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))


def parse_duration(text: str, *, positive: bool = False) -> timedelta:
    """An ISO 8601 duration in weeks, days and time (P14D, PT36H, P1DT12H) as a timedelta;
    with `positive`, zero is refused too (a horizon of P0D would count no outcome at all).

    Read by `engine.durations`, the parser timers use. Months and years have no fixed length,
    so they are refused rather than guessed.
    """
    from engine.durations import DurationError, fixed_duration  # SpiffWorkflow's parser

    try:
        found = fixed_duration(text)
    except DurationError as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 duration like P14D or PT36H "
                         "(months and years are not accepted)") from exc
    if positive and found <= timedelta(0):
        raise ValueError(f"{text!r} is no time at all: give how long, e.g. P14D")
    return found
