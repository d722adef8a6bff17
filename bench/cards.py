"""Action cards for one distributor in a database of a million instances.

    python -m bench.cards [--instances 1000000] [--distributors 10000] [--samples 200]
                          [--build] [--json PATH]

Database: bench._million's realistic LifeVantage database (cached under bench/.cache; built
when missing only with --build, which takes long). For `--samples` distributors drawn at
random (seeded) it times, interleaved per distributor:

* `Engine.cards(distributor)`: the engine's query plus building each card (waits parsed,
  guidance, ordering) — what `nextmove cards` costs without printing;
* baseline: the plain indexed SELECT of the same rows (the instance header columns for the
  distributor's or sponsor's active instances, fetched to Python tuples).

Reports median and p99 in milliseconds and their ratio (baseline / cards: 1.0 means cards
cost no more than reading their rows).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

from bench import _million
from bench._common import RESULTS, machine_info, write_result
from engine import ManualClock
from nextmove import open_engine

SELECT = (
    "SELECT {columns} FROM instance JOIN definition ON definition.id = instance.definition_id "
    "WHERE instance.status = 'active' AND (instance.distributor_id = ? OR "
    "instance.sponsor_id = ?) LIMIT 500")


def _path(instances: int, distributors: int, build: bool) -> Path | None:
    name = f"million-{instances}-{distributors}-0-v{_million.FORMAT}.db"
    path = _million.CACHE / name
    if path.exists() or build:
        return _million.cached(instances, distributors, 0)
    return None


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cards",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--distributors", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--build", action="store_true", help="build the database if missing")
    parser.add_argument("--json", type=Path, default=RESULTS / "cards.json")
    args = parser.parse_args(argv)

    path = _path(args.instances, args.distributors, args.build)
    if path is None:
        print(f"cards benchmark skipped: no cached {args.instances:,}-instance database in "
              f"{_million.CACHE} (python -m bench.cards --build makes it)")
        return 0
    engine = open_engine(f"sqlite:///{path}", clock=ManualClock(_million.NOW), recommend=False)
    columns = ", ".join(
        f"instance.{c}" for c in ("id", "definition_id", "process_id", "prospect_id",
                                  "distributor_id", "sponsor_id", "active_key", "status",
                                  "context", "waiting", "card_due_at", "version", "chain_head",
                                  "created_at", "updated_at")) + ", definition.version"
    raw = sqlite3.connect(path)
    sql = SELECT.format(columns=columns)
    distributor_ids = [d for (d,) in raw.execute(
        "SELECT DISTINCT distributor_id FROM instance WHERE process_id = ?",
        (_million.JOURNEY,))]
    chosen = random.Random(0).sample(distributor_ids, min(args.samples, len(distributor_ids)))
    engine.cards(chosen[0])  # step metadata cached, connections open
    card_ms: list[float] = []
    select_ms: list[float] = []
    counts: list[int] = []
    for distributor in chosen:
        began = time.perf_counter()
        rows = raw.execute(sql, (distributor, distributor)).fetchall()
        select_ms.append((time.perf_counter() - began) * 1e3)
        began = time.perf_counter()
        cards = engine.cards(distributor)
        card_ms.append((time.perf_counter() - began) * 1e3)
        counts.append(len(cards))
        if len(rows) and not cards and any('"kind": "user"' in r[9] for r in rows):
            raise RuntimeError(f"no cards for {distributor} though rows wait on a person")
    raw.close()
    engine.store.dispose()
    with sqlite3.connect(path) as conn:
        total = conn.execute("SELECT count(*) FROM instance").fetchone()[0]
    result: dict[str, Any] = {
        "benchmark": "bench.cards", "database": path.name, "instances_in_db": total,
        "params": {"instances": args.instances, "distributors": args.distributors,
                   "samples": len(chosen)},
        "machine": machine_info(),
        "cards_per_distributor_median": statistics.median(counts),
        "cards_per_distributor_max": max(counts),
        "engine_cards_ms": {"median": round(statistics.median(card_ms), 3),
                            "p99": round(p99(card_ms), 3)},
        "plain_select_ms": {"median": round(statistics.median(select_ms), 3),
                            "p99": round(p99(select_ms), 3)},
    }
    result["ratio_median"] = round(result["plain_select_ms"]["median"]
                                   / result["engine_cards_ms"]["median"], 3)
    result["ratio_p99"] = round(result["plain_select_ms"]["p99"]
                                / result["engine_cards_ms"]["p99"], 3)
    result["at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    print(f"\naction cards for one distributor, {total:,} instances in the database, "
          f"{len(chosen)} distributors sampled (median {result['cards_per_distributor_median']}"
          f" cards, max {result['cards_per_distributor_max']})")
    print(f"{'':40} {'median ms':>10} {'p99 ms':>10}")
    for name, key in (("plain indexed SELECT (baseline)", "plain_select_ms"),
                      ("Engine.cards()", "engine_cards_ms")):
        print(f"{name:40} {result[key]['median']:10.3f} {result[key]['p99']:10.3f}")
    print(f"ratio (baseline / cards): median {result['ratio_median']:.2f}, "
          f"p99 {result['ratio_p99']:.2f}")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
