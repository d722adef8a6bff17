"""A realistic million-instance LifeVantage database, built fast and cached.

    from bench._million import build, cached
    path = cached(instances=1_000_000)          # bench/.cache/million-1000000-10000-0-v2.db
    path = build(Path("/tmp/m.db"), instances=50_000, distributors=500, seed=3)
    url = on_postgres(path, admin_url)          # a PostgreSQL copy, made once and kept

    python -m bench._million [--instances N] [--distributors N] [--seed N] [--out PATH]

What it holds: `distributors` distributors enrolling over a year (each with an onboarding
instance of `distributor_onboarding`, a sponsor among the earlier ones, a market in the
context) and `instances` instances of `prospect_journey` spread over them, each with the step
events of its path through the funnel — realistic drop-off at every step, timers and video
plays, skips and variations, content offered with its propensity — and outcome events
(`customer_order` + `sale`, `distributor_enrolled`) for those who convert. "Now" is
`NOW`: instances whose next move would come later are still waiting there.

How it stays exact without running the engine a million times: every distinct path prefix
(a handful of dozen) is run once through the real engine on a scratch database, and what the
engine wrote is captured — the step events of each move, the instance's `waiting` column,
`next_due_at`, `status`, `version` and the state document. Each generated instance then
copies its prefix's capture with its own timestamps (waits' `since`, `due_at` and
`stuck_since` move with the moves they came from) and its own offered content (drawn from the
captured ranking with its probabilities, so `content_shown` and `propensity` agree with the
waiting column), and its step visits are recorded with the engine's own `Visits`. So
`engine.cards(distributor)` and the analytics see what a live deployment would have written;
only the tamper-evident chain columns are left empty.

Rows go in with driver-level executemany in one transaction per chunk. The result is cached
by parameters: `build` returns at once when the file exists and its stored parameters match.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sqlite3
import sys
import tempfile
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine import Engine, ManualClock, Store
from engine.store.visits import Visits
from nextmove import open_engine, open_store

ROOT = Path(__file__).resolve().parent.parent
LIFEVANTAGE = ROOT / "processes" / "lifevantage"
CACHE = Path(__file__).resolve().parent / ".cache"
FORMAT = 2  # bump when the generated content changes: old cache files are then rebuilt
START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday; enrollments over the following year
NOW = START + timedelta(days=400)
JOURNEY, ONBOARDING = "prospect_journey", "distributor_onboarding"
ACTOR = "bench-actor"  # the template engine's actor, replaced by each distributor's id
MARKETS = (("US", "en-US", 0.92), ("MX", "es-MX", 0.08))
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
# how each kind of step closes: completed / varied / skipped shares
SKIPPABLE = {"add_contact", "share_intro", "follow_up", "nurture"}

Action = tuple[str, ...]  # ("do", step[, interest]) | ("timer",) | ("msg",)


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


def _lognormal(rng: random.Random, median: timedelta, sigma: float) -> timedelta:
    return median * math.exp(rng.gauss(0.0, sigma))


def prospect_path(rng: random.Random, t0: datetime) -> tuple[list[tuple[datetime, Action]],
                                                              str | None]:
    """The moves of one prospect's journey (until they stop), and how it ended."""
    moves: list[tuple[datetime, Action]] = []
    t = t0
    tick = lambda: timedelta(minutes=rng.uniform(1, 15))  # noqa: E731 - the worker's delay

    def step(name: str, drop: float, median: timedelta, stuck: timedelta | None = None,
             interest: str | None = None) -> bool:
        nonlocal t
        gap = _lognormal(rng, median, 1.0)
        dropped = rng.random() < drop
        if stuck is not None and (dropped or gap > stuck):
            moves.append((t + stuck + tick(), ("timer",)))
        if dropped:
            return False
        t += gap
        moves.append((t, ("do", name, interest) if interest else ("do", name)))
        return True

    def landed(customer: float, distributor: float) -> str:
        roll = rng.random()
        return "customer" if roll < customer else (
            "distributor" if roll < customer + distributor else "not_now")

    if not step("add_contact", 0.12, 8 * HOUR):
        return moves, None
    if not step("share_intro", 0.18, 20 * HOUR, stuck=5 * DAY):
        return moves, None
    delay = timedelta(hours=rng.expovariate(1 / 20))
    if rng.random() < 0.55 and delay < 2 * DAY:
        t += delay
        moves.append((t, ("msg",)))
    else:
        t += 2 * DAY + tick()
        moves.append((t, ("timer",)))
        if not step("follow_up", 0.3, DAY):
            return moves, None
    interest = landed(0.22, 0.07)
    if not step("conversation", 0.25, 2 * DAY, stuck=7 * DAY, interest=interest):
        return moves, None
    if interest == "not_now":
        if not step("nurture", 0.35, DAY):
            return moves, None
        t += 30 * DAY + tick()
        moves.append((t, ("timer",)))
        interest = landed(0.08, 0.02)
        if not step("check_in", 0.45, 2 * DAY, interest=interest):
            return moves, None
        if interest == "not_now":
            return moves, "not_now"
    if interest == "customer":
        return moves, ("customer" if step("customer_order", 0.1, 10 * HOUR) else None)
    return moves, ("distributor" if step("enroll", 0.1, DAY) else None)


def onboarding_path(rng: random.Random, t0: datetime, first_sale: datetime | None
                    ) -> list[tuple[datetime, Action]]:
    moves: list[tuple[datetime, Action]] = []
    welcome = t0 + timedelta(hours=rng.uniform(0.2, 6))
    moves.append((welcome, ("do", "welcome")))
    listed = welcome + timedelta(hours=rng.uniform(0.1, 3))
    moves.append((listed, ("do", "add_first_prospects")))
    roll = rng.random()
    if roll < 0.6:
        moves.append((listed + timedelta(days=rng.uniform(0.5, 12)),
                      ("do", "product_training")))
    stuck_at = listed + 10 * DAY + timedelta(minutes=rng.uniform(1, 15))
    if first_sale is None or first_sale > stuck_at:
        moves.append((stuck_at, ("timer",)))
        if rng.random() < 0.7:
            moves.append((stuck_at + timedelta(days=rng.uniform(0.5, 4)),
                          ("do", "sponsor_check_in")))
    if first_sale is not None:
        moves.append((max(first_sale, listed) + timedelta(hours=rng.uniform(1, 30)),
                      ("do", "first_sale")))
    moves.sort(key=lambda m: m[0])
    return moves


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
        dues = []
        for wait in capture.waiting:
            wait = dict(wait)
            for key in ("since", "due_at", "stuck_since"):
                if key in wait:
                    group, offset = wait[key]
                    wait[key] = _iso(times[group] + offset)
            if wait.get("due_at"):
                dues.append(wait["due_at"])
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
            _db(datetime.fromisoformat(min(dues))) if dues else None, version,
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
                "version, state, created_at, updated_at, visits) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.instances)
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


def _params(instances: int, distributors: int, seed: int) -> dict[str, int]:
    return {"instances": instances, "distributors": distributors, "seed": seed,
            "format": FORMAT}


def _stored_params(path: Path) -> dict[str, Any] | None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM nextmove_meta WHERE key = 'bench_million'"
                               ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return json.loads(row[0]) if row else None


def cached(instances: int = 1_000_000, distributors: int = 10_000, seed: int = 0) -> Path:
    """The cached database for these parameters under bench/.cache/, built if missing."""
    CACHE.mkdir(exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")
    name = f"million-{instances}-{distributors}-{seed}-v{FORMAT}.db"
    return build(CACHE / name, instances, distributors, seed)


def build(path: Path, instances: int = 1_000_000, distributors: int = 10_000,
          seed: int = 0) -> Path:
    """Build (or reuse) an SQLite database at `path` with `instances` prospect journeys over
    `distributors` distributors (plus one onboarding instance each), seeded. Returns `path`.

    An existing file built with the same parameters is reused as it is; any other file at
    `path` is replaced. Progress goes to stderr.
    """
    path = Path(path)
    if path.exists() and _stored_params(path) == _params(instances, distributors, seed):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    began = time.perf_counter()
    clock = ManualClock(START)
    engine = open_engine(f"sqlite:///{partial}", clock=clock, rng=random.Random(seed))
    store = engine.store
    engine.deploy([LIFEVANTAGE])
    definitions = {d.process_id: d.id for d in engine.definitions()}
    store.dispose()
    with tempfile.TemporaryDirectory() as scratch:
        t_clock = ManualClock(START)
        templates = Templates(open_engine(f"sqlite:///{Path(scratch) / 'templates.db'}",
                                          durable=False, clock=t_clock,
                                          rng=random.Random(seed)), t_clock)
        templates.engine.deploy([LIFEVANTAGE])
        conn = sqlite3.connect(partial)  # DML opens a transaction; each flush commits it
        conn.execute("PRAGMA synchronous=OFF")
        try:
            _generate(Writer(conn, templates, definitions, random.Random(seed)),
                      random.Random(seed + 1), instances, distributors, began)
            conn.execute("INSERT INTO nextmove_meta (key, value) VALUES ('bench_million', ?)",
                         (json.dumps(_params(instances, distributors, seed)),))
            conn.commit()
            _progress(f"indexing statistics (ANALYZE) {time.perf_counter() - began:.0f}s")
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
            templates.engine.store.dispose()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    partial.replace(path)
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    _progress(f"built {path} in {time.perf_counter() - began:.0f}s "
              f"({path.stat().st_size / 1e9:.2f} GB)")
    return path


def _progress(text: str) -> None:
    print(f"[million] {text}", file=sys.stderr, flush=True)


def _generate(writer: Writer, rng: random.Random, instances: int, distributors: int,
              began: float) -> None:
    weights = [rng.gammavariate(2.0, 1.0) for _ in range(distributors)]
    total = sum(weights)
    counts = [int(instances * w / total) for w in weights]
    for n in range(instances - sum(counts)):
        counts[n % distributors] += 1
    enrolled = sorted(START + timedelta(days=rng.uniform(0, 365)) for _ in range(distributors))
    leaders = max(1, distributors // 20)
    ids = [f"d{n:05d}" for n in range(distributors)]
    report_every = max(1, distributors // 20)
    for n in range(distributors):
        market, locale, _ = rng.choices(MARKETS, [w for *_, w in MARKETS])[0]
        sponsor = None if n < leaders else ids[rng.randrange(min(n, leaders * 4))]
        context = {"market": market, "locale": locale, "sponsor_id": sponsor,
                   "distributor_experience": rng.choice(("new", "new", "new", "experienced"))}
        e0 = enrolled[n]
        tenure = (NOW - e0).total_seconds() / 86400
        first_sale: datetime | None = None
        starts = []
        for k in range(counts[n]):
            if k < 10 and rng.random() < 0.7:
                offset = rng.uniform(0.0, 1.0)  # up to ten on day one
            else:
                offset = min(tenure, rng.expovariate(1 / 60))
            starts.append(min(NOW - HOUR, e0 + timedelta(days=offset, hours=rng.uniform(0, 2))))
        starts.sort()
        journeys = []
        for k, t0 in enumerate(starts):
            moves, outcome = prospect_path(rng, t0)
            if outcome == "customer" and moves[-1][0] <= NOW:
                sale = moves[-1][0]
                first_sale = sale if first_sale is None else min(first_sale, sale)
            journeys.append((t0, moves, outcome, k))
        writer.add(ONBOARDING, ids[n], ids[n], context, e0, onboarding_path(rng, e0, first_sale),
                   None)
        for t0, moves, outcome, k in journeys:
            prospect_context = {**context, "prospect_first_name": f"P{k}",
                                "prospect_interest": rng.choice(
                                    ("energy", "healthy_aging", "skin_care", "extra_income"))}
            writer.add(JOURNEY, f"{ids[n]}-p{k:03d}", ids[n], prospect_context, t0, moves,
                       outcome)
        if (n + 1) % report_every == 0:
            writer.flush()
            done = writer.counts
            _progress(f"{n + 1}/{distributors} distributors, {done['instances']:,} instances, "
                      f"{done['events']:,} events, {time.perf_counter() - began:.0f}s")
    writer.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--distributors", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="database file (default: the cache under bench/.cache/)")
    args = parser.parse_args(argv)
    if args.out is None:
        print(cached(args.instances, args.distributors, args.seed))
    else:
        print(build(args.out, args.instances, args.distributors, args.seed))


if __name__ == "__main__":
    main()


def on_postgres(path: Path, admin_url: str) -> str:
    """A PostgreSQL copy of the SQLite database at `path` (built by `build`), made once and
    kept as database `nextmove_<file stem>`; returns its URL.

    Every table's rows go over with COPY, so both databases hold the same rows (ids, times,
    state documents); sequences are moved past the copied ids and statistics gathered.
    """
    import psycopg
    from sqlalchemy import create_engine, text
    from sqlmodel import SQLModel

    name = "nextmove_" + path.stem.replace("-", "_")
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    params = _stored_params(path)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": name}).first() is not None
        if exists:
            store = Store(url)
            try:
                with store.read() as conn:
                    found = conn.execute(text("SELECT value FROM nextmove_meta WHERE key = "
                                              "'bench_million'")).scalar()
            finally:
                store.dispose()
            if found is not None and json.loads(found) == params:
                return url
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    open_store(url).dispose()  # the schema, as nextmove makes it
    began = time.perf_counter()
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(dsn) as target, target.cursor() as cur:
            cur.execute("DELETE FROM nextmove_meta")
            for table in SQLModel.metadata.sorted_tables:
                columns = [c.name for c in table.columns]
                names = ", ".join(columns)
                rows = source.execute(f"SELECT {names} FROM {table.name}")
                copied = 0
                with cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        copied += 1
                        if copied % 500_000 == 0:
                            _progress(f"postgres: {table.name} {copied:,} rows "
                                      f"{time.perf_counter() - began:.0f}s")
                if "id" in columns and table.c.id.autoincrement is not False and copied:
                    cur.execute(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                f"(SELECT max(id) FROM {table.name}))")
            target.commit()
        with psycopg.connect(dsn, autocommit=True) as target:
            target.execute("VACUUM ANALYZE")
    finally:
        source.close()
    _progress(f"postgres copy {name} in {time.perf_counter() - began:.0f}s")
    return url
