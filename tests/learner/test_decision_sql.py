"""The decision table the database builds in one pass equals the one the Python walk over
each case's events built (`_decisions_reference`), on SQLite and PostgreSQL, and the read's
two plans (window passes, index seeks) give the same rows on both."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert, select

from engine import Store
from engine.runtime.queries import DEFINITION, INSTANCE, STEP_EVENT
from learner import decisions
from learner._read_decisions import decision_rows
from learner.dataset import DecisionTable
from nextmove import open_store
from simulator import SimulationConfig, simulate
from tests.learner._decisions_reference import python_decisions

JOURNEY = "prospect_journey"
T0 = datetime(2026, 1, 5, 9, 0)


def assert_same(new: DecisionTable, old: DecisionTable) -> None:
    assert len(new) == len(old)
    assert new.outcome == old.outcome and new.horizon == old.horizon
    for name, values in old.columns.items():
        got = new.columns[name]
        assert got.dtype == values.dtype, name
        if values.dtype.kind == "f":
            assert np.array_equal(got, values, equal_nan=True), name
        else:
            assert got.tolist() == values.tolist(), name
    assert list(new.columns) == list(old.columns)


def _event(iid: int, step: str, kind: str, at: datetime, hook: str | None = None,
           shown: str | None = None, used: str | None = None,
           mu: float | None = None, version: int | None = None) -> dict[str, Any]:
    return {"instance_id": iid, "step_id": step, "step_name": step, "kind": kind,
            "actor": None, "hook": hook, "content_shown": shown, "content_used": used,
            "propensity": mu, "policy_version": version, "data": None, "at": at}


def tricky_log(store: Store) -> None:
    """Cases the simulation rarely makes: two offers before one act, an act with no offer
    (an imported log's), an act with content but nothing shown, a hooked act with neither,
    the outcome before the start, at the horizon's edge to the microsecond, and twice."""
    with store.read() as conn:
        definition = conn.execute(select(DEFINITION.c.id).where(
            DEFINITION.c.process_id == JOURNEY)).scalars().first()
    us = timedelta(microseconds=1)
    heads = [{"definition_id": definition, "process_id": JOURNEY, "prospect_id": f"t{i}",
              "distributor_id": "dt", "status": "completed", "version": 1,
              "context": json.dumps({"market": "US", "score": i, "tier": [None, "a", 3][i % 3]}
                                    if i != 2 else {}),
              "waiting": "[]", "state": "{}", "created_at": T0 + i * us,
              "updated_at": T0} for i in range(5)]
    with store.write() as conn:
        ids = conn.execute(insert(INSTANCE).returning(INSTANCE.c.id), heads).scalars().all()
        a, b, c, d, e = ids
        h = timedelta(hours=1)
        conn.execute(insert(STEP_EVENT), [
            _event(a, "Event_start", "completed", T0),
            _event(a, "s1", "entered", T0 + h, "hk", "x", None, 0.5, 1),
            _event(a, "s1", "entered", T0 + 2 * h, "hk", "y", None, 0.25, 2),
            _event(a, "s1", "completed", T0 + 3 * h + 7 * us, "hk", None, "y"),
            _event(a, "s1", "completed", T0 + 4 * h, "hk", "z", "z", 0.2, None),
            _event(a, "s2", "entered", T0 + 4 * h, None, "q", None, 0.5, 1),
            _event(a, "s2", "skipped", T0 + 5 * h, "hk2", None, None, None, None),
            _event(a, "s2", "varied", T0 + 5 * h, "hk2", None, "w", None, 3),
            _event(a, "Event_end", "completed", T0 + 7 * 24 * h),
            _event(b, "s1", "timer", T0 + h),
            _event(b, "s1", "entered", T0 + h, "hk", "x", None, None, 1),
            _event(b, "s1", "completed", T0 + 2 * h, "hk", None, None, 0.75, None),
            _event(b, "Event_end", "completed", T0 - h),
            _event(c, "s1", "entered", T0, "hk", "x", None, 1.0, 1),
            _event(c, "s1", "skipped", T0 + h, "hk"),
            _event(c, "Event_end", "completed", T0 + 7 * 24 * h + 3 * us),
            _event(d, "s1", "completed", T0 + h, "hk", "x", "x", 0.5, 1),
            _event(d, "Event_end", "outcome", T0 + 7 * 24 * h + 3 * us),
            _event(d, "s1", "completed", T0 + 8 * 24 * h, "hk", "y", "y", 0.5, 1),
            _event(d, "Event_end", "completed", T0 + 9 * 24 * h),
        ])


@pytest.fixture
def log(db_url: str) -> Iterator[Store]:
    store = open_store(db_url)
    simulate(store, SimulationConfig(distributors=5, days=14, seed=5), policy="catalog")
    tricky_log(store)
    yield store
    store.dispose()


def test_the_sql_table_equals_the_python_one(log: Store) -> None:
    for outcome, horizon in [("customer_order", None), ("Event_end", timedelta(days=7)),
                             ("customer_order", timedelta(days=7)),
                             ("customer_order", timedelta(days=3))]:
        new = decisions(log, JOURNEY, outcome=outcome, horizon=horizon)
        old = python_decisions(log, JOURNEY, outcome=outcome, horizon=horizon)
        assert len(new) > 50 and int(new.reward.sum()) < len(new)
        if horizon is None:
            assert int(new.reward.sum()) > 0
        assert_same(new, old)


def test_observed_until_drops_the_same_cases(log: Store) -> None:
    until = T0 + timedelta(days=10)
    for horizon in (timedelta(days=7), None):
        new = decisions(log, JOURNEY, outcome="Event_end", horizon=horizon,
                        observed_until=until)
        old = python_decisions(log, JOURNEY, outcome="Event_end", horizon=horizon,
                               observed_until=until)
        assert_same(new, old)


def test_a_process_without_decisions_gives_an_empty_table(log: Store) -> None:
    new = decisions(log, JOURNEY,
                    outcome="Event_end", observed_until=T0 - timedelta(days=30),
                    horizon=timedelta(days=1))
    old = python_decisions(log, JOURNEY, outcome="Event_end",
                           observed_until=T0 - timedelta(days=30), horizon=timedelta(days=1))
    assert len(new) == 0
    assert_same(new, old)


def test_both_plans_read_the_same_rows(log: Store) -> None:
    seeks, windows = (decision_rows(log, JOURNEY, plan=plan) for plan in ("seeks", "windows"))
    assert seeks.event_id.size > 50
    assert seeks.offered_us.tolist() != seeks.acted_us.tolist()  # offers read from entered
    for field in dataclasses.fields(seeks):
        a, b = getattr(seeks, field.name), getattr(windows, field.name)
        assert a.dtype == b.dtype, field.name
        assert np.array_equal(a, b, equal_nan=True) if a.dtype.kind == "f" else \
            a.tolist() == b.tolist(), field.name
