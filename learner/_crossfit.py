"""Reward models for nested cross-fitting: per fold a model that never saw it, and per pair of
folds a model that saw neither.

With the decisions split by case into folds 0..K-1:

* `outer(k)` is fitted on every fold but k. It scores fold k wherever fold k is judged, and
  it gives the doubly robust scores the proposed policy is learned from (each row scored by
  the model without its fold: ordinary cross-fitting).
* `pair(j, k)` is fitted on every fold but j and k. When fold k is held out for judging, the
  policy for it is learned from the other folds' scores, and a row of fold j among them is
  scored by `pair(j, k)`: so neither the policy nor any reward model behind it saw fold k.

That is K + K(K-1)/2 fits (15 for K = 5) on (K-2)/K to (K-1)/K of the log each, and, with
`full=True`, the model on every row (the rewrite's explanations). They are independent:
`parallel` runs as many at once as the cores allow (`workers`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from learner._factorized import Factorized
from learner._segments import take
from learner.model import OutcomeModel

Array = NDArray[Any]
T = TypeVar("T")
R = TypeVar("R")


def workers(params: Mapping[str, Any]) -> int:
    """How many fits run at once: the cores this process may use over the threads each fit
    takes (LightGBM's `num_threads`), plus one where there is more than one core. A fit keeps
    its threads busy only part of the time (binning the matrix, each tree's bookkeeping run
    on one thread): one more fit fills those gaps. On two cores with the default 2 threads,
    2 at once took the 15 fold fits of a million-event log from 19.4 to 13.8 s (BENCHMARKS.md,
    section 6, learn round 5); 3 at once, 14.3 s."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    threads = int(params.get("num_threads", OutcomeModel().num_threads))
    return max(1, cores // max(1, threads)) + (1 if cores > 1 else 0)


def parallel(work: Callable[[T], R], jobs: Sequence[T], params: Mapping[str, Any]) -> list[R]:
    """`work` over `jobs`, results in order, `workers(params)` at a time. Threads suffice:
    LightGBM trains and predicts outside the GIL, and each fit is deterministic whatever runs
    beside it."""
    count = min(workers(params), len(jobs))
    if count <= 1:
        return [work(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(work, jobs))


class CrossFit:
    """The outer and pair models of one log's folds (see the module docstring)."""

    def __init__(self, data: Mapping[str, Array], fold: Array, features: list[str],
                 params: Mapping[str, Any], *, nested: bool = True, full: bool = False) -> None:
        """`nested=False`: the outer models only (to judge a given policy, learned from
        nothing in this log, ordinary cross-fitting is enough). `full=True`: also the model
        on every row, as `self.full` (None otherwise)."""
        self.fold = fold
        self.folds = [int(k) for k in np.unique(fold)]
        if len(self.folds) < (3 if nested else 2):
            raise ValueError(f"{'nested ' if nested else ''}cross-fitting needs at least "
                             f"{3 if nested else 2} folds with decisions")

        self.features = features
        # every text column hashed once for all the fits (and the model on all rows)
        self.codes = Factorized(data, features)
        needed = [*features, OutcomeModel(**params).target]
        used = {name: data[name] for name in dict.fromkeys(needed) if name in data}

        def fit(without: Sequence[int]) -> OutcomeModel:
            keep = ~np.isin(fold, list(without))
            return OutcomeModel(features=features, **params).fit(
                take(used, keep), codes=self.codes.take(keep))

        jobs: list[tuple[int, ...]] = [()] if full else []  # (): without no fold, every row
        jobs += [(k,) for k in self.folds]
        jobs += list(itertools.combinations(self.folds, 2)) if nested else []
        fitted = dict(zip(jobs, parallel(fit, jobs, params), strict=True))
        self.full = fitted.get(())
        self.outer = {k: fitted[(k,)] for k in self.folds}
        self.pairs = {(job[0], job[1]): fitted[job] for job in jobs if len(job) == 2}

    def pair(self, j: int, k: int) -> OutcomeModel:
        return self.pairs[(min(j, k), max(j, k))]

    def predictions(self, table: Mapping[str, Array], fold: Array, ids: Sequence[str], *,
                    needed: Array | None = None) -> tuple[Array, dict[int, Array]]:
        """q(x, a) for `table`'s rows (one hook's; `fold` theirs) and every option in `ids`:
        (each row by the model without its fold, {k: each row outside fold k by the model
        without its fold and k; rows of fold k are 0}). Folds absent from `table` are
        skipped. `needed` (rows, options): the entries read later; others may be 0
        (`OutcomeModel.predict_actions`)."""
        present = [k for k in self.folds if (fold == k).any()]
        rows = {k: fold == k for k in present}
        used = {name: table[name] for name in self.features if name in table}
        factorized = Factorized(used, self.features)  # hashed once for the 5 + 10 calls
        # the text columns travel as their codes: only the others are copied per call
        used = {name: values for name, values in used.items() if name not in factorized}
        parts = {k: take(used, rows[k]) for k in present}
        codes = {k: factorized.take(rows[k]) for k in present}
        loo = np.zeros((fold.size, len(ids)))
        nested = {k: np.zeros((fold.size, len(ids))) for k in present}
        for k in present:
            loo[rows[k]] = self.outer[k].predict_actions(
                parts[k], ids, codes=codes[k], needed=None if needed is None else needed[rows[k]])
        for j, k in (itertools.combinations(present, 2) if self.pairs else ()):
            # folds j and k in one call: rows of both that share a cell are predicted once
            both = rows[j] | rows[k]
            q = self.pair(j, k).predict_actions(
                take(used, both), ids, codes=factorized.take(both),
                needed=None if needed is None else needed[both])
            in_j = rows[j][both]
            nested[k][rows[j]] = q[in_j]
            nested[j][rows[k]] = q[~in_j]
        return loo, nested
