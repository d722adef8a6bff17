"""Export → import round trips: the engine's own log and the imported real logs come back
with identical timelines from XES, CSV and Parquet, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine import ManualClock, ProspectRef, Store
from engine.runtime.queries import INSTANCE, STEP_EVENT
from learner import export_log, import_log, variants
from nextmove import open_engine, open_store
from tests.analytics.test_funnel import LIFEVANTAGE, four_prospects
from tests.conftest import LOGS

FORMATS = ("xes", "xes.gz", "csv", "parquet")


def timelines(store: Store, process_id: str) -> dict[str, Any]:
    """Per case: context, distributor and every event with every logged field, in order."""
    e = STEP_EVENT.c
    query = (select(INSTANCE.c.prospect_id, INSTANCE.c.context, INSTANCE.c.distributor_id,
                    INSTANCE.c.created_at, e.step_id, e.step_name, e.kind, e.at, e.actor,
                    e.data, e.hook, e.content_shown, e.content_used, e.propensity,
                    e.policy_version)
             .join(STEP_EVENT, e.instance_id == INSTANCE.c.id)
             .where(INSTANCE.c.process_id == process_id)
             .order_by(INSTANCE.c.id, e.id))
    out: dict[str, list[Any]] = {}
    with store.read() as conn:
        for case, context, distributor, created, *event in conn.execute(query):
            out.setdefault(case, [json.loads(context), distributor, created]).append(
                tuple(event))
    return out


def round_trip(source: Store, process_id: str, target: Store, path: Path) -> Any:
    report = export_log(source, process_id, path)
    imported = import_log(target, path, "copy")
    assert imported.problems == ()
    assert (imported.cases_written, imported.events_written) == (report.cases, report.events)
    return report


@pytest.mark.parametrize("suffix", FORMATS)
def test_engine_log_round_trips(db_url: str, clock: ManualClock, tmp_path: Path,
                                suffix: str) -> None:
    store = open_store(db_url)
    engine = open_engine(store, clock=clock, rng=random.Random(5))
    engine.deploy([LIFEVANTAGE])
    four_prospects(engine, clock)
    engine.vary(ProspectRef("d"), "add_contact", "called instead", data={"score": 3, "ok": True})
    original = timelines(store, "prospect_journey")
    target = open_store(f"sqlite:///{tmp_path / 'copy.db'}")
    report = round_trip(store, "prospect_journey", target, tmp_path / f"log.{suffix}")
    assert (report.cases, report.format) == (4, suffix.split(".")[0])
    assert timelines(target, "copy") == original
    assert sum(len(v) - 3 for v in original.values()) == report.events
    assert [(v.steps, v.cases) for v in variants(target, "copy")] == [
        (v.steps, v.cases) for v in variants(store, "prospect_journey")]
    target.dispose()
    store.dispose()


@pytest.mark.parametrize(("name", "cases", "events", "n_variants"), [
    ("running-example.xes", 6, 42, 6),
    ("running-example.csv", 6, 42, 6),
    ("08_receipt.xes.gz", 1434, 8577, 116),
])
@pytest.mark.parametrize("suffix", ["xes.gz", "csv", "parquet"])
def test_imported_real_logs_round_trip(db_url: str, tmp_path: Path, name: str, cases: int,
                                       events: int, n_variants: int, suffix: str) -> None:
    store = open_store(db_url)
    import_log(store, LOGS / name, "history")
    target = open_store(f"sqlite:///{tmp_path / 'copy.db'}")
    report = round_trip(store, "history", target, tmp_path / f"log.{suffix}")
    assert (report.cases, report.events) == (cases, events)
    assert timelines(target, "copy") == timelines(store, "history")
    assert len(variants(target, "copy")) == n_variants
    target.dispose()
    store.dispose()


def test_export_refuses_an_unknown_extension(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ValueError, match="cannot tell the format"):
        export_log(store, "p", tmp_path / "log.txt")
    store.dispose()
