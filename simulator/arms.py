"""The same hidden world and the same field force under three policies: the catalog default,
continuous learning from day one, and an oracle that knows the hidden response model.

    found = run_arms(Path("demo.db"), SimulationConfig(distributors=300, days=60))
    found.arms["continuous"].conversion, found.captured

Each arm runs on its own SQLite file (continuous learning on `demo.db`, the others on
`demo.catalog.db` and `demo.oracle.db`). Continuous learning refreshes
every hook's policy at the end of each simulated day (`learner.refresh`, outcome: the journey
reached its end, which only converted prospects do, within 14 days); the cards of the next
day use it. The intro video learns from the nearer step its content acts on, the prospect
playing it (the catalog's `learn_from`); every arm is still measured on conversion. With
`parallel`, the arms run in separate processes (they share nothing).
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

import analytics
from engine import ManualClock, Store
from engine.store.recorded_clock import simulated_clock
from learner import refresh
from nextmove import open_store
from simulator import SimulationConfig, SimulationResult, simulate

ARMS = ("catalog", "continuous", "oracle")
JOURNEY = "prospect_journey"
CONVERTED = "Event_end"  # the journey's end: reached only by prospects who ordered or enrolled
HORIZON = timedelta(days=14)
Z = 1.96


@dataclass(frozen=True)
class Rate:
    """A share with its 95% interval (Wilson score interval)."""

    hits: int
    n: int

    @property
    def value(self) -> float:
        return self.hits / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        if not self.n:
            return 0.0, 0.0
        p, n = self.value, self.n
        centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
        half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
        return centre - half, centre + half

    def to_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {"hits": self.hits, "n": self.n, "value": self.value, "low": low, "high": high}


@dataclass(frozen=True)
class Arm:
    name: str
    database: str
    conversion: Rate  # prospects who ordered or enrolled
    first_sale: Rate  # distributors observed 14 days with a first sale within 14 days
    refreshes: int = 0  # policy versions continuous learning stored
    result: SimulationResult | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "database": self.database,
                "conversion": self.conversion.to_dict(), "first_sale_within_14_days":
                self.first_sale.to_dict(), "refreshes": self.refreshes}


@dataclass(frozen=True)
class Arms:
    config: SimulationConfig
    arms: dict[str, Arm] = field(default_factory=dict)

    @property
    def captured(self) -> tuple[float, float, float] | None:
        """The share of the oracle's conversion lift over the catalog that continuous learning
        captured, with a 95% interval (normal draws of the three rates); None without lift."""
        cat, cont, ora = (self.arms[a].conversion for a in ARMS)
        lift = ora.value - cat.value
        if lift <= 0:
            return None
        rng = np.random.default_rng(0)

        def draw(r: Rate) -> Any:
            return rng.normal(r.value, math.sqrt(r.value * (1 - r.value) / max(r.n, 1)), 20_000)

        c = draw(cat)
        share = (draw(cont) - c) / (draw(ora) - c)
        low, high = np.quantile(share, [0.025, 0.975])
        return (cont.value - cat.value) / lift, float(low), float(high)

    def to_dict(self) -> dict[str, Any]:
        captured = self.captured
        return {"content_strength": self.config.content_strength, "seed": self.config.seed,
                "world": self.config.world, "days": self.config.days,
                "distributors": self.config.distributors,
                "arms": {k: a.to_dict() for k, a in self.arms.items()},
                "captured": None if captured is None else
                dict(zip(("value", "low", "high"), captured, strict=True))}


def run_arm(database: Path, config: SimulationConfig, arm: str,
            progress: Callable[[int], None] | None = None) -> Arm:
    """One arm on a fresh `database`."""
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {', '.join(ARMS)}, not {arm!r}")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    store = open_store(database, durable=False)
    refreshes = [0]

    def daily(s: Store, end: datetime) -> None:
        done = refresh(s, JOURNEY, outcome=CONVERTED, horizon=HORIZON, clock=ManualClock(end))
        refreshes[0] += sum(1 for h in done.hooks if h.version is not None)

    try:
        result = simulate(store, config, policy="active" if arm == "continuous" else arm,
                          progress=progress, daily=daily if arm == "continuous" else None)
        first = first_sales(store)
    finally:
        store.dispose()
    converted = sum(result.outcomes.get(k, 0) for k in ("customer_order",
                                                        "distributor_enrolled"))
    return Arm(arm, str(database), Rate(converted, result.prospects),
               Rate(first.within, first.distributors), refreshes[0], result)


def first_sales(store: Store) -> analytics.FirstSales:
    """The declared first-sale indicator as the `indicators` command computes it, as of the
    simulation's recorded clock (the rule every command follows): one definition for the
    demo's report and its arms."""
    found = analytics.indicators(store, as_of=simulated_clock(store))
    within = sum(1 for d in found.distributors if d.first_sale_within)
    return analytics.FirstSales(found.observed, within, found.window_days)


def arm_path(database: Path, arm: str) -> Path:
    """Continuous learning runs on `database` itself, the others beside it."""
    return database if arm == "continuous" else database.with_name(
        f"{database.stem}.{arm}.db")


def run_arms(database: Path, config: SimulationConfig, *,
             progress: Callable[[int], None] | None = None, parallel: bool = True) -> Arms:
    """The three arms on `<database stem>.<arm>.db`; `progress` gets simulated days done
    (over all arms: 3 × days in the end)."""
    found: dict[str, Arm] = {}
    if not parallel:
        for n, arm in enumerate(ARMS):
            found[arm] = run_arm(arm_path(database, arm), config, arm,
                                 None if progress is None else _shifted(progress, n * config.days))
        return Arms(config, found)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        days = manager.dict(dict.fromkeys(ARMS, 0))
        with ProcessPoolExecutor(max_workers=len(ARMS), mp_context=context) as pool:
            futures = {arm: pool.submit(_in_process, arm_path(database, arm), config, arm, days)
                       for arm in ARMS}
            while not all(f.done() for f in futures.values()):
                wait(list(futures.values()), timeout=1.0, return_when=FIRST_COMPLETED)
                if progress is not None:
                    progress(sum(days.values()))
            for arm, future in futures.items():
                found[arm] = future.result()
    if progress is not None:
        progress(len(ARMS) * config.days)
    return Arms(config, found)


def _shifted(progress: Callable[[int], None], by: int) -> Callable[[int], None]:
    return lambda day: progress(by + day)


def _in_process(database: Path, config: SimulationConfig, arm: str, days: Any) -> Arm:
    def report(day: int) -> None:
        days[arm] = day

    return run_arm(database, config, arm, report)
