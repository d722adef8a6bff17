"""How fast the command line starts: `nextmove --help` and `nextmove cards` against
`python -c "import sqlalchemy"`, each a fresh interpreter, measured in the same run.

    python -m bench.cli_start [--rounds 9] [--json PATH]

The commands run round-robin (one of each per round, so a busy moment hits them all) as
`python -m cli ...` from the repository, on a small SQLite database made first (the
LifeVantage maps and 20 prospects, 10 of them for the distributor asked about). Printed per
command: the median and minimum wall time over the rounds, the ratio of the medians to the
baseline's, and the median of the per-round ratios. The "floor" row is what any typer command
over SQLAlchemy pays before its own code runs (typer 0.29 converts option values with
pydantic, so every command that takes an option imports it). The goal (issue 22) is under 0.35 s on
the reference machine for `--help` and `cards`; the ratio is what carries to another machine:
the goal is met when `ratio × baseline median` is under 0.35 s on an idle machine.
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
        "nextmove --help": [python, "-m", "cli", "--help"],
        "nextmove --version": [python, "-m", "cli", "--version"],
        "nextmove cards -d d1": [python, "-m", "cli", "cards", "-d", "d1", "--db", db],
        "nextmove cards -d d1 --json": [python, "-m", "cli", "cards", "-d", "d1", "--db", db,
                                        "--json"],
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


def run(rounds: int, db: str) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    # Bytecode caches are written (an installed nextmove has them: pip compiles on install);
    # with PYTHONDONTWRITEBYTECODE set, every run would compile each changed module anew.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    todo = commands(db)
    times: dict[str, list[float]] = {name: [] for name in todo}
    for argv in todo.values():  # a warm-up: reads the files from disk, writes the caches
        subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=True)
    for _ in range(rounds):
        for name, argv in todo.items():
            began = time.perf_counter()
            subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=True)
            times[name].append(time.perf_counter() - began)
    return times


def report(times: dict[str, list[float]]) -> dict[str, Any]:
    base = times[BASELINE]
    rows = {}
    for name, seconds in times.items():
        per_round = [a / b for a, b in zip(seconds, base, strict=True)]
        rows[name] = {"median_s": round(statistics.median(seconds), 4),
                      "min_s": round(min(seconds), 4),
                      "ratio": round(statistics.median(seconds) / statistics.median(base), 3),
                      "ratio_per_round_median": round(statistics.median(per_round), 3),
                      "rounds_s": [round(s, 4) for s in seconds]}
    width = max(len(n) for n in rows)
    print(f"{'':{width}} {'median s':>9} {'min s':>7} {'ratio':>6} {'per round':>10}")
    for name, row in rows.items():
        print(f"{name:{width}} {row['median_s']:9.3f} {row['min_s']:7.3f} {row['ratio']:6.2f} "
              f"{row['ratio_per_round_median']:10.2f}")
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
        result = report(run(args.rounds, db))
    if args.json:
        write_result(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
