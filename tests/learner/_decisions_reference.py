"""The decision table as `learner.dataset.decisions` built it before the database did: a
Python walk over each case's events. Kept as the reference the SQL read model must equal."""

from __future__ import annotations

from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

import numpy as np

from engine.store import ACTED_KINDS, PATH_KINDS, EventKind
from engine.store.database import Store
from engine.store.steplog import Row
from learner.dataset import _FIXED, DecisionTable, _context_column, _stream


def python_decisions(
    store: Store, process_id: str, *, outcome: str, horizon: timedelta | None = None,
    observed_until: datetime | None = None,
) -> DecisionTable:
    table: list[tuple[Any, ...]] = []  # one tuple per decision, in _FIXED order
    contexts: list[dict[str, Any]] = []
    for header, rows, last in _stream(store, process_id, outcome, horizon, observed_until):
        started = header.started_at
        entered: dict[str, Row] = {}
        previous = started
        path_index = 0
        for i, row in enumerate(rows):
            step_id, kind, at, hook = row[0], row[1], row[2], row[3]
            if kind == EventKind.ENTERED:
                if hook is not None:
                    entered[step_id] = row
                continue
            if kind in ACTED_KINDS and hook is not None:
                offer = entered.pop(step_id, None) or row
                shown, used = offer[4], row[5]
                if shown is not None or used is not None:
                    propensity = offer[6] if offer[6] is not None else row[6]
                    version = offer[7] if offer[7] is not None else row[7]
                    table.append((
                        header.case_id, header.instance_id, header.distributor_id, hook,
                        step_id, shown, np.nan if propensity is None else propensity,
                        -1 if version is None else version, used, kind, int(last >= i),
                        (at - previous).total_seconds() / 3600,
                        (offer[2] - started).total_seconds() / 3600, path_index, offer[2], at))
                    contexts.append(header.context)
            if kind in PATH_KINDS:
                previous = at
                path_index += 1
    return _table(outcome, horizon, table, contexts)


_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_DTYPES: dict[str, Any] = {
    "instance_id": np.int64, "propensity": np.float64, "policy_version": np.int64,
    "reward": np.int8, "hours_since_previous_step": np.float64, "hours_since_start": np.float64,
    "step_index": np.int64, "at": "datetime64[us]", "acted_at": "datetime64[us]"}


def _table(outcome: str, horizon: timedelta | None, table: list[tuple[Any, ...]],
           contexts: list[dict[str, Any]]) -> DecisionTable:
    arrays = {}
    for j, name in enumerate(_FIXED):
        values = list(map(itemgetter(j), table))  # faster than zip(*table) on long tables
        dtype = _DTYPES.get(name)
        if dtype == "datetime64[us]":  # via integers: numpy converts datetimes slowly
            array = np.array([(v - _EPOCH) // _MICROSECOND for v in values],
                             dtype=np.int64).view(dtype)
        elif dtype is None:
            array = np.empty(len(values), dtype=object)
            array[:] = values
        else:
            array = np.array(values, dtype=dtype)
        arrays[name] = array
    keys = sorted({key for ctx in {id(c): c for c in contexts}.values() for key in ctx})
    context = {key: _context_column([ctx.get(key) for ctx in contexts]) for key in keys}
    return DecisionTable(outcome, horizon, **arrays, context=context)


