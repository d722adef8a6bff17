"""Timer values, read by one parser: what `validate` accepts is exactly what timers run.

Timers run on SpiffWorkflow's timer definitions, so the parser is SpiffWorkflow's own
(`TimerEventDefinition.parse_iso_duration` and friends). It is wrapped here, once, to refuse
what Spiff would take by accident (`1D` without its `P`, an empty `P` or `PT`) and to raise
`DurationError` with a sentence a designer can act on. `engine.definitions` (validate, compile,
the clock-reading timers) and `engine.clock` (the CLI's `--older-than`) all call these.

    parse_iso_duration("P1DT12H")     {'days': 1, 'hours': 12}
    duration_from("P1M", start)       the timedelta one month after `start` spans
    fixed_duration("PT36H")           timedelta(hours=36); months and years are refused
    parse_cycle("R3/P1D", now)        (3, first due time, interval)
    check_timer("timeDate", text)     raises DurationError unless the runtime can use it
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

__all__ = [
    "TIMER_KINDS",
    "DurationError",
    "check_timer",
    "duration_from",
    "fixed_duration",
    "is_timer_literal",
    "looks_like_duration",
    "parse_cycle",
    "parse_iso_duration",
    "parse_time_or_duration",
]

TIMER_KINDS = ("timeDuration", "timeDate", "timeCycle")
_EXAMPLES = "P2D is 2 days, PT4H 4 hours, P1W one week, P1DT12H a day and a half"


class DurationError(ValueError):
    """A timer value that the runtime could not schedule."""


def parse_iso_duration(text: str) -> dict[str, int | float]:
    """The parts of an ISO 8601 duration (`P2D` -> {'days': 2}); DurationError if it is not one."""
    if not isinstance(text, str):
        raise DurationError(f"a duration is text like P2D, not {type(text).__name__}")
    stripped = text.strip()
    upper = stripped.upper()
    # Spiff strips every P and would read `1D` or `P2DP`; a duration has exactly one, first.
    if not upper.startswith("P") or upper.count("P") != 1 or upper in ("P", "PT"):
        raise DurationError(f"{text!r} is not an ISO 8601 duration ({_EXAMPLES})")
    try:
        parsed: dict[str, int | float] = TimerEventDefinition.parse_iso_duration(stripped)
    except Exception as exc:  # Spiff raises a bare Exception('Invalid duration')
        raise DurationError(f"{text!r} is not an ISO 8601 duration ({_EXAMPLES})") from exc
    if not parsed:
        raise DurationError(f"{text!r} is an empty duration ({_EXAMPLES})")
    return parsed


def duration_from(text: str, start: datetime) -> timedelta:
    """How long `text` lasts counted from `start` (months and years have calendar lengths)."""
    delta: timedelta = TimerEventDefinition.get_timedelta_from_start(parse_iso_duration(text),
                                                                     start)
    return delta


def fixed_duration(text: str) -> timedelta:
    """A duration with a fixed length (weeks, days, time); months and years are refused."""
    parsed = parse_iso_duration(text)
    if parsed.get("years") or parsed.get("months"):
        raise DurationError(f"{text!r}: months and years have no fixed length; write days "
                            "(P30D) or weeks (P4W)")
    return timedelta(**{k: v for k, v in parsed.items() if k not in ("years", "months")})


def parse_time_or_duration(text: str) -> datetime | dict[str, int | float]:
    """A timer date (`2026-02-01T09:00:00Z`, a week date) or a duration, as Spiff reads it."""
    if not isinstance(text, str) or not text.strip():
        raise DurationError(f"{text!r} is neither an ISO 8601 date-time nor a duration")
    stripped = text.strip()
    if stripped.upper().startswith("P"):
        return parse_iso_duration(stripped)
    try:
        value: datetime = TimerEventDefinition.parse_time_or_duration(stripped)
    except Exception as exc:
        raise DurationError(f"{text!r} is neither an ISO 8601 date-time (2026-02-01T09:00:00Z) "
                            f"nor a duration ({_EXAMPLES})") from exc
    return value


def parse_cycle(text: str, now: datetime) -> tuple[int, datetime, timedelta]:
    """Repetitions (-1: forever), first due time and interval of `R[n]/[start/]duration`.

    A bare `R3/P1D` counts from `now` (Spiff would count from the wall clock).
    """
    if not isinstance(text, str) or not text.strip().upper().startswith("R"):
        raise DurationError(f"{text!r} is not a repeating interval like R3/P1D or "
                            "R/2026-01-05T09:00:00Z/P1D")
    parts = text.strip().upper().replace("--", "/")[1:].split("/")
    try:
        cycles = int(parts[0]) if parts[0] else -1
    except ValueError as exc:
        raise DurationError(f"{text!r}: the repeat count after R must be a number") from exc
    if len(parts) == 2:
        duration = duration_from(parts[1], now)
        return cycles, now + duration, duration
    if len(parts) != 3:
        raise DurationError(f"{text!r} is not a repeating interval like R3/P1D")
    first, second = parse_time_or_duration(parts[1]), parse_time_or_duration(parts[2])
    if isinstance(first, datetime) and isinstance(second, dict):
        return cycles, first, TimerEventDefinition.get_timedelta_from_start(second, first)
    if isinstance(first, dict) and isinstance(second, datetime):
        duration = TimerEventDefinition.get_timedelta_from_end(first, second)
        return cycles, second - duration, duration
    raise DurationError(f"{text!r}: a repeating interval needs one date-time and one duration")


_PROBE = datetime(2000, 1, 1, tzinfo=UTC)


def check_timer(kind: str, text: str) -> None:
    """Raise DurationError unless the timers can schedule `text` as a `kind` timer."""
    if kind == "timeCycle":
        parse_cycle(text, _PROBE)
    elif kind == "timeDate":
        if isinstance(parse_time_or_duration(text), dict):
            raise DurationError(f"{text!r} is a duration; a date timer needs a date-time like "
                                "2026-02-01T09:00:00Z (or make it a duration timer)")
    else:
        parse_iso_duration(text)


def looks_like_duration(text: str) -> bool:
    """Meant as an ISO 8601 duration (P and designators only), valid or not: `P1W2D` is a bad
    duration, not the name of a variable."""
    upper = text.strip().upper() if isinstance(text, str) else ""
    return len(upper) > 1 and upper[0] == "P" and set(upper[1:]) <= set("0123456789.,YMWDTHS")


def is_timer_literal(text: str, kind: str | None = None) -> bool:
    """`text` is a plain ISO 8601 value for a `kind` timer (any kind when None), not an
    expression to evaluate."""
    for each in (kind,) if kind else TIMER_KINDS:
        try:
            check_timer(each, text)
        except DurationError:
            continue
        return True
    return False
