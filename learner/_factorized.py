"""Text columns hashed once, for the many models and predictions of one cross-fit.

Nested cross-fitting fits 16 models on row subsets of one table and predicts every row with
several of them. Each `OutcomeModel` learns its categories from its own rows and codes values
by position in them; done from the raw values, that hashes every text value again per model
and per prediction. `Factorized` hashes each column once (`pandas.factorize`): a subset's
categories are the distinct values its rows index, and its codes a lookup of those few
values, so a model fitted or predicting through it sees exactly the matrix it would build from
the values themselves (`tests/learner/test_crossfit.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

Array = NDArray[Any]


class Factorized:
    """Per text column: its distinct values and per row the position of its value among
    them (-1: None or NaN, which are never categories). Only columns whose values are all
    text (or missing) are kept: others go the plain way."""

    def __init__(self, columns: Mapping[str, Array], names: Iterable[str]) -> None:
        self.index: dict[str, Array] = {}
        self.uniques: dict[str, list[Any]] = {}
        for name in names:
            values = columns.get(name)
            if values is None or values.dtype.kind != "O":
                continue
            index, uniques = pd.factorize(values)
            distinct = uniques.tolist()
            if not all(isinstance(v, str) for v in distinct):
                continue
            missing = index < 0
            if missing.any() and not all(v is None or isinstance(v, float)  # float: NaN
                                         for v in values[missing].tolist()):
                continue
            self.index[name], self.uniques[name] = index, distinct

    @property
    def rows(self) -> int | None:
        """How many rows the columns have (None: no text column kept)."""
        return next((index.size for index in self.index.values()), None)

    def __contains__(self, name: object) -> bool:
        return name in self.index

    def take(self, rows: Array) -> Factorized:
        """The same columns for `rows` (a mask or indices) of the table."""
        out = Factorized({}, ())
        chosen = np.flatnonzero(rows) if rows.dtype == bool else rows  # once, not per column
        out.index = {name: index[chosen] for name, index in self.index.items()}
        out.uniques = self.uniques
        return out

    def levels(self, name: str) -> list[Any]:
        """The distinct present values, sorted as `OutcomeModel` sorts its categories."""
        uniques = self.uniques[name]
        present = np.bincount(self.index[name] + 1, minlength=len(uniques) + 1)[1:] > 0
        return sorted((uniques[i] for i in np.flatnonzero(present)),
                      key=lambda v: (type(v).__name__, str(v)))

    def codes(self, name: str, levels: list[Any]) -> NDArray[np.float64]:
        """Each row's position in `levels` (NaN: missing or not a level)."""
        lookup = {v: float(i) for i, v in enumerate(levels)}
        table = np.array([lookup.get(v, np.nan) for v in self.uniques[name]] + [np.nan],
                         dtype=np.float64)
        found: NDArray[np.float64] = table[self.index[name]]  # -1 picks the NaN at the end
        return found
