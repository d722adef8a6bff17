"""Four OS processes send the same prospect event (one id) 300 times in all: exactly one
effect, and every other answer is "duplicate", never "held" or "unmatched". SQLite and
PostgreSQL (the threaded version is in test_held_events.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import Engine
from engine.store import MESSAGE_RECEIPT, STEP_EVENT
from tests.conftest import FIXTURES

HERE = Path(__file__).resolve().parent
SENDERS = HERE / "_signal_senders.py"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("waiting", [True, False], ids=["waiting", "nothing-waits"])
def test_four_processes_sending_one_id_get_one_effect_and_duplicates(
    engine: Engine, db_url: str, waiting: bool
) -> None:
    engine.deploy([FIXTURES / "events"])
    instance = engine.start("wait_for_form" if waiting else "video_follow_up", "p1", "d1")
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1])}
    procs = [subprocess.Popen(
        [sys.executable, str(SENDERS), db_url, "p1", "form_submitted", "evt-1", "75"],
        cwd=HERE.parents[1], env=env, text=True, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", \
            proc.communicate()[1]
    for proc in procs:  # release them all at once
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    answers: Counter[str] = Counter()
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        report = json.loads(out.strip().splitlines()[-1])
        assert report.pop("errors") == []
        answers.update(report)

    assert answers == Counter({"delivered" if waiting else "held": 1, "duplicate": 299})
    with engine.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(MESSAGE_RECEIPT)).scalar() == 1
        assert conn.execute(select(func.count()).where(
            STEP_EVENT.c.instance_id == instance.id, STEP_EVENT.c.kind == "message")
        ).scalar() == (1 if waiting else 0)
