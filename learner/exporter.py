"""Export a process's step log as an event log (XES, CSV, Parquet) that imports back as is.

Columns are the importer's (see `learner.importer`): `case:concept:name` (prospect id),
`concept:name` (step id; `outcome:<id>` for an outcome), `lifecycle:transition` (start on
`entered`, complete on the closing kinds: see `learner._lifecycle`), `time:timestamp`
(ISO 8601, UTC), `org:resource` (actor),
`nextmove:hook`, `nextmove:content` (used), `nextmove:content_shown`, `nextmove:propensity`,
`nextmove:policy_version`, `nextmove:step_name`, `nextmove:kind` (every kind the engine logs),
`case:nextmove:distributor`, `case:<key>` per context attribute and one column per event data
key. What a flat column cannot carry exactly (a number in CSV, an empty string, a nested
value) goes as JSON in `case:nextmove:context` / `nextmove:data`, which the importer prefers;
so export → import gives the same timelines, and process-mining tools still read the usual
columns. XES keeps types: numbers, booleans and exact ISO 8601 date strings are written as
`<int>`, `<float>`, `<boolean>` and `<date>` attributes (also those only the JSON carries).
Rows stream from the database instance by instance; two passes (the first finds the columns).
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from engine.store.database import Store
from engine.store.steplog import check_process, full_instances
from learner._lifecycle import LIFECYCLE, activity_name, transition
from learner._sources import ACTIVITY, CASE, CONTENT, HOOK, PROPENSITY, RESOURCE, TIME
from learner.importer import (
    CONTEXT_JSON,
    DATA_JSON,
    DISTRIBUTOR,
    KIND,
    POLICY_VERSION,
    SHOWN,
    STEP_NAME,
)

_CHUNK = 20_000


@dataclass(frozen=True)
class ExportReport:
    process_id: str
    path: str
    format: str
    cases: int
    events: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _format(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    name = path.name.lower()
    for suffix, found in ((".xes.gz", "xes"), (".xes", "xes"), (".csv.gz", "csv"),
                          (".csv", "csv"), (".parquet", "parquet"), (".pq", "parquet")):
        if name.endswith(suffix):
            return found
    raise ValueError(f"cannot tell the format from {path.name!r}: use .xes, .xes.gz, .csv, "
                     ".csv.gz or .parquet")


def _plain(value: Any) -> bool:
    """A value a CSV cell gives back unchanged (and CSV typing leaves as text)."""
    if not isinstance(value, str) or not value or value != value.strip():
        return False
    for kind in (int, float):
        try:
            kind(value)
            return False
        except ValueError:
            pass
    return True


_EVENT_FIELDS = (ACTIVITY, LIFECYCLE, TIME, RESOURCE, HOOK, CONTENT, SHOWN, PROPENSITY,
                 POLICY_VERSION, STEP_NAME, KIND)
_RESERVED = {CASE, *(_EVENT_FIELDS), DATA_JSON, CONTEXT_JSON, DISTRIBUTOR}


def _cases(store: Store, process_id: str) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(case columns, event rows) per instance, in id order, events in log order."""
    for (_, case_id, distributor, context_text), rows in full_instances(store, process_id):
        yield _case(case_id, distributor, json.loads(context_text)), [_event(r) for r in rows]


def _case(case_id: str, distributor: str, context: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {CASE: case_id, DISTRIBUTOR: distributor}
    if all(_plain(v) and f"case:{k}" not in _RESERVED for k, v in context.items()):
        out.update({f"case:{k}": v for k, v in context.items()})
    else:
        out[CONTEXT_JSON] = json.dumps(context, sort_keys=True)
        out.update({f"case:{k}": v for k, v in context.items()
                    if _plain(v) and f"case:{k}" not in _RESERVED})
    return out


def _event(row: Any) -> dict[str, Any]:
    (_iid, step, name, kind, actor, hook, shown, used, propensity, policy, data, at) = row
    moment = at if at.tzinfo else at.replace(tzinfo=UTC)
    out: dict[str, Any] = {ACTIVITY: activity_name(step, kind), LIFECYCLE: transition(kind),
                           TIME: moment.astimezone(UTC), RESOURCE: actor,
                           HOOK: hook, CONTENT: used, SHOWN: shown, PROPENSITY: propensity,
                           POLICY_VERSION: policy, STEP_NAME: name if name != step else None,
                           KIND: kind}
    if data:
        values = json.loads(data)
        # flat columns only when the importer rebuilds exactly this text from them
        flat = isinstance(values, dict) and json.dumps(values, sort_keys=True) == data and all(
            _plain(v) and k not in _RESERVED and not k.startswith(("case:", "__"))
            for k, v in values.items())
        if flat:
            out.update(values)
        else:
            out[DATA_JSON] = data
    return out


def export_log(store: Store, process_id: str, path: str | Path, *,
               format: str | None = None) -> ExportReport:
    """Write every instance of `process_id` with its events to `path` (.xes, .xes.gz, .csv,
    .csv.gz, .parquet; or `format` = xes | csv | parquet). Raises DefinitionNotFound for a
    process never deployed or imported (before writing anything)."""
    path = Path(path)
    fmt = _format(path, format)
    check_process(store, process_id)
    case_keys: dict[str, None] = {}
    event_keys: dict[str, None] = {}
    for case, events in _cases(store, process_id):
        case_keys.update(dict.fromkeys(case))
        for event in events:
            event_keys.update(dict.fromkeys(event))
    columns = [CASE, *_EVENT_FIELDS, *(k for k in event_keys if k not in _EVENT_FIELDS),
               *(k for k in case_keys if k != CASE)]
    writer = {"csv": _write_csv, "xes": _write_xes, "parquet": _write_parquet}[fmt]
    cases, events_written = writer(path, columns, _cases(store, process_id))
    return ExportReport(process_id, str(path), fmt, cases, events_written)


def _open_text(path: Path, stack: ExitStack) -> IO[str]:
    if path.name.lower().endswith(".gz"):
        return stack.enter_context(gzip.open(path, "wt", encoding="utf-8", newline=""))
    return stack.enter_context(open(path, "w", encoding="utf-8", newline=""))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _write_csv(path: Path, columns: list[str],
               cases: Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]) -> tuple[int, int]:
    n_cases = n_events = 0
    with ExitStack() as stack:
        out = csv.writer(_open_text(path, stack))
        out.writerow(columns)
        for case, events in cases:
            n_cases += 1
            for event in events:
                n_events += 1
                row = {**case, **event}
                out.writerow([_cell(row.get(c)) for c in columns])
    return n_cases, n_events


def _write_parquet(path: Path, columns: list[str],
                   cases: Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]
                   ) -> tuple[int, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {TIME: pa.timestamp("us", tz="UTC"), PROPENSITY: pa.float64(),
             POLICY_VERSION: pa.int64()}
    schema = pa.schema([(c, types.get(c, pa.string())) for c in columns])
    n_cases = n_events = 0
    batch: dict[str, list[Any]] = {c: [] for c in columns}
    with pq.ParquetWriter(path, schema) as writer:
        def flush() -> None:
            if batch[CASE]:
                writer.write_table(pa.table(batch, schema=schema))
                for values in batch.values():
                    values.clear()

        for case, events in cases:
            n_cases += 1
            for event in events:
                n_events += 1
                row = {**case, **event}
                for c in columns:
                    batch[c].append(row.get(c))
            if len(batch[CASE]) >= _CHUNK:
                flush()
        flush()
    return n_cases, n_events


def _is_date(text: str) -> bool:
    """An ISO 8601 date-time that reads back as exactly this text."""
    if "T" not in text or len(text) < 16:
        return False
    try:
        return datetime.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def _xes_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, datetime) or (isinstance(value, str) and _is_date(value)):
        return "date"
    return "string"


def _xes_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _typed(row: dict[str, Any], blob: str, prefix: str) -> dict[str, Any]:
    """`row` plus the scalar values only its JSON column carries, so XES readers see them
    typed (the importer still rebuilds from the JSON)."""
    raw = row.get(blob)
    if raw is None:
        return row
    values = json.loads(raw)
    if not isinstance(values, dict):
        return row
    out = dict(row)
    for key, value in values.items():
        name = prefix + key
        if (name not in out and name not in _RESERVED and not key.startswith(("__", "case:"))
                and isinstance(value, str | int | float | bool) and value != ""):
            out[name] = value
    return out


def _write_xes(path: Path, columns: list[str],
               cases: Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]) -> tuple[int, int]:
    from lxml import etree

    n_cases = n_events = 0
    with ExitStack() as stack:
        raw: Any = (stack.enter_context(gzip.open(path, "wb"))
                    if path.name.lower().endswith(".gz")
                    else stack.enter_context(open(path, "wb")))
        xf = stack.enter_context(etree.xmlfile(raw, encoding="utf-8"))
        xf.write_declaration()
        with xf.element("log", {"xes.version": "1.0", "xes.features": "nested-attributes",
                                "xmlns": "http://www.xes-standard.org/"}):
            for name, prefix, uri in (
                    ("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
                    ("Time", "time", "http://www.xes-standard.org/time.xesext"),
                    ("Organizational", "org", "http://www.xes-standard.org/org.xesext"),
                    ("Lifecycle", "lifecycle", "http://www.xes-standard.org/lifecycle.xesext")):
                xf.write(etree.Element("extension", name=name, prefix=prefix, uri=uri))
            for case, events in cases:
                n_cases += 1
                trace = etree.Element("trace")
                for key, value in _typed(case, CONTEXT_JSON, "case:").items():
                    if value is not None:
                        etree.SubElement(trace, _xes_type(value), key=key[5:],
                                         value=_xes_value(value))
                for event in events:
                    n_events += 1
                    node = etree.SubElement(trace, "event")
                    for key, value in _typed(event, DATA_JSON, "").items():
                        if value is not None:
                            etree.SubElement(node, _xes_type(value), key=key,
                                             value=_xes_value(value))
                xf.write(trace)
    return n_cases, n_events
