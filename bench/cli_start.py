"""How fast the command line starts: `nextmove --help` and `nextmove cards` against
`python -c "import sqlalchemy"`, each a fresh interpreter, measured in the same run.

    python -m bench.cli_start [--rounds 9] [--json PATH]

The commands run round-robin (one of each per round, so a busy moment hits them all) as
`python -m cli ...` from the repository, on a small SQLite database made first (the
LifeVantage maps and 20 prospects, 10 of them for the distributor asked about; `cards` reads
it read-only with sqlite3, the "(info)" row the same cards through `open_engine`). Printed per
command: the median and minimum wall time over the rounds, the ratio of the medians to the
baseline's, the median of the per-round ratios, and the median CPU time of the child (user +
system) with its ratio to the baseline's (on a busy machine wall time is mostly waiting).
The "floor" rows are what a typer command pays before its own code runs, over SQLAlchemy or
(`cards` on SQLite) over sqlite3: typer 0.29 converts option values with pydantic, so every
command that takes an option imports it. The goal (issue 22) is under 0.35 s on the
reference machine for `--help` and `cards`; the ratio is what carries to another machine: the
goal is met when `ratio × baseline median` is under 0.35 s on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import BENCH, write_result

ROOT = BENCH.parent
GOAL_SECONDS = 0.35


def commands(db: str) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "python -c pass": [python, "-c", "pass"],
        "python -c 'import sqlalchemy' (baseline)": [python, "-c", "import sqlalchemy"],
        # What any typer command over SQLAlchemy on SQLite loads before doing anything: typer
        # converts option values with pydantic, and prints with rich.
        "floor: sqlalchemy+sqlite, typer+pydantic, rich": [
            python, "-c", "import sqlalchemy, sqlalchemy.dialects.sqlite, typer._adapters, "
            "rich.table"],
        # What `cards` on SQLite pays before its own code: typer with its pydantic coercion
        # and rich, no SQLAlchemy (it reads with sqlite3).
        "floor: typer+pydantic, rich, sqlite3": [
            python, "-c", "import sqlite3, typer._adapters, rich.table"],
        "nextmove --help": [python, "-m", "cli", "--help"],
        "nextmove --version": [python, "-m", "cli", "--version"],
        "nextmove cards -d d1": [python, "-m", "cli", "cards", "-d", "d1", "--db", db],
        "nextmove cards -d d1 --json": [python, "-m", "cli", "cards", "-d", "d1", "--db", db,
                                        "--json"],
        # The same cards the normal way in (an SQLite URL with an option is not read
        # read-only): nextmove.open_engine, SQLAlchemy and the SQLModel tables.
        "(info) cards -d d1 through open_engine": [
            python, "-m", "cli", "cards", "-d", "d1", "--db", f"sqlite:///{db}?timeout=30"],
    }


BASELINE = "python -c 'import sqlalchemy' (baseline)"


def prepare(db: str) -> None:
    """The LifeVantage maps and 20 prospects, 10 of them d1's."""
    from nextmove import open_engine

    engine = open_engine(db, recommend=True)
    engine.deploy([ROOT / "processes" / "lifevantage"])
    for n in range(20):
        engine.start("prospect_journey", f"p{n}", f"d{n % 2 + 1}", {"market": "US"})
    engine.store.dispose()


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and the child's CPU seconds (user + system, from `wait4`) of one run."""
    began = time.perf_counter()
    child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, argv)
    return wall, usage.ru_utime + usage.ru_stime


def run(rounds: int, db: str) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    # Bytecode caches are written (an installed nextmove has them: pip compiles on install);
    # with PYTHONDONTWRITEBYTECODE set, every run would compile each changed module anew.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    todo = commands(db)
    times: dict[str, list[float]] = {name: [] for name in todo}
    cpu: dict[str, list[float]] = {name: [] for name in todo}
    for argv in todo.values():  # a warm-up: reads the files from disk, writes the caches
        timed(argv, env)
    for _ in range(rounds):
        for name, argv in todo.items():
            wall, used = timed(argv, env)
            times[name].append(wall)
            cpu[name].append(used)
    return times, cpu


def report(times: dict[str, list[float]], cpu: dict[str, list[float]]) -> dict[str, Any]:
    """Wall time, and CPU time (what a busy machine leaves comparable: wall time then is
    mostly waiting for a CPU), each as a ratio to the baseline's median."""
    base, base_cpu = times[BASELINE], statistics.median(cpu[BASELINE])
    rows = {}
    for name, seconds in times.items():
        per_round = [a / b for a, b in zip(seconds, base, strict=True)]
        rows[name] = {"median_s": round(statistics.median(seconds), 4),
                      "min_s": round(min(seconds), 4),
                      "ratio": round(statistics.median(seconds) / statistics.median(base), 3),
                      "ratio_per_round_median": round(statistics.median(per_round), 3),
                      "cpu_median_s": round(statistics.median(cpu[name]), 4),
                      "cpu_ratio": round(statistics.median(cpu[name]) / base_cpu, 3),
                      "rounds_s": [round(s, 4) for s in seconds],
                      "rounds_cpu_s": [round(s, 4) for s in cpu[name]]}
    width = max(len(n) for n in rows)
    print(f"{'':{width}} {'median s':>9} {'min s':>7} {'ratio':>6} {'per round':>10} "
          f"{'CPU s':>7} {'CPU ratio':>10}")
    for name, row in rows.items():
        print(f"{name:{width}} {row['median_s']:9.3f} {row['min_s']:7.3f} {row['ratio']:6.2f} "
              f"{row['ratio_per_round_median']:10.2f} {row['cpu_median_s']:7.3f} "
              f"{row['cpu_ratio']:10.2f}")
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"load average now {load}; goal: --help and cards under {GOAL_SECONDS} s "
          f"(ratio × baseline median on an idle machine)")
    return {"rows": rows, "baseline": BASELINE, "goal_s": GOAL_SECONDS, "load_average": load}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_start",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        db = str(Path(folder) / "start.db")
        prepare(db)
        result = report(*run(args.rounds, db))
    if args.json:
        write_result(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
