"""Timers fired per second by 1, 2 and 4 worker processes on PostgreSQL, and 1 on SQLite.

    python -m bench.timers [--instances 2000] [--rounds 3] [--batch 100] [--json PATH]
                           [--no-postgres]

Each run starts from the same database: N instances of tests/fixtures/events/reminder.bpmn
(start → wait P2D → follow-up), started through the API at T0 and all due at T0 + 3 days.
The database is prepared once per backend and cloned for every run (PostgreSQL: CREATE
DATABASE ... TEMPLATE; SQLite: a file copy), so runs do not pay for creating instances.

A run starts K worker processes (`python -m bench.timers --worker ...`), each an
`open_engine(url, clock=ManualClock(T0 + 3 days))` calling `fire_due(batch)` until nothing is left
for it. Workers connect first and report ready; the clock starts when all are told to go
and stops when the last one is done, so process start-up is not counted. After every run
the database is checked: every instance has exactly one timer event.

Baseline (issue 23): SpiffWorkflow's full round trip per fired timer on one thread, in
memory, measured in every round: the same map parsed by Spiff's own parser (its timer set to
PT1S so that it is due a second later on the wall clock Spiff reads), each instance's full
JSON document deserialized, `refresh_timers()` + `do_engine_steps()`, serialized again.

Rounds are interleaved (each round runs every row once); figures are medians over rounds.
Ratios: every row against the Spiff baseline of the same rounds; "vs pg 1" is the scaling
against 1 PostgreSQL worker.

A worker fires its claimed instances in groups, one transaction (one commit) per group
(`engine.runtime.events.GROUP`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import (
    RESULTS,
    machine_info,
    postgres_problem,
    postgres_version,
    scratch_postgres,
)

REPO = Path(__file__).resolve().parent.parent
MAP = REPO / "tests" / "fixtures" / "events" / "reminder.bpmn"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=3)  # every reminder is due
PG_WORKERS = (1, 2, 4)


@dataclass
class Row:
    name: str
    backend: str
    workers: int
    rounds: list[float] = field(default_factory=list)  # timers fired per second
    seconds: list[float] = field(default_factory=list)
    shares: list[list[int]] = field(default_factory=list)  # timers fired by each worker
    cpu: list[float] = field(default_factory=list)  # workers' own CPU seconds, all together

    @property
    def median(self) -> float:
        return statistics.median(self.rounds) if self.rounds else float("nan")

    @property
    def cpu_ms_per_timer(self) -> float:
        if not self.cpu:
            return float("nan")
        fired = sum(self.shares[0])
        return statistics.median(self.cpu) * 1000 / fired


# -- a worker process ----------------------------------------------------------------------------


def worker_main(url: str, name: str, batch: int) -> int:
    from engine import ManualClock
    from nextmove import open_engine

    engine = open_engine(url, clock=ManualClock(NOW), recommend=False)
    engine.definitions()  # connected before the start line
    print("ready", flush=True)
    sys.stdin.readline()
    cpu = time.process_time()
    total = 0
    while True:
        fired = engine.fire_due(batch, name)
        if not fired:
            break
        total += len(fired)
    cpu = time.process_time() - cpu
    engine.store.dispose()
    print("done", total, f"{cpu:.4f}", flush=True)
    return 0


# -- the baseline: SpiffWorkflow alone ---------------------------------------------------------


def spiff_round(count: int) -> tuple[float, float]:
    """Seconds and CPU seconds for SpiffWorkflow to fire `count` timers, one full JSON round
    trip each (documents prepared untimed)."""
    from lxml import etree
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
    from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
    from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
    from SpiffWorkflow.util.task import TaskState

    xml = MAP.read_text().replace(">P2D<", ">&quot;PT1S&quot;<")
    parser = SpiffBpmnParser()
    parser.add_bpmn_xml(etree.fromstring(xml.encode()), filename=MAP.name)
    spec, subprocesses = parser.get_spec("reminder"), parser.get_subprocess_specs("reminder")
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    docs = []
    for _ in range(count):
        workflow = BpmnWorkflow(spec, subprocesses)
        workflow.do_engine_steps()
        docs.append(serializer.serialize_json(workflow))
    time.sleep(1.05)  # every timer is due now
    started, cpu = time.perf_counter(), time.process_time()
    for i, doc in enumerate(docs):
        workflow = serializer.deserialize_json(doc)
        workflow.refresh_timers()
        workflow.do_engine_steps()
        docs[i] = serializer.serialize_json(workflow)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    for doc in (docs[0], docs[-1]):
        ready = serializer.deserialize_json(doc).get_tasks(state=TaskState.READY)
        if [t.task_spec.bpmn_id for t in ready] != ["follow_up"]:
            raise RuntimeError("the Spiff baseline's timer did not fire: the benchmark is broken")
    return elapsed, cpu


# -- preparing and cloning databases ---------------------------------------------------------------


def fill(url: str, count: int) -> float:
    """`count` reminder instances started through the API; returns seconds taken."""
    from engine import ManualClock
    from nextmove import open_engine

    engine = open_engine(url, clock=ManualClock(T0), recommend=False, hot_instances=0)
    started = time.perf_counter()
    try:
        engine.deploy([MAP])
        for k in range(count):
            engine.start("reminder", f"p{k}", "d1")
        return time.perf_counter() - started
    finally:
        engine.store.dispose()


@contextmanager
def sqlite_clone(template: Path) -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="nextmove_bench_"))
    try:
        shutil.copy(template, folder / "run.db")
        yield f"sqlite:///{folder / 'run.db'}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def checkpoint(path: Path) -> None:
    """Fold the WAL into the main file so a plain copy holds every instance."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# -- one timed run ------------------------------------------------------------------------------


def run(url: str, workers: int, batch: int, expected: int) -> tuple[float, list[int], float]:
    """Seconds from "go" until the last worker is done, what each worker fired, and the
    workers' CPU seconds (the rest of the wall time is waiting: database, locks, other load)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.timers", "--worker", url, "--name", f"w{k}",
             "--batch", str(batch)],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for k in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"worker did not start: {line!r}")
        started = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        shares = []
        cpu = 0.0
        for proc in procs:
            assert proc.stdout is not None
            words = proc.stdout.readline().split()
            if words[:1] != ["done"]:
                raise RuntimeError(f"worker failed: {words!r}")
            shares.append(int(words[1]))
            cpu += float(words[2])
        elapsed = time.perf_counter() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.wait(timeout=60)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
    verify(url, expected)
    return elapsed, shares, cpu


def verify(url: str, expected: int) -> None:
    """Every instance fired exactly once (a benchmark of wrong results is worthless)."""
    from sqlalchemy import create_engine, func, select

    from engine.store import STEP_EVENT

    events = STEP_EVENT
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            total, distinct = conn.execute(
                select(func.count(), func.count(events.c.instance_id.distinct()))
                .where(events.c.kind == "timer")).one()
    finally:
        engine.dispose()
    if (total, distinct) != (expected, expected):
        raise RuntimeError(f"expected {expected} timers fired once each, got {total} events "
                           f"on {distinct} instances")


# -- the benchmark ------------------------------------------------------------------------------


def per_round(row: Row, baseline: Row) -> float:
    return statistics.median(a / b for a, b in zip(row.rounds, baseline.rounds, strict=True))


def table(rows: list[Row], baseline: Row, pg1: Row | None) -> str:
    head = (f"{'':22} {'timers/s (median)':>18} {'s/run':>7} {'ratio':>7} {'per round':>10} "
            f"{'vs pg 1':>8} {'CPU ms/timer':>13}  rounds (timers/s)")
    lines = [head, "-" * len(head)]
    for row in rows:
        ratio = row.median / baseline.median
        scaling = row.median / pg1.median if pg1 is not None and pg1.rounds else float("nan")
        lines.append(
            f"{row.name:22} {row.median:18,.0f} {statistics.median(row.seconds):7.2f} "
            f"{ratio:7.2f} {per_round(row, baseline):10.2f} {scaling:8.2f} "
            f"{row.cpu_ms_per_timer:13.2f}  {', '.join(f'{x:,.0f}' for x in row.rounds)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.timers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100, help="fire_due batch per claim")
    parser.add_argument("--json", type=Path, default=RESULTS / "timers.json")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--name", default="w", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.name, args.batch)

    rows: list[Row] = []
    notes: list[str] = []
    pg_problem = "--no-postgres" if args.no_postgres else postgres_problem()
    if pg_problem:
        print(f"PostgreSQL rows skipped: {pg_problem}", file=sys.stderr)
        notes.append(f"PostgreSQL skipped: {pg_problem}")
    else:
        rows += [Row(f"postgres, {k} worker{'s' * (k > 1)}", "postgresql", k) for k in PG_WORKERS]
    rows.append(Row("sqlite, 1 worker", "sqlite", 1))
    spiff = Row("spiff full round trip", "spiff", 1)
    rows.insert(0, spiff)

    info: dict[str, Any] = {"machine": machine_info(), "instances": args.instances,
                            "rounds": args.rounds, "batch": args.batch,
                            "load_average_at_start": os.getloadavg(),
                            "group": _group_size()}
    with tempfile.TemporaryDirectory(prefix="nextmove_bench_") as tmp, \
            (scratch_postgres() if not pg_problem else _nothing()) as pg_template:
        sqlite_template = Path(tmp) / "template.db"
        print(f"preparing {args.instances} due instances per backend (through the API)...",
              file=sys.stderr)
        info["fill_seconds"] = {"sqlite": round(fill(f"sqlite:///{sqlite_template}",
                                                     args.instances), 2)}
        checkpoint(sqlite_template)
        if pg_template:
            info["fill_seconds"]["postgresql"] = round(fill(pg_template, args.instances), 2)
            info["postgres"] = postgres_version(pg_template)
        for number in range(args.rounds):
            for row in rows:
                if row is spiff:
                    elapsed, cpu = spiff_round(args.instances)
                    row.seconds.append(elapsed)
                    row.rounds.append(args.instances / elapsed)
                    row.shares.append([args.instances])
                    row.cpu.append(cpu)
                    print(f"round {number + 1}/{args.rounds}: {row.name}: "
                          f"{args.instances / elapsed:,.0f} timers/s", file=sys.stderr)
                    continue
                clone = (scratch_postgres(template=pg_template.rsplit("/", 1)[1])
                         if row.backend == "postgresql" else sqlite_clone(sqlite_template))
                with clone as url:
                    elapsed, shares, cpu = run(url, row.workers, args.batch, args.instances)
                row.seconds.append(elapsed)
                row.rounds.append(args.instances / elapsed)
                row.shares.append(shares)
                row.cpu.append(cpu)
                print(f"round {number + 1}/{args.rounds}: {row.name}: "
                      f"{args.instances / elapsed:,.0f} timers/s {shares}", file=sys.stderr)

    baseline = spiff
    pg1 = next((r for r in rows if r.backend == "postgresql" and r.workers == 1), None)
    print(table(rows, baseline, pg1))
    print(f"\nratio = median timers/s against {baseline.name}; per round = the median of the "
          f"ratios within each round; vs pg 1 = against 1 PostgreSQL worker. "
          f"{os.cpu_count()} CPU(s): worker processes and the database share them. "
          f"Load average at start: {info['load_average_at_start'][0]:.1f}.")
    result = {
        **info,
        "notes": notes,
        "baseline": baseline.name,
        "rows": [{
            "name": r.name, "backend": r.backend, "workers": r.workers,
            "timers_per_s_median": round(r.median, 1),
            "timers_per_s_rounds": [round(x, 1) for x in r.rounds],
            "seconds_rounds": [round(x, 3) for x in r.seconds],
            "ratio_vs_baseline": round(r.median / baseline.median, 3),
            "ratio_per_round": round(per_round(r, baseline), 3),
            "ratio_vs_pg_1_worker": round(r.median / pg1.median, 3) if pg1 else None,
            "shares_rounds": r.shares,
            "worker_cpu_ms_per_timer": round(r.cpu_ms_per_timer, 3),
        } for r in rows],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    result["load_average_at_end"] = os.getloadavg()
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {args.json}", file=sys.stderr)
    return 0


def _group_size() -> int | None:
    from engine.runtime import events

    return getattr(events, "GROUP", None)  # None: before group commit (one commit per step)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    raise SystemExit(main())
