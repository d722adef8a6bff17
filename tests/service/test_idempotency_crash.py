"""A crash between a step's commit and the storing of its idempotent answer: a real process
dies right after the step commits; a retry with the same key must not apply it again."""

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
    from service.idempotency import fingerprint, once
    from service.roles import Principal, Role

    engine = open_engine(sys.argv[1])
    instance_id = int(sys.argv[2])
    body = {"step": "add_contact", "data": {}, "used": None}  # CompleteRequest's dump

    def work():
        engine.complete(instance_id, "add_contact", {}, actor="d1")
        os._exit(17)  # dies after the step committed, before the answer is stored

    once(engine, Principal("d1", Role.DISTRIBUTOR, 1), "k-crash",
         fingerprint("complete", instance_id, body), work)
""")


def test_a_retry_after_a_crash_between_commit_and_answer_does_not_step_twice(
        tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'n.db'}"
    with running(db) as run:
        first = run.engine.start("prospect_journey", "p-crash", "d1", {}, new=True).id
    assert LIFEVANTAGE.is_dir()
    died = subprocess.run([sys.executable, "-c", CRASH, db, str(first)], timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
    assert died.returncode == 17, died.stderr.decode()[-2000:]
    with running(db, deploy=False) as run:
        d1 = run.client("distributor")
        retry = d1.post(f"/instances/{first}/complete", json={"step": "add_contact"},
                        headers={"Idempotency-Key": "k-crash"})
        assert retry.status_code == 409, retry.text
        assert retry.json()["type"].endswith("/conflict")
        assert "may have been applied" in retry.json()["detail"]
        again = d1.post(f"/instances/{first}/complete", json={"step": "add_contact"},
                        headers={"Idempotency-Key": "k-crash"})
        assert again.status_code == 409  # every retry: the claim stays
        done = [e for e in run.engine.history(first)
                if e.kind == "completed" and e.step_id == "add_contact"]
        assert len(done) == 1  # applied once, by the process that died
