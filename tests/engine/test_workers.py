"""Timer workers as real OS processes: sharing due timers through leases on PostgreSQL,
surviving `kill -9`, two workers on one SQLite file, and `nextmove worker` stopping cleanly.

Nothing here sleeps: the parent reads what the children print (with generous timeouts so a
broken child fails the test instead of hanging it), and engine time is a fixed ManualClock.
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import func, select

from engine import Engine, ManualClock
from engine.store import INSTANCE, STEP_EVENT
from engine.worker import run_worker
from nextmove import open_store
from tests.conftest import FIXTURES, REPO

REMINDER = FIXTURES / "events" / "reminder.bpmn"  # start → wait P2D → follow_up
HELPER = Path(__file__).with_name("_timer_workers.py")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=3)  # every reminder is due
LEASE = timedelta(minutes=5)
# Instances in the PostgreSQL crash test; creating them through the API costs ~10 ms each here.
PG_INSTANCES = int(os.environ.get("NEXTMOVE_TEST_WORKER_INSTANCES", "1000"))
DEADLINE = 240.0  # seconds: only reached when something is broken


class Children:
    """Child processes whose output lines arrive on one queue as (name, words).

    Their stderr goes to files, so a chatty child can never block on a full pipe.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.lines: queue.Queue[tuple[str, list[str]]] = queue.Queue()
        self.seen: list[tuple[str, list[str]]] = []

    def start(self, name: str, args: list[str], **kwargs: object) -> subprocess.Popen[str]:
        with open(self.folder / f"{name}.err", "w") as err:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, text=True, cwd=REPO,
                                    **kwargs)  # type: ignore[call-overload]
        self.procs[name] = proc
        threading.Thread(target=self._pump, args=(name, proc.stdout), daemon=True).start()
        return proc

    def _pump(self, name: str, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put((name, line.split()))
        self.lines.put((name, ["<eof>"]))

    def stderr(self, name: str) -> str:
        """What the child wrote to stderr; read it once the child has exited."""
        return (self.folder / f"{name}.err").read_text()

    def next(self, deadline: float) -> tuple[str, list[str]]:
        try:
            item = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"children went quiet; last lines: {self.seen[-10:]}") from None
        self.seen.append(item)
        return item

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    kids = Children(tmp_path)
    yield kids
    kids.stop_all()


def fill(url: str, count: int) -> list[int]:
    """`count` reminder instances started at T0 through the API (all due at T0 + 2 days)."""
    engine = Engine(open_store(url), clock=ManualClock(T0), hot_instances=0)
    try:
        engine.deploy([REMINDER])
        return [engine.start("reminder", f"p{k}", "d1").id for k in range(count)]
    finally:
        engine.store.dispose()


def start_workers(children: Children, url: str, names: list[str], batch: int) -> None:
    """Start the workers, wait until all are connected, then let them go at once."""
    for name in names:
        children.start(name, [sys.executable, str(HELPER), url, LATER.isoformat(),
                              "--name", name, "--batch", str(batch),
                              "--lease", str(LEASE.total_seconds()), "--go"])
    deadline = time.monotonic() + DEADLINE
    ready: set[str] = set()
    while ready != set(names):
        name, words = children.next(deadline)
        assert words[0] == "ready", (name, words, children.stderr(name))
        ready.add(name)
    for name in names:
        stdin = children.procs[name].stdin
        assert stdin is not None
        stdin.write("go\n")
        stdin.flush()


def timer_counts(engine: Engine) -> dict[int, int]:
    with engine.store.read() as conn:
        rows = conn.execute(
            select(STEP_EVENT.c.instance_id, func.count())
            .where(STEP_EVENT.c.kind == "timer").group_by(STEP_EVENT.c.instance_id)).all()
    return {int(i): int(n) for i, n in rows}


def assert_each_fired_once(engine: Engine, ids: list[int]) -> None:
    """Every timer fired exactly once and every instance moved exactly once."""
    assert timer_counts(engine) == dict.fromkeys(ids, 1)
    with engine.store.read() as conn:
        states = conn.execute(select(
            INSTANCE.c.version, INSTANCE.c.next_due_at, INSTANCE.c.lease_owner,
            func.count()).group_by(INSTANCE.c.version, INSTANCE.c.next_due_at,
                                   INSTANCE.c.lease_owner)).all()
        entered = conn.execute(
            select(func.count(), func.count(STEP_EVENT.c.instance_id.distinct()))
            .where(STEP_EVENT.c.step_id == "follow_up", STEP_EVENT.c.kind == "entered")).one()
    assert [tuple(s) for s in states] == [(2, None, None, len(ids))]
    assert tuple(entered) == (len(ids), len(ids))


# -- PostgreSQL: four workers, two of them killed mid-run ----------------------------------------


@pytest.mark.slow
@pytest.mark.postgres
def test_four_workers_fire_each_timer_once_though_two_are_killed(
    pg_url: str, children: Children
) -> None:
    ids = fill(pg_url, PG_INSTANCES)
    names = ["w1", "w2", "w3", "w4"]
    start_workers(children, pg_url, names, batch=25)

    deadline = time.monotonic() + DEADLINE
    progressed: set[str] = set()
    killed: list[str] = []
    totals: dict[str, int] = {}
    while len(totals) + len(killed) < len(names):
        name, words = children.next(deadline)
        if name in killed or words[0] == "<eof>":
            continue
        if words[0] == "progress":
            progressed.add(name)
        elif words[0] == "claimed" and name in progressed and len(killed) < 2:
            children.procs[name].send_signal(signal.SIGKILL)  # holding a fresh batch
            killed.append(name)
        elif words[0] == "done":
            totals[name] = int(words[2])
    for name in killed:
        assert children.procs[name].wait(timeout=30) == -signal.SIGKILL
    for name in totals:
        assert children.procs[name].wait(timeout=30) == 0
    assert len(killed) == 2 and all(totals.values()), (killed, totals)

    # What the dead left behind is leased to them, nothing else is due.
    sweeper = Engine(open_store(pg_url), clock=ManualClock(LATER))
    try:
        with sweeper.store.read() as conn:
            stranded = conn.execute(
                select(INSTANCE.c.lease_owner, func.count())
                .where(INSTANCE.c.next_due_at.is_not(None))
                .group_by(INSTANCE.c.lease_owner)).all()
        assert stranded and {owner for owner, _ in stranded} <= set(killed), stranded
        assert sweeper.tick(worker="sweeper") == []  # the leases still hold at LATER

        sweeper.clock.set(LATER + LEASE + timedelta(seconds=1))  # type: ignore[attr-defined]
        swept = sweeper.tick(worker="sweeper")
        assert len(swept) == sum(n for _, n in stranded)
        assert_each_fired_once(sweeper, ids)
    finally:
        sweeper.store.dispose()


# -- SQLite: two workers on one file ------------------------------------------------------------


@pytest.mark.slow
def test_two_workers_on_one_sqlite_file_fire_each_timer_once(
    tmp_path: Path, children: Children
) -> None:
    path = tmp_path / "shared.db"
    url = f"sqlite:///{path}"
    ids = fill(url, 200)
    start_workers(children, url, ["a", "b"], batch=20)

    deadline = time.monotonic() + DEADLINE
    totals: dict[str, int] = {}
    while len(totals) < 2:
        name, words = children.next(deadline)
        assert words[0] != "<eof>", (name, children.stderr(name))
        if words[0] == "done":
            totals[name] = int(words[2])
    assert all(children.procs[n].wait(timeout=30) == 0 for n in totals)
    assert sum(totals.values()) == len(ids)

    engine = Engine(open_store(url), clock=ManualClock(LATER))
    try:
        assert_each_fired_once(engine, ids)
    finally:
        engine.store.dispose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


# -- `nextmove worker` ------------------------------------------------------------------------


def worker_env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONUNBUFFERED", "NEXTMOVE_NOW")}  # the CLI must flush by itself
    env["NEXTMOVE_DB"] = str(db)
    return env


def past_due(db: Path, count: int) -> list[int]:
    """Reminders started in 2020: due by the wall clock `nextmove worker` runs on."""
    engine = Engine(open_store(str(db)), clock=ManualClock(datetime(2020, 1, 1, tzinfo=UTC)))
    try:
        engine.deploy([REMINDER])
        return [engine.start("reminder", f"p{k}", "d1").id for k in range(count)]
    finally:
        engine.store.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_nextmove_worker_logs_fired_timers_and_stops_on_a_signal(
    tmp_path: Path, children: Children, sig: signal.Signals
) -> None:
    db = tmp_path / "worker.db"
    (instance_id,) = past_due(db, 1)
    proc = children.start("cli", [sys.executable, "-m", "cli", "worker", "--poll", "0.2"],
                          env=worker_env(db))

    deadline = time.monotonic() + DEADLINE
    while True:
        _, words = children.next(deadline)
        assert words != ["<eof>"], children.stderr("cli")
        if "fired" in words:
            break
    line = " ".join(words)
    assert f"fired timer two_days instance {instance_id} (reminder, prospect p0)" in line

    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 0
    assert f"worker stopped ({sig.name}): 1 timer(s) fired" in children.stderr("cli")
    engine = Engine(open_store(str(db)))
    assert engine.get(instance_id).waiting_steps == ["follow_up"]
    engine.store.dispose()


@pytest.mark.slow
def test_a_worker_stopped_mid_batch_finishes_its_step_and_hands_back_the_rest(
    tmp_path: Path, children: Children
) -> None:
    db = tmp_path / "worker.db"
    batch = 40
    ids = past_due(db, 3 * batch)
    proc = children.start("cli", [sys.executable, "-m", "cli", "worker", "--batch", str(batch),
                                  "--json"], env=worker_env(db))

    deadline = time.monotonic() + DEADLINE
    for _ in range(batch):  # the first batch is reported whole, then the second one is claimed
        _, words = children.next(deadline)
        assert words[0].startswith("{"), (words, children.stderr("cli"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    stopped = children.stderr("cli")
    assert "worker stopped (SIGTERM): " in stopped
    reported = int(stopped.split("worker stopped (SIGTERM): ")[1].split()[0])

    engine = Engine(open_store(str(db)))
    try:
        counts = timer_counts(engine)
        assert set(counts.values()) == {1}
        assert len(counts) == reported  # every fired step committed, and only those
        assert batch <= reported < len(ids)  # it stopped in the middle of the run
        with engine.store.read() as conn:
            left = conn.execute(select(INSTANCE.c.version, INSTANCE.c.lease_owner, func.count())
                                .where(INSTANCE.c.next_due_at.is_not(None))
                                .group_by(INSTANCE.c.version, INSTANCE.c.lease_owner)).all()
        # the rest is due and free for the next worker right away, not after a lease
        assert [tuple(r) for r in left] == [(1, None, len(ids) - reported)]
    finally:
        engine.store.dispose()


def test_run_worker_loops_until_its_stop_and_reports_each_timer(
    tmp_path: Path,
) -> None:
    engine = Engine(open_store(f"sqlite:///{tmp_path / 'loop.db'}"), clock=ManualClock(T0))
    engine.deploy([REMINDER])
    ids = [engine.start("reminder", f"p{k}", "d1").id for k in range(5)]
    engine.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    seen: list[int] = []
    stop = threading.Event()

    def fired(item: object) -> None:
        seen.append(item.instance_id)  # type: ignore[attr-defined]
        if len(seen) == len(ids):
            stop.set()

    stats = run_worker(engine, poll_interval=0, batch=2, on_fired=fired, stop=stop,
                       handle_signals=False)
    assert sorted(seen) == ids
    assert (stats.fired, stats.loops, stats.stopped_by) == (5, 3, None)
    assert run_worker(engine, poll_interval=0, max_loops=2, handle_signals=False).fired == 0
    engine.store.dispose()
