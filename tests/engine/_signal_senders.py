"""A sender process for tests/engine/test_held_processes.py (run as a separate OS process).

    python tests/engine/_signal_senders.py URL PROSPECT MESSAGE ID N

Prints "ready", waits for a line on stdin (the test releases every sender at once), sends
the same event N times and prints a JSON object counting the answers (delivered, held,
duplicate) and any errors.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime

from engine import ManualClock
from nextmove import open_engine


def main(url: str, prospect: str, message: str, message_id: str, sends: int) -> None:
    engine = open_engine(url, clock=ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC)),
                         recommend=False)
    print("ready", flush=True)
    sys.stdin.readline()
    answers: Counter[str] = Counter()
    errors: list[str] = []
    for _ in range(sends):
        try:
            answers[engine.signal(message, prospect, message_id=message_id).status] += 1
        except Exception as exc:  # reported to the test, which fails on any
            errors.append(f"{type(exc).__name__}: {exc}")
    engine.store.dispose()
    print(json.dumps({**answers, "errors": errors[:5]}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
