"""Worker processes for tests/engine/test_durability.py (run as separate OS processes).

    python tests/engine/_workers.py race URL NAME          complete every step of every instance
    python tests/engine/_workers.py advance URL PAUSE      walk instances round-robin until killed
    python tests/engine/_workers.py start URL MAP N STEPS  deploy, start N instances, do STEPS each
    python tests/engine/_workers.py finish URL             complete every active instance

Each prints one line per event on stdout (flushed) and a final JSON line.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime

from engine import Engine, ManualClock, StepNotWaiting, VersionConflict
from nextmove import open_store

LINEAR_STEPS = [
    "add_contact", "send_invite", "share_video", "follow_up", "answer_questions",
    "share_testimonial", "income_disclosure", "present_offer", "handle_objections", "close_sale",
]


def _engine(url: str) -> Engine:
    return Engine(open_store(url), clock=ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC)))


def _say(*parts: object) -> None:
    print(*parts, flush=True)


def race(url: str, name: str) -> None:
    """Try every step of every instance once, in map order; count wins and losses."""
    engine = _engine(url)
    ids = sorted(i.id for i in engine.list_instances(process_id="prospect_linear", limit=100_000))
    _say("ready", len(ids))
    sys.stdin.readline()  # the test releases every worker at once
    counts: Counter[str] = Counter()
    errors: list[str] = []
    for instance_id in ids:
        for step in LINEAR_STEPS:
            try:
                engine.complete(instance_id, step, {"by": name}, actor=name)
                counts["won"] += 1
            except VersionConflict:
                counts["conflict"] += 1
            except StepNotWaiting:
                counts["not_waiting"] += 1
            except Exception as exc:  # reported to the test, which fails on any
                counts["other"] += 1
                errors.append(f"{instance_id}/{step}: {type(exc).__name__}: {exc}")
    _say(json.dumps({"name": name, **counts, "errors": errors[:5]}))


def advance(url: str, pause_at: int) -> None:
    """Move every active instance one step per round until none is left (or we are killed).

    After `pause_at` steps it waits on stdin, so a test that kills it after reading fewer lines
    always finds it still running, however slowly the test itself was scheduled.
    """
    engine = _engine(url)
    done = 0
    while True:
        active = engine.list_instances(process_id="prospect_linear", status="active",
                                       limit=100_000)
        if not active:
            break
        for instance in active:
            step = instance.waiting_steps[0]
            after = engine.complete(instance.id, step, {"note": f"{step} " * 20}, actor="crashy")
            done += 1
            _say("step", instance.id, step, after.version, done)
            if done == pause_at:
                sys.stdin.readline()
    _say(json.dumps({"done": done}))


def start(url: str, path: str, count: int, steps: int) -> None:
    engine = _engine(url)
    engine.deploy([path])
    ids = []
    for number in range(count):
        instance = engine.start("prospect_linear", f"restart-{number}", "d1", {"n": number})
        for step in LINEAR_STEPS[:steps]:
            instance = engine.complete(instance.id, step, actor="first-process")
        ids.append(instance.id)
    _say(json.dumps({"ids": ids}))


def finish(url: str) -> None:
    engine = _engine(url)
    finished = []
    for instance in engine.list_instances(status="active", limit=100_000):
        while instance.status == "active":
            instance = engine.complete(instance.id, instance.waiting_steps[0],
                                       actor="second-process")
        finished.append(instance.id)
    _say(json.dumps({"finished": sorted(finished)}))


def main(argv: list[str]) -> None:
    command, url, *rest = argv
    if command == "race":
        race(url, rest[0])
    elif command == "advance":
        advance(url, int(rest[0]))
    elif command == "start":
        start(url, rest[0], int(rest[1]), int(rest[2]))
    elif command == "finish":
        finish(url)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
