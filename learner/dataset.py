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
from typing import Any, NamedTuple

import numpy as np

from engine.store import REACHED_KINDS
from engine.store.database import Store
from engine.store.steplog import (
    Header,
    Row,
    check_horizon,
    check_outcome,
    instances,
    outcome_names,
    within,
)
from learner import _read_decisions as _read


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
    check_horizon(horizon)
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
    # per hook, the decisions left out: their case's horizon had not passed (observed_until)
    pending: dict[str, int] = field(default_factory=dict)

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
                             context={k: v[mask] for k, v in self.context.items()},
                             pending=self.pending)

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
    `entered` event since it was last acted on, or from the event itself when there is none
    (imported logs). The database finds them in one pass (`_read_decisions`); numpy adds the
    rewards, hours and context columns. `pending` counts, per hook, the decisions
    `observed_until` left out.
    """
    check_horizon(horizon)
    check_outcome(store, process_id, outcome)
    rows = _read.decision_rows(store, process_id)
    heads = _read.headers(store, process_id, horizon, observed_until)
    pos, hit = _locate(heads.instance_id, rows.instance_id)
    kept = np.flatnonzero(hit)
    pos = pos[kept]
    started = heads.started_us[pos]
    # the last outcome (in log order) within the horizon of its case's start, per instance
    o_instance, o_id, o_at = _read.outcome_events(store, process_id, outcome)
    o_pos, found = _locate(heads.instance_id, o_instance)
    since = o_at - heads.started_us[o_pos] if heads.started_us.size else o_at
    found &= since >= 0
    if horizon is not None:
        found &= since <= horizon // _MICROSECOND
    last = np.full(heads.instance_id.size, -1, dtype=np.int64)
    np.maximum.at(last, o_pos[found], o_id[found])
    event_id = rows.event_id[kept]
    previous = rows.previous_us[kept]
    previous = np.where(previous == _read.NONE, started, previous)
    offered, acted = rows.offered_us[kept], rows.acted_us[kept]
    arrays: dict[str, Any] = {
        "case_id": heads.case_id[pos], "instance_id": rows.instance_id[kept],
        "distributor_id": heads.distributor_id[pos], "hook": rows.hook[kept],
        "step_id": rows.step_id[kept], "shown": rows.shown[kept],
        "propensity": rows.propensity[kept], "policy_version": rows.policy_version[kept],
        "used": rows.used[kept], "action": rows.kind[kept],
        "reward": (last[pos] >= event_id).astype(np.int8),
        "hours_since_previous_step": _hours(acted - previous),
        "hours_since_start": _hours(offered - started), "step_index": rows.step_index[kept],
        "at": offered.view("datetime64[us]"), "acted_at": acted.view("datetime64[us]")}
    # context columns: per distinct context text of the instances with decisions (cases
    # share a few), then spread to their decisions
    inst, inverse = np.unique(pos, return_inverse=True)
    number: dict[str, int] = {}
    text_of = np.array([number.setdefault(heads.context[i], len(number))
                        for i in inst.tolist()], dtype=np.int64)
    contexts = _read.parse_contexts(list(number))
    keys = sorted({key for ctx in contexts for key in ctx})
    spread = text_of[inverse]
    context = {key: _context_column([ctx.get(key) for ctx in contexts])[spread]
               for key in keys}
    names, counts = np.unique(rows.hook[~hit].astype(str), return_counts=True)
    return DecisionTable(outcome, horizon, **arrays, context=context,
                         pending=dict(zip(names.tolist(), counts.tolist(), strict=True)))


def _locate(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position in the sorted `ids` of each wanted id, whether it is there)."""
    if ids.size == 0:
        return np.zeros(wanted.size, dtype=np.int64), np.zeros(wanted.size, dtype=bool)
    pos = np.minimum(np.searchsorted(ids, wanted), ids.size - 1)
    return pos, ids[pos] == wanted


def _hours(micros: np.ndarray) -> np.ndarray:
    """µs -> hours as `timedelta.total_seconds() / 3600` computes them (seconds first)."""
    out: np.ndarray = (micros.astype(np.float64) / 1e6) / 3600
    return out


_MICROSECOND = timedelta(microseconds=1)


def _context_column(values: list[Any]) -> np.ndarray:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int | float | bool) for v in present):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    out = np.empty(len(values), dtype=object)
    out[:] = [v if v is None or isinstance(v, str) else str(v) for v in values]
    return out
