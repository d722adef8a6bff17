"""The learner's reads at scale: decisions, cases and variants over ~1M events; log imports.

    python -m bench.learner_log [--events 1000000] [--db sqlite|postgres] [--keep PATH]

`--keep PATH` (SQLite) keeps the synthetic database there and reuses it on the next run.

A synthetic engine-shaped log (a start event, five hooked steps each entered with a logged
offer and then completed/skipped/varied, a message, outcome events for some) is bulk-inserted
untimed. Baseline: fetching the same step_event rows with SQLAlchemy Core, doing nothing with
them (the floor for any reader). Rows: `decisions()`, `cases()`, `variants(outcome=...)`, each
with its ratio to the baseline (CPU seconds of this process: wall time on a shared machine
says more about the neighbours). Then imports: the receipt corpus log (CSV and XES.gz) and a
synthetic CSV of the same size as the database log, against a plain `csv.reader` pass over the
file. Peak RSS is the process's high-water mark after each row (it only grows).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from bench._common import scratch_postgres
from engine import Store
from engine.runtime.queries import DEFINITION, INSTANCE, STEP_EVENT
from learner import cases, decisions, import_log, variants
from nextmove import open_store

LOGS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "corpora" / "logs"
START = datetime(2026, 1, 5, 8, 0)
STEPS = [("add_contact", "first_contact", 3), ("share_intro", "intro_video", 3),
         ("follow_up", "follow_up_message", 2), ("conversation", "presentation", 2),
         ("close", "order_link", 2)]
EVENTS_PER_CASE = 13  # start, 5 × (entered + action), a message, an end event (~)


def synthesize(store: Store, events: int, seed: int = 1) -> int:
    """Bulk-insert an engine-shaped log of about `events` events; returns the count."""
    rng = random.Random(seed)
    n_cases = events // EVENTS_PER_CASE
    with store.write() as conn:
        definition = conn.execute(insert(DEFINITION).values(
            process_id="journey", version=1, name="journey", content_hash="synthetic",
            source_file="synthetic", source_format="bench", documents="{}",
            steps='[{"id": "close", "name": "close"}]', deployed_at=START)).inserted_primary_key[0]
    written = 0
    for chunk in range(0, n_cases, 5000):
        heads: list[dict[str, Any]] = []
        rows: list[tuple[str, list[dict[str, Any]]]] = []
        for i in range(chunk, min(n_cases, chunk + 5000)):
            at = START + timedelta(minutes=i)
            market, personality = rng.choice(["US", "CA", "MX"]), rng.choice(["intro", "extro"])
            heads.append({
                "definition_id": definition, "process_id": "journey", "prospect_id": f"p{i}",
                "distributor_id": f"d{i % 997}", "status": "completed", "version": 1,
                "context": f'{{"market": "{market}", "personality": "{personality}", '
                           f'"age": {rng.randint(18, 70)}}}',
                "waiting": "[]", "state": "{}", "created_at": at, "updated_at": at})
            events_of: list[dict[str, Any]] = [_event("Event_start", "completed", at)]
            converted = False
            for step, hook, options in STEPS:
                pick = rng.randrange(options)
                events_of.append(_event(step, "entered", at, hook, f"{hook}_{pick}",
                                        propensity=rng.uniform(0.2, 0.9), version=1))
                at += timedelta(hours=rng.expovariate(1 / 20))
                kind = rng.choices(["completed", "skipped", "varied"], [84, 5, 11])[0]
                used = None if kind == "skipped" else f"{hook}_{pick}"
                events_of.append(_event(step, kind, at, hook, f"{hook}_{pick}", used,
                                        propensity=0.5, version=1))
                converted = converted or (pick == 0 and rng.random() < 0.08)
            events_of.append(_event("video_played", "message", at))
            if converted:
                events_of.append(_event("sale", "outcome", at + timedelta(hours=2)))
            rows.append((f"p{i}", events_of))
        with store.write() as conn:
            conn.execute(insert(INSTANCE), heads)
            ids = dict(conn.execute(select(INSTANCE.c.prospect_id, INSTANCE.c.id).where(
                INSTANCE.c.prospect_id.in_([h["prospect_id"] for h in heads]))).all())
            flat = [{**e, "instance_id": ids[case]} for case, group in rows for e in group]
            conn.execute(insert(STEP_EVENT), flat)
            written += len(flat)
    return written


def _event(step: str, kind: str, at: datetime, hook: str | None = None,
           shown: str | None = None, used: str | None = None, propensity: float | None = None,
           version: int | None = None) -> dict[str, Any]:
    return {"step_id": step, "step_name": step, "kind": kind, "at": at,
            "hook": hook, "content_shown": shown, "content_used": used,
            "propensity": propensity, "policy_version": version, "actor": None, "data": None}


def synthetic_csv(path: Path, events: int, seed: int = 2) -> int:
    rng = random.Random(seed)
    written = 0
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["case:concept:name", "concept:name", "time:timestamp", "org:resource",
                      "nextmove:hook", "nextmove:content", "case:market"])
        case = 0
        while written < events:
            at = START + timedelta(minutes=case)
            market = rng.choice(["US", "CA", "MX"])
            for step, hook, options in STEPS:
                at += timedelta(hours=rng.expovariate(1 / 20))
                out.writerow([f"c{case}", step, at.isoformat() + "Z", f"d{case % 997}", hook,
                              f"{hook}_{rng.randrange(options)}", market])
                written += 1
            case += 1
    return written


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds (CPU: this process, so other load on the machine counts less)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - start, time.process_time() - cpu, result


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--keep", type=Path, help="SQLite file to keep (and reuse) the log in")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.db == "postgres":
            with scratch_postgres() as url:
                run(open_store(url), Path(tmp), args.events)
        else:
            db = args.keep or Path(tmp) / "bench.db"
            run(open_store(f"sqlite:///{db}"), Path(tmp), args.events)


def run(store: Store, tmp: Path, events: int) -> None:
    with store.read() as conn:
        n = conn.execute(select(func.count()).select_from(STEP_EVENT)).scalar_one()
    if n:
        print(f"reusing {n:,} events; {store.dialect}")
    else:
        seconds, _cpu, n = timed(lambda: synthesize(store, events))
        print(f"synthesized {n:,} events in {seconds:.1f} s (untimed setup); {store.dialect}")
    with store.engine.connect() as conn:  # planner statistics, as a live database has them
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    query = (select(STEP_EVENT.c.instance_id, STEP_EVENT.c.step_id, STEP_EVENT.c.kind,
                    STEP_EVENT.c.at, STEP_EVENT.c.hook, STEP_EVENT.c.content_shown,
                    STEP_EVENT.c.content_used, STEP_EVENT.c.propensity,
                    STEP_EVENT.c.policy_version)
             .order_by(STEP_EVENT.c.instance_id, STEP_EVENT.c.id))

    def fetch() -> int:
        with store.read() as conn:
            return sum(1 for _ in conn.execution_options(yield_per=20_000).execute(query))

    rows = [("fetch the rows (baseline)", *timed(fetch)[:2], f"{n:,} rows")]
    for name, fn in (
        ("decisions(outcome='sale')", lambda: len(decisions(store, "journey", outcome="sale"))),
        ("cases(outcome='sale')", lambda: len(cases(store, "journey", outcome="sale"))),
        ("variants(outcome='sale')", lambda: len(variants(store, "journey", outcome="sale"))),
    ):
        seconds, cpu, size = timed(fn)
        rows.append((name, seconds, cpu, f"{size:,} rows, peak RSS {peak_mb():,.0f} MB"))
    _print(rows)
    store.dispose()
    log = tmp / "synthetic.csv"
    n_csv = synthetic_csv(log, events)

    def scan() -> int:
        with open(log, newline="") as handle:
            return sum(1 for _ in csv.reader(handle))

    rows = [("csv.reader pass (baseline)", *timed(scan)[:2], f"{n_csv:,} rows")]
    receipt = tmp / "receipt.csv"  # kept gzipped in the repository; imported as plain CSV
    with gzip.open(LOGS / "receipt.csv.gz", "rb") as src, open(receipt, "wb") as dst:
        shutil.copyfileobj(src, dst)
    for name, path in (("import receipt.csv", receipt),
                       ("import 08_receipt.xes.gz", LOGS / "08_receipt.xes.gz"),
                       ("import synthetic CSV", log)):
        target = open_store(f"sqlite:///{tmp / (path.name + '.db')}")
        seconds, cpu, report = timed(lambda p=path, t=target: import_log(t, p, "history"))
        rows.append((name, seconds, cpu, f"{report.events_written:,} events, peak RSS "
                                         f"{peak_mb():,.0f} MB"))
        target.dispose()
    _print(rows)


def _print(rows: list[tuple[str, float, float, str]]) -> None:
    base = rows[0][2]
    print(f"{'':32} {'wall s':>7} {'CPU s':>7} {'CPU ratio':>9}  note")
    for name, seconds, cpu, note in rows:
        print(f"{name:32} {seconds:7.2f} {cpu:7.2f} {cpu / base:9.1f}  {note}")


if __name__ == "__main__":
    main()
