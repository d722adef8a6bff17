"""The rows of the million-instance database, copied from what the real engine wrote.

`Templates` runs each distinct path prefix once through the real engine on a scratch database
and captures what it wrote; `Writer` turns a generated journey into rows from its prefix's
capture (its own timestamps, its own offered content) and writes them in chunks.
"""

from __future__ import annotations

import json
import random
import sqlite3
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench._million_paths import HOUR, NOW, SKIPPABLE, START, Action
from engine import Engine, ManualClock
from engine.store.visits import Visits

ACTOR = "bench-actor"  # the template engine's actor, replaced by each distributor's id


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _db(moment: datetime) -> str:
    """SQLAlchemy's SQLite text form of a naive UTC DateTime."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


@dataclass
class Capture:
    """What the engine wrote after one path prefix."""

    events: list[list[dict[str, Any]]]  # per move (group): the rows it appended
    waiting: list[dict[str, Any]]  # with since/due_at/stuck_since as (group, offset) refs
    status: str
    version: int
    state: str


@dataclass
class Templates:
    """Runs path prefixes through the real engine once each and remembers the captures."""

    engine: Engine
    clock: ManualClock
    captures: dict[tuple[str, tuple[Action, ...]], Capture] = field(default_factory=dict)
    serial: int = 0

    def get(self, process: str, path: tuple[Action, ...]) -> Capture:
        key = (process, path)
        found = self.captures.get(key)
        if found is None:
            found = self.captures[key] = self._run(process, path)
        return found

    def _run(self, process: str, path: tuple[Action, ...]) -> Capture:
        from sqlalchemy import select

        from engine.runtime.queries import INSTANCE, STEP_EVENT

        self.serial += 1
        t = START + timedelta(days=self.serial * 60)  # template instances never overlap
        self.clock.set(t)
        times = [t]
        context = {"market": "US", "locale": "en-US", "sponsor_id": "bench-sponsor",
                   "prospect_first_name": "Pat"}
        prospect = f"bench-p{self.serial}"
        iid = self.engine.start(process, prospect, ACTOR, context, actor=ACTOR).id
        for action in path:
            if action[0] == "timer":
                due = min(w.due_at for w in self.engine.get(iid).waiting if w.due_at)
                self.clock.set(due)
                self.engine.tick()
            else:
                self.clock.set(self.clock.now() + HOUR)
                if action[0] == "msg":
                    self.engine.signal("video_played", prospect)
                else:
                    data: dict[str, Any] | None = (
                        {"interest": action[2]} if len(action) > 2 else None)
                    if action[1] == "add_first_prospects":
                        data = {"contacts": 10}
                    self.engine.complete(iid, action[1], data, actor=ACTOR)
            times.append(self.clock.now())
        with self.engine.store.read() as conn:
            row = conn.execute(select(INSTANCE.c.waiting, INSTANCE.c.status,
                                      INSTANCE.c.version, INSTANCE.c.state)
                               .where(INSTANCE.c.id == iid)).one()
            events = conn.execute(select(STEP_EVENT).where(STEP_EVENT.c.instance_id == iid)
                                  .order_by(STEP_EVENT.c.id)).mappings().all()
        groups: list[list[dict[str, Any]]] = [[] for _ in times]
        for ev in events:
            at = ev["at"].replace(tzinfo=UTC)
            groups[times.index(at)].append({
                k: ev[k] for k in ("step_id", "step_name", "kind", "actor", "hook",
                                   "content_shown", "content_used", "propensity",
                                   "policy_version", "data")})
        waiting = []
        for wait in json.loads(row.waiting):
            for key in ("since", "due_at", "stuck_since"):
                if wait.get(key):
                    moment = datetime.fromisoformat(wait[key])
                    group = bisect_right(times, moment) - 1
                    wait[key] = (group, moment - times[group])
            waiting.append(wait)
        return Capture(groups, waiting, row.status, row.version, row.state)


class Writer:
    """Turns captures into rows for one instance at a time, and writes them in chunks."""

    def __init__(self, conn: sqlite3.Connection, templates: Templates, definitions:
                 dict[str, int], rng: random.Random) -> None:
        self.conn, self.templates, self.definitions, self.rng = conn, templates, definitions, rng
        self.instances: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []
        self.next_id = 1
        self.counts = {"instances": 0, "events": 0}

    def add(self, process: str, prospect: str, distributor: str, context: dict[str, Any],
            t0: datetime, moves: list[tuple[datetime, Action]], outcome: str | None) -> None:
        done = [(t, a) for t, a in moves if t <= NOW]
        if outcome is not None and len(done) < len(moves):
            outcome = None
        capture = self.templates.get(process, tuple(a for _, a in done))
        times = [t0] + [t for t, _ in done]
        iid = self.next_id
        self.next_id += 1
        offers: dict[str, tuple[str, float]] = {}  # step -> (shown, propensity) drawn here
        visits = Visits()  # the visit columns, as the engine records them
        for group, (rows, at) in enumerate(zip(capture.events, times, strict=True)):
            action = done[group - 1][1] if group else None
            for row in rows:
                self._event(iid, row, at, distributor, action, offers, visits)
        version = capture.version
        if outcome in ("customer", "distributor"):
            stamp = _db(times[-1])
            kinds = ("customer_order", "sale") if outcome == "customer" else (
                "distributor_enrolled",)
            for kind in kinds:
                amount = round(self.rng.uniform(60, 220)) if outcome == "customer" else None
                self.events.append((iid, kind, kind, "outcome", distributor, None, None, None,
                                    None, None, None,
                                    json.dumps({"amount": amount}) if amount else None,
                                    None, None, stamp))
                version += 1
        waiting = []
        dues: list[str] = []
        stuck: list[str] = []  # with dues: when the cards came due (card_due_at)
        for wait in capture.waiting:
            wait = dict(wait)
            for key in ("since", "due_at", "stuck_since"):
                if key in wait:
                    group, offset = wait[key]
                    wait[key] = _iso(times[group] + offset)
            if wait.get("due_at"):
                dues.append(wait["due_at"])
            if wait.get("stuck_since") and wait.get("kind") == "user":
                stuck.append(wait["stuck_since"])
            rec = wait.get("recommendation")
            if rec is not None and wait["step_id"] in offers:
                shown, p = offers[wait["step_id"]]
                wait["recommendation"] = {**rec, "shown": shown, "propensity": p}
            waiting.append(wait)
        active = capture.status == "active"
        self.instances.append((
            iid, self.definitions[process], process, prospect, distributor,
            context.get("sponsor_id"), f"{process}\x1f{prospect}" if active else None,
            capture.status, json.dumps(context), json.dumps(waiting),
            _db(datetime.fromisoformat(min(dues))) if dues else None,
            _db(min(datetime.fromisoformat(t) for t in dues + stuck)) if dues or stuck else None,
            version,
            capture.state, _db(t0), _db(times[-1]), visits.dump()))
        if len(self.events) > 200_000:
            self.flush()

    def _event(self, iid: int, row: dict[str, Any], at: datetime, distributor: str,
               action: Action | None, offers: dict[str, tuple[str, float]],
               visits: Visits) -> None:
        kind, data, used = row["kind"], row["data"], None
        shown, propensity = row["content_shown"], row["propensity"]
        step = row["step_id"]
        if kind == "entered" and shown is not None:
            ranked = self._ranking(step)
            if ranked:
                pick = self.rng.choices(ranked, [p for _, p in ranked])[0]
                offers[step] = pick
        if step in offers and shown is not None:
            shown, propensity = offers[step]
        if action is not None and action[0] == "do" and action[1] == step and kind == "completed":
            roll = self.rng.random()
            extra = json.loads(data) if data else {}
            if step in SKIPPABLE and roll < 0.05:
                kind, data = "skipped", json.dumps({"reason": "not the right moment"})
            else:
                if roll < 0.16:
                    kind = "varied"
                    data = json.dumps({**extra, "note": "talked in person instead"})
                used = shown if self.rng.random() < 0.88 else self._other(step, shown)
        actor = distributor if row["actor"] == ACTOR else row["actor"]
        visit_ms, paired = visits.record(step, kind, at.replace(tzinfo=None))
        self.events.append((iid, step, row["step_name"], kind, actor, row["hook"], shown, used,
                            propensity, row["policy_version"], None, data, visit_ms, paired,
                            _db(at)))

    _rankings: dict[str, list[tuple[str, float]]] = {}

    def _ranking(self, step: str) -> list[tuple[str, float]]:
        found = self._rankings.get(step)
        if found is None:
            found = []
            for capture in self.templates.captures.values():
                for wait in capture.waiting:
                    rec = wait.get("recommendation")
                    if wait["step_id"] == step and rec:
                        found = [(r["option_id"], r["probability"]) for r in rec["ranked"]]
            if found:
                self._rankings[step] = found
        return found

    def _other(self, step: str, shown: str | None) -> str | None:
        others = [o for o, _ in self._ranking(step) if o != shown]
        return self.rng.choice(others) if others else shown

    def flush(self) -> None:
        if self.instances:
            self.conn.executemany(
                "INSERT INTO instance (id, definition_id, process_id, prospect_id, "
                "distributor_id, sponsor_id, active_key, status, context, waiting, next_due_at, "
                "card_due_at, version, state, created_at, updated_at, visits) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.instances)
        if self.events:
            self.conn.executemany(
                "INSERT INTO step_event (instance_id, step_id, step_name, kind, actor, hook, "
                "content_shown, content_used, propensity, policy_version, chain, data, "
                "visit_ms, paired, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.events)
        self.conn.commit()
        self.counts["instances"] += len(self.instances)
        self.counts["events"] += len(self.events)
        self.instances.clear()
        self.events.clear()
