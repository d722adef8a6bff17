"""`nextmove demo`: the LifeVantage journey end to end on a fresh SQLite file.

Deploys processes/lifevantage, simulates the field force for the configured days on the
catalog's default recommendations, then reads the event log back: the funnel by step, where
prospects wait longest, the share of new distributors with a first sale within 14 days, and
content shown versus used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import analytics
from engine import Store
from simulator import LIFEVANTAGE, SimulationConfig, SimulationResult, simulate


@dataclass
class DemoReport:
    database: str
    config: SimulationConfig
    result: SimulationResult
    funnel: list[analytics.FunnelStep] = field(default_factory=list)
    waits: list[analytics.StepWait] = field(default_factory=list)
    first_sales: analytics.FirstSales | None = None
    content: list[analytics.ContentUse] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "distributors": self.result.distributors,
            "prospects": self.result.prospects,
            "actions": self.result.actions,
            "videos_played": self.result.videos_played,
            "outcomes": self.result.outcomes,
            "days": self.config.days,
            "seed": self.config.seed,
            "funnel": [f.to_dict() for f in self.funnel],
            "waits": [w.to_dict() for w in self.waits],
            "first_sale_within_14_days": self.first_sales.to_dict() if self.first_sales else None,
            "content": [c.to_dict() for c in self.content],
        }


def run_demo(
    database: Path, config: SimulationConfig, *, progress: Callable[[int], None] | None = None,
    processes: Path = LIFEVANTAGE,
) -> DemoReport:
    """Simulate on a fresh database file (an existing one is replaced) and report."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    store = Store(str(database), durable=False)  # a throwaway simulation file
    try:
        result = simulate(store, config, policy="catalog", processes=processes,
                          progress=progress)
        end = config.start + timedelta(days=config.days)
        return DemoReport(
            database=str(database), config=config, result=result,
            funnel=analytics.funnel(store, "prospect_journey"),
            waits=analytics.waits(store, "prospect_journey"),
            first_sales=analytics.first_sales(store, end),
            content=analytics.content_use(store),
        )
    finally:
        store.dispose()
