"""The step log's anchor, on SQLite and PostgreSQL: an instance deleted with its events, an
instance's tail cut off with its head reset, or its chain rewritten with fresh hashes — all
invisible to the per-instance chains — show against a kept anchor; growth after the anchor
does not; older anchors (the policy log's head only) still read and say what they cannot
check; on PostgreSQL the anchor waits for a step being written below its cut-off."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from cli import app
from compliance import (
    AnchorBreak,
    BadAnchor,
    PolicyAnchor,
    StepAnchor,
    TrailAnchor,
    anchor_policy_trail,
    anchor_step_log,
    read_trail_anchor,
    verify_trail,
)
from engine import Engine, ManualClock, ProspectRef, Store
from engine.store import INSTANCE, STEP_EVENT, trail
from nextmove import open_engine, open_store
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
JOURNEY = "prospect_journey"


@dataclass
class Log:
    store: Store
    engine: Engine
    ids: dict[str, int]  # prospect -> instance id

    def sql(self, statement: str, **params: Any) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(text(statement), params)

    def events(self, instance: int) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            return [dict(r) for r in conn.execute(
                select(STEP_EVENT).where(STEP_EVENT.c.instance_id == instance)
                .order_by(STEP_EVENT.c.id)).mappings()]

    def anchor(self) -> TrailAnchor:
        """As a reviewer keeps it: the JSON of a verification, read back."""
        body = json.loads(json.dumps(verify_trail(self.store).to_dict()))
        return TrailAnchor.from_dict(body)


@pytest.fixture
def log(db_url: str, clock: ManualClock) -> Iterator[Log]:
    store = open_store(db_url)
    lv = open_engine(store, clock=clock, recommend=False)
    lv.deploy([LIFEVANTAGE])
    ids = {p: lv.start(JOURNEY, p, f"d-{p}", actor=f"d-{p}").id for p in ("p1", "p2", "p3")}
    for p in ("p1", "p2"):
        lv.complete(ProspectRef(p), "add_contact", actor=f"d-{p}")
    yield Log(store, lv, ids)
    store.dispose()


def anchored(log: Log, kept: TrailAnchor) -> tuple[bool, tuple[AnchorBreak, ...], int]:
    """(ok, the anchor's findings, the per-instance chains' findings)."""
    check = verify_trail(log.store, anchor=kept)
    assert check.anchored is not None
    return check.ok, check.anchored.tampered, len(check.tampered)


def test_the_anchor_holds_every_instance_and_growth_after_it_is_fine(log: Log) -> None:
    kept = log.anchor()
    assert kept.steps == anchor_step_log(log.store)
    assert kept.steps is not None and kept.steps.instances == 3
    assert kept.steps.ids == ((min(log.ids.values()), max(log.ids.values())),)
    log.engine.complete(ProspectRef("p3"), "add_contact", actor="d-p3")  # an anchored instance
    log.engine.start(JOURNEY, "p4", "d-p4")  # and a new one
    check = verify_trail(log.store, anchor=kept)
    assert check.ok and check.anchored is not None and check.anchored.anchor == kept.steps
    assert check.step_anchor is not None and check.step_anchor.instances == 4


def test_a_deleted_instance_is_named(log: Log) -> None:
    kept = log.anchor()
    gone = log.ids["p2"]
    log.sql("DELETE FROM step_event WHERE instance_id = :i", i=gone)
    log.sql("DELETE FROM instance WHERE id = :i", i=gone)
    assert verify_trail(log.store).ok  # each remaining chain still checks
    ok, found, per_instance = anchored(log, kept)
    assert (ok, per_instance) == (False, 0)
    assert [(b.what, b.first, b.last) for b in found] == [("instance removed", gone, gone)]
    assert f"instance {gone}: in the anchor" in found[0].detail


def test_a_cut_tail_with_its_head_reset_is_found(log: Log) -> None:
    kept = log.anchor()
    p1 = log.ids["p1"]
    *rest, last = log.events(p1)
    log.sql("DELETE FROM step_event WHERE id = :i", i=last["id"])
    log.sql("UPDATE instance SET chain_head = :h WHERE id = :i", h=rest[-1]["chain"], i=p1)
    assert verify_trail(log.store).ok
    ok, found, _ = anchored(log, kept)
    assert not ok
    assert [b.what for b in found] == ["rewritten"]
    assert found[0].first <= p1 <= found[0].last


def test_a_chain_rewritten_with_fresh_hashes_is_found(log: Log) -> None:
    kept = log.anchor()
    p2 = log.ids["p2"]
    head = trail.GENESIS
    for event in log.events(p2):  # someone who knows the algorithm edits and rehashes
        event["actor"] = "someone else"
        head = trail.link(head, event)
        log.sql("UPDATE step_event SET actor = :a, chain = :c WHERE id = :i",
                a="someone else", c=head, i=event["id"])
    log.sql("UPDATE instance SET chain_head = :h WHERE id = :i", h=head, i=p2)
    assert verify_trail(log.store).ok
    ok, found, _ = anchored(log, kept)
    assert not ok and [b.what for b in found] == ["rewritten"]


def test_an_older_anchor_checks_the_policy_log_only(log: Log, tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    body = verify_trail(log.store).to_dict()
    for key in ("step_anchor", "step_anchor_check"):  # what an older nextmove wrote
        del body[key]
    for kept in (body, anchor_policy_trail(log.store).to_dict()):
        path.write_text(json.dumps(kept), encoding="utf-8")
        older = read_trail_anchor(path)
        assert older == TrailAnchor(anchor_policy_trail(log.store), None)
        log.sql("DELETE FROM step_event WHERE instance_id = :i", i=log.ids["p3"])
        log.sql("DELETE FROM instance WHERE id = :i", i=log.ids["p3"])
        check = verify_trail(log.store, anchor=older)
        assert check.ok  # it cannot tell, and says so
        assert check.anchored is not None and check.anchored.anchor is None
        assert "cannot show instances removed" in check.to_dict()["step_anchor_check"]["note"]
    bare = verify_trail(log.store, anchor=anchor_policy_trail(log.store))  # a PolicyAnchor
    assert bare.ok and bare.anchored is not None and bare.anchored.anchor is None


def test_bad_step_anchors_are_refused() -> None:
    policy = {"records": 0, "head": "0" * 64}
    good = {"events": 3, "ids": [[1, 2]], "block": 100, "digests": {"0": "a" * 64}}
    assert TrailAnchor.from_dict({"policy": policy, "step_anchor": good}).steps == StepAnchor(
        3, ((1, 2),), {0: "a" * 64}, 100)
    for bad, problem in (({**good, "events": -1}, "must be counts"),
                         ({**good, "block": 0}, "must be counts"),
                         ({**good, "ids": [[2, 1]]}, "ranges"),
                         ({**good, "digests": {"x": "a" * 64}}, "block numbers")):
        with pytest.raises(BadAnchor, match=problem):
            TrailAnchor.from_dict({"policy": policy, "step_anchor": bad})
    assert TrailAnchor.from_dict(policy) == TrailAnchor(PolicyAnchor(0, "0" * 64))


@pytest.mark.postgres
def test_postgres_anchor_waits_for_a_step_being_written(pg_url: str, clock: ManualClock) -> None:
    """A step that took its event id before the anchor and commits after: the anchor waits
    for it instead of leaving it out and calling it tampering later."""
    store = open_store(pg_url)
    lv = open_engine(store, clock=clock, recommend=False)
    lv.deploy([LIFEVANTAGE])
    slow = lv.start(JOURNEY, "slow", "d1").id
    with store.read() as conn:
        copy = dict(conn.execute(select(STEP_EVENT).where(STEP_EVENT.c.instance_id == slow)
                                 .order_by(STEP_EVENT.c.id.desc()).limit(1)).mappings().one())
        head = conn.execute(select(INSTANCE.c.chain_head).where(INSTANCE.c.id == slow)).scalar()
    writer = store.engine.connect()
    tx = writer.begin()  # the slow step: its event gets an id now, commits at the end
    del copy["id"]
    copy["chain"] = trail.link(head, copy)
    writer.execute(STEP_EVENT.insert().values(**copy))
    writer.execute(INSTANCE.update().where(INSTANCE.c.id == slow).values(chain_head=copy["chain"]))
    lv.start(JOURNEY, "fast", "d2")  # a later id, committed first
    taken: list[StepAnchor] = []
    taker = threading.Thread(target=lambda: taken.append(anchor_step_log(store)))
    taker.start()
    try:
        waiting = ("SELECT count(*) FROM pg_locks WHERE NOT granted AND mode = 'ShareLock' "
                   "AND relation = 'step_event'::regclass AND database = "
                   "(SELECT oid FROM pg_database WHERE datname = current_database())")
        with store.engine.connect() as probe:
            while taker.is_alive() and not probe.execute(text(waiting)).scalar():
                pass  # until the anchor waits on the slow step's lock
        assert taker.is_alive()
    finally:
        tx.commit()
        writer.close()
        taker.join()
    try:
        check = verify_trail(store, anchor=TrailAnchor(anchor_policy_trail(store), taken[0]))
        assert check.ok, check.anchored
    finally:
        store.dispose()


def test_cli_verify_with_an_anchor_finds_a_deleted_instance(tmp_path: Path) -> None:
    """The finding as reported: a whole instance deleted with sqlite3 after the anchor."""
    db, kept = tmp_path / "sim.db", tmp_path / "anchor.json"
    runner = CliRunner()
    for args in (["deploy", str(LIFEVANTAGE)], ["start", JOURNEY, "-p", "p1", "-d", "d1"],
                 ["start", JOURNEY, "-p", "p2", "-d", "d2"]):
        assert runner.invoke(app, [*args, "--db", str(db)]).exit_code == 0
    result = runner.invoke(app, ["audit", "--verify", "--json", "--db", str(db),
                                 "--output", str(kept)])
    assert result.exit_code == 0, result.output
    assert json.loads(kept.read_text(encoding="utf-8"))["step_anchor"]["instances"] == 2
    result = runner.invoke(app, ["audit", "--verify", "--db", str(db), "--anchor", str(kept)])
    assert result.exit_code == 0, result.output
    assert "(and its 2 anchored instances still reach the anchor)" in result.output
    with sqlite3.connect(db) as conn:
        (gone,) = conn.execute("SELECT id FROM instance WHERE prospect_id = 'p2'").fetchone()
        conn.execute("DELETE FROM step_event WHERE instance_id = ?", (gone,))
        conn.execute("DELETE FROM instance WHERE id = ?", (gone,))
    result = runner.invoke(app, ["audit", "--verify", "--db", str(db), "--anchor", str(kept)])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("STEP LOG TAMPERED: 1 problem(s)")
    assert lines[1].startswith(f"  instance removed: instance {gone}: in the anchor")
    assert not any(line.startswith("step log anchor:") for line in lines)
