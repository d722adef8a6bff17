"""`nextmove demo`: the LifeVantage journey end to end on a fresh SQLite file.

With `learning="continuous"` (the default) the same hidden world and field force run three
times (`simulator.arms`): on the catalog default, with continuous learning from day one (on
the demo's own file) and with an oracle that knows the hidden model; the report gives the
funnel, waits, first sales and content of the continuous run and each arm's conversion and
first sales within 14 days with 95% intervals, and the share of the oracle's lift captured.

With `learning="batch"` it deploys processes/lifevantage, simulates the field force for the
configured days on the catalog's default recommendations, then reads the event log back: the
funnel by step, where prospects wait longest, the share of new distributors with a first sale
within 14 days, and content shown versus used. Then the learner reads that log, proposes a
policy per hook, and applies those that off-policy evaluation says beat the catalog; the same
field force (same people, same hidden world) is simulated again on a second file with the
learned policies active, and the two runs are compared.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import analytics
import learner
from content_catalog import Exploration, catalog_policy, load_stored_catalog, save_policy
from engine import Store
from nextmove import open_engine, open_store
from simulator import LIFEVANTAGE, SimulationConfig, SimulationResult, simulate
from simulator.arms import Arms, first_sales, run_arms

JOURNEY = "prospect_journey"
# The journey's end event: reached only by prospects who ordered or enrolled (what the map
# declares as converting); the learner learns towards it.
CONVERTED = "Event_end"


@dataclass(frozen=True)
class RunSummary:
    """One simulated run, by the figures a sales lead compares."""

    policy: str  # what the cards recommended
    database: str
    prospects: int
    converted: int  # customers + distributors
    first_sale_share: float  # new distributors with a first sale within 14 days
    first_sale_distributors: int

    @property
    def conversion(self) -> float:
        return self.converted / self.prospects if self.prospects else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "conversion": self.conversion}


@dataclass(frozen=True)
class Comparison:
    """Learned against catalog on the same field force: the conversion difference with a 95%
    interval (two independent proportions, normal approximation)."""

    before: RunSummary
    after: RunSummary

    @property
    def difference(self) -> tuple[float, float, float]:
        b, a = self.before, self.after
        d = a.conversion - b.conversion
        var = sum(r.conversion * (1 - r.conversion) / r.prospects for r in (a, b)
                  if r.prospects)
        half = 1.96 * math.sqrt(var)
        return d, d - half, d + half

    def to_dict(self) -> dict[str, Any]:
        d, low, high = self.difference
        return {"before": self.before.to_dict(), "after": self.after.to_dict(),
                "conversion_difference": {"value": d, "low": low, "high": high,
                                          "confidence": 0.95}}


@dataclass
class DemoReport:
    database: str
    config: SimulationConfig
    result: SimulationResult
    funnel: list[analytics.FunnelStep] = field(default_factory=list)
    converted: int = 0  # prospects who reached an outcome the map declares as converting
    outcome: str = ""  # those outcomes, joined by "+"
    waits: list[analytics.StepWait] = field(default_factory=list)
    first_sales: analytics.FirstSales | None = None
    content: list[analytics.ContentUse] = field(default_factory=list)
    learned: learner.Proposal | None = None
    applied: list[str] = field(default_factory=list)
    comparison: Comparison | None = None
    learning: str = "batch"
    arms: Arms | None = None

    @property
    def conversion(self) -> float:
        prospects = self.result.prospects
        return self.converted / prospects if prospects else 0.0

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
            "content_strength": self.config.content_strength,
            "converted": self.converted,
            "conversion": self.conversion,
            "outcome": self.outcome,
            "funnel": [f.to_dict() for f in self.funnel],
            "waits": [w.to_dict() for w in self.waits],
            "first_sale_within_14_days": self.first_sales.to_dict() if self.first_sales else None,
            "content": [c.to_dict() for c in self.content],
            "learned": self.learned.to_dict() if self.learned else None,
            "applied": list(self.applied),
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "learning": self.learning,
            "arms": self.arms.to_dict() if self.arms else None,
        }


def run_demo(
    database: Path, config: SimulationConfig, *, progress: Callable[[int], None] | None = None,
    processes: Path = LIFEVANTAGE, learn: bool = True, explore: float = 1.0,
    learning: str = "batch", parallel: bool = True,
) -> DemoReport:
    """Simulate on a fresh database file (an existing one is replaced), report, and (with
    `learn`) learn from it and simulate again on `<database>.after.db` with what was learned.

    The first run recommends the catalog's content, exploring with probability `explore`
    (a learning period: the log must show other options too for anything to be learned).
    `progress` gets the number of simulated days done, over both runs (2 × days with `learn`).
    With `learning="continuous"` see the module docstring (`progress`: 3 × days in all).
    """
    if learning == "continuous":
        return _continuous_demo(database, config, progress, parallel)
    store = _fresh(database)
    try:
        open_engine(store, recommend=False).deploy([processes])
        catalog = load_stored_catalog(store)
        for hook in sorted(catalog.hooks):
            save_policy(store, catalog_policy(catalog, hook, Exploration(epsilon=explore)),
                        activate=True, note=f"demo learning period: the catalog's ranking, "
                                            f"exploring {explore:.0%} of the time")
        result = simulate(store, config, policy="active", processes=processes,
                          progress=progress)
        journey = analytics.funnel(store, JOURNEY)  # converted: as the map declares
        report = DemoReport(
            database=str(database), config=config, result=result,
            funnel=list(journey.people().steps), converted=journey.converted,
            outcome=journey.outcome, waits=analytics.waits(store, JOURNEY),
            first_sales=first_sales(store), content=analytics.content_use(store),
        )
        if not learn:
            return report
        report.learned = learner.propose(store, JOURNEY, outcome=CONVERTED)
        report.applied = learner.apply(store, report.learned)
        policies = [report.learned.hook(h).policy for h in report.applied]
    finally:
        store.dispose()
    after_db = database.with_name(database.stem + ".after.db")
    after = _fresh(after_db)
    try:
        # stores the catalog the policies refer to
        open_engine(after, recommend=False).deploy([processes])
        for policy in policies:  # the learned policies, as `learn` stored them in the first file
            save_policy(after, policy, activate=True, note="learned in the demo's first run")
        shifted = None if progress is None else (lambda day: progress(config.days + day))
        after_result = simulate(after, config, policy="active", processes=processes,
                                progress=shifted)
        after_first = first_sales(after)
        after_converted = analytics.funnel(after, JOURNEY).converted
    finally:
        after.dispose()
    report.comparison = Comparison(
        _summary(f"catalog, exploring {explore:.0%}", database, result, report.converted,
                 report.first_sales),
        _summary("learned" if policies else "catalog (nothing learned beat it)", after_db,
                 after_result, after_converted, after_first))
    return report


def _continuous_demo(database: Path, config: SimulationConfig,
                     progress: Callable[[int], None] | None, parallel: bool) -> DemoReport:
    arms = run_arms(database, config, progress=progress, parallel=parallel)
    result = arms.arms["continuous"].result
    assert result is not None
    store = open_store(database)
    try:
        journey = analytics.funnel(store, JOURNEY)  # converted: as the map declares
        return DemoReport(
            database=str(database), config=config, result=result,
            funnel=list(journey.people().steps), converted=journey.converted,
            outcome=journey.outcome, waits=analytics.waits(store, JOURNEY),
            first_sales=first_sales(store), content=analytics.content_use(store),
            learning="continuous", arms=arms)
    finally:
        store.dispose()


def _fresh(database: Path) -> Store:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    return open_store(database, durable=False)  # a throwaway simulation file


def _summary(policy: str, database: Path, result: SimulationResult, converted: int,
             first: analytics.FirstSales | None) -> RunSummary:
    return RunSummary(policy, str(database), result.prospects, converted,
                      first.share if first else 0.0, first.distributors if first else 0)
