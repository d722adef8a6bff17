"""A crash right after a step's commit: a real process answers an idempotent request and dies
(os._exit) as soon as the engine's step returns, before any answer leaves it. The answer was
stored in the step's own transaction, so the retry against a real server gets that answer
back and the step is applied once. The atomicity itself is tested on both databases in
tests/engine/test_along.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO
from tests.service._server import LIFEVANTAGE, running

CRASH = textwrap.dedent("""
    import os, sys
    from nextmove import open_engine
    from service import _tables
    from service.idempotency import fingerprint, once
    from service.roles import Principal, Role

    engine = open_engine(sys.argv[1])
    _tables.prepare(engine.store)
    instance_id = int(sys.argv[2])
    body = {"step": "add_contact", "data": {}, "used": None}  # CompleteRequest's dump

    def work(along):
        engine.complete(instance_id, "add_contact", {}, actor="d1", along=along)
        os._exit(17)  # dies right after the step committed, before answering

    once(engine, Principal("d1", Role.DISTRIBUTOR, 1), "k-crash",
         fingerprint("complete", instance_id, body), work)
""")


def _die(script: str, db: str, instance_id: int) -> None:
    """Run `script` in a process of its own, which must end by dying (exit 17)."""
    died = subprocess.run([sys.executable, "-c", script, db, str(instance_id)], timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
    assert died.returncode == 17, died.stderr.decode()[-2000:]


def test_a_retry_after_a_crash_right_after_the_commit_gets_the_first_answer(
        tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'n.db'}"
    with running(db) as run:
        first = run.engine.start("prospect_journey", "p-crash", "d1", {}, new=True).id
    assert LIFEVANTAGE.is_dir()
    _die(CRASH, db, first)
    with running(db, deploy=False) as run:
        d1 = run.client("distributor")
        retry = d1.post(f"/instances/{first}/complete", json={"step": "add_contact"},
                        headers={"Idempotency-Key": "k-crash"})
        assert retry.status_code == 200, retry.text
        assert retry.headers["idempotent-replayed"] == "true"
        answer = retry.json()
        now = run.engine.show(first).instance
        assert answer["id"] == first and answer["version"] == now.version
        assert "add_contact" not in [w["step_id"] for w in answer["waiting"]]
        again = d1.post(f"/instances/{first}/complete", json={"step": "add_contact"},
                        headers={"Idempotency-Key": "k-crash"})
        assert again.status_code == 200 and again.text == retry.text
        done = [e for e in run.engine.history(first)
                if e.kind == "completed" and e.step_id == "add_contact"]
        assert len(done) == 1  # applied once, by the process that died


def test_a_crash_before_the_commit_leaves_nothing_and_the_retry_acts(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'n.db'}"
    with running(db) as run:
        first = run.engine.start("prospect_journey", "p-early", "d1", {}, new=True).id
    step = 'engine.complete(instance_id, "add_contact", {}, actor="d1", along=along)'
    assert step in CRASH
    early = CRASH.replace(step, "pass")  # dies before the step
    _die(early, db, first)
    with running(db, deploy=False) as run:
        d1 = run.client("distributor")
        retry = d1.post(f"/instances/{first}/complete", json={"step": "add_contact"},
                        headers={"Idempotency-Key": "k-crash"})
        assert retry.status_code == 200, retry.text
        assert "idempotent-replayed" not in retry.headers
        assert "add_contact" not in [w["step_id"] for w in retry.json()["waiting"]]
