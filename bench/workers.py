"""PostgreSQL with 1, 2 and 4 engine worker processes completing steps.

    python -m bench.workers [--rounds 3] [--instances 100] [--workers 1,2,4] [--json PATH]

Each worker is a separate OS process with its own Engine on one scratch PostgreSQL database:
it starts `--instances` instances of bench/maps/linear10.bpmn of its own (untimed), reports
ready, waits for the go, completes all their ten steps round-robin through `Engine.complete()`
and reports its elapsed time. Steps/s of a run = all workers' steps / the slowest worker's
time. Runs with 1, 2 and 4 workers are interleaved within each round; "scaling" is a run's
steps/s over the 1-worker run's steps/s in the same round (median over rounds). With two
cores, four workers share two CPUs with the PostgreSQL server: the scaling says how much the
per-commit waits (network, WAL flush) overlap, not how many cores there are.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import (
    MAPS,
    RESULTS,
    machine_info,
    postgres_problem,
    scratch_postgres,
    write_result,
)

MAP = MAPS / "linear10.bpmn"


def child(url: str, prefix: str, instances: int) -> None:
    """One worker process: prepare, say ready, wait for go, step, report."""
    from bench.steps import CONTEXT, Fixture
    from nextmove import open_engine

    fx = Fixture(MAP)
    engine = open_engine(url, recommend=False)
    ids = [engine.start(fx.process_id, f"{prefix}-{i}", "bench-dist", CONTEXT).id
           for i in range(instances)]
    print("ready", flush=True)
    sys.stdin.readline()
    began = time.perf_counter()
    for step in fx.steps:
        for instance_id in ids:
            engine.complete(instance_id, step)
    elapsed = time.perf_counter() - began
    last = engine.get(ids[-1])
    engine.store.dispose()
    print(json.dumps({"steps": len(ids) * len(fx.steps), "seconds": elapsed,
                      "completed": last.status == "completed"}), flush=True)


def run(url: str, workers: int, instances: int, tag: str) -> float:
    procs = [subprocess.Popen(
        [sys.executable, "-m", "bench.workers", "--child", url, "--prefix", f"{tag}-w{k}",
         "--instances", str(instances)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parent.parent) for k in range(workers)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a worker failed to start")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=3600)
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    if not all(r["completed"] for r in results):
        raise RuntimeError("a worker's instances did not complete: the benchmark is broken")
    return sum(r["steps"] for r in results) / max(r["seconds"] for r in results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--instances", type=int, default=100, help="per worker")
    parser.add_argument("--workers", default="1,2,4")
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
        print(f"worker scaling skipped (needs PostgreSQL): {problem}")
        return 0
    figures: dict[int, list[float]] = {n: [] for n in counts}
    with scratch_postgres() as url:
        from nextmove import open_engine

        open_engine(url, recommend=False).deploy([MAP])
        for r in range(args.rounds + 1):  # the first round warms up
            got = {n: run(url, n, args.instances, f"r{r}n{n}") for n in counts}
            if r > 0:
                for n, value in got.items():
                    figures[n].append(value)
            print(("warm-up" if r == 0 else f"round {r}/{args.rounds}") + ": "
                  + "  ".join(f"{n}w {v:,.0f}" for n, v in got.items()), flush=True)
    base = counts[0]
    rows: list[dict[str, Any]] = []
    print(f"\nPostgreSQL steps per second with N worker processes ({args.instances} instances "
          f"each, linear10), median of {args.rounds} rounds; scaling vs {base} worker")
    for n in counts:
        scaling = statistics.median(a / b for a, b in zip(figures[n], figures[base],
                                                            strict=True))
        median = statistics.median(figures[n])
        rows.append({"workers": n, "steps_per_s_median": round(median, 1),
                     "scaling_vs_1": round(scaling, 2),
                     "steps_per_s_rounds": [round(v, 1) for v in figures[n]]})
        print(f"{n} worker(s) {median:10,.0f} steps/s   scaling {scaling:5.2f}")
    result = {"benchmark": "bench.workers", "params": {"rounds": args.rounds,
                                                       "instances": args.instances,
                                                       "workers": counts},
              "machine": machine_info(), "rows": rows,
              "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
