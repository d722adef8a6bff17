"""The analytics at scale: funnel, stuck, indicators, survival, variants on a million instances.

    python -m bench.analytics [--instances 1000000] [--distributors 10000] [--seed 0]
                              [--rounds 3] [--json PATH] [--only funnel,variants,...]
                              [--postgres]

The database is `bench._million`'s (built once and cached under bench/.cache/). Baseline,
measured in the same run on the same rows: `SELECT step_id, count(*) FROM step_event JOIN
instance ... WHERE process_id = 'prospect_journey' GROUP BY step_id` — one plain scan and
aggregate, the floor for any per-step figure. Rows: `analytics.funnel()` (per-step counts of
the visits recorded with the events, percentiles, conversion), `analytics.stuck()`,
`analytics.indicators()`, `analytics.survival()` (time to first sale, Kaplan–Meier by cohort
and variant) and `learner.variants()` (each case's path built by the database).
`--only` may also name the parts of funnel and stuck, to time each alone (not run by
default): `part:funnel.steps` (per step: arrivals, how they ended, distinct instances),
`part:funnel.times` (exact median and p90 of the visit times), `part:funnel.ended` (the
instances' last events: drop-outs), `part:funnel.wins` (converted instances per step),
`part:funnel.totals`, `part:stuck.usual` (each step's p90, the limit where the map declares
none), `part:stuck.open` (open arrivals past their limit, and those at timer steps).
A cached database made by an older release is migrated when opened (see
`engine.store.migrations`). `--postgres` runs everything on a PostgreSQL copy of the same
rows (`bench._million.on_postgres`: COPY of every table, made once and kept as a database of
its own; `NEXTMOVE_BENCH_PG` names the server). Each row runs once per round, interleaved
with the baseline; figures are medians over rounds, "ratio" is the row's median wall time
over the baseline's.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

import analytics
from analytics._read_funnel import funnel_parts
from analytics._read_stuck import USUAL, open_rows, usual_hours
from analytics._sql import Filters
from bench._common import PG_ADMIN_URL, RESULTS, machine_info, write_result
from bench._million import JOURNEY, NOW, cached, on_postgres
from engine import Store
from engine.runtime.queries import INSTANCE, STEP_EVENT
from learner import variants
from nextmove import open_store


def baseline(store: Store) -> int:
    query = (select(STEP_EVENT.c.step_id, func.count())
             .join(INSTANCE, INSTANCE.c.id == STEP_EVENT.c.instance_id)
             .where(INSTANCE.c.process_id == JOURNEY)
             .group_by(STEP_EVENT.c.step_id))
    with store.read() as conn:
        return sum(n for _, n in conn.execute(query))


ROWS: dict[str, Callable[[Store], Any]] = {
    "funnel": lambda s: analytics.funnel(s, JOURNEY),
    "stuck": lambda s: analytics.stuck(s, JOURNEY, NOW),
    "indicators": lambda s: analytics.indicators(s),
    "survival": lambda s: analytics.survival(s, as_of=NOW),
    "variants": lambda s: variants(s, JOURNEY, outcome="sale"),
}


_PLANS: dict[str, tuple[tuple[str, ...], dict[str, float], list[str]]] = {}


def plan(store: Store) -> tuple[tuple[str, ...], dict[str, float], list[str]]:
    """What the parts take from their whole view, worked out once per database and untimed:
    the outcomes that convert (funnel); the limits and the timer steps (stuck)."""
    key = str(store.url)
    if key not in _PLANS:
        stuck = analytics.stuck(store, JOURNEY, NOW)
        _PLANS[key] = (tuple(analytics.funnel(store, JOURNEY).outcome.split("+")),
                       dict(stuck.limits), sorted(w.step_id for w in stuck.waits))
    return _PLANS[key]


def _part(view: str, name: str) -> Callable[[Store], Any]:
    """One read of `analytics.funnel` or `analytics.stuck` alone."""
    def run(store: Store) -> Any:
        filters = Filters(JOURNEY)
        outcomes, limits, timers = plan(store)
        if view == "funnel":
            with store.read() as conn:
                return funnel_parts(store.dialect, filters, outcomes)[name](conn)
        if name == "usual":
            return usual_hours(store, filters, USUAL)
        return open_rows(store, filters, NOW, limits, timers).stuck
    return run


PARTS: dict[str, Callable[[Store], Any]] = {
    **{f"part:funnel.{n}": _part("funnel", n) for n in ("steps", "times", "ended", "wins",
                                                         "totals")},
    **{f"part:stuck.{n}": _part("stuck", n) for n in ("usual", "open")},
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--distributors", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(ROWS), help="comma-separated rows")
    parser.add_argument("--postgres", action="store_true",
                        help="run on a PostgreSQL copy of the database (made once, kept)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in ROWS and n not in PARTS]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; one of {', '.join([*ROWS, *PARTS])}")
    path = cached(args.instances, args.distributors, args.seed)
    open_store(f"sqlite:///{path}").dispose()  # brings an older cache file up to this schema
    url = on_postgres(path, PG_ADMIN_URL) if args.postgres else f"sqlite:///{path}"
    if args.postgres:
        open_store(url).dispose()  # and its copy, made by an older release
    database = "PostgreSQL" if args.postgres else "SQLite"
    json_path = args.json or RESULTS / ("analytics-postgres.json" if args.postgres
                                        else "analytics.json")
    store = Store(url)
    with store.read() as conn:
        events = conn.execute(select(func.count()).select_from(STEP_EVENT)).scalar_one()
        instances = conn.execute(select(func.count()).select_from(INSTANCE)).scalar_one()
    if any(n in PARTS for n in names):
        plan(store)
    times: dict[str, list[float]] = {"baseline": [], **{n: [] for n in names}}
    checks: dict[str, Any] = {}
    for round_ in range(args.rounds):
        for name in ["baseline", *names]:
            gc.collect()
            began = time.perf_counter()
            result = (baseline(store) if name == "baseline"
                      else {**ROWS, **PARTS}[name](store))
            times[name].append(time.perf_counter() - began)
            checks[name] = _check(name, result)
            print(f"round {round_ + 1}: {name} {times[name][-1]:.2f}s", flush=True)
    store.dispose()
    base = statistics.median(times["baseline"])
    rows = [{"name": n, "median_s": round(statistics.median(t), 3),
             "ratio_vs_baseline": round(statistics.median(t) / base, 2),
             "rounds_s": [round(x, 3) for x in t], "result": checks[n]}
            for n, t in times.items()]
    print(f"\n{instances:,} instances, {events:,} step events ({path.name}, {database})")
    print(f"{'':12} {'median s':>10} {'ratio':>8}  result")
    for row in rows:
        print(f"{row['name']:12} {row['median_s']:10.2f} {row['ratio_vs_baseline']:8.1f}  "
              f"{row['result']}")
    write_result(json_path, {
        "database": str(path), "backend": database, "instances": instances, "events": events,
        "parameters": {"instances": args.instances, "distributors": args.distributors,
                       "seed": args.seed, "rounds": args.rounds},
        "rows": rows, "machine": machine_info()})


def _check(name: str, result: Any) -> str:
    """A short summary, so a broken row cannot post a fast figure unnoticed."""
    if name == "baseline":
        return f"{result:,} journey events"
    if name.startswith("part:"):
        return f"{len(result):,} rows" if isinstance(result, list | dict) else str(result)
    if name == "funnel":
        return (f"{result.instances:,} instances, {len(result.steps)} steps, "
                f"{result.converted:,} sales")
    if name == "stuck":
        return f"{result.instances:,} stuck in {len(result.groups):,} groups"
    if name == "indicators":
        return f"{len(result.distributors):,} distributors, {result.first_sale_share:.0%} " \
               "first sale within 14 days"
    if name == "survival":
        low, high = result.overall.band
        return (f"{result.overall.subjects:,} distributors, {result.overall.events:,} first "
                f"sales, {result.overall.share_within:.0%} ({low:.0%}–{high:.0%}) by day 14, "
                f"{len(result.variants)} variants")
    return f"{len(result)} variants"


if __name__ == "__main__":
    main()
