"""Several OS processes on one database, a worker killed with SIGKILL, and restarts.

Every test runs on a SQLite file and on PostgreSQL. The workers are separate Python processes
(tests/engine/_workers.py) so they share nothing but the database, as in production.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text

from engine import Engine, ManualClock, load_definitions
from engine.definitions import build_spec
from engine.runtime.state import load_state
from engine.store.database import Store
from nextmove import open_store

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORKERS = HERE / "_workers.py"
LINEAR = HERE.parent / "fixtures" / "bpmn" / "linear10.bpmn"
LINEAR_STEPS = [
    "add_contact", "send_invite", "share_video", "follow_up", "answer_questions",
    "share_testimonial", "income_disclosure", "present_offer", "handle_objections", "close_sale",
]

pytestmark = pytest.mark.slow


def worker(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(WORKERS), *args], cwd=REPO, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def next_line(proc: subprocess.Popen[str]) -> str:
    """The worker's next line; if it died instead, fail with what it wrote to stderr."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError(f"worker died: {proc.communicate()[1]}")
    return line


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.store.read() as conn:
        return list(conn.execute(text(sql), params))


def completed_user_steps(engine: Engine) -> Counter[tuple[int, str]]:
    found = rows(engine, "SELECT instance_id, step_id FROM step_event WHERE kind = 'completed'")
    return Counter((r.instance_id, r.step_id) for r in found if r.step_id in LINEAR_STEPS)


def test_racing_workers_apply_every_step_exactly_once(engine: Engine) -> None:
    instances, workers = 30, 4
    engine.deploy([LINEAR])
    ids = [engine.start("prospect_linear", f"p{n}", "d1").id for n in range(instances)]

    procs = [worker("race", engine.store.url, f"w{n}") for n in range(workers)]
    for proc in procs:
        assert next_line(proc).split() == ["ready", str(instances)]
    for proc in procs:  # release them together so they fight over the same steps
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reports = [finish(proc) for proc in procs]

    attempts = instances * len(LINEAR_STEPS)
    assert [r["errors"] for r in reports] == [[]] * workers
    assert sum(r.get("other", 0) for r in reports) == 0
    assert sum(r.get("won", 0) for r in reports) == attempts
    losers = sum(r.get("conflict", 0) + r.get("not_waiting", 0) for r in reports)
    assert losers == (workers - 1) * attempts  # every worker tried every step once

    # The log agrees: each step of each instance completed exactly once, by the winner.
    assert completed_user_steps(engine) == Counter(
        {(i, s): 1 for i in ids for s in LINEAR_STEPS})
    entered = rows(engine, "SELECT instance_id, step_id, count(*) AS n FROM step_event "
                           "WHERE kind = 'entered' GROUP BY instance_id, step_id")
    assert {(r.instance_id, r.step_id): r.n for r in entered} == {
        (i, s): 1 for i in ids for s in LINEAR_STEPS}
    by_actor = Counter(r.actor for r in rows(
        engine, "SELECT actor FROM step_event WHERE kind = 'completed' AND actor IS NOT NULL"))
    assert by_actor == Counter({r["name"]: r.get("won", 0) for r in reports if r.get("won")})
    for instance_id in ids:
        instance = engine.get(instance_id)
        assert (instance.status, instance.version, instance.waiting) == (
            "completed", 1 + len(LINEAR_STEPS), ())
        history = engine.history(instance_id)
        assert [e.step_id for e in history if e.kind == "completed"] == [
            "start", *LINEAR_STEPS, "end"]
        done = [e for e in history if e.kind == "completed" and e.step_id in LINEAR_STEPS]
        assert all(e.data == {"by": e.actor} for e in done)  # data and actor from one winner


def test_a_killed_worker_leaves_every_instance_consistent(
    engine: Engine, clock: ManualClock
) -> None:
    instances = 20
    engine.deploy([LINEAR])
    for n in range(instances):
        engine.start("prospect_linear", f"p{n}", "d1")
    proc = worker("advance", engine.store.url, "120")
    reported = 0
    while reported < 60:  # let it commit a good number of steps, then kill it mid-run
        assert next_line(proc).startswith("step ")
        reported += 1
    proc.kill()  # SIGKILL: no cleanup, maybe in the middle of a transaction
    proc.communicate()
    assert proc.returncode == -9

    fresh = Engine(open_store(engine.store.url), clock=clock)  # a new process would start from here
    try:
        (definition,) = load_definitions([LINEAR])
        spec, subprocess_specs = build_spec(definition.process_id, definition.documents)
        stored = rows(fresh, "SELECT id, version, status, waiting, state FROM instance")
        assert len(stored) == instances
        completed = completed_user_steps(fresh)
        assert max(completed.values()) == 1
        total_done = 0
        for row in stored:
            workflow = load_state(row.state, spec, subprocess_specs)
            ready = [(t.task_spec.bpmn_id, str(t.id))
                     for t in workflow.get_tasks(state=TaskState.READY, manual=True)]
            waiting = [(w["step_id"], w["task_id"]) for w in json.loads(row.waiting)]
            assert waiting == ready, f"instance {row.id}: index disagrees with state"
            done_in_state = sorted(t.task_spec.bpmn_id for t in workflow.get_tasks(
                state=TaskState.COMPLETED, manual=True))
            done_in_log = sorted(s for (i, s), _ in completed.items() if i == row.id)
            assert done_in_state == done_in_log, f"instance {row.id}: log disagrees with state"
            assert row.version == 1 + len(done_in_log)
            assert done_in_log == sorted(LINEAR_STEPS[:len(done_in_log)])
            total_done += len(done_in_log)
        assert reported <= total_done <= 120  # it pauses after 120 steps
        if fresh.store.is_sqlite:
            assert [r[0] for r in rows(fresh, "PRAGMA integrity_check")] == ["ok"]

        for row in stored:
            instance = fresh.get(row.id)
            while instance.status == "active":
                instance = fresh.complete(instance.id, instance.waiting_steps[0])
            assert instance.version == 1 + len(LINEAR_STEPS)
        assert completed_user_steps(fresh) == Counter(
            {(r.id, s): 1 for r in stored for s in LINEAR_STEPS})
    finally:
        fresh.store.dispose()


def test_instances_started_in_one_process_finish_in_another(engine: Engine) -> None:
    first = finish(worker("start", engine.store.url, str(LINEAR), "10", "3"))
    second = finish(worker("finish", engine.store.url))

    assert second["finished"] == sorted(first["ids"])
    for instance_id in first["ids"]:
        instance = engine.get(instance_id)
        assert (instance.status, instance.version) == ("completed", 1 + len(LINEAR_STEPS))
        done = [(e.step_id, e.actor) for e in engine.history(instance_id)
                if e.kind == "completed" and e.step_id in LINEAR_STEPS]
        assert done == [(s, "first-process") for s in LINEAR_STEPS[:3]] + [
            (s, "second-process") for s in LINEAR_STEPS[3:]]


def test_an_existing_database_gets_indexes_added_in_a_later_release(db_url: str) -> None:
    """An index that is new in this release is created on a database made before it, with its
    rows intact (create_all alone only indexes tables it creates)."""
    store = open_store(db_url)
    with store.write() as conn:
        conn.exec_driver_sql("DROP INDEX ix_step_event_visit")
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_step_event_visit_ms")  # SQLite's
    store.dispose()
    reopened = open_store(db_url)
    names = {ix["name"] for ix in sa_inspect(reopened.engine).get_indexes("step_event")}
    reopened.dispose()
    assert "ix_step_event_visit" in names


def test_an_index_a_later_one_replaced_is_dropped_when_the_database_is_opened(
        db_url: str) -> None:
    """A database made before `ix_instance_process_status_person` has the narrower
    `ix_instance_process_status` instead: opened, it gets the new one and loses the old."""
    store = open_store(db_url)
    with store.write() as conn:
        conn.exec_driver_sql("DROP INDEX ix_instance_process_status_person")
        conn.exec_driver_sql(
            "CREATE INDEX ix_instance_process_status ON instance (process_id, status)")
    store.dispose()
    reopened = Store(db_url)
    prepared = reopened.prepare()
    names = {ix["name"] for ix in sa_inspect(reopened.engine).get_indexes("instance")}
    reopened.dispose()
    assert "ix_instance_process_status_person" in names
    assert "ix_instance_process_status" not in names
    assert prepared.indexes == ("ix_instance_process_status_person",)
    assert prepared.dropped == ("ix_instance_process_status",)
    assert not prepared.upgraded  # dropped on any open, not only on a schema upgrade
    again = open_store(db_url)  # nothing left to do
    assert (again.prepare().indexes, again.prepare().dropped) == ((), ())
    again.dispose()
