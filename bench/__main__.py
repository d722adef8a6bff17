"""The whole benchmark suite, one benchmark after another, each in its own process.

    python -m bench [--quick] [--only steps,cards,...] [--build] [--json PATH]

Each benchmark prints its own table (medians of several rounds, ratios against a baseline
measured in the same run) and writes its JSON under bench/results/; this runner adds the
load average before and after each one and collects everything into bench/results/suite.json.
--quick runs every benchmark smaller (minutes instead of an hour; the cards and analytics
benchmarks then use a 50,000-instance database). --build lets the cards and analytics
benchmarks build the million-instance database when it is not cached yet (slow).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import BENCH, RESULTS, machine_info

ROOT = BENCH.parent
# name -> (full arguments, --quick arguments); a benchmark writes RESULTS/<name>.json
SUITE: dict[str, tuple[list[str], list[str]]] = {
    "steps": (["--rounds", "5", "--instances", "200"],
              ["--rounds", "3", "--instances", "50"]),
    "bpmn_engine": (["--rounds", "5", "--instances", "100"],
                    ["--rounds", "2", "--instances", "20"]),
    "starts": (["--rounds", "5", "--instances", "1000", "--batch", "500"],
               ["--rounds", "2", "--instances", "200", "--batch", "100"]),
    "cards": ([], ["--instances", "50000", "--distributors", "500", "--samples", "100",
                   "--build"]),
    "storage": (["--instances", "2000"], ["--instances", "300"]),
    "workers": (["--rounds", "3", "--instances", "50"], ["--rounds", "1", "--instances", "10"]),
    "learn": ([], ["--events", "100000", "--rounds", "1", "--n-boot", "50"]),
    "refresh": ([], ["--decisions", "30000", "--rounds", "1"]),
    "analytics": ([], ["--instances", "50000", "--distributors", "500", "--rounds", "1"]),
    "cli_start": (["--rounds", "9"], ["--rounds", "5"]),
    "api": ([], ["--instances", "160", "--cards-instances", "20000", "--distributors", "500",
                 "--samples", "100"]),
}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs of everything")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(SUITE)}")
    parser.add_argument("--build", action="store_true",
                        help="build the million-instance database if it is not cached")
    parser.add_argument("--json", type=Path, default=RESULTS / "suite.json")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(SUITE)
    unknown = [n for n in names if n not in SUITE]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; one of {', '.join(SUITE)}")

    suite: dict[str, Any] = {"quick": args.quick, "machine": machine_info(),
                             "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "results": {}}
    for name in names:
        module = BENCH / f"{name}.py"
        if not module.exists():
            print(f"\n== {name}: skipped (bench/{name}.py is not there)")
            suite["results"][name] = {"skipped": "module missing"}
            continue
        full, quick = SUITE[name]
        extra = list(quick if args.quick else full)
        if args.build and name == "cards" and "--build" not in extra:
            extra.append("--build")
        out = RESULTS / f"{name}.json"
        out.unlink(missing_ok=True)
        command = [sys.executable, "-m", f"bench.{name}", *extra, "--json", str(out)]
        print(f"\n== {name}: {' '.join(['python', *command[1:]])}", flush=True)
        before, began = load(), time.perf_counter()
        code = subprocess.run(command, cwd=ROOT, check=False).returncode
        entry: dict[str, Any] = {"command": " ".join(["python", *command[1:]]),
                                 "exit_code": code, "load_before": before,
                                 "load_after": load(),
                                 "seconds": round(time.perf_counter() - began, 1)}
        if out.exists():
            entry["result"] = json.loads(out.read_text(encoding="utf-8"))
        else:
            entry["skipped"] = "no result written (see its output)"
        suite["results"][name] = entry
        print(f"== {name}: exit {code}, {entry['seconds']}s, load average "
              f"{before} -> {entry['load_after']}", flush=True)
    suite["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(suite, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.json}")
    failed = [n for n, e in suite["results"].items() if e.get("exit_code", 0) != 0]
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
