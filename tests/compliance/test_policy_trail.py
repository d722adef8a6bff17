"""The policy log as evidence, on SQLite and PostgreSQL: every policy version saved, activated
or rolled back to is a hash-chained record committing to the policy's content hash; edits,
removals (middle and end), reordering, edited or removed policies, versions and active
versions changed behind nextmove's back are found and named; concurrent policy changes make
one unbroken chain; `nextmove audit --verify` reports it all."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update
from typer.testing import CliRunner

from cli import app
from compliance import (
    BadAnchor,
    PolicyAnchor,
    PolicyTampering,
    anchor_policy_trail,
    read_anchor,
    verify_policy_trail,
    verify_trail,
)
from content_catalog.policy_store import (
    activate,
    activations,
    get_policy,
    rollback,
    save_policy,
    store_catalog,
)
from engine import ManualClock, Store
from engine.store import StoreError, trail
from nextmove import open_store
from tests.conftest import REPO

CATALOG = REPO / "processes" / "lifevantage" / "catalog.yaml"
HOUR = timedelta(hours=1)
HOOK = "intro_video"


@dataclass
class Log:
    store: Store
    url: str
    seeded: int  # records the catalog's seeding wrote

    def sql(self, statement: str, **params: Any) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(text(statement), params)

    def records(self) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            return [dict(r) for r in conn.execute(
                select(trail.POLICY_LOG).order_by(trail.POLICY_LOG.c.id)).mappings()]

    def find(self, action: str, version: int, hook: str = HOOK) -> int:
        (found,) = [r["id"] for r in self.records()
                    if (r["hook"], r["version"], r["action"]) == (hook, version, action)]
        return int(found)


def changes(url: str, clock: ManualClock) -> Iterator[Log]:
    """The catalog's defaults, then for intro_video: v2 saved and activated, v3 saved only,
    v3 activated, one rollback (back to v2)."""
    store = open_store(url)
    store_catalog(store, CATALOG.read_text(encoding="utf-8"), str(CATALOG), clock=clock)
    seeded = len(Log(store, url, 0).records())
    base = get_policy(store, HOOK)
    clock.advance(HOUR)
    save_policy(store, base, note="tuned", activate=True, reason="beats v1", clock=clock)
    clock.advance(HOUR)
    save_policy(store, base, note="candidate", clock=clock)
    clock.advance(HOUR)
    activate(store, HOOK, 3, reason="trying v3", clock=clock)
    clock.advance(HOUR)
    rollback(store, HOOK, reason="v3 underperforms", clock=clock)
    yield Log(store, url, seeded)
    store.dispose()


@pytest.fixture
def log(db_url: str, clock: ManualClock) -> Iterator[Log]:
    yield from changes(db_url, clock)


@pytest.fixture
def sqlite_log(tmp_path: Path, clock: ManualClock) -> Iterator[Log]:
    """For the command line, which opens its own store per run (SQLite, like the other CLI
    tests: the command leaves its connections to the process's exit)."""
    yield from changes(f"sqlite:///{tmp_path / 'cli.db'}", clock)


def what(found: tuple[PolicyTampering, ...]) -> list[tuple[str, int | None]]:
    return [(t.what, t.record_id) for t in found]


def test_every_policy_change_is_a_chained_record(log: Log) -> None:
    hooks = sorted({r["hook"] for r in log.records()[: log.seeded]})
    # Seeding: each hook's version 1 saved and activated, in one transaction.
    assert [(r["hook"], r["action"]) for r in log.records()[: log.seeded]] == [
        (h, a) for h in hooks for a in ("save", "activate")]
    assert [(r["version"], r["action"], r["reason"]) for r in log.records()[log.seeded:]] == [
        (2, "save", "tuned"), (2, "activate", "beats v1"), (3, "save", "candidate"),
        (3, "activate", "trying v3"), (2, "rollback", "v3 underperforms")]
    previous = trail.GENESIS
    for record in log.records():
        assert record["chain"] == trail.policy_link(previous, record)
        document = get_policy(log.store, record["hook"], record["version"]).to_json()
        assert record["policy_hash"] == trail.policy_hash(document)
        previous = record["chain"]
    check = verify_policy_trail(log.store)
    assert (check.ok, check.checked, check.records, check.head) == (
        True, len(log.records()), len(log.records()), previous)
    assert anchor_policy_trail(log.store) == PolicyAnchor(len(log.records()), previous)
    # The activation API still lists activations and rollbacks only.
    assert [(a.version, a.action) for a in activations(log.store, HOOK)] == [
        (1, "activate"), (2, "activate"), (3, "activate"), (2, "rollback")]
    assert verify_trail(log.store).ok


def test_an_edited_record_is_named(log: Log) -> None:
    edited = log.find("activate", 2)
    log.sql("UPDATE policy_activation SET reason = 'nothing to see' WHERE id = :i", i=edited)
    check = verify_policy_trail(log.store)
    assert what(check.tampered) == [("edited", edited)]
    (found,) = check.tampered
    assert (found.hook, found.version, found.action) == (HOOK, 2, "activate")
    assert f"record {edited} (activate intro_video v2) no longer matches its hash" in found.detail
    assert not verify_trail(log.store).ok


def test_a_record_removed_from_the_middle_is_named(log: Log) -> None:
    removed = log.find("save", 3)
    log.sql("DELETE FROM policy_activation WHERE id = :i", i=removed)
    check = verify_policy_trail(log.store)
    # v3 lost its save record; its activation still commits to it, so it is not unrecorded.
    assert what(check.tampered) == [("removed", removed + 1)]
    assert f"ids {removed} are gone" in check.tampered[0].detail


def test_a_removed_last_record_is_named(log: Log) -> None:
    last = log.find("rollback", 2)
    log.sql("DELETE FROM policy_activation WHERE id = :i", i=last)
    check = verify_policy_trail(log.store)
    # Without the rollback, the log leaves v3 active: the active version disagrees too.
    assert what(check.tampered) == [("truncated", None), ("active changed", None)]
    assert check.tampered[0].detail.startswith("1 record(s) at the end were removed")
    assert "hook intro_video uses v2, but the log's activations and rollbacks leave v3" in \
        check.tampered[1].detail


def test_reordered_records_are_named_once(log: Log) -> None:
    first, second = log.find("save", 3), log.find("activate", 3)
    rows = {r["id"]: r for r in log.records()}
    with log.store.engine.begin() as conn:  # swap everything but the ids
        for target, source in ((first, second), (second, first)):
            values = {k: v for k, v in rows[source].items() if k != "id"}
            conn.execute(update(trail.POLICY_LOG).where(trail.POLICY_LOG.c.id == target)
                         .values(**values))
    check = verify_policy_trail(log.store)
    assert what(check.tampered) == [("moved", first)]
    assert check.tampered[0].detail == (
        f"records {first}, {second}, {second + 1} are out of their recorded order: "
        f"{first} (activate intro_video v3) came right after record {second}; "
        f"{second} (save intro_video v3) came right after record {first - 1}; "
        f"{second + 1} (rollback intro_video v2) came right after record {first}")


def test_an_edited_policy_document_is_named(log: Log) -> None:
    policy = get_policy(log.store, HOOK, 2)
    edited = json.loads(policy.to_json())
    edited["exploration"] = {"kind": "epsilon", "epsilon": 0.0}
    log.sql("UPDATE policy SET document = :d WHERE hook = :h AND version = 2",
            d=json.dumps(edited), h=HOOK)
    check = verify_policy_trail(log.store)
    assert what(check.tampered) == [("policy changed", log.find("save", 2))]
    assert "policy intro_video v2 no longer matches the content hash" in check.tampered[0].detail
    assert verify_policy_trail(log.store).tampered == check.tampered  # reading changes nothing


def test_removed_added_and_reactivated_policies_are_named(log: Log) -> None:
    document = get_policy(log.store, HOOK, 3).to_json()
    log.sql("DELETE FROM policy WHERE hook = :h AND version = 3", h=HOOK)
    log.sql("INSERT INTO policy (hook, version, kind, document, created_at) "
            "VALUES (:h, 4, 'manual', :d, '2026-02-01 00:00:00')", h=HOOK, d=document)
    log.sql("UPDATE policy_active SET version = 4 WHERE hook = :h", h=HOOK)
    found = verify_policy_trail(log.store).tampered
    assert [(t.what, t.record_id, t.version) for t in found] == [
        ("policy removed", log.find("save", 3), 3), ("unrecorded", None, 4),
        ("active changed", None, 4)]


def test_an_anchor_catches_a_log_rewritten_with_fresh_hashes(
    log: Log, clock: ManualClock
) -> None:
    kept = PolicyAnchor.from_dict(json.loads(json.dumps(verify_trail(log.store).to_dict())))
    assert kept == anchor_policy_trail(log.store)
    clock.advance(HOUR)  # the log may grow after the anchor
    activate(log.store, HOOK, 3, clock=clock)
    check = verify_policy_trail(log.store, anchor=kept)
    assert (check.ok, check.anchor, check.checked) == (True, kept, kept.records + 1)
    # Someone who knows the algorithm edits a reason and recomputes every hash and the head.
    log.sql("UPDATE policy_activation SET reason = 'approved by board' WHERE id = :i",
            i=log.find("activate", 2))
    head = trail.GENESIS
    for record in log.records():
        head = trail.policy_link(head, record)
        log.sql("UPDATE policy_activation SET chain = :c WHERE id = :i", c=head, i=record["id"])
    log.sql("UPDATE policy_trail_head SET head = :h", h=head)
    assert verify_policy_trail(log.store).ok  # the database alone cannot tell
    assert what(verify_policy_trail(log.store, anchor=kept).tampered) == [("rewritten", None)]
    assert not verify_trail(log.store, anchor=kept).ok


def test_an_anchor_with_records_removed_before_it(log: Log) -> None:
    kept = anchor_policy_trail(log.store)
    log.sql("DELETE FROM policy_activation WHERE id = 1")
    found = verify_policy_trail(log.store, anchor=kept).tampered
    assert ("rewritten", kept.records) in what(found)  # ids run 1..records
    assert "anchor kept it as number" in [t for t in found if t.what == "rewritten"][0].detail


def test_bad_anchors_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "anchor.json"
    for body, problem in (("not json", "cannot read it"), ("[1]", "not a JSON object"),
                          ('{"records": -1, "head": "00"}', "records must be a count"),
                          ('{"records": 2, "head": "xyz"}', "head must be a sha256")):
        path.write_text(body, encoding="utf-8")
        with pytest.raises(BadAnchor, match=problem):
            read_anchor(path)
    path.write_text(json.dumps({"records": 3, "head": "a" * 64}), encoding="utf-8")
    assert read_anchor(path) == PolicyAnchor(3, "a" * 64)


def test_concurrent_policy_changes_make_one_unbroken_chain(
    db_url: str, clock: ManualClock
) -> None:
    """Four writers at once, two on the same hook: every change lands, linked in one line."""
    store = open_store(db_url)
    store_catalog(store, CATALOG.read_text(encoding="utf-8"), str(CATALOG), clock=clock)
    hooks = sorted({r.hook for r in activations(store)})[:3]
    for hook in hooks:
        save_policy(store, get_policy(store, hook), clock=clock)  # v2 of each, inactive
    before = verify_policy_trail(store).checked
    rounds, barrier, failures = 8, threading.Barrier(4), []

    def toggle(hook: str) -> None:
        own = Store(db_url)
        try:
            barrier.wait()
            for i in range(rounds):
                activate(own, hook, 2 if i % 2 == 0 else 1, clock=clock)
        except Exception as exc:  # reported below: a thread's exception is otherwise lost
            failures.append(exc)
        finally:
            own.dispose()

    def add_versions() -> None:
        own = Store(db_url)
        try:
            barrier.wait()
            for _ in range(rounds):
                save_policy(own, get_policy(own, hooks[0], 1), activate=True, clock=clock)
        except Exception as exc:
            failures.append(exc)
        finally:
            own.dispose()

    workers = [threading.Thread(target=toggle, args=(h,)) for h in hooks]
    workers.append(threading.Thread(target=add_versions))
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    try:
        assert failures == []
        check = verify_policy_trail(store)
        assert check.tampered == ()
        # Toggles alternate v2/v1 and the other writer adds v3, v4, ...: every call records.
        assert check.checked == before + rounds * len(hooks) + 2 * rounds
        assert check.records == check.checked
    finally:
        store.dispose()


def test_a_database_from_before_the_policy_chain_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE policy_activation (id INTEGER PRIMARY KEY, hook VARCHAR, "
                     "version INTEGER, action VARCHAR, reason TEXT, at DATETIME)")
    with pytest.raises(StoreError, match="'policy_activation' lacks chain, policy_hash"):
        open_store(f"sqlite:///{path}")


# -- nextmove audit --verify ------------------------------------------------------------------


def test_cli_audit_verify_reports_both_trails(sqlite_log: Log, tmp_path: Path) -> None:
    log = sqlite_log
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "--verify", "--db", log.url])
    assert result.exit_code == 0, result.output
    head = anchor_policy_trail(log.store).head
    assert result.output.splitlines() == [
        "step log intact: 0 events checked, no tampering found",
        f"policy log intact: {len(log.records())} records checked, no tampering found",
        "sign-offs intact: 0 records checked, no tampering found",
        f"policy log head after {len(log.records())} records: {head}",
        "step log anchor: 0 instances up to event 0 (keep the --json output to pass as "
        "--anchor)"]
    kept = tmp_path / "verified.json"
    result = runner.invoke(app, ["audit", "--verify", "--json", "--db", log.url,
                                 "--output", str(kept)])
    assert result.exit_code == 0, result.output
    body = json.loads(kept.read_text(encoding="utf-8"))
    assert (body["ok"], body["policy"]["records"], body["policy"]["head"]) == (
        True, len(log.records()), head)

    log.sql("UPDATE policy SET document = replace(document, '\"format\"', ' \"format\"') "
            "WHERE hook = :h AND version = 3", h=HOOK)
    result = runner.invoke(app, ["audit", "--verify", "--db", log.url, "--anchor", str(kept)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[1] == f"POLICY LOG TAMPERED: 1 problem(s) in {len(log.records())} records"
    assert lines[2].startswith(f"  policy changed: record {log.find('save', 3)} — policy "
                               "intro_video v3 no longer matches")
    assert lines[3] == "sign-offs intact: 0 records checked, no tampering found"
    assert len(lines) == 4  # no head offered as an anchor while the log is tampered
    result = runner.invoke(app, ["audit", "--verify", "--json", "--db", log.url])
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert (body["ok"], body["tampered"], body["policy"]["ok"]) == (False, [], False)
    assert [(t["what"], t["version"]) for t in body["policy"]["tampered"]] == [
        ("policy changed", 3)]

    kept.write_text("{}", encoding="utf-8")
    result = runner.invoke(app, ["audit", "--verify", "--db", log.url, "--anchor", str(kept)])
    assert result.exit_code == 3 and "records must be a count" in result.output
