"""A content item stops working halfway: does the drift watch demote it, and does conversion
recover? The same field force and world run twice, with and without the daily drift check.

    found = degradation_run("deg.db", SimulationConfig(days=90, degrade={
        "item": "opportunity_overview_12min", "at_day": 30, "factor": 0.4}))
    found.demoted_day, found.periods, found.without_watch
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from engine import ManualClock, Store
from learner import decisions, watch
from nextmove import open_store
from simulator import simulate
from simulator.run import JOURNEY, SimulationConfig


@dataclass(frozen=True)
class Period:
    """Decisions at the degraded item's hook offered in [start, end) days of the run."""

    name: str
    start_day: float
    end_day: float
    decisions: int
    item_share: float  # of those decisions, the share that showed the degraded item
    conversion: float  # the outcome rate of those decisions (within the horizon)


@dataclass(frozen=True)
class DegradationResult:
    config: SimulationConfig
    hook: str
    demoted_day: float | None  # when the watch demoted the item (days since the start)
    alert: dict[str, Any] | None
    periods: list[Period] = field(default_factory=list)  # with the watch
    without_watch: list[Period] = field(default_factory=list)  # same world, no watch

    def to_dict(self) -> dict[str, Any]:
        return {"hook": self.hook, "demoted_day": self.demoted_day, "alert": self.alert,
                "periods": [p.__dict__ for p in self.periods],
                "without_watch": [p.__dict__ for p in self.without_watch]}


def degradation_run(db: str | Path, config: SimulationConfig, *,
                    outcome: str = "customer_order", horizon: timedelta = timedelta(days=14),
                    policy: str = "catalog") -> DegradationResult:
    """Run `config` (which must set `degrade`) with the daily drift watch on `db`, and again
    without it on `<db>.nowatch.db`; measure conversion at the item's hook per period."""
    if not config.degrade:
        raise ValueError("config.degrade names no item to degrade")
    item, at_day = str(config.degrade["item"]), float(config.degrade["at_day"])
    demoted: list[tuple[datetime, dict[str, Any]]] = []

    def daily(store: Store, now: datetime) -> None:
        for action in watch(store, JOURNEY, outcome=outcome, horizon=horizon, now=now,
                            clock=ManualClock(now)):
            if action.alert.option_id == item and action.version is not None:
                demoted.append((now, action.alert.to_dict()))

    with_watch = _run(Path(db), config, policy, daily)
    without = _run(Path(f"{db}.nowatch.db"), config, policy, None)
    when = None if not demoted else (demoted[0][0] - config.start) / timedelta(days=1)
    end = config.days - horizon / timedelta(days=1)  # later decisions: outcome not known yet
    cuts = [("before the drop", 0.0, at_day),
            ("dropped, not yet demoted", at_day, when if when is not None else end),
            ("after the demotion", when if when is not None else end, end)]
    hook = _hook_of(with_watch, item)
    return DegradationResult(
        config, hook, when, demoted[0][1] if demoted else None,
        _periods(with_watch, config, hook, item, cuts, outcome, horizon),
        _periods(without, config, hook, item, cuts, outcome, horizon))


def _run(path: Path, config: SimulationConfig, policy: str, daily: Any) -> Store:
    path.unlink(missing_ok=True)
    store = open_store(str(path))
    simulate(store, replace(config), policy=policy, daily=daily)
    return store


def _hook_of(store: Store, item: str) -> str:
    table = decisions(store, JOURNEY, outcome="customer_order")
    hooks = {str(h) for h, s in zip(table.hook, table.shown, strict=True) if s == item}
    if len(hooks) != 1:
        raise ValueError(f"{item!r} was shown at hooks {sorted(hooks)}: name one item of one hook")
    return hooks.pop()


def _periods(store: Store, config: SimulationConfig, hook: str, item: str,
             cuts: list[tuple[str, float, float]], outcome: str,
             horizon: timedelta) -> list[Period]:
    table = decisions(store, JOURNEY, outcome=outcome, horizon=horizon)
    mine = table.hook == hook
    start = np.datetime64(config.start.replace(tzinfo=None), "us")
    day = (table.at[mine] - start) / np.timedelta64(1, "D")
    shown, reward = table.shown[mine], table.reward[mine]
    out = []
    for name, low, high in cuts:
        sel = (day >= low) & (day < high)
        n = int(sel.sum())
        out.append(Period(name, low, high, n,
                          float(np.mean(shown[sel] == item)) if n else 0.0,
                          float(reward[sel].mean()) if n else 0.0))
    return out
