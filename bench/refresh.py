"""Continuous learning's refresh on a large log, next to one LightGBM fit on the same rows.

    python -m bench.refresh [--decisions 1000000] [--rounds 3] [--keep PATH]
                            [--json bench/results/refresh.json]

Question: what does a scheduled refresh (read every decision from the store, censor pending
outcomes, fit the hierarchical Beta-Binomial per hook, 4,000 Monte Carlo draws per segment,
store a new version per hook) cost compared with training LightGBM once on the same decisions
(what a batch rewrite cannot avoid, many times over)?

Workload: `bench.learn.synthesize` (the LifeVantage maps and catalog, an engine-shaped
prospect_journey log with exact propensities, conversions from the simulator's hidden model),
sized to about `--decisions` content decisions; the catalog's segments are personality ×
interest (8 per hook). Rows, each the median over `--rounds` (wall seconds):
* `refresh` (end to end): `learner.refresh(store, "prospect_journey", outcome="Event_end",
  horizon=P14D)` at a time when a tenth of the log is still pending;
* of which `online_log`: reading the decisions from the store;
* LightGBM bare (baseline): `lightgbm.train` with `OutcomeModel`'s parameters and rounds on the
  decisions' feature matrix (built untimed).
The ratio is refresh / bare.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from datetime import timedelta
from pathlib import Path

# As learner.model does, before OpenMP loads: both rows then run with the same thread policy.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402

from bench._common import RESULTS, machine_info, write_result  # noqa: E402
from bench.learn import PROCESS, START, synthesize, timed  # noqa: E402
from content_catalog import load_stored_catalog  # noqa: E402
from engine import ManualClock  # noqa: E402
from learner import refresh  # noqa: E402
from learner._read_online import online_log  # noqa: E402
from learner.dataset import decisions  # noqa: E402
from learner.model import OutcomeModel  # noqa: E402
from learner.rewrite import PATH_FEATURES, context_columns  # noqa: E402
from nextmove import open_store  # noqa: E402

DECISIONS_PER_EVENT = 0.42  # measured on `synthesize`'s log (25,859 of 60,606), to size it
HORIZON = timedelta(days=14)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.refresh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="SQLite file to keep and reuse")
    parser.add_argument("--json", type=Path, default=RESULTS / "refresh.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "refresh.db"
        fresh = not _has_log(path)
        store = open_store(path)
        if fresh:
            t, _, events = timed(lambda: synthesize(
                store, int(args.decisions / DECISIONS_PER_EVENT)))
            print(f"synthesized {events:,} events in {t:.1f} s ({path})")
        catalog = load_stored_catalog(store)
        table = decisions(store, PROCESS, outcome="Event_end")
        columns = table.columns
        keep = ~np.isnan(np.asarray(columns["propensity"], dtype=np.float64))
        features = [c for c in (*PATH_FEATURES, *context_columns(table, columns))
                    if c in columns]
        model = OutcomeModel(features=features, seed=0)
        rows_fit = {k: v[keep] for k, v in columns.items()}
        model.fit(rows_fit)  # untimed: fixes the encoding
        matrix = model._encode(rows_fit)
        labels = np.asarray(columns["reward"], dtype=np.float64)[keep]
        cats = [model.features_.index(c) for c in model.categorical_]
        last = table.at[keep].max().astype("datetime64[us]").item()
        span = last - START
        now = START + span * 0.9 + HORIZON  # the last tenth of the log still pending
        print(f"{int(keep.sum()):,} decisions with a propensity; matrix {matrix.shape[0]:,} × "
              f"{matrix.shape[1]}; refresh at {now:%Y-%m-%d}")
        rows: dict[str, list[float]] = {"refresh": [], "online_log": [], "lightgbm_bare": []}
        for r in range(args.rounds):
            dataset = lgb.Dataset(matrix, label=labels, feature_name=model.features_,
                                  categorical_feature=cats or "auto",
                                  params={"verbosity": -1, "min_data_in_bin": 1})
            wall, _, _ = timed(lambda ds=dataset: lgb.train(  # type: ignore[misc]
                model.lightgbm_params(), ds, num_boost_round=model.n_estimators))
            rows["lightgbm_bare"].append(wall)
            wall, _, _ = timed(lambda: online_log(store, PROCESS, outcome="Event_end",
                                                  horizon=HORIZON, segments=catalog.segments))
            rows["online_log"].append(wall)
            wall, _, done = timed(lambda: refresh(store, PROCESS, outcome="Event_end",
                                                  horizon=HORIZON, clock=ManualClock(now)))
            rows["refresh"].append(wall)
            print(f"round {r + 1}: refresh {rows['refresh'][-1]:.1f} s (read "
                  f"{rows['online_log'][-1]:.1f} s), bare LightGBM "
                  f"{rows['lightgbm_bare'][-1]:.1f} s; {len(done.hooks)} hooks refreshed")
        store.dispose()
    median = {k: statistics.median(v) for k, v in rows.items()}
    ratio = median["refresh"] / median["lightgbm_bare"]
    for name in ("refresh", "online_log", "lightgbm_bare"):
        print(f"{name:16}{median[name]:10.2f} s{median[name] / median['lightgbm_bare']:9.2f}×")
    print(f"\nratio refresh / bare LightGBM: {ratio:.2f}")
    write_result(args.json, {
        "decisions": int(keep.sum()), "rounds": args.rounds, "matrix": list(matrix.shape),
        "wall_s_median": median, "wall_s_rounds": rows, "ratio_refresh_vs_bare": ratio,
        "machine": machine_info()})
    return 0


def _has_log(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 1_000_000


if __name__ == "__main__":
    raise SystemExit(main())
