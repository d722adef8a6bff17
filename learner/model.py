"""The outcome model: LightGBM predicting a decision's reward from context × hook × content.

    model = OutcomeModel(seed=0).fit(table)          # a DecisionTable, columns or rows
    model.predict_proba(rows)[:, 1]                  # P(reward = 1)
    model.predict_actions(rows, ["video_a", "video_b"])   # P(reward = 1) had each been shown
    model.contributions(rows)[0]                     # {"prospect_interest": 0.41, ...}

Features, unless given: every column but the bookkeeping ones (`EXCLUDED`: ids, the logged
propensity and version, what was used and done after the card, the reward): the hook, the
content shown, the step and the path features (`step_index`, `hours_since_previous_step`) and
every context key. Text columns are categorical (integer codes passed to LightGBM as
`categorical_feature`, so it splits on them natively); a categorical column with more than
`max_cardinality` values (names, ids; but the action, hook and step), columns that identify a
person (`identifying`: `*_id`, `*first_name`, `email`, ...) and timestamps are dropped and
listed in `dropped_features_`. Values
not seen in training and missing values go to LightGBM's missing branch.

Training is deterministic: fixed seed, `deterministic=True`, `force_row_wise=True` and a fixed
thread count, so the same table gives the same booster.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

# OpenMP threads that spin while waiting make a 2-thread fit ~20x slower on a busy host;
# sleeping waits cost little here. Only applies if nothing loaded OpenMP before us.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from numpy.typing import NDArray

from learner import _cells
from learner._factorized import Factorized

ACTION = "shown"
TARGET = "reward"
EXCLUDED = frozenset({"case_id", "instance_id", "propensity", "policy_version", "used",
                      "action", "reward", "prospect_id", "distributor_id", "sponsor_id",
                      "at", "time"})
STRUCTURAL = ("hook", "step_id")  # kept whatever their cardinality, like the action
# Context keys that identify a person instead of describing them (`sponsor_id`,
# `prospect_first_name`, `email`): never features, so no policy targets people by name or id.
_IDENTIFYING = re.compile(r"(?:^|[._])(?:id|name|first_name|last_name|full_name|email|phone)$"
                          r"|_id$")
BIAS = "(baseline)"


def identifying(name: str) -> bool:
    """Whether a column names or numbers a person (see `_IDENTIFYING`) and so is no feature."""
    return bool(_IDENTIFYING.search(name))

Columns = dict[str, NDArray[Any]]


class OutcomeModel:
    """Gradient-boosted P(reward | features) with per-prediction feature contributions.

    Parameters follow scikit-learn's rule: stored as given, read by `fit`. Fitted attributes
    end in `_`: `booster_`, `features_`, `categorical_`, `categories_`, `dropped_features_`,
    `feature_importances_` (total gain per feature), `classes_`.
    """

    def __init__(self, *, features: Sequence[str] | None = None, target: str = TARGET,
                 action: str = ACTION, n_estimators: int = 100, learning_rate: float = 0.1,
                 num_leaves: int = 15, min_child_samples: int = 20, reg_lambda: float = 1.0,
                 max_cardinality: int = 16, seed: int = 0, num_threads: int = 2,
                 params: Mapping[str, Any] | None = None) -> None:
        self.features = features
        self.target = target
        self.action = action
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.max_cardinality = max_cardinality
        self.seed = seed
        self.num_threads = num_threads
        self.params = params

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _PARAM_NAMES}

    def set_params(self, **params: Any) -> OutcomeModel:
        for name, value in params.items():
            if name not in _PARAM_NAMES:
                raise ValueError(f"unknown parameter {name!r}")
            setattr(self, name, value)
        return self

    def lightgbm_params(self) -> dict[str, Any]:
        """The parameters handed to `lightgbm.train`."""
        return {
            "objective": "binary", "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_child_samples,
            "lambda_l2": self.reg_lambda, "min_data_per_group": 20, "cat_smooth": 5.0,
            "max_cat_to_onehot": 4, "seed": self.seed, "deterministic": True,
            "force_row_wise": True, "num_threads": self.num_threads, "verbosity": -1,
            **dict(self.params or {}),
        }

    def fit(self, table: Any, y: Any = None, *, codes: Factorized | None = None
            ) -> OutcomeModel:
        """Fit on a decision table (its `target` column is the label unless `y` is given).
        `codes`: its text columns already factorized (the same rows), to skip hashing them."""
        columns = as_columns(table)
        labels = np.asarray(columns[self.target] if y is None else y, dtype=np.float64)
        if labels.size == 0:
            raise ValueError("nothing to learn from: the table has no rows")
        if not np.all((labels == 0) | (labels == 1)):
            raise ValueError(f"{self.target!r} must be 0 or 1")
        candidates = list(self.features) if self.features is not None else [
            c for c in columns if c not in EXCLUDED and c != self.target]
        missing = [c for c in candidates if c not in columns]
        if missing:
            raise ValueError(f"no column {missing[0]!r} in the table")
        self.categorical_, self.categories_, self.dropped_features_ = [], {}, []
        kept = []
        for name in candidates:
            values = columns[name]
            if identifying(name) and name not in (self.action, *STRUCTURAL):
                self.dropped_features_.append(name)
                continue
            if values.dtype.kind in "mM":  # timestamps identify rows, they do not generalize
                self.dropped_features_.append(name)
                continue
            if codes is not None and name in codes:
                levels = codes.levels(name)  # text: never numeric
            elif _is_numeric(values):
                kept.append(name)
                continue
            else:
                levels = _levels(values)
            if len(levels) > self.max_cardinality and name not in (self.action, *STRUCTURAL):
                self.dropped_features_.append(name)
                continue
            kept.append(name)
            self.categorical_.append(name)
            self.categories_[name] = levels
        self.features_ = kept
        matrix = self._encode(columns, codes)
        dataset = lgb.Dataset(
            matrix, label=labels, feature_name=list(self.features_),
            categorical_feature=[self.features_.index(c) for c in self.categorical_] or "auto",
            params={"verbosity": -1, "min_data_in_bin": 1}, free_raw_data=True)
        self.booster_ = lgb.train(self.lightgbm_params(), dataset,
                                  num_boost_round=self.n_estimators)
        gain = self.booster_.feature_importance(importance_type="gain")
        self.feature_importances_ = {f: float(g) for f, g in zip(self.features_, gain,
                                                                  strict=True)}
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(self.features_)
        return self

    def predict_proba(self, rows: Any) -> NDArray[np.float64]:
        """(n, 2): P(reward = 0) and P(reward = 1) for each row."""
        p = self._predict(self._matrix(as_columns(rows)))
        return np.column_stack([1.0 - p, p])

    def predict(self, rows: Any) -> NDArray[np.int64]:
        return (self.predict_proba(rows)[:, 1] >= 0.5).astype(np.int64)

    def predict_actions(self, rows: Any, actions: Sequence[Any], *,
                        codes: Factorized | None = None,
                        needed: NDArray[np.bool_] | None = None) -> NDArray[np.float64]:
        """(n, len(actions)): P(reward = 1) for each row had `actions[k]` been shown
        (`codes`: the rows' text columns already factorized). `needed` (n, len(actions)):
        only those entries are wanted (an action not available to a row: its score is never
        read); an entry no row of its cell needs is 0.0, every other one the prediction."""
        self._check_fitted()
        matrix = self._encode(as_columns(rows), codes)
        column = self.features_.index(self.action) if self.action in self.features_ else None
        if column is not None:
            matrix[:, column] = 0.0  # one value for all: each action is set below
        # the rows' cells whatever is shown, grouped once rather than once per action: each
        # cell's row, once per action, is a row of the plain path's per-action cells
        one, group = self._cells(matrix)
        wanted = np.ones((len(actions), one.size), dtype=bool)
        if needed is not None:  # a cell's prediction for an action: if any of its rows needs it
            for k in range(len(actions)):
                wanted[k] = np.bincount(group[needed[:, k]], minlength=one.size) > 0
        action, cell = np.nonzero(wanted)  # action-major, as one tiled matrix per action
        stacked = matrix[one[cell]]  # one predict call for every (cell, action) wanted
        if column is not None:
            codes_of = np.array([self._code(self.action, a) for a in actions],
                                dtype=np.float64)
            stacked[:, column] = codes_of[action]
        found = np.zeros((len(actions), one.size))
        if cell.size:
            found[wanted] = self.booster_.predict(stacked, num_threads=self.num_threads)
        return found[:, group].T

    def contributions(self, rows: Any) -> list[dict[str, float]]:
        """Per row, each feature's contribution to the log-odds (LightGBM `pred_contrib`),
        largest first, plus `BIAS`, the model's average log-odds. They sum to the row's
        log-odds."""
        raw = self.contribution_matrix(rows)
        names = [*self.features_, BIAS]
        out = []
        for row in raw:
            order = sorted(range(len(self.features_)), key=lambda j: -abs(row[j]))
            entry = {names[j]: float(row[j]) for j in order}
            entry[BIAS] = float(row[-1])
            out.append(entry)
        return out

    def contribution_matrix(self, rows: Any) -> NDArray[np.float64]:
        """(n, features + 1) contributions; the last column is the bias."""
        self._check_fitted()
        matrix = self._matrix(as_columns(rows))
        one, group = self._cells(matrix)
        found = np.asarray(self.booster_.predict(matrix[one], pred_contrib=True,
                                                 num_threads=self.num_threads))
        return found[group]

    def _predict(self, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        self._check_fitted()
        one, group = self._cells(matrix)
        found = np.asarray(self.booster_.predict(matrix[one], num_threads=self.num_threads),
                           dtype=np.float64)
        return found[group]

    def _cells(self, matrix: NDArray[np.float64]) -> tuple[NDArray[np.int64],
                                                           NDArray[np.int64]]:
        """Rows the trees cannot tell apart, grouped (`_cells`): each group is predicted
        once, the same numbers as predicting every row."""
        if getattr(self, "_cuts", (None,))[0] is not self.booster_:
            self._cuts = (self.booster_, _cells.cut_points(self.booster_))
        categorical = [self.features_.index(c) for c in self.categorical_]
        return _cells.cells(matrix, categorical, self._cuts[1])

    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_") or not hasattr(self, "features_"):
            raise ValueError("this OutcomeModel is not fitted yet; call fit(table) first")

    def _matrix(self, columns: Columns) -> NDArray[np.float64]:
        self._check_fitted()
        return self._encode(columns)

    def _encode(self, columns: Columns, codes: Factorized | None = None
                ) -> NDArray[np.float64]:
        n = codes.rows if codes is not None and codes.rows is not None else _height(columns)
        matrix = np.full((n, len(self.features_)), np.nan)
        for j, name in enumerate(self.features_):
            if codes is not None and name in codes and name in self.categories_:
                # the codes stand for the column: the rows' values need not be passed
                matrix[:, j] = codes.codes(name, self.categories_[name])
                continue
            if name not in columns:
                continue  # a feature the rows lack: missing for every row
            values = columns[name]
            if name in self.categories_:
                matrix[:, j] = _codes(values, self.categories_[name])
            else:
                matrix[:, j] = _floats(values)
        return matrix

    def _code(self, feature: str, value: Any) -> float:
        if feature not in self.categories_:
            return float(value)
        try:
            return float(self.categories_[feature].index(_key(value)))
        except ValueError:
            return math.nan


_PARAM_NAMES = ("features", "target", "action", "n_estimators", "learning_rate", "num_leaves",
                "min_child_samples", "reg_lambda", "max_cardinality", "seed", "num_threads",
                "params")


def as_columns(table: Any) -> Columns:
    """Columns of a table: a mapping of columns, an object with a `columns` mapping or
    `to_columns()`, a pandas DataFrame, or a sequence of row mappings / dataclasses."""
    if isinstance(table, Mapping):
        raw: Mapping[str, Any] = table
    elif hasattr(table, "to_columns"):
        raw = table.to_columns()
    elif isinstance(getattr(table, "columns", None), Mapping):
        raw = table.columns
    elif hasattr(table, "columns") and hasattr(table, "__getitem__"):  # a DataFrame
        raw = {str(c): table[c].to_numpy() for c in table.columns}
    else:
        rows = [dataclasses.asdict(r) if dataclasses.is_dataclass(r)
                and not isinstance(r, type) else r for r in table]
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        raw = {name: [row.get(name) for row in rows] for name in names}
    out = {str(name): _array(values) for name, values in raw.items()}
    _height(out)
    return out


def _array(values: Any) -> NDArray[Any]:
    if isinstance(values, np.ndarray):
        return values
    arr = np.asarray(list(values))
    if arr.dtype.kind in "US":  # keep strings as Python objects: codes are looked up by value
        arr = arr.astype(object)
    return arr


def _height(columns: Columns) -> int:
    sizes = {len(v) for v in columns.values()}
    if len(sizes) > 1:
        raise ValueError(f"columns differ in length: {sorted(sizes)}")
    return sizes.pop() if sizes else 0


def _distinct(values: NDArray[Any]) -> set[Any]:
    """The distinct present values (Python scalars: `tolist` unwraps numpy's), no None/NaN."""
    return {v for v in set(values.tolist()) if v is not None and not _is_nan(v)}


def _codes(values: NDArray[Any], levels: list[Any]) -> NDArray[np.float64]:
    """Each value's position in `levels` (NaN: not there), as a lookup of each value in a
    dict of the levels gives it: pandas factorizes the values in one hash-table pass, and
    only their few distinct values are looked up. None and NaN, never levels, stay NaN."""
    index, uniques = pd.factorize(values)
    lookup = {v: float(i) for i, v in enumerate(levels)}
    table = np.array([lookup.get(v, np.nan) for v in uniques.tolist()] + [np.nan],
                     dtype=np.float64)
    found: NDArray[np.float64] = table[index]  # the sentinel -1 picks the NaN at the end
    return found


def _is_numeric(values: NDArray[Any]) -> bool:
    if values.dtype.kind in "iuf":
        return True
    if values.dtype.kind != "O":
        return False
    present = _distinct(values)
    return bool(present) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present)


def _floats(values: NDArray[Any]) -> NDArray[np.float64]:
    if values.dtype.kind in "iuf":
        return values.astype(np.float64)
    return np.array([np.nan if v is None else float(v) for v in values.tolist()],
                    dtype=np.float64)


def _levels(values: NDArray[Any]) -> list[Any]:
    return sorted(_distinct(values), key=lambda v: (type(v).__name__, str(v)))


def _key(value: Any) -> Any:
    # One code per value whatever container it came from (numpy scalars as Python ones).
    return value.item() if isinstance(value, np.generic) else value


def _is_nan(value: Any) -> bool:
    return isinstance(value, float | np.floating) and math.isnan(value)
