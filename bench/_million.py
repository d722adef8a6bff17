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
import random
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench._million_paths import (
    HOUR,
    JOURNEY,
    MARKETS,
    NOW,
    ONBOARDING,
    START,
    onboarding_path,
    prospect_path,
)
from bench._million_rows import Templates, Writer
from engine import ManualClock, Store
from nextmove import open_engine, open_store

__all__ = ["CACHE", "FORMAT", "JOURNEY", "NOW", "build", "cached", "on_postgres"]

ROOT = Path(__file__).resolve().parent.parent
LIFEVANTAGE = ROOT / "processes" / "lifevantage"
CACHE = Path(__file__).resolve().parent / ".cache"
FORMAT = 3  # bump when the generated content changes: old cache files are then rebuilt


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
