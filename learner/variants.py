"""Variant paths: which ordered sequences of steps cases went through, and how each converted.

A case's path is the step ids of its completed, skipped, varied, timer and message events, in
log order: the person's steps and the automatic ones that moved the case (start and end events
included), not arrivals (`entered`), cancellations or outcome events. An imported log has only
completed events, so its path is every event's `concept:name`, and variants are counted exactly
as process-mining tools (pm4py's default classifier) count them. A skipped step appears under
its step id like a completed one; `with_content=True` adds the content used at each step to the
variant's key.

With an `outcome` (see `learner.dataset`), each variant gets its conversion rate with a Wilson
95% interval, the median time from start to the outcome, and a test against the most common
variant (the baseline): Fisher's exact test while any expected cell count is below 5, else the
two-proportion z-test. Comparing many variants at once finds differences by chance, so
`significant` uses Holm-adjusted p-values (`p_adjusted`); `p_value` is the single test's.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.store.database import Store
from engine.store.steplog import check_horizon, check_outcome, check_process, outcome_names
from learner._read_variants import SEP, path_rows, prospect_ids, unobserved
from learner._stats import compare, holm, wilson


@dataclass(frozen=True)
class Variant:
    rank: int  # 1 = the most common path: the baseline of the comparisons
    steps: tuple[str, ...]
    content: tuple[str | None, ...] | None  # with_content: content used at each step
    cases: int
    share: float  # of all cases
    example_case: str  # the first case (prospect id) that took this path
    converted: int | None = None  # the rest are None without an outcome
    rate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    median_hours_to_outcome: float | None = None  # among converted cases
    p_value: float | None = None  # against the baseline; None for the baseline itself
    p_adjusted: float | None = None  # Holm-adjusted over all variants compared
    test: str | None = None  # "fisher" | "z"
    significant: bool | None = None  # p_adjusted < alpha

    @property
    def label(self) -> str:
        if self.content is None:
            return " → ".join(self.steps)
        return " → ".join(f"{s} [{c}]" if c else s for s, c in
                          zip(self.steps, self.content, strict=True))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["steps"] = list(self.steps)
        out["content"] = list(self.content) if self.content is not None else None
        return out


@dataclass
class _Tally:
    order: int  # the first case's instance id: ties rank in order of first appearance
    example: int  # that case's instance id
    cases: int = 0
    converted: int = 0
    hours: list[float] = field(default_factory=list)


def variants(
    store: Store, process_id: str, *, outcome: str | tuple[str, ...] | None = None,
    horizon: timedelta | None = None, with_content: bool = False, alpha: float = 0.05,
    observed_until: datetime | None = None,
) -> list[Variant]:
    """The process's variants, most common first (ties: the one seen first).

    `observed_until` (with a horizon) leaves out cases whose horizon had not passed by then.
    `outcome` may name several, "+"-joined or as a tuple (a case converts on reaching any
    of them, e.g. the map's converting outcomes, `analytics.measures`). Raises
    UnknownOutcome for an outcome that is neither a step nor a recorded outcome event,
    DefinitionNotFound for a process never deployed or imported.

    The database builds each case's path (its steps' ids in log order, hex-encoded so no
    step name can collide with the separator) and counts cases per path and time to the
    outcome; Python gets one row per path and time to outcome, not the events.
    """
    check_horizon(horizon)
    for each in (outcome,) if isinstance(outcome, str) else outcome or ():
        check_outcome(store, process_id, each)  # the process too
    if not outcome:
        check_process(store, process_id)
    # "a+b" names a and b, as for learn and evaluate: the SQL matches names, not the join
    outcomes = (tuple(sorted(outcome_names(outcome))) if isinstance(outcome, str)
                else outcome)
    tallies: dict[str, _Tally] = {}
    for key, hours, n, first in path_rows(store, process_id, outcome=outcomes, horizon=horizon,
                                          with_content=with_content,
                                          observed_until=observed_until):
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = _Tally(first, first)
        if first < tally.order:
            tally.order = tally.example = first
        tally.cases += n
        if hours is not None:
            tally.converted += n
            tally.hours.extend([float(hours)] * n)
    examples = prospect_ids(store, [t.example for t in tallies.values()])
    ranked = sorted(((_decode(k, with_content), t) for k, t in tallies.items()),
                    key=lambda kv: (-kv[1].cases, kv[1].order))
    return _summarise(ranked, examples, outcome is not None, with_content, alpha)


def unobserved_cases(store: Store, process_id: str, *, horizon: timedelta | None,
                     observed_until: datetime | None) -> int:
    """How many cases `variants` leaves out with the same `horizon` and `observed_until`:
    started too recently for their horizon to have passed, so their outcome is not known
    yet (0 without either)."""
    return unobserved(store, process_id, horizon, observed_until)


def _decode(key: str, with_content: bool) -> tuple[Any, ...]:
    steps, content = [], []
    for element in key.split(SEP) if key else []:
        step, _, used = element.partition(":")
        steps.append(bytes.fromhex(step).decode())
        content.append(None if used == "-" else bytes.fromhex(used).decode())
    return (tuple(steps), tuple(content)) if with_content else tuple(steps)


def _summarise(ranked: list[tuple[tuple[Any, ...], _Tally]], examples: dict[int, str],
               with_outcome: bool, with_content: bool, alpha: float) -> list[Variant]:
    total = sum(t.cases for _, t in ranked)
    out = []
    for rank, (key, tally) in enumerate(ranked, start=1):
        steps, content = (key[0], key[1]) if with_content else (key, None)
        out.append(Variant(rank, steps, content, tally.cases, tally.cases / total,
                           examples[tally.example]))
    if not with_outcome or not ranked:
        return out
    base = ranked[0][1]
    tests = [compare(t.converted, t.cases, base.converted, base.cases) for _, t in ranked[1:]]
    adjusted = holm([p for p, _ in tests])
    result = []
    for i, (variant, (_key, tally)) in enumerate(zip(out, ranked, strict=True)):
        low, high = wilson(tally.converted, tally.cases)
        compared: dict[str, Any] = {}
        if i > 0:
            p, test = tests[i - 1]
            compared = {"p_value": p, "p_adjusted": adjusted[i - 1], "test": test,
                        "significant": adjusted[i - 1] < alpha}
        result.append(Variant(
            variant.rank, variant.steps, variant.content, variant.cases, variant.share,
            variant.example_case, tally.converted, tally.converted / tally.cases, low, high,
            statistics.median(tally.hours) if tally.hours else None, **compared))
    return result
