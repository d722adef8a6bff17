"""Where prospects are stuck: instances waiting on a step longer than the map allows, than
usual, or than a limit.

A step's limit is the map's own `stuck_after` when it declares one; else its usual time: the
90th percentile of the time arrivals there took to end (computed by the database);
`older_than`, when given, replaces both. An open arrival on an active instance that has
waited its step's limit (or longer) is stuck. Counts come grouped by step and distributor, oldest
first. Steps that wait on purpose (timer events, such as "a few weeks later") are never
stuck: their open arrivals are listed apart (`Stuck.waits`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from analytics._read_definitions import deployed_map
from analytics._read_stuck import USUAL, incident_rows, open_rows, open_steps, usual_hours
from analytics._sql import Filters
from engine.clock import as_utc, parse_duration
from engine.store.database import Store
from engine.store.steplog import check_process


@dataclass(frozen=True)
class StuckGroup:
    step_id: str
    step_name: str
    distributor_id: str
    instances: int  # open arrivals past the limit
    oldest_since: datetime  # the longest-waiting one arrived then (UTC)
    limit_hours: float  # the limit they passed: the step's p90, or older_than

    def waited_hours(self, now: datetime) -> float:
        return (as_utc(now) - self.oldest_since).total_seconds() / 3600

    def to_dict(self) -> dict[str, Any]:
        return {"step_id": self.step_id, "step_name": self.step_name,
                "distributor_id": self.distributor_id, "instances": self.instances,
                "oldest_since": self.oldest_since.isoformat(), "limit_hours": self.limit_hours}


@dataclass(frozen=True)
class Waiting:
    """Open arrivals at a step that waits on purpose (a timer): not stuck."""

    step_id: str
    step_name: str
    instances: int
    oldest_since: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"step_id": self.step_id, "step_name": self.step_name,
                "instances": self.instances, "oldest_since": self.oldest_since.isoformat()}


@dataclass(frozen=True)
class Incident:
    """An instance whose step failed: it waits for an operator's `retry`, not for a person."""

    instance_id: int
    prospect_id: str
    distributor_id: str
    step_id: str | None
    since: datetime | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "prospect_id": self.prospect_id,
                "distributor_id": self.distributor_id, "step_id": self.step_id,
                "since": as_utc(self.since).isoformat() if self.since else None,
                "error": self.error}


@dataclass(frozen=True)
class Stuck:
    process_id: str
    now: datetime
    older_than: timedelta | None  # None: each step's stuck_after, else its own p90
    limits: dict[str, float]  # step id -> limit in hours (steps with a known limit)
    groups: tuple[StuckGroup, ...]  # by step (order of first arrival), then oldest first
    # step id -> where its limit comes from: "stuck_after", "p90" or "older_than"
    limit_sources: dict[str, str] = field(default_factory=dict)
    waits: tuple[Waiting, ...] = ()  # deliberate waits, apart from the stuck
    incidents: tuple[Incident, ...] = ()  # instances waiting for an operator, not a person

    @property
    def instances(self) -> int:
        return sum(g.instances for g in self.groups)

    def by_step(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for g in self.groups:
            out[g.step_id] = out.get(g.step_id, 0) + g.instances
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "now": as_utc(self.now).isoformat(),
                "older_than_hours": (self.older_than.total_seconds() / 3600
                                     if self.older_than is not None else None),
                "limits_hours": self.limits, "limit_sources": self.limit_sources,
                "instances": self.instances, "groups": [g.to_dict() for g in self.groups],
                "deliberate_waits": [w.to_dict() for w in self.waits],
                "incidents": [i.to_dict() for i in self.incidents]}


def stuck(
    store: Store, process_id: str, now: datetime, *, older_than: timedelta | None = None,
    distributor: str | None = None, market: str | None = None,
    people: Collection[str] | None = None,
) -> Stuck:
    """Open arrivals at `now` that waited their step's limit or longer (the map's `stuck_after`,
    else the step's usual time, p90) or `older_than`, grouped by step and distributor. A
    step with neither a `stuck_after` nor an ended arrival has no usual time: with no
    `older_than`, nothing there counts as stuck. Timer steps are listed apart (`waits`).
    `people` keeps those distributors' instances only (`analytics.people`); their limits
    stay the step's usual time over everybody, so per-person views add up to the whole."""
    check_process(store, process_id)  # a mistyped name must not read as "nothing stuck"
    filters = Filters(process_id, None, distributor, market,
                      None if people is None else tuple(sorted(people)))
    filters.check(store)
    declared, timers = _plan(store, process_id)
    sources: dict[str, str] = {}
    if older_than is None:
        limits = usual_hours(store, replace(filters, people=None), USUAL)
        sources = dict.fromkeys(limits, "p90")
        limits.update(declared)
        sources.update(dict.fromkeys(declared, "stuck_after"))
    else:
        limits = {step: older_than.total_seconds() / 3600
                  for step in open_steps(store, filters)}
        sources = dict.fromkeys(limits, "older_than")
    for step in timers:
        limits.pop(step, None)
        sources.pop(step, None)
    found = open_rows(store, filters, now, limits, timers)
    rows = found.stuck
    waits = tuple(Waiting(r[0], r[1], int(r[2]), as_utc(r[3])) for r in found.waiting)
    first: dict[str, int] = {}
    for r in rows:
        first[r[0]] = min(first.get(r[0], r[5]), r[5])
    rows.sort(key=lambda r: (first[r[0]], r[4], r[2]))  # naive UTC, as stored: same order
    rounded = {k: round(v, 6) for k, v in limits.items()}
    groups = tuple(StuckGroup(r[0], r[1], r[2], int(r[3]), as_utc(r[4]), rounded[r[0]])
                   for r in rows)
    broken = tuple(Incident(*row) for row in incident_rows(store, filters))
    return Stuck(process_id, as_utc(now), older_than, rounded, groups, sources, waits, broken)


def _plan(store: Store, process_id: str) -> tuple[dict[str, float], set[str]]:
    """The map's `stuck_after` per step (hours), and its timer steps (deliberate waits)."""
    found = deployed_map(store, process_id)
    if found is None:
        return {}, set()
    declared: dict[str, float] = {}
    timers: set[str] = set()
    for step in found.all_steps():
        text = step.properties.get("stuck_after")
        if text:
            try:
                declared[step.id] = parse_duration(text).total_seconds() / 3600
            except ValueError:
                pass  # validation reports it; the step keeps its usual time
        if step.event == "timer" and step.type == "intermediateCatchEvent":
            timers.add(step.id)
    return declared, timers
