"""Starting instances: one at a time, in bulk, and SQLite's own batched insert of same-size rows.

    python -m bench.starts [--rounds 5] [--instances 1000] [--batch 500] [--json PATH]

Rows, each on a fresh SQLite file (WAL, synchronous=NORMAL) with bench/maps/linear10.bpmn
deployed, interleaved round by round:

* `Engine.start()` per prospect: one transaction each (dedup look-up, workflow, state,
  entered events, waiting column, chain head).
* `Engine.start_many()` in batches of `--batch`: the same work, one transaction per batch.
* baseline: sqlite3 `executemany` of the very rows the engine stored (instance rows and
  their step events, copied byte for byte), one transaction per batch, into empty tables
  with the same schema and indexes. What SQLite itself takes to store that much data.

Ratios are instances/s over the baseline's instances/s.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import MAPS, RESULTS, Row, machine_info, write_result
from engine import Engine
from engine.runtime import NewProspect
from nextmove import open_engine

MAP = MAPS / "linear10.bpmn"
PROCESS = "bench_linear10"
CONTEXT = {"market": "US", "source": "bench"}


def _engine(path: Path) -> Engine:
    engine = open_engine(f"sqlite:///{path}", recommend=False)
    engine.deploy([MAP])
    return engine


def one_at_a_time(path: Path, n: int) -> float:
    engine = _engine(path)
    try:
        began = time.perf_counter()
        for i in range(n):
            engine.start(PROCESS, f"p{i}", f"d{i % 50}", CONTEXT)
        return time.perf_counter() - began
    finally:
        engine.store.dispose()


def in_bulk(path: Path, n: int, batch: int) -> float:
    engine = _engine(path)
    prospects = [NewProspect(f"p{i}", f"d{i % 50}", CONTEXT) for i in range(n)]
    try:
        began = time.perf_counter()
        for i in range(0, n, batch):
            engine.start_many(PROCESS, prospects[i:i + batch])
        return time.perf_counter() - began
    finally:
        engine.store.dispose()


def raw_insert(source: Path, target: Path, batch: int) -> float:
    """sqlite3 executemany of `source`'s instance and step_event rows into an empty copy of
    its schema (same indexes), one transaction per batch of instances."""
    src = sqlite3.connect(source)
    schema = [sql for (sql,) in src.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name IN ('instance', 'step_event') "
        "AND sql IS NOT NULL ORDER BY type DESC")]  # tables before indexes
    instances = src.execute("SELECT * FROM instance ORDER BY id").fetchall()
    events = src.execute("SELECT * FROM step_event ORDER BY id").fetchall()
    src.close()
    by_instance: dict[int, list[Any]] = {}
    for event in events:
        by_instance.setdefault(event[1], []).append(event)
    dst = sqlite3.connect(target, isolation_level=None)
    dst.execute("PRAGMA journal_mode=WAL")
    dst.execute("PRAGMA synchronous=NORMAL")
    for sql in schema:
        dst.execute(sql)  # foreign keys are off in a plain sqlite3 connection
    cols_i = ", ".join("?" * len(instances[0]))
    cols_e = ", ".join("?" * len(events[0]))
    began = time.perf_counter()
    for i in range(0, len(instances), batch):
        chunk = instances[i:i + batch]
        dst.execute("BEGIN IMMEDIATE")
        dst.executemany(f"INSERT INTO instance VALUES ({cols_i})", chunk)
        dst.executemany(f"INSERT INTO step_event VALUES ({cols_e})",
                        [e for row in chunk for e in by_instance.get(row[0], [])])
        dst.execute("COMMIT")
    elapsed = time.perf_counter() - began
    dst.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.starts",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", type=Path, default=RESULTS / "starts.json")
    args = parser.parse_args(argv)

    n = args.instances
    baseline = Row("sqlite3 executemany of the same rows (baseline)",
                   note="instance + step_event rows as stored, one transaction per batch")
    single = Row("nextmove start(), one transaction each")
    bulk = Row(f"nextmove start_many(), batches of {args.batch}")
    rows = [baseline, single, bulk]
    sizes: dict[str, float] = {}
    for r in range(args.rounds + 1):  # the first round warms up
        with tempfile.TemporaryDirectory(prefix="nextmove-bench-") as tmp:
            t = Path(tmp)
            figures = [0.0, n / one_at_a_time(t / "one.db", n),
                       n / in_bulk(t / "bulk.db", n, args.batch)]
            figures[0] = n / raw_insert(t / "bulk.db", t / "raw.db", args.batch)
            conn = sqlite3.connect(t / "bulk.db")
            state, waiting, per = conn.execute(
                "SELECT avg(length(state)), avg(length(waiting)), "
                "(SELECT count(*) FROM step_event) * 1.0 / count(*) FROM instance").fetchone()
            conn.close()
            sizes = {"state_bytes": state, "waiting_bytes": waiting, "events_per_instance": per}
        if r > 0:
            for row, value in zip(rows, figures, strict=True):
                row.rounds.append(value)
        print(("warm-up" if r == 0 else f"round {r}/{args.rounds}") + ": "
              + "  ".join(f"{v:,.0f}" for v in figures), flush=True)

    print(f"\ninstances started per second, {n} per round, median of {args.rounds} rounds; "
          "ratio = instances/s / SQLite's own batched insert of the same rows")
    for row in rows:
        print(f"{row.name:52} {row.median:10,.0f}/s {1e6 / row.median:9.0f} µs/instance  "
              f"ratio {row.median / baseline.median:6.3f}")
    print(f"bulk vs one at a time: {bulk.median / single.median:.2f}x")
    result = {
        "benchmark": "bench.starts", "params": {"rounds": args.rounds, "instances": n,
                                                "batch": args.batch},
        "machine": machine_info(), "baseline": baseline.name, "row_sizes": sizes,
        "rows": [{"name": r.name, "per_s_median": round(r.median, 1),
                  "ratio_vs_sqlite_insert": round(r.median / baseline.median, 4),
                  "per_s_rounds": [round(v, 1) for v in r.rounds], "note": r.note}
                 for r in rows],
        "bulk_vs_single": round(bulk.median / single.median, 2),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
