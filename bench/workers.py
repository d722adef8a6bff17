"""Concurrent durable steps: N client processes completing steps on one PostgreSQL database.

    python -m bench.workers [--rounds 3] [--instances 50] [--workers 1,8]
                            [--commit-delay 200] [--commit-siblings 2] [--json PATH]

Each client is a separate OS process with its own Engine (its own connections) on one
scratch PostgreSQL database: it starts `--instances` instances of bench/maps/linear10.bpmn of
its own (untimed), reports ready, waits for the go, completes all their ten steps round-robin
through `Engine.complete()` (one durable commit per step: `synchronous_commit` stays on) and
reports its elapsed and CPU time. Steps/s of a run = all clients' steps / the slowest client's
time: concurrent commits share WAL flushes, which is how PostgreSQL gets faster than one
flush per step.

Rows: each client count of `--workers` with the server's settings, and each count above one
again with `commit_delay`/`commit_siblings` set on the clients' sessions (`-c` options in the
URL; PostgreSQL lets only a superuser set commit_delay, so this is a row to measure, not
something nextmove sets). `--commit-delay 0` leaves those rows out.

Baseline (issue 23), measured in every round in this process while no client runs:
SpiffWorkflow's full round trip on one thread, in memory (bench.steps: deserialize the full
JSON document, run the READY task, do_engine_steps, serialize) over `--instances` instances of
the same map. Ratio = a row's aggregate steps/s over the baseline of the same round (median
over rounds). Target: 8 clients at ratio >= 1.0.

What limits a row, per step: the clients' own CPU (Python), the PostgreSQL backends' CPU (read
from /proc for the backends serving this database) and the WAL flushes (pg_stat_wal.wal_sync
of the whole server: another job on the server adds to it) — "steps per flush" > 1 means
commits shared a flush.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench._common import (
    MAPS,
    RESULTS,
    machine_info,
    postgres_problem,
    postgres_version,
    scratch_postgres,
    write_result,
)

MAP = MAPS / "linear10.bpmn"
TICKS = os.sysconf("SC_CLK_TCK")


def child(url: str, prefix: str, instances: int) -> None:
    """One client process: prepare, say ready, wait for go, step, report, wait to close."""
    from bench.steps import CONTEXT, Fixture
    from nextmove import open_engine

    fx = Fixture(MAP)
    engine = open_engine(url, recommend=False)
    ids = [engine.start(fx.process_id, f"{prefix}-{i}", "bench-dist", CONTEXT).id
           for i in range(instances)]
    print("ready", flush=True)
    sys.stdin.readline()
    began, cpu = time.perf_counter(), time.process_time()
    for step in fx.steps:
        for instance_id in ids:
            engine.complete(instance_id, step)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    last = engine.get(ids[-1])
    print(json.dumps({"steps": len(ids) * len(fx.steps), "seconds": elapsed, "cpu": cpu,
                      "completed": last.status == "completed"}), flush=True)
    sys.stdin.readline()  # the parent reads the backends' CPU before they go away
    engine.store.dispose()


@dataclass
class Row:
    name: str
    clients: int
    options: str = ""  # libpq -c options for the clients' sessions
    rounds: list[float] = field(default_factory=list)  # aggregate steps/s
    ratios: list[float] = field(default_factory=list)  # against the baseline of the round
    client_cpu_us: list[float] = field(default_factory=list)  # per step, all clients
    server_cpu_us: list[float] = field(default_factory=list)  # per step, their backends
    steps_per_flush: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def med(values: list[float]) -> float | None:
            return round(statistics.median(values), 3) if values else None

        return {"name": self.name, "clients": self.clients, "options": self.options,
                "steps_per_s_median": med(self.rounds),
                "steps_per_s_rounds": [round(v, 1) for v in self.rounds],
                "ratio_vs_spiff_full": med(self.ratios),
                "ratio_rounds": [round(v, 3) for v in self.ratios],
                "client_cpu_us_per_step": med(self.client_cpu_us),
                "server_cpu_us_per_step": med(self.server_cpu_us),
                "steps_per_wal_flush": med(self.steps_per_flush)}


class Server:
    """What the PostgreSQL server did: its backends' CPU for one database, its WAL flushes."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self.database = url.rsplit("/", 1)[1]
        self.engine = create_engine(url.rsplit("/", 1)[0] + "/postgres",
                                    isolation_level="AUTOCOMMIT")

    def backends(self) -> list[int]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return list(conn.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": self.database}
            ).scalars())

    def flushes(self) -> int:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT wal_sync FROM pg_stat_wal")).scalar_one())

    @staticmethod
    def cpu(pids: list[int]) -> float:
        """CPU seconds (user + system) of these processes so far (gone ones count 0)."""
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / TICKS

    def dispose(self) -> None:
        self.engine.dispose()


def run(url: str, row: Row, instances: int, tag: str, server: Server
        ) -> tuple[float, float, float, float]:
    """Aggregate steps/s, clients' CPU µs/step, backends' CPU µs/step, steps per WAL flush."""
    target = url + (f"?options={quote(row.options)}" if row.options else "")
    procs = [subprocess.Popen(
        [sys.executable, "-m", "bench.workers", "--child", target, "--prefix", f"{tag}-w{k}",
         "--instances", str(instances)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parent.parent) for k in range(row.clients)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a client failed to start")
        pids = server.backends()
        cpu_before, flushes_before = server.cpu(pids), server.flushes()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            assert proc.stdout is not None
            results.append(json.loads(proc.stdout.readline()))
        server_cpu, flushes = server.cpu(pids) - cpu_before, server.flushes() - flushes_before
        for proc in procs:
            proc.communicate("bye\n", timeout=600)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    if not all(r["completed"] for r in results):
        raise RuntimeError("a client's instances did not complete: the benchmark is broken")
    steps = sum(r["steps"] for r in results)
    return (steps / max(r["seconds"] for r in results),
            1e6 * sum(r["cpu"] for r in results) / steps, 1e6 * server_cpu / steps,
            steps / max(flushes, 1))


def spiff_baseline(instances: int) -> tuple[float, float]:
    """SpiffWorkflow's full in-memory round trip on one thread (bench.steps): steps/s and
    CPU µs per step."""
    from bench.steps import Fixture, spiff_full

    fx = Fixture(MAP)
    spiff = spiff_full(fx)
    spiff.prepare(instances)
    passes = [spiff.step_pass(step) for step in fx.steps]
    spiff.finish()
    steps = len(fx.steps) * instances
    return steps / sum(p[0] for p in passes), 1e6 * sum(p[1] for p in passes) / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--instances", type=int, default=50, help="per client")
    parser.add_argument("--workers", default="1,8", help="client counts (default 1,8)")
    parser.add_argument("--commit-delay", type=int, default=200,
                        help="µs, for the extra rows (0: no such rows)")
    parser.add_argument("--commit-siblings", type=int, default=2)
    parser.add_argument("--json", type=Path, default=RESULTS / "workers.json")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="w", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.prefix, args.instances)
        return 0

    counts = [int(c) for c in args.workers.split(",")]
    problem = postgres_problem()
    if problem is not None:
        print(f"concurrent clients skipped (needs PostgreSQL): {problem}")
        return 0
    rows = [Row(f"{n} client(s)", n) for n in counts]
    if args.commit_delay > 0:
        rows += [Row(f"{n} clients, commit_delay={args.commit_delay} siblings="
                     f"{args.commit_siblings}", n, f"-c commit_delay={args.commit_delay} "
                     f"-c commit_siblings={args.commit_siblings}") for n in counts if n > 1]
    baseline: list[float] = []
    baseline_cpu: list[float] = []
    info = machine_info()
    info["load_average_at_start"] = os.getloadavg()
    with scratch_postgres() as url:
        from nextmove import open_engine

        info["postgresql"] = postgres_version(url)
        open_engine(url, recommend=False).deploy([MAP])
        server = Server(url)
        try:
            for r in range(args.rounds + 1):  # the first round warms up
                spiff, spiff_cpu = spiff_baseline(args.instances)
                got = [run(url, row, args.instances, f"r{r}k{k}", server)
                       for k, row in enumerate(rows)]
                if r > 0:
                    baseline.append(spiff)
                    baseline_cpu.append(spiff_cpu)
                    for row, (value, client_cpu, server_cpu, per_flush) in zip(
                            rows, got, strict=True):
                        row.rounds.append(value)
                        row.ratios.append(value / spiff)
                        row.client_cpu_us.append(client_cpu)
                        row.server_cpu_us.append(server_cpu)
                        row.steps_per_flush.append(per_flush)
                print(("warm-up" if r == 0 else f"round {r}/{args.rounds}")
                      + f" (load {os.getloadavg()[0]:.1f}): spiff {spiff:,.0f}  "
                      + "  ".join(f"[{row.name}] {g[0]:,.0f}" for row, g in zip(
                          rows, got, strict=True)), flush=True)
        finally:
            server.dispose()
    info["load_average_at_end"] = os.getloadavg()
    print(f"\nPostgreSQL steps/s, N client processes x {args.instances} instances x 10 steps "
          f"(linear10), median of {args.rounds} rounds; ratio = against SpiffWorkflow's full "
          f"round trip, one thread, in memory ({statistics.median(baseline):,.0f} steps/s, "
          f"{statistics.median(baseline_cpu):,.0f} CPU µs/step)")
    head = (f"{'':44} {'steps/s':>8} {'ratio':>6} {'rounds':>18} {'client µs':>10} "
            f"{'server µs':>10} {'steps/flush':>12}")
    print(head + "\n" + "-" * len(head))
    for row in rows:
        d = row.to_dict()
        print(f"{row.name:44} {d['steps_per_s_median']:8,.0f} {d['ratio_vs_spiff_full']:6.2f} "
              f"{','.join(f'{v:.2f}' for v in row.ratios):>18} "
              f"{d['client_cpu_us_per_step']:10,.0f} {d['server_cpu_us_per_step']:10,.0f} "
              f"{d['steps_per_wal_flush']:12.1f}")
    top = [row for row in rows if row.clients == max(counts)]
    met = any(statistics.median(row.ratios) >= 1.0 for row in top)
    print(f"target ({max(counts)} clients ratio >= 1.0): {'met' if met else 'NOT met'}; "
          f"load average {info['load_average_at_start'][0]:.1f} -> "
          f"{info['load_average_at_end'][0]:.1f}")
    result = {"benchmark": "bench.workers",
              "params": {"rounds": args.rounds, "instances": args.instances, "clients": counts,
                         "commit_delay": args.commit_delay,
                         "commit_siblings": args.commit_siblings},
              "baseline": "spiff full round trip (in memory, one thread)",
              "baseline_steps_per_s_rounds": [round(v, 1) for v in baseline],
              "baseline_cpu_us_per_step_rounds": [round(v, 1) for v in baseline_cpu],
              "machine": info, "rows": [row.to_dict() for row in rows],
              "target": {"clients": max(counts), "ratio_at_least": 1.0, "met": met},
              "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
