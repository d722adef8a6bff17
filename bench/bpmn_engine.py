"""nextmove's persisted steps against the npm `bpmn-engine` round-tripping its state in memory.

    python -m bench.bpmn_engine [--rounds 5] [--instances 100] [--json PATH] [--no-postgres]

The same map (bench/maps/linear10.bpmn) and the same walk (instances stepped round-robin).
bpmn-engine side (bench/node/bpmn_engine_steps.mjs, run with the machine's node): every step
recovers the instance from its JSON state, resumes it, signals the user task, takes
getState() and serializes it — in memory, nothing written. nextmove side: `Engine.complete()`
persisting every step (state, events, waiting index, version) in a database. Rounds alternate
between the two so machine noise hits both. Goal: nextmove >= 5x bpmn-engine's steps/s.

bpmn-engine is installed into bench/node with `npm install --prefix bench/node` (the lock file
is committed); the rows are skipped with a message when node or the package is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from bench._common import (
    BENCH,
    MAPS,
    RESULTS,
    Row,
    machine_info,
    postgres_problem,
    ratio,
    scratch_postgres,
    write_result,
)
from bench.steps import Fixture, NextmoveRun

NODE_DIR = BENCH / "node"
SCRIPT = NODE_DIR / "bpmn_engine_steps.mjs"
MAP = MAPS / "linear10.bpmn"
GOAL = 5.0


def node_problem() -> str | None:
    """None when node and the installed bpmn-engine are there, else why not."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "bpmn-engine").is_dir():
        return ("bpmn-engine is not installed: run `npm install --prefix bench/node` "
                "(needs node and npm)")
    return None


def node_round(instances: int) -> dict[str, Any]:
    """One bpmn-engine round in a fresh node process; its own timer covers the steps only."""
    done = subprocess.run(["node", str(SCRIPT), str(MAP), str(instances)], cwd=NODE_DIR,
                          capture_output=True, text=True, check=True, timeout=3600)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["completed"] != instances:
        raise RuntimeError(f"bpmn-engine finished {result['completed']} of {instances} "
                           "instances: the benchmark is broken")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bpmn_engine",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--json", type=Path, default=RESULTS / "bpmn_engine.json")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)

    info = machine_info()
    problem = node_problem()
    if problem is not None:
        print(f"bpmn-engine comparison skipped: {problem}")
        _write(args.json, {"benchmark": "bench.bpmn_engine", "skipped": problem,
                           "machine": info})
        return 0
    info["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True,
                                  check=True).stdout.strip()
    fx = Fixture(MAP)
    baseline = Row("bpmn-engine, in-memory getState/recover per step", note="node")
    rows = [baseline]
    runs: list[NextmoveRun] = []
    details: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="nextmove-bench-") as tmp:
        rows.append(Row("nextmove SQLite hot, persisted", note="WAL, synchronous=NORMAL"))
        runs.append(NextmoveRun(fx, f"sqlite:///{Path(tmp) / 'b.db'}", True, "sqlite"))
        pg_skip = "disabled with --no-postgres" if args.no_postgres else postgres_problem()
        with scratch_postgres() if pg_skip is None else nullcontext() as pg_url:
            if pg_url is not None:
                rows.append(Row("nextmove PostgreSQL hot, persisted", note="127.0.0.1"))
                runs.append(NextmoveRun(fx, pg_url, True, "pg"))
            try:
                for r in range(args.rounds + 1):  # the first round warms up
                    node = node_round(args.instances)
                    figures = [node["steps"] / node["seconds"]]
                    for run in runs:
                        run.prepare(args.instances)
                        elapsed = sum(run.step_pass(step)[0] for step in fx.steps)
                        run.finish()
                        figures.append(args.instances * len(fx.steps) / elapsed)
                    if r > 0:
                        for row, value in zip(rows, figures, strict=True):
                            row.rounds.append(value)
                    details = {k: node[k] for k in ("version", "node", "state_bytes_last")}
                    print(("warm-up" if r == 0 else f"round {r}/{args.rounds}") + ": "
                          + "  ".join(f"{v:,.0f}" for v in figures), file=sys.stderr, flush=True)
            finally:
                for run in runs:
                    run.close()
    print(f"\nsteps per second, {args.instances} instances x {len(fx.steps)} steps round-robin, "
          f"median of {args.rounds} rounds; ratio = steps/s / bpmn-engine's")
    print(_table(rows, baseline))
    verdict = all(ratio(r, baseline) >= GOAL for r in rows[1:])
    print(f"goal (nextmove >= {GOAL:g}x bpmn-engine): {'met' if verdict else 'NOT met'}")
    _write(args.json, {
        "benchmark": "bench.bpmn_engine", "params": vars(args) | {"json": str(args.json)},
        "machine": info, "bpmn_engine": details, "baseline": baseline.name,
        "goal": {"ratio_at_least": GOAL, "met": verdict}, "postgres_skipped": pg_skip,
        "rows": [{"name": r.name, "steps_per_s_median": round(r.median, 1),
                  "ratio_vs_bpmn_engine": round(ratio(r, baseline), 2),
                  "steps_per_s_rounds": [round(v, 1) for v in r.rounds], "note": r.note}
                 for r in rows],
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    return 0


def _table(rows: list[Row], baseline: Row) -> str:
    return "\n".join(f"{r.name:52} {r.median:10,.0f} steps/s {1e6 / r.median:9.0f} µs/step  "
                     f"ratio {ratio(r, baseline):6.2f}" for r in rows)


def _write(path: Path, result: dict[str, Any]) -> None:
    write_result(path, result)


if __name__ == "__main__":
    raise SystemExit(main())
