"""Rows a LightGBM model cannot tell apart, predicted once.

A tree sends a row left or right at each split by comparing one feature with one threshold
(numeric) or by its category. Two rows with the same category codes whose numeric values lie
between the same thresholds of every split take the same path through every tree, so their
predictions and their per-feature contributions (TreeSHAP reads only which way a row goes at
each node) are the same numbers. `cells` groups a matrix's rows that way; the model predicts
one row per group and spreads the results back: on a decision log, where most features are
categories and the numeric ones are split at a few dozen thresholds, that is far fewer rows.

Cut points are the model's thresholds with their neighbouring doubles (so a threshold read
back from the model's dump one unit off still separates the rows it should), and ±1e-35 and
0: LightGBM treats values within 1e-35 of 0 as zero for a feature whose missing type is Zero.
NaN is a group of its own. `tests/learner/test_cells.py` checks the predictions and
contributions are equal to those of every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

Array = NDArray[Any]
_ZERO = (-1e-35, float(np.float32(-1e-35)), 0.0, float(np.float32(1e-35)), 1e-35)


def cut_points(booster: lgb.Booster) -> dict[int, NDArray[np.float64]]:
    """Per numeric feature (column number) split on, its sorted cut points."""
    found: dict[int, set[float]] = {}
    stack = [tree["tree_structure"] for tree in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" not in node:
            continue
        if node.get("decision_type") == "<=":
            found.setdefault(int(node["split_feature"]), set()).add(float(node["threshold"]))
        stack += [node["left_child"], node["right_child"]]
    out = {}
    for feature, thresholds in found.items():
        t = np.array(sorted({*thresholds, *_ZERO}), dtype=np.float64)
        out[feature] = np.unique(np.concatenate(
            [t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)]))
    return out


def cells(matrix: NDArray[np.float64], categorical: Sequence[int],
          cuts: dict[int, NDArray[np.float64]]) -> tuple[Array, Array]:
    """(one row number per group, each row's group) of rows no split can tell apart.
    `categorical`: the column numbers of categorical features (integer codes or NaN)."""
    n, width = matrix.shape
    key = np.zeros(n, dtype=np.int64)
    span = 1
    for j in range(width):
        column = matrix[:, j]
        nan = np.isnan(column)
        if j in categorical:
            part = np.where(nan, -1.0, column).astype(np.int64)
            part -= part.min(initial=0)  # codes are >= 0, NaN -1: from 0 up
            size = int(part.max(initial=0)) + 1
        elif j in cuts:
            part = np.searchsorted(cuts[j], column, side="left") + 1
            part[nan] = 0
            size = cuts[j].size + 2
        else:
            continue  # never split on: cannot tell rows apart
        if span > (1 << 62) // size:  # renumber the groups so far densely before widening
            key, uniques = pd.factorize(key)
            span = max(len(uniques), 1)
        key = key * size + part
        span *= size
    group, uniques = pd.factorize(key)
    one = np.zeros(len(uniques), dtype=np.int64)
    one[group] = np.arange(n)  # any row of a group stands for it
    return one, group
