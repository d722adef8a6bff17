"""Importing real event logs (the XES/CSV corpus, malformed and hostile files) into real stores."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from engine import DefinitionErrors, ManualClock, Store
from engine.runtime.queries import DEFINITION, INSTANCE, STEP_EVENT
from engine.store import trail
from learner import (
    ImportProgress,
    LogAlreadyImported,
    LogImportError,
    LogRejected,
    import_log,
    variants,
)
from nextmove import open_engine, open_store
from tests.conftest import LOGS  # the corpus logs as stored; `corpus_logs` has receipt.csv

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "fixtures" / "logs"
LIFEVANTAGE = REPO / "processes" / "lifevantage"

# file, cases, events, activities, variants (as pm4py counts them)
CORPUS = [
    ("running-example.xes", 6, 42, 8, 6),
    ("running-example.csv", 6, 42, 8, 6),
    ("08_receipt.xes.gz", 1434, 8577, 27, 116),
    ("receipt.csv", 1434, 8577, 27, 116),
]


@pytest.fixture
def store(db_url: str) -> Any:
    st = open_store(db_url)
    yield st
    st.dispose()


def counts(store: Store) -> tuple[int, ...]:
    """Definitions, instances, events and distinct step ids in the store."""
    with store.read() as conn:
        rows = [conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (DEFINITION, INSTANCE, STEP_EVENT)]
        rows.append(conn.execute(
            select(func.count(func.distinct(STEP_EVENT.c.step_id)))).scalar_one())
    return tuple(rows)


def timelines(store: Store) -> dict[str, tuple[Any, ...]]:
    """Per case: its context and every event (step, time, actor, data) in log order."""
    query = (select(INSTANCE.c.prospect_id, INSTANCE.c.context, INSTANCE.c.distributor_id,
                    STEP_EVENT.c.step_id, STEP_EVENT.c.kind, STEP_EVENT.c.at,
                    STEP_EVENT.c.actor, STEP_EVENT.c.data)
             .join(STEP_EVENT, STEP_EVENT.c.instance_id == INSTANCE.c.id)
             .order_by(INSTANCE.c.id, STEP_EVENT.c.id))
    out: dict[str, list[Any]] = {}
    with store.read() as conn:
        for case, context, distributor, *event in conn.execute(query):
            out.setdefault(case, [json.loads(context), distributor]).append(tuple(event))
    return {k: tuple(v) for k, v in out.items()}


@pytest.mark.parametrize(("name", "n_cases", "n_events", "n_activities", "n_variants"), CORPUS)
def test_corpus_logs_import_with_exact_counts(
    store: Store, corpus_logs: Path, name: str, n_cases: int, n_events: int, n_activities: int,
    n_variants: int,
) -> None:
    seen: list[ImportProgress] = []
    report = import_log(store, corpus_logs / name, "history", progress=seen.append)
    assert (report.cases_written, report.events_written, len(report.activities)) == (
        n_cases, n_events, n_activities)
    size = (corpus_logs / name).stat().st_size
    assert [p for p in seen if p.phase == "read"][-1] == ImportProgress("read", size, size,
                                                                        "bytes")
    assert seen[-1] == ImportProgress("write", n_events, n_events, "events")
    assert report.problems == () and report.events_read == n_events
    assert report.definition_version == 1
    assert counts(store) == (1, n_cases, n_events, n_activities)
    found = variants(store, "history")
    assert len(found) == n_variants
    assert sum(v.cases for v in found) == n_cases
    assert all(v.rate is None and v.p_value is None for v in found)


def test_running_example_csv_and_xes_give_identical_timelines(tmp_path: Path) -> None:
    stores = [open_store(f"sqlite:///{tmp_path / f'{n}.db'}") for n in ("csv", "xes")]
    import_log(stores[0], LOGS / "running-example.csv", "history")
    import_log(stores[1], LOGS / "running-example.xes", "history")
    from_csv, from_xes = (timelines(s) for s in stores)
    assert sorted(from_csv) == ["1", "2", "3", "4", "5", "6"]
    assert from_csv == from_xes
    context, distributor, first, *_ = from_csv["3"]
    assert context == {"creator": "Fluxicon Nitro"} and distributor == "Pete"
    # 2010-12-30 14:32 +01:00, stored as naive UTC
    assert first[:4] == ("register request", "completed", datetime(2010, 12, 30, 13, 32), "Pete")
    assert json.loads(first[4]) == {"Activity": "register request", "Costs": "50",
                                    "Resource": "Pete"}
    for s in stores:
        s.dispose()


def test_receipt_xes_and_csv_give_the_same_variants(tmp_path: Path, corpus_logs: Path) -> None:
    found = []
    for name in ("08_receipt.xes.gz", "receipt.csv"):
        st = open_store(f"sqlite:///{tmp_path / (name + '.db')}")
        import_log(st, corpus_logs / name, "receipt")
        found.append([(v.steps, v.cases) for v in variants(st, "receipt")])
        st.dispose()
    assert found[0] == found[1]
    assert found[0][0][1] == 713  # the most common path, as pm4py reports it


def test_parquet_round_trip(store: Store, tmp_path: Path) -> None:
    with open(LOGS / "running-example.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    table = pa.table({
        "case:concept:name": pa.array([int(r["case:concept:name"]) for r in rows]),
        "concept:name": [r["concept:name"] for r in rows],
        "time:timestamp": pa.array([datetime.fromisoformat(r["time:timestamp"]) for r in rows],
                                   type=pa.timestamp("us", tz="UTC")),
        "org:resource": [r["org:resource"] for r in rows],
        "case:creator": [r["case:creator"] for r in rows],
    })
    path = tmp_path / "running-example.parquet"
    pq.write_table(table, path, row_group_size=10)
    seen: list[ImportProgress] = []
    report = import_log(store, path, "history", progress=seen.append)
    assert (report.format, report.cases_written, report.events_written) == ("parquet", 6, 42)
    assert len(report.activities) == 8 and len(variants(store, "history")) == 6
    assert seen[-1] == ImportProgress("write", 42, 42, "events")
    assert any(p.phase == "read" and p.unit == "rows" and p.total == 42 for p in seen)
    other = open_store(f"sqlite:///{tmp_path / 'csv.db'}")
    import_log(other, LOGS / "running-example.csv", "history")
    strip = {k: (v[0], v[1], *(e[:4] for e in v[2:])) for k, v in timelines(other).items()}
    assert {k: (v[0], v[1], *(e[:4] for e in v[2:])) for k, v in timelines(store).items()} \
        == strip
    other.dispose()


def test_malformed_csv_rows_are_reported_by_row_and_line_and_their_cases_skipped_whole(
        store: Store) -> None:
    report = import_log(store, BAD / "bad_rows.csv", "bad")
    assert [(p.row, p.line) for p in report.problems] == [
        (3, 4), (4, 5), (5, 6), (6, 7), (7, 8), (10, 13)]
    messages = [p.message for p in report.problems]
    assert "missing case id" in messages[0] and "bad timestamp 'yesterday'" in messages[1]
    assert "bad propensity" in messages[2] and "missing activity" in messages[3]
    assert "4 fields, the header has 5" in messages[4] and "not-a-date" in messages[5]
    # c2 and c3 each have a bad row: none of their events is written, not even the good ones
    assert report.cases_skipped == ("c2", "c3")
    assert (report.events_read, report.events_written, report.events_skipped) == (10, 2, 8)
    assert counts(store)[1:3] == (1, 2)
    assert set(timelines(store)) == {"c1"}


def test_reject_writes_nothing(store: Store) -> None:
    with pytest.raises(LogRejected) as caught:
        import_log(store, BAD / "bad_rows.csv", "bad", on_error="reject")
    assert len(caught.value.problems) == 6
    assert "row 3 (line 4)" in str(caught.value)
    assert counts(store) == (0, 0, 0, 0)
    # the same file imports once skipping is allowed: nothing was recorded as imported
    assert import_log(store, BAD / "bad_rows.csv", "bad").events_written == 2


def test_malformed_xes_reported_by_trace_and_event(store: Store) -> None:
    report = import_log(store, BAD / "bad_events.xes", "bad")
    assert [(p.trace, p.event, p.line) for p in report.problems] == [
        (1, 2, 9), (1, 3, 13), (2, 1, 19), (3, 1, 26), (5, None, 42)]
    assert "already used by trace 1" in report.problems[3].message
    assert report.problems[4].message == "trace has no events"
    assert (report.cases_written, report.events_written) == (1, 2)
    with pytest.raises(LogRejected):
        import_log(store, BAD / "bad_events.xes", "other", on_error="reject")
    assert counts(store)[:3] == (1, 1, 2)


@pytest.mark.parametrize("name", ["xxe.xes", "billion_laughs.xes"])
def test_hostile_xes_is_refused(store: Store, tmp_path: Path, name: str) -> None:
    zipped = tmp_path / (name + ".gz")
    with open(BAD / name, "rb") as src, gzip.open(zipped, "wb") as dst:
        shutil.copyfileobj(src, dst)
    for path in (BAD / name, zipped):
        with pytest.raises(LogImportError) as caught:
            import_log(store, path, "evil")
        assert caught.value.reason == "unsafe-xml" and caught.value.line == 2
    # UTF-16 would hide the declarations from the byte scan: refused as well
    wide = tmp_path / ("wide_" + name)
    wide.write_bytes((BAD / name).read_text().encode("utf-16"))
    with pytest.raises(LogImportError, match="must be UTF-8"):
        import_log(store, wide, "evil")
    assert counts(store) == (0, 0, 0, 0)


def test_missing_column_and_unknown_format_are_clear(store: Store, tmp_path: Path) -> None:
    with pytest.raises(LogImportError, match="missing column 'case:concept:name'"):
        import_log(store, BAD / "missing_column.csv", "x")
    other = tmp_path / "log.json"
    other.write_text("{}")
    with pytest.raises(LogImportError, match="cannot tell the log format"):
        import_log(store, other, "x")
    with pytest.raises(LogImportError, match="no such file"):
        import_log(store, tmp_path / "absent.csv", "x")


def test_same_file_twice_is_refused_and_overlapping_cases_are_reported(store: Store) -> None:
    import_log(store, LOGS / "running-example.xes", "history")
    with pytest.raises(LogAlreadyImported) as caught:
        import_log(store, LOGS / "running-example.xes", "history")
    assert caught.value.version == 1
    # the same cases from another file (the CSV export of the same log): the same content,
    # so each is recognised as already imported and none is written twice
    report = import_log(store, LOGS / "running-example.csv", "history", on_error="reject")
    assert report.cases_written == 0 and report.definition_version is None
    assert (report.cases_unchanged, report.problems) == (6, ())
    assert counts(store) == (1, 6, 42, 8)
    # another process may hold the same log
    assert import_log(store, LOGS / "running-example.xes", "copy").cases_written == 6


def test_deployed_process_is_not_an_import_target(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'nm.db'}",
                         clock=ManualClock(datetime(2026, 1, 5)), recommend=False)
    engine.deploy([LIFEVANTAGE])
    with pytest.raises(LogImportError) as caught:
        import_log(engine.store, LOGS / "running-example.xes", "prospect_journey")
    assert caught.value.reason == "deployed-process"
    assert "prospect_journey_history" in str(caught.value)
    engine.store.dispose()


def test_an_imported_log_is_not_a_deploy_target(tmp_path: Path) -> None:
    """The converse: a map deployed under an imported log's process id would have its live
    instances counted with the log's cases in every view. Nothing of the deploy is stored."""
    engine = open_engine(f"sqlite:///{tmp_path / 'nm.db'}",
                         clock=ManualClock(datetime(2026, 1, 5)), recommend=False)
    import_log(engine.store, LOGS / "running-example.xes", "history")
    plain = tmp_path / "history.yaml"
    plain.write_text("process: history\nsteps:\n  - id: one\n", encoding="utf-8")
    before = counts(engine.store)
    with pytest.raises(DefinitionErrors) as caught:
        engine.deploy([plain, LIFEVANTAGE / "prospect_journey.yaml"])
    (problem,) = caught.value.problems
    assert (problem.code, problem.file) == ("process-is-a-log", str(plain))
    assert "'history' holds an imported event log" in problem.message
    assert "'history_journey'" in problem.message
    assert counts(engine.store) == before  # the journey beside it was not stored either
    engine.store.dispose()


def test_definition_row_is_an_honest_marker(store: Store) -> None:
    clock = ManualClock(datetime(2026, 2, 1, 12, 0))
    report = import_log(store, LOGS / "running-example.xes", "history", clock=clock)
    with store.read() as conn:
        row = conn.execute(select(DEFINITION)).mappings().one()
        instance = conn.execute(select(INSTANCE).where(INSTANCE.c.prospect_id == "3")
                                ).mappings().one()
    assert (row["source_format"], row["documents"], row["content_hash"]) == (
        "imported-log", "{}", report.content_hash)
    assert row["deployed_at"] == datetime(2026, 2, 1, 12, 0)
    assert [s["id"] for s in json.loads(row["steps"])] == list(report.activities)
    assert instance["status"] == "completed" and instance["active_key"] is None
    # imported events join the tamper-evident trail like live ones
    assert trail.verify(store) == (42, [])
    with store.write() as conn:
        conn.execute(STEP_EVENT.update().where(STEP_EVENT.c.id == 5).values(actor="Mallory"))
    checked, breaks = trail.verify(store)
    assert [b.event_id for b in breaks] == [5]
    assert instance["created_at"] == datetime(2010, 12, 30, 13, 32)
    assert instance["updated_at"] == datetime(2011, 1, 15, 9, 45)


def test_import_and_variants_on_every_backend(db_url: str, corpus_logs: Path) -> None:
    store = open_store(db_url)
    report = import_log(store, corpus_logs / "receipt.csv", "receipt")
    assert (report.cases_written, report.events_written) == (1434, 8577)
    found = variants(store, "receipt", outcome="T10 Determine necessity to stop indication")
    assert len(found) == 116 and sum(v.cases for v in found) == 1434
    assert found[0].cases == 713 and found[0].rate is not None
    with pytest.raises(LogAlreadyImported):
        import_log(store, corpus_logs / "receipt.csv", "receipt")
    store.dispose()


def test_times_without_a_zone_are_read_as_utc_and_counted(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "local.csv"
    path.write_text("case:concept:name,concept:name,time:timestamp\n"
                    "c1,register,2026-01-05 09:00\n"
                    "c1,check,2026-01-05T10:00:00+01:00\n"
                    "c1,decide,2026-01-05T11:00:00Z\n"
                    "c1,close,2026-01-05T12:30:00\n")
    report = import_log(store, path, "local")
    assert report.timestamps_without_zone == 2
    assert report.to_dict()["timestamps_without_zone"] == 2
    times = [e[2] for e in timelines(store)["c1"][2:]]
    assert times == [datetime(2026, 1, 5, 9), datetime(2026, 1, 5, 9),
                     datetime(2026, 1, 5, 11), datetime(2026, 1, 5, 12, 30)]
