"""XES as process-mining tools read it: PM4Py sees each step once (start and complete paired by
`lifecycle:transition`), and typed attributes keep their types through export and import."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pm4py
import pytest
from pm4py.objects.log.util import interval_lifecycle
from sqlalchemy import select

from engine import ManualClock, Store
from engine.runtime.queries import DEFINITION, INSTANCE, STEP_EVENT
from learner import export_log, import_log
from nextmove import open_engine, open_store
from simulator import SimulationConfig, simulate
from tests.analytics.test_funnel import LIFEVANTAGE

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pm4py's "install r4pm"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("sim") / "sim.db"
    simulate(str(path), SimulationConfig(distributors=8, days=20, seed=3))
    store = open_store(f"sqlite:///{path}")
    yield store
    store.dispose()


def _logged(store: Store, process_id: str) -> tuple[set[str], Counter[str], set[str]]:
    """The map's step ids, closed visits per step, and the steps the log mentions."""
    e = STEP_EVENT.c
    with store.read() as conn:
        steps = {s["id"] for text in conn.execute(
            select(DEFINITION.c.steps).where(DEFINITION.c.process_id == process_id)).scalars()
            for s in json.loads(text)}
        rows = conn.execute(
            select(e.step_id, e.kind).join(INSTANCE, INSTANCE.c.id == e.instance_id)
            .where(INSTANCE.c.process_id == process_id)).all()
    closed = Counter(step for step, kind in rows if kind not in ("entered", "outcome"))
    return steps, closed, {step for step, kind in rows if kind != "outcome"}


@pytest.mark.parametrize("process_id", ["prospect_journey", "distributor_onboarding"])
def test_pm4py_counts_each_step_once(simulated: Store, tmp_path: Path, process_id: str) -> None:
    path = tmp_path / "log.xes"
    export_log(simulated, process_id, path)
    map_steps, closed, seen = _logged(simulated, process_id)
    frame = pm4py.read_xes(str(path))
    activities = set(pm4py.get_event_attribute_values(frame, "concept:name"))
    steps = {a for a in activities if not a.startswith("outcome:")}
    assert steps == seen and steps <= map_steps
    assert set(frame["lifecycle:transition"]) <= {"start", "complete", "manualskip", "ate_abort"}
    # start + complete pair into one activity instance per visit, not two
    intervals = interval_lifecycle.to_interval(pm4py.read_xes(str(path),
                                                              return_legacy_log_object=True))
    instances = Counter(ev["concept:name"] for trace in intervals for ev in trace
                        if ev.get("lifecycle:transition") != "manualskip"
                        and not ev["concept:name"].startswith("outcome:"))
    skipped = Counter(a for a, t in zip(frame["concept:name"], frame["lifecycle:transition"],
                                        strict=True) if t == "manualskip")
    assert instances + skipped == closed
    # outcomes named like a step (customer_order) are their own activity, not a second count
    if process_id == "prospect_journey":
        assert "outcome:customer_order" in activities


EXTERNAL = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0" xmlns="http://www.xes-standard.org/">
  <trace>
    <string key="concept:name" value="c1"/>
    <int key="age" value="41"/>
    <float key="budget" value="12.5"/>
    <boolean key="vip" value="true"/>
    <date key="since" value="2025-03-01T08:30:00+00:00"/>
    <string key="market" value="US"/>
    <event>
      <string key="concept:name" value="call"/>
      <string key="lifecycle:transition" value="start"/>
      <date key="time:timestamp" value="2026-01-05T09:00:00+00:00"/>
    </event>
    <event>
      <string key="concept:name" value="call"/>
      <string key="lifecycle:transition" value="complete"/>
      <date key="time:timestamp" value="2026-01-05T10:00:00+00:00"/>
      <int key="minutes" value="60"/>
      <float key="score" value="0.75"/>
      <boolean key="answered" value="false"/>
      <date key="callback" value="2026-01-07T09:00:00+00:00"/>
    </event>
  </trace>
</log>
"""
TYPES = {"age": int, "budget": float, "vip": bool, "since": datetime, "market": str}
EVENT_TYPES = {"minutes": int, "score": float, "answered": bool, "callback": datetime}


def _trace_types(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    log = pm4py.read_xes(str(path), return_legacy_log_object=True)
    trace = log[0]
    done = next(ev for ev in trace if ev["lifecycle:transition"] == "complete")
    return ({k: type(trace.attributes[k]) for k in TYPES},
            {k: type(done[k]) for k in EVENT_TYPES})


def test_external_types_survive_import_and_export(tmp_path: Path) -> None:
    source = tmp_path / "in.xes"
    source.write_text(EXTERNAL)
    assert _trace_types(source) == (TYPES, EVENT_TYPES)
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    report = import_log(store, source, "calls")
    assert report.problems == ()
    with store.read() as conn:
        kinds = conn.execute(select(STEP_EVENT.c.kind).order_by(STEP_EVENT.c.id)).scalars()
        assert list(kinds) == ["entered", "completed"]  # lifecycle:transition read as kind
        context = json.loads(conn.execute(select(INSTANCE.c.context)).scalar_one())
    assert context["age"] == 41 and context["vip"] is True and context["budget"] == 12.5
    exported = tmp_path / "out.xes"
    export_log(store, "calls", exported)
    assert _trace_types(exported) == (TYPES, EVENT_TYPES)
    frame = pm4py.read_xes(str(exported))
    assert list(frame["lifecycle:transition"]) == ["start", "complete"]
    store.dispose()


def test_engine_context_types_reach_xes_and_come_back(tmp_path: Path) -> None:
    clock = ManualClock(datetime.fromisoformat("2026-01-05T09:00:00+00:00"))
    engine = open_engine(f"sqlite:///{tmp_path / 'e.db'}", clock=clock, rng=random.Random(1))
    engine.deploy([LIFEVANTAGE])
    context = {"market": "US", "locale": "en-US", "age": 41, "budget": 12.5, "vip": True,
               "since": "2025-03-01T08:30:00+00:00"}
    engine.start("prospect_journey", "p", "D", context, actor="D")
    path = tmp_path / "log.xes.gz"
    export_log(engine.store, "prospect_journey", path)
    trace = pm4py.read_xes(str(path), return_legacy_log_object=True)[0]
    assert {k: type(trace.attributes[k]) for k in TYPES} == TYPES
    target = open_store(f"sqlite:///{tmp_path / 'copy.db'}")
    import_log(target, path, "copy")
    with target.read() as conn:
        assert json.loads(conn.execute(select(INSTANCE.c.context)).scalar_one()) == context
    target.dispose()
    engine.store.dispose()
