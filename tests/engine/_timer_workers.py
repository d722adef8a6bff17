"""One timer worker as its own OS process, for the multi-process tests in test_workers.py.

    python tests/engine/_timer_workers.py URL NOW --name W [--lease SECONDS] [--batch N] [--go]

Builds `Engine(open_store(URL), clock=ManualClock(NOW), lease=...)` and calls `fire_due` until a
fires nothing (everything is fired or leased by someone else). It prints, flushed, one line
per event so the parent can act on them without sleeping:

    ready W                 engine built; with --go it now waits for a line on stdin
    claimed W               holds leases on a batch and has fired none of it yet
    progress W <total>      a batch is fired; <total> fired so far by this worker
    done W <total>          nothing left for it
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

from engine import Engine, ManualClock  # noqa: E402
from engine.clock import parse_instant  # noqa: E402
from nextmove import open_store


def say(*words: object) -> None:
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("now", help="the worker's fixed engine time (ISO 8601)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--lease", type=float, default=600.0, help="seconds of engine time")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--go", action="store_true", help="start when stdin says so")
    args = parser.parse_args(argv)

    engine = Engine(open_store(args.url), clock=ManualClock(parse_instant(args.now)),
                    lease=timedelta(seconds=args.lease))
    total = 0
    announced: list[bool] = []

    def holding() -> bool:
        # fire_due asks before each instance, after its claim committed: the first question
        # of a batch is the moment this worker holds leases and has fired none of them.
        if not announced:
            announced.append(True)
            say("claimed", args.name)
        return False

    engine.definitions()  # connect before the start line, so workers start together
    say("ready", args.name)
    if args.go:
        sys.stdin.readline()
    try:
        while True:
            announced.clear()
            fired = engine.fire_due(args.batch, args.name, should_stop=holding)
            if not fired:
                break
            total += len(fired)
            say("progress", args.name, total)
    finally:
        engine.store.dispose()
    say("done", args.name, total)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
