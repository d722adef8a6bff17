"""The write side of an import: target checks, the definition marker, instances, events.

Imported events join the tamper-evident trail like live ones: each case's events are chained
with `engine.store.trail` (sha256 over the previous link and the event) and the instance row
keeps the head, so `trail.verify` covers imported cases too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from engine.store import DEFINITION, INSTANCE, STEP_EVENT, trail
from engine.store.visits import Visits
from learner._records import ImportProblem, ImportProgress, LogAlreadyImported, LogImportError

SOURCE_FORMAT = "imported-log"
_WRITE_CHUNK = 10_000
# (at, file order, activity, actor, hook, shown, used, propensity, data, kind,
#  policy version, step name)
Event = tuple[datetime, int, str, str | None, str | None, str | None, str | None,
              float | None, str | None, str, int | None, str | None]


@dataclass
class Case:
    attrs: dict[str, Any]
    trace: int | None
    distributor: str | None = None  # else the first event's actor
    events: list[Event] = field(default_factory=list)
    typed: bool = False  # attrs came whole from JSON: no CSV typing

    def digest(self) -> str:
        """SHA-256 of what the case holds (attributes, distributor, events in log order):
        a re-import of the same case, from any file, is recognised by it."""
        events = sorted(self.events, key=lambda e: (e[0], e[1]))
        body = [self.attrs, self.distributor, [[e[0].isoformat(), *e[2:]] for e in events]]
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def check_target(conn: Connection, process_id: str, digest: str, path: Path) -> None:
    rows = conn.execute(select(DEFINITION.c.version, DEFINITION.c.source_format,
                               DEFINITION.c.content_hash)
                        .where(DEFINITION.c.process_id == process_id)).all()
    if any(r.source_format != SOURCE_FORMAT for r in rows):
        raise LogImportError(
            f"process {process_id!r} is a deployed process map; import the log under a "
            f"process id of its own (e.g. {process_id + '_history'!r})", file=str(path),
            reason="deployed-process")
    for row in rows:
        if row.content_hash == digest:
            raise LogAlreadyImported(str(path), process_id, row.version)


def drop_known_cases(conn: Connection, process_id: str, cases: dict[str, Case]
                      ) -> tuple[list[ImportProblem], int]:
    """Leave out the cases already in the process: those with the same content hash are
    counted as unchanged (an import is idempotent per case); the others are problems."""
    known = {row.prospect_id: row.state for row in conn.execute(
        select(INSTANCE.c.prospect_id, INSTANCE.c.state)
        .where(INSTANCE.c.process_id == process_id))}
    problems = []
    unchanged = 0
    for case_id in sorted(known.keys() & cases.keys()):
        case = cases.pop(case_id)
        if _stored_digest(known[case_id]) == case.digest():
            unchanged += 1
            continue
        problems.append(ImportProblem(
            f"case already imported into process {process_id!r} with other content; its "
            f"{len(case.events)} event(s) were not imported again", case_id=case_id,
            trace=case.trace))
    return problems, unchanged


def _stored_digest(state: str) -> str | None:
    try:
        found = json.loads(state)
    except (TypeError, ValueError):
        return None
    return found.get("case_hash") if isinstance(found, dict) else None


def write_definition(conn: Connection, process_id: str, digest: str, path: Path,
                      cases: dict[str, Case], activities: tuple[str, ...], now: datetime
                      ) -> tuple[int, int]:
    hooks: dict[str, str] = {}
    for case in cases.values():
        for event in case.events:
            if event[4] is not None:
                hooks.setdefault(event[2], event[4])
    steps = [{"id": a, "name": a, "type": "activity",
              **({"properties": {"hook": hooks[a]}} if a in hooks else {})} for a in activities]
    latest = conn.execute(select(func.max(DEFINITION.c.version))
                          .where(DEFINITION.c.process_id == process_id)).scalar()
    version = int(latest or 0) + 1
    result = conn.execute(insert(DEFINITION).values(
        process_id=process_id, version=version, name=process_id, content_hash=digest,
        source_file=str(path), source_format=SOURCE_FORMAT, documents="{}",
        steps=json.dumps(steps), deployed_at=now))
    return version, int(result.inserted_primary_key[0])  # type: ignore[index]


def write_cases(conn: Connection, process_id: str, definition_id: int,
                 cases: dict[str, Case], progress: Callable[[ImportProgress], None] | None
                 ) -> int:
    rows = []
    for case_id, case in cases.items():
        case.events.sort(key=lambda e: (e[0], e[1]))
        sponsor = case.attrs.get("sponsor_id")
        rows.append({
            "definition_id": definition_id, "process_id": process_id, "prospect_id": case_id,
            "distributor_id": case.distributor or case.events[0][3] or "unknown",
            "sponsor_id": sponsor if isinstance(sponsor, str) else None, "active_key": None,
            "status": "completed", "context": json.dumps(case.attrs, sort_keys=True),
            "waiting": "[]", "next_due_at": None, "version": 1,
            "state": json.dumps({"imported": True, "case_hash": case.digest()}),
            "created_at": case.events[0][0], "updated_at": case.events[-1][0]})
    for start in range(0, len(rows), _WRITE_CHUNK):
        conn.execute(insert(INSTANCE), rows[start:start + _WRITE_CHUNK])
    ids: dict[str, int] = dict(conn.execute(select(INSTANCE.c.prospect_id, INSTANCE.c.id)
                            .where(INSTANCE.c.definition_id == definition_id)).all())
    total = sum(len(c.events) for c in cases.values())
    # SQLite keeps DateTime as text in SQLAlchemy's format, which this reproduces exactly
    stamp: Callable[[datetime], Any] = (
        (lambda at: at.isoformat(" ", "microseconds")) if conn.dialect.name == "sqlite"
        else (lambda at: at))
    written = 0
    batch: list[tuple[Any, ...]] = []

    def flush() -> None:
        nonlocal written
        if batch:
            _insert_events(conn, batch)
            written += len(batch)
            batch.clear()
        if progress is not None:
            progress(ImportProgress("write", written, total, "events"))

    heads = []
    for case_id, case in cases.items():
        instance_id = ids[case_id]
        head = trail.GENESIS
        visits = Visits()
        for (at, _seq, activity, actor, hook, shown, used, propensity, data, kind, policy,
             name) in case.events:
            visit_ms, paired = visits.record(activity, kind, at)
            head = trail.link(head, {
                "instance_id": instance_id, "step_id": activity, "kind": kind, "actor": actor,
                "data": data, "hook": hook, "content_shown": shown, "content_used": used,
                "propensity": propensity, "policy_version": policy, "at": at})
            batch.append((instance_id, activity, name or activity, kind, actor, hook, shown,
                          used, propensity, policy, data, head, visit_ms, paired, stamp(at)))
        heads.append({"iid": instance_id, "head": head})
        if len(batch) >= _WRITE_CHUNK:
            flush()
    flush()
    conn.execute(update(INSTANCE).where(INSTANCE.c.id == bindparam("iid"))
                 .values(chain_head=bindparam("head")), heads)
    return written


_EVENT_COLUMNS = ("instance_id", "step_id", "step_name", "kind", "actor", "hook",
                  "content_shown", "content_used", "propensity", "policy_version", "data",
                  "chain", "visit_ms", "paired", "at")


def _insert_events(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """executemany at the driver: SQLAlchemy's per-row parameter processing would cost
    more than the insert itself (values are already in the driver's types)."""
    marks = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO {STEP_EVENT.name} ({', '.join(_EVENT_COLUMNS)}) "
        f"VALUES ({', '.join([marks] * len(_EVENT_COLUMNS))})", rows)
