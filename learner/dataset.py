"""The event log as learning data: cases with their outcome, and a table of content decisions.

The outcome is named by the user, and may be either
* a step id (e.g. `first_sale`, or an activity of an imported log): it happened when the step
  was completed or varied (or a timer/message event with that id fired), or
* an outcome name: `outcome` events (kind "outcome", step_id = the name: `sale`,
  `customer_order`, `distributor_enrolled`), or
* several of them joined by "+" (`customer_order+distributor_enrolled`, the map's converting
  outcomes as `analytics.measures` reads them): any of them counts.
A case converted when the first such event lies within `horizon` of the case's start (no
horizon: any time). `observed_until` drops cases whose horizon had not passed by then: their
outcome is not known yet, and counting them as failures would bias every rate down.

Both functions stream the log in chunks of plain tuples (instances in id order, events in id
order), so they scale to millions of events without ORM objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np

from engine.store import ACTED_KINDS, PATH_KINDS, REACHED_KINDS, EventKind
from engine.store.database import Store
from engine.store.steplog import Header, Row, check_outcome, instances, outcome_names, within


class Event(NamedTuple):
    """One step_event of a case, in log order. `at` is timezone-aware UTC."""

    step_id: str
    kind: str  # entered | completed | skipped | varied | cancelled | timer | message | outcome
    at: datetime
    hook: str | None
    content_shown: str | None
    content_used: str | None
    propensity: float | None
    policy_version: int | None


@dataclass(frozen=True)
class Case:
    """One instance (a prospect's journey, or a case of an imported log) and its outcome."""

    case_id: str  # the prospect id (imported logs: case:concept:name)
    instance_id: int
    distributor_id: str
    context: dict[str, Any]
    started_at: datetime  # aware UTC
    steps: tuple[Event, ...]  # every event of the instance, in log order
    outcome_at: datetime | None  # the first outcome within the horizon of the start
    converted: bool


def _observed(header: Header, horizon: timedelta | None, until: datetime | None) -> bool:
    if until is None or horizon is None:
        return True
    limit = until.astimezone(UTC).replace(tzinfo=None) if until.tzinfo else until
    return header.started_at + horizon <= limit


def _stream(store: Store, process_id: str, outcome: str, horizon: timedelta | None,
            observed_until: datetime | None) -> Iterator[tuple[Header, list[Row], int]]:
    """Instances, their events and the last position of an outcome within the horizon."""
    check_outcome(store, process_id, outcome)
    names = outcome_names(outcome)
    for header, rows in instances(store, process_id):
        if not _observed(header, horizon, observed_until):
            continue
        last = -1
        for i, row in enumerate(rows):
            if row[0] in names and row[1] in REACHED_KINDS and within(
                    header.started_at, row[2], horizon):
                last = i
        yield header, rows, last


def cases(
    store: Store, process_id: str, *, outcome: str, horizon: timedelta | None = None,
    observed_until: datetime | None = None,
) -> list[Case]:
    """Every case of the process, in instance order, with its events and outcome.

    Raises UnknownOutcome if `outcome` is neither a step of the process nor an outcome event
    recorded for it.
    """
    out = []
    names = outcome_names(outcome)
    for header, rows, _last in _stream(store, process_id, outcome, horizon, observed_until):
        started = header.started_at
        outcome_at = None
        for row in rows:
            if row[0] in names and row[1] in REACHED_KINDS and row[2] >= started:
                if within(started, row[2], horizon):
                    outcome_at = row[2].replace(tzinfo=UTC)
                break
        steps = tuple(Event(r[0], r[1], r[2].replace(tzinfo=UTC), *r[3:]) for r in rows)
        out.append(Case(header.case_id, header.instance_id, header.distributor_id,
                        header.context, started.replace(tzinfo=UTC), steps, outcome_at,
                        outcome_at is not None))
    return out


_FIXED = ("case_id", "instance_id", "distributor_id", "hook", "step_id", "shown", "propensity",
          "policy_version", "used", "action", "reward", "hours_since_previous_step",
          "hours_since_start", "step_index", "at", "acted_at")


@dataclass(frozen=True, eq=False)
class DecisionTable:
    """One row per content decision at a hooked step, as numpy arrays of equal length.

    case_id, distributor_id   str (object arrays)
    instance_id               int64
    hook, step_id             str: the content slot and the step it belongs to
    shown                     str or None: what the card offered (the logged policy's pick)
    propensity                float64: the probability the logging policy gave `shown`;
                              NaN when not logged
    policy_version            int64: the policy version that ranked the card; -1 if unknown
    used                      str or None: the content the contractor used (None when they
                              skipped, or acted without content)
    action                    str: completed | skipped | varied
    reward                    int8: 1 if the outcome happened at or after this decision and
                              within the horizon of the case start, else 0
    hours_since_previous_step float64: hours from the previous step of the case (or its
                              start) to this step's completion: how long it waited for the
                              contractor (known only after the fact: not a pre-decision feature)
    hours_since_start         float64: hours from the case start to the offer
    step_index                int64: position of this step in the case's path (the steps
                              `variants` lists; 0 = first)
    at                        datetime64[us], naive UTC: when the content was offered
    acted_at                  datetime64[us], naive UTC: when the step was completed,
                              skipped or varied (the decision's outcome clock starts here)
    context                   one array per context key: float64 (NaN = missing) when every
                              value is a number or bool, else str/None (category strings)
    """

    outcome: str
    horizon: timedelta | None
    case_id: np.ndarray
    instance_id: np.ndarray
    distributor_id: np.ndarray
    hook: np.ndarray
    step_id: np.ndarray
    shown: np.ndarray
    propensity: np.ndarray
    policy_version: np.ndarray
    used: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    hours_since_previous_step: np.ndarray
    hours_since_start: np.ndarray
    step_index: np.ndarray
    at: np.ndarray
    acted_at: np.ndarray
    context: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.instance_id.shape[0])

    @property
    def columns(self) -> dict[str, np.ndarray]:
        """Every column by name; a context key that clashes with a fixed column gets a
        `context.` prefix."""
        out = {name: getattr(self, name) for name in _FIXED}
        for key, values in self.context.items():
            out[f"context.{key}" if key in out else key] = values
        return out

    def select(self, mask: np.ndarray) -> DecisionTable:
        """The rows where `mask` (booleans or indices) holds."""
        fixed = {name: getattr(self, name)[mask] for name in _FIXED}
        return DecisionTable(self.outcome, self.horizon, **fixed,
                             context={k: v[mask] for k, v in self.context.items()})

    def to_pandas(self, *, categorical: bool = True) -> Any:
        """A pandas DataFrame; text columns (but the ids) as `category` unless told not."""
        import pandas as pd

        frame = pd.DataFrame(self.columns)
        if categorical:
            for name, values in self.columns.items():
                if values.dtype == object and name not in ("case_id", "distributor_id"):
                    frame[name] = frame[name].astype("category")
        return frame


def decisions(
    store: Store, process_id: str, *, outcome: str, horizon: timedelta | None = None,
    observed_until: datetime | None = None,
) -> DecisionTable:
    """The content decisions of the process's log, with their rewards.

    A decision is a completed/skipped/varied event at a hooked step where content was offered
    or used. The offer (shown, propensity, policy_version) comes from the step's latest
    `entered` event, or from the event itself when there is none (imported logs).
    """
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


def _context_column(values: list[Any]) -> np.ndarray:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int | float | bool) for v in present):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    out = np.empty(len(values), dtype=object)
    out[:] = [v if v is None or isinstance(v, str) else str(v) for v in values]
    return out
