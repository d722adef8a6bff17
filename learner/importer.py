"""Import a historical event log (CSV, Parquet, XES) into the store, as if it had run live.

Column names are XES's, as pm4py writes them:

    case:concept:name    the case: one instance per case, prospect_id = case id
    concept:name         the activity: one `completed` step_event per row, step_id = activity
    time:timestamp       ISO 8601 (no zone = UTC, counted in the report); XES <date> values
    org:resource         optional: the event's actor; the case's first one is its distributor
    nextmove:hook        optional: the content slot of the step
    nextmove:content     optional: the content used there (also taken as shown)
    nextmove:content_shown  optional: what was offered, when it differs from what was used
    nextmove:propensity  optional: the probability the logging policy gave the shown content
    lifecycle:transition optional: start → entered, complete → completed, manualskip /
                         autoskip → skipped, ate_abort / pi_abort → cancelled when
                         nextmove:kind is absent (other values are kept as data)
    nextmove:kind        optional: completed (default) | skipped | varied | outcome, or the
                         engine's entered | timer | message | cancelled (as `export_log`
                         writes them); an outcome row (e.g. concept:name "sale") becomes an
                         `outcome` event, which `learner.dataset` can name as the outcome and
                         variants leave out; `outcome:<id>` (as exported) names outcome <id>
    nextmove:policy_version, nextmove:step_name  optional: as the engine logged them
    nextmove:data        optional: the event's data as a JSON object, kept verbatim (then the
                         other columns are not added to it)
    case:nextmove:context  optional: the case's context as a JSON object (then the other
                         case:<key> columns are not added to it)
    case:nextmove:distributor  optional: the case's distributor (else its first actor)
    case:<key>           any other: a case attribute, stored in the instance context
    anything else        kept per event in step_event.data

What is written: one `definition` row per import (source_format "imported-log", no BPMN
documents, `steps` lists the activities, content_hash = the file's SHA-256), one `instance` per
case (status completed, created_at/updated_at = its first/last event) and one `step_event` per
row (kind completed unless nextmove:kind says otherwise), ordered within a case by timestamp
then file order, as pm4py orders them, and hash-chained into the tamper-evident trail. Case
attributes come from a case's first row; CSV text becomes int or float for attributes whose
every value is one. All of it is one transaction: an import is written whole or not at all.
Parsing holds the log's rows (as small tuples) in memory until it is written: about 330 bytes
an event.

A case is imported whole or not at all: one bad event (a bad timestamp, a missing activity,
...) leaves the whole case out, listed in `cases_skipped`, with the bad rows in `problems`.

Re-imports: importing the same file (same SHA-256) into the same process again raises
LogAlreadyImported. Each imported case keeps the SHA-256 of its content (in its instance's
state document), so an import is idempotent per case: a case already present with the same
content is left as it was and counted in `cases_unchanged` — re-importing a corrected file
imports the cases that were skipped and leaves the others. A case id already present with
other content (say, an overlapping export that differs) is a problem like a malformed row:
skipped and reported, or the reason to reject the import. Logs
are imported under their own process id: a process that has deployed maps is refused, since
new instances start on a process's latest version.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from engine.clock import Clock, SystemClock
from engine.store import EVENT_KINDS, EventKind
from engine.store.database import Store
from learner._lifecycle import KIND_OF, LIFECYCLE, step_of
from learner._records import (
    ImportProblem,
    ImportProgress,
    ImportReport,
    LogImportError,
    LogRejected,
)
from learner._sources import (
    ACTIVITY,
    CASE,
    CONTENT,
    HOOK,
    PROPENSITY,
    RESOURCE,
    TIME,
    Where,
    detect_format,
    read_rows,
)
from learner._writer import (
    Case,
    Event,
    check_target,
    drop_known_cases,
    write_cases,
    write_definition,
)

SHOWN = "nextmove:content_shown"
KIND = "nextmove:kind"
POLICY_VERSION = "nextmove:policy_version"
STEP_NAME = "nextmove:step_name"
DATA_JSON = "nextmove:data"
CONTEXT_JSON = "case:nextmove:context"
DISTRIBUTOR = "case:nextmove:distributor"
KINDS = EVENT_KINDS  # what a log may record: the engine's kinds
_KNOWN = {CASE, ACTIVITY, TIME, RESOURCE, HOOK, CONTENT, SHOWN, PROPENSITY, KIND,
          POLICY_VERSION, STEP_NAME, DATA_JSON}
_CASE_KNOWN = {CASE, CONTEXT_JSON, DISTRIBUTOR}
_FALLBACK_TIMES = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M")

OnError = Literal["skip", "reject"]


def import_log(
    store: Store, path: str | Path, process_id: str, *, on_error: OnError = "skip",
    progress: Callable[[ImportProgress], None] | None = None, clock: Clock | None = None,
) -> ImportReport:
    """Read the log at `path` and write it into `store` under `process_id`.

    Malformed rows (no case id or activity, a bad timestamp or propensity, a case already in
    the process, ...) are skipped and listed in the report with their row (CSV: row and line;
    Parquet: row; XES: trace, event and line), or with on_error="reject" make the import raise
    LogRejected with nothing written. A file that cannot be read as a log raises LogImportError.
    """
    if on_error not in ("skip", "reject"):
        raise ValueError(f"on_error must be 'skip' or 'reject', not {on_error!r}")
    path = Path(path)
    if not path.is_file():
        raise LogImportError("no such file", file=str(path), reason="not-found")
    fmt = detect_format(path)
    digest = _sha256(path)
    with store.read() as conn:
        check_target(conn, process_id, digest, path)

    def tick(done: int, total: int | None, unit: str) -> None:
        if progress is not None:
            progress(ImportProgress("read", done, total, unit))

    cases, problems, events_read, zoneless = _collect(read_rows(path, fmt, tick))
    skipped = _drop_bad_cases(cases, problems)
    if fmt == "csv":
        _type_case_attributes(cases.values())
    if problems and on_error == "reject":
        raise LogRejected(str(path), problems)
    now = (clock or SystemClock()).now().astimezone(UTC).replace(tzinfo=None)
    with store.write() as conn:
        check_target(conn, process_id, digest, path)
        known, unchanged = drop_known_cases(conn, process_id, cases)
        problems.extend(known)
        if problems and on_error == "reject":
            raise LogRejected(str(path), problems)
        activities = tuple(sorted({e[2] for case in cases.values() for e in case.events
                                   if e[9] != EventKind.OUTCOME}))
        version = None
        written = 0
        if cases:
            version, definition_id = write_definition(
                conn, process_id, digest, path, cases, activities, now)
            written = write_cases(conn, process_id, definition_id, cases, progress)
    problems.sort(key=lambda p: (p.trace or 0, p.row or 0, p.event or 0))
    return ImportReport(process_id, str(path), fmt, digest, version, events_read, len(cases),
                        written, activities if cases else (), tuple(problems), unchanged,
                        skipped, zoneless)


def _drop_bad_cases(cases: dict[str, Case], problems: list[ImportProblem]) -> tuple[str, ...]:
    """Leave out every case with a bad row: a case is never half-imported."""
    bad = sorted({p.case_id for p in problems if p.case_id is not None} & cases.keys())
    for case_id in bad:
        del cases[case_id]
    return tuple(bad)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _collect(rows: Iterable[tuple[Where, dict[str, Any]]]
             ) -> tuple[dict[str, Case], list[ImportProblem], int, int]:
    """The cases, the bad rows, the events read and how many had a time with no zone."""
    cases: dict[str, Case] = {}
    problems: list[ImportProblem] = []
    read = zoneless = 0
    for where, values in rows:
        if "trace" in where and "event" not in where:  # an XES trace without events
            problems.append(ImportProblem(values["__error__"], case_id=_text(values.get(CASE)),
                                          **where))
            continue
        read += 1
        parsed = _parse(values, read)
        if isinstance(parsed, str):
            problems.append(ImportProblem(parsed, case_id=_text(values.get(CASE)), **where))
            continue
        case_id, event, naive_time = parsed
        zoneless += naive_time
        trace = values.get("__trace__")
        case = cases.get(case_id)
        if case is None:  # case attributes come from a case's first row
            attrs = _case_attributes(values)
            if isinstance(attrs, str):
                problems.append(ImportProblem(attrs, case_id=case_id, **where))
                continue
            cases[case_id] = case = Case(attrs, trace, _text(values.get(DISTRIBUTOR)),
                                         typed=CONTEXT_JSON in values
                                         and values[CONTEXT_JSON] not in (None, ""))
        elif case.trace != trace:
            problems.append(ImportProblem(
                f"case id {case_id!r} was already used by trace {case.trace}", case_id=case_id,
                **where))
            continue
        case.events.append(event)
    return cases, problems, read, zoneless


def _parse(values: dict[str, Any], seq: int) -> tuple[str, Event, bool] | str:
    """The case id and event of one row and whether its time had no zone (read as UTC), or
    what is wrong with it."""
    if "__error__" in values:
        return str(values["__error__"])
    case_id = _text(values.get(CASE))
    if case_id is None:
        return f"missing case id ({CASE})"
    activity = _text(values.get(ACTIVITY))
    if activity is None:
        return f"missing activity ({ACTIVITY})"
    timed = _timestamp(values.get(TIME))
    if timed is None:
        return (f"bad timestamp {values.get(TIME)!r} ({TIME}): expected ISO 8601 such as "
                "2026-01-05T09:00:00+01:00")
    at, zoneless = timed
    propensity = values.get(PROPENSITY)
    if propensity not in (None, ""):
        try:
            propensity = float(propensity)
        except (TypeError, ValueError):
            propensity = -1.0
        if not 0.0 < propensity <= 1.0:
            return f"bad propensity {values.get(PROPENSITY)!r} ({PROPENSITY}): not in (0, 1]"
    else:
        propensity = None
    given = _text(values.get(KIND))
    lifecycle = _text(values.get(LIFECYCLE))
    derived = KIND_OF.get(lifecycle.lower()) if lifecycle else None
    kind = given or derived or EventKind.COMPLETED
    if kind not in KINDS:
        return f"bad kind {kind!r} ({KIND}): expected one of {', '.join(KINDS)}"
    policy = values.get(POLICY_VERSION)
    if policy not in (None, ""):
        try:
            policy = int(policy)
        except (TypeError, ValueError):
            return f"bad policy version {policy!r} ({POLICY_VERSION}): not an integer"
    else:
        policy = None
    used = _text(values.get(CONTENT))
    shown = _text(values.get(SHOWN)) or used
    raw = values.get(DATA_JSON)
    if raw not in (None, ""):
        if _json_object(raw) is None:
            return f"bad data {raw!r} ({DATA_JSON}): not a JSON object"
        data: str | None = str(raw)
    else:
        # a transition that gave (or merely restates) the kind is not data
        derived_only = given is not None or derived is not None
        extra = {key: _jsonable(value) for key, value in values.items()
                 if key not in _KNOWN and not key.startswith(("case:", "__"))
                 and value not in (None, "") and not (key == LIFECYCLE and derived_only)}
        data = json.dumps(extra, sort_keys=True) if extra else None
    activity = step_of(activity, kind)
    event: Event = (at, seq, activity, _text(values.get(RESOURCE)), _text(values.get(HOOK)),
                     shown, used, propensity, data, kind, policy, _text(values.get(STEP_NAME)))
    return case_id, event, zoneless


def _json_object(raw: Any) -> dict[str, Any] | None:
    """`raw` parsed as a JSON object, or None if it is not one."""
    try:
        parsed = json.loads(str(raw))
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _case_attributes(values: dict[str, Any]) -> dict[str, Any] | str:
    """The case's context, or what is wrong with it."""
    raw = values.get(CONTEXT_JSON)
    if raw not in (None, ""):
        parsed = _json_object(raw)
        if parsed is None:
            return f"bad context {raw!r} ({CONTEXT_JSON}): not a JSON object"
        return parsed
    return {key[5:]: _jsonable(value) for key, value in values.items()
            if key.startswith("case:") and key not in _CASE_KNOWN and value not in (None, "")}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    # interned: activities, actors and content repeat on every row; one copy each halves
    # the memory a large log takes while it is held for writing
    return sys.intern(str(value).strip()) or None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _timestamp(value: Any) -> tuple[datetime, bool] | None:
    """Naive UTC, as the store keeps times, and whether `value` had no zone: such a time is
    taken to be UTC, and the report counts them so nobody is surprised by it."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        text = value.strip().replace("Z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            for pattern in _FALLBACK_TIMES:
                try:
                    moment = datetime.strptime(text, pattern)
                    break
                except ValueError:
                    continue
            else:
                return None
    else:
        return None
    if moment.tzinfo is None:
        return moment, True
    return moment.astimezone(UTC).replace(tzinfo=None), False


def _type_case_attributes(cases: Iterable[Case]) -> None:
    """CSV text → int or float for attributes whose every value is one, as pandas would
    (not for a context given whole as JSON: that one is typed already)."""
    cases = [c for c in cases if not c.typed]
    keys = {key for case in cases for key in case.attrs}
    for key in keys:
        values = [c.attrs[key] for c in cases if key in c.attrs]
        for kind in (int, float):
            try:
                typed = [kind(v) for v in values]
            except (TypeError, ValueError):
                continue
            if kind is float and not all(v == v for v in typed):
                break  # "nan" strings stay text
            for case in cases:
                if key in case.attrs:
                    case.attrs[key] = kind(case.attrs[key])
            del typed
            break
