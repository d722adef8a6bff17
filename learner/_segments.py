"""Policy learning helpers for the rewrite: segments of decisions, their mean doubly robust
scores, the cross-validated choice of segment features, and a policy's probabilities.

A segment feature is a context attribute with 2 to `max_levels` text (or bool) values, or a
numeric one (amounts, counts, flags stored as numbers) cut into at most `bins` quantile bins.
The cut points come from the rows the policy is learned on (`fit`): inside the rewrite's
cross-fit they never see the judged fold. A policy rule names a bin by the list of values seen
in it (the policy format matches values, not ranges), so a numeric attribute is a candidate
only with at most `max_values` distinct values; a value the rules never listed falls back to
a less specific rule, and the judged folds are scored the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from content_catalog import ContentOption, Policy
from content_catalog.policy import locale_market

Array = NDArray[Any]


@dataclass
class Shared:
    """What the segment tables of one hook's folds have in common (the same table and
    availability, Γ and fit rows apart): the text columns' levels, which do not depend on
    the fit rows, and for feature sets of text columns only, each row's segment number and
    cell key, which depend on nothing else."""

    text: dict[str, tuple[list[Any], Array] | None] = field(default_factory=dict)
    ids: dict[tuple[str, ...], Array] = field(default_factory=dict)
    cells: dict[tuple[str, ...], tuple[Array, int]] = field(default_factory=dict)


class Segments:
    """Integer codes of the candidate segment features of one hook's decisions, and their
    per-segment mean scores (Γ where the option is available) over any set of folds.

    Sums and counts are kept per fold, so a mean over "every fold but j" costs a sum over
    folds, not a pass over the decisions: the cross-validated feature search asks for many.
    """

    def __init__(self, table: dict[str, Array], context: list[str], max_levels: int,
                 min_support: int, gamma: Array, avail: Array, fold: Array, *,
                 fit: Array | None = None, bins: int = 4, max_values: int = 100,
                 shared: Shared | None = None) -> None:
        """`shared`: what was found for other folds of the same `table` and `avail`."""
        self.min_support = min_support
        self._shared = Shared() if shared is None else shared
        text = self._shared.text
        self.levels: dict[str, list[Any]] = {}
        self.codes: dict[str, Array] = {}
        fit = np.ones(len(fold), dtype=bool) if fit is None else fit
        for name in context:
            values = table[name]
            if _numeric(values):
                found = numeric_levels(values, fit, bins, max_values)
                if found is not None:
                    self.levels[name], self.codes[name] = found
                continue
            if name not in text:
                text[name] = text_levels(values, max_levels)
            found = text[name]
            if found is not None:
                self.levels[name], self.codes[name] = found
        self.candidates = tuple(self.codes)
        self._text = frozenset(name for name in self.codes if text.get(name) is not None)
        self.gamma, self.avail, self.fold = gamma, avail, fold
        self.folds = int(fold.max()) + 1 if fold.size else 1
        self._sums = np.where(avail, np.nan_to_num(gamma), 0.0)  # Γ, 0 where unavailable
        self._ids: dict[tuple[str, ...], Array] = {}
        self._stats: dict[tuple[str, ...], tuple[Array, Array, Array]] = {}
        self._means: dict[tuple[tuple[str, ...], tuple[int, ...]], tuple[Array, Array]] = {}
        self._cell_keys: dict[tuple[str, ...], tuple[Array, int]] = {}
        self._by_option = list(np.ascontiguousarray(self._sums.T))
        # Rows with the same options available share a pattern number (see `picks`).
        if avail.shape[1] <= 62:
            bits = avail.astype(np.int64) @ (np.int64(1) << np.arange(avail.shape[1],
                                                                      dtype=np.int64))
            pattern, patterns = pd.factorize(bits)
            options = (np.asarray(patterns)[:, None] >> np.arange(avail.shape[1])) & 1
        else:
            patterns, pattern = np.unique(avail, axis=0, return_inverse=True)
            options = patterns.astype(np.int64)
        self._patterns, self._pattern = len(patterns), np.asarray(pattern).reshape(-1)
        self._pattern_options = options.reshape(-1, avail.shape[1]).astype(np.int64)

    def ids(self, features: tuple[str, ...]) -> Array:
        """Per row its segment number (mixed radix over the features' codes; -1: missing)."""
        known = self._shared.ids if self._text.issuperset(features) else self._ids
        if features not in known:
            ids = np.zeros(len(self.fold), dtype=np.int64)
            for f in features:
                ids = ids * len(self.levels[f]) + self.codes[f]
            if features:
                ids[np.column_stack([self.codes[f] < 0 for f in features]).any(axis=1)] = -1
            known[features] = ids
        return known[features]

    def key(self, features: tuple[str, ...], segment: int) -> tuple[Any, ...]:
        """The feature values of a segment number."""
        out = []
        for f in reversed(features):
            segment, code = divmod(segment, len(self.levels[f]))
            out.append(self.levels[f][code])
        return tuple(reversed(out))

    def means(self, features: tuple[str, ...], folds: Sequence[int]) -> tuple[Array, Array]:
        """Per segment: its decisions in `folds`, and each option's mean score there (kept:
        the search asks for the same subsets over the same folds many times)."""
        memo = (features, tuple(folds))
        if memo in self._means:
            return self._means[memo]
        if features not in self._stats:
            ids, k = self.ids(features), self._sums.shape[1]
            groups = int(np.prod([len(self.levels[f]) for f in features]))
            sel = ids >= 0
            whole = bool(sel.all())
            cell = self.fold[sel] * groups + ids[sel]
            size = self.folds * groups
            # one bincount per option over its own contiguous column: each cell's sum adds
            # its rows in row order, as one bincount over all (row, option) pairs did
            sums = [np.bincount(cell, col if whole else col[sel], size) for col in self._by_option]
            # rows with each option available per cell: its rows per availability pattern
            # (one bincount) times the patterns' options; whole numbers, exact
            pattern = self._pattern if whole else self._pattern[sel]
            per_pattern = np.bincount(cell * self._patterns + pattern,
                                      minlength=size * self._patterns)
            counts = (per_pattern.reshape(size, self._patterns) @ self._pattern_options)
            self._stats[features] = (
                np.bincount(cell, minlength=size).reshape(self.folds, groups),
                np.stack(sums, axis=-1).reshape(self.folds, groups, k),
                counts.astype(np.float64).reshape(self.folds, groups, k))
        support, sums, counts = (x[list(folds)].sum(axis=0) for x in self._stats[features])
        with np.errstate(invalid="ignore", divide="ignore"):
            self._means[memo] = support, np.where(counts > 0, sums / counts, np.nan)
        return self._means[memo]

    def default(self, folds: Sequence[int]) -> Array:
        default: Array = self.means((), folds)[1][0]
        return default

    def tables(self, features: tuple[str, ...], folds: Sequence[int]
               ) -> list[tuple[tuple[Any, ...], Array]]:
        """(feature values, mean score per option) of each segment with enough support."""
        support, means = self.means(features, folds)
        return [(self.key(features, int(s)), means[s])
                for s in np.flatnonzero(support >= self.min_support)]

    def assign(self, features: tuple[str, ...], folds: Sequence[int], rows: Array) -> Array:
        """The scores each of `rows` gets from a policy learned on `folds` (rule order as in
        `_hook.HookLearner.policy`: most specific wins, ties to the first listed)."""
        out = np.tile(self.default(folds), (len(rows), 1))
        for size in range(1, len(features) + 1):
            for subset in reversed(list(itertools.combinations(features, size))):
                support, means = self.means(subset, folds)
                seg_rows = self.ids(subset)[rows]
                hit = seg_rows >= 0
                hit[hit] = support[seg_rows[hit]] >= self.min_support
                out[hit] = means[seg_rows[hit]]
        return out

    def picks(self, features: tuple[str, ...], folds: Sequence[int], rows: Array) -> Array:
        """Per row of `rows`, the column of the option the policy learned on `folds` puts
        first among those available (the first of equal scores; column 0 where none is).

        Rows with the same feature codes and the same options available get the same pick,
        so it is made once per such cell (one representative row each) and spread back."""
        known = self._shared.cells if self._text.issuperset(features) else self._cell_keys
        if features not in known:  # every row's, once per feature set
            key = self._pattern
            radix = max(self._patterns, 1)
            for f in features:
                key = key + radix * (self.codes[f] + 1)
                radix *= len(self.levels[f]) + 1
            known[features] = key, radix
        whole, radix = known[features]
        key = whole[rows]
        if radix <= max(4 * len(rows), 1 << 16):  # keys small enough for a dense table
            seen = np.zeros(radix, dtype=bool)
            seen[key] = True
            cell_keys = np.flatnonzero(seen)
            number = np.zeros(radix, dtype=np.int64)
            number[cell_keys] = np.arange(cell_keys.size)
            inverse = number[key]
        else:
            cell_keys, inverse = np.unique(key, return_inverse=True)
            inverse = inverse.reshape(-1)
        one = np.zeros(cell_keys.size, dtype=np.int64)
        one[inverse] = np.arange(len(rows))  # a row of each cell: any, they are alike
        cells = rows[one]
        scores = self.assign(features, folds, cells)
        best = np.where(self.avail[cells] & np.isfinite(scores), scores, -np.inf)
        chosen: Array = best.argmax(axis=1)[inverse]
        return chosen


def select(seg: Segments, folds: Sequence[int], *, max_features: int, min_gain: float,
           z: float) -> tuple[str, ...]:
    """The segment features whose "best option per segment" policy has the best value,
    cross-validated over `folds`: every set of up to two candidates, then the best extended
    one at a time. A richer set must beat each simpler one by `min_gain` plus `z` standard
    errors of the paired per-decision difference."""
    rows = {j: np.flatnonzero(seg.fold == j) for j in folds}

    def picked(features: tuple[str, ...]) -> Array:
        """Held-out score of each row under the policy learned without its fold."""
        out = []
        for j in folds:
            held = rows[j]
            out.append(seg.gamma[held, seg.picks(features, [f for f in folds if f != j],
                                                 held)])
        chosen: Array = np.nan_to_num(np.concatenate(out))
        return chosen

    def better(a: Array, b: Array) -> bool:
        d = a - b  # without the margin, chance alone would pick noise features
        return bool(d.mean() - min_gain > z * d.std() / np.sqrt(d.size))

    tried = {s: picked(s) for size in range(min(2, max_features) + 1)
             for s in itertools.combinations(seg.candidates, size)}
    chosen: tuple[str, ...] = ()
    for s in sorted(tried, key=lambda s: -tried[s].mean()):
        if len(s) > len(chosen) and better(tried[s], tried[chosen]) and all(
                better(tried[s], tried[sub]) for sub in _proper_subsets(s)):
            chosen = s
            break
    while 0 < len(chosen) < max_features:
        more = {(*chosen, c): picked((*chosen, c)) for c in seg.candidates
                if c not in chosen}
        bigger = max(more, key=lambda s: more[s].mean(), default=None)
        if bigger is None or not better(more[bigger], tried[chosen]):
            break
        chosen, tried[bigger] = bigger, more[bigger]
    return chosen


def _proper_subsets(features: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [s for size in range(len(features)) for s in itertools.combinations(features, size)]


def available(options: Sequence[ContentOption], table: dict[str, Array]) -> Array:
    """(rows, options): may the option be shown in the row's locale and market?"""
    n = len(table["shown"])
    locales = table.get("locale", np.full(n, None, dtype=object))
    markets = table.get("market", np.full(n, None, dtype=object))
    alike = _alike([locales, markets])
    if alike is not None:  # one look-up per distinct (locale, market)
        first, inverse = alike
        return available(options, {"shown": first, "locale": locales[first],
                                   "market": markets[first]})[inverse]
    memo: dict[tuple[Any, Any], list[bool]] = {}
    out = []
    for loc, mkt in zip(locales.tolist(), markets.tolist(), strict=True):
        key = locale_market({"locale": loc, "market": mkt})
        if key not in memo:
            memo[key] = [o.available_in(*key) for o in options]
        out.append(memo[key])
    return np.array(out, dtype=bool).reshape(n, len(options))


def _alike(columns: list[Array]) -> tuple[Array, Array] | None:
    """(the first row of each distinct combination of the columns' values, each row's
    combination), or None where that would not group rows as tuples of their values do in a
    dict (a missing value that is not None: NaN is not equal to itself). Few combinations
    (< 1/4 of the rows) only: otherwise None, as grouping would not pay."""
    n = len(columns[0]) if columns else 0
    if n < 64:
        return None
    key = np.zeros(n, dtype=np.int64)
    for values in columns:
        index, uniques = pd.factorize(values)
        missing = index < 0
        if missing.any() and any(v is not None for v in values[missing].tolist()):
            return None
        key = key * (len(uniques) + 1) + index + 1
        key, _ = pd.factorize(key)  # dense again: never overflows
    groups = int(key.max()) + 1
    if groups * 4 > n:
        return None
    # factorize numbers groups in order of first appearance: the running maximum of the
    # numbers grows exactly at each group's first row
    first = np.flatnonzero(np.diff(np.maximum.accumulate(key), prepend=-1) > 0)
    return first, key


def probabilities(policy: Policy, options: Sequence[ContentOption],
                   table: dict[str, Array]) -> Array:
    """(rows, options): the policy's probability of showing each option in each row."""
    features = sorted({f for r in policy.rules for f in r.when} | {"locale", "market"})
    present = [f for f in features if f in table]
    n = len(table["shown"])
    alike = _alike([table[f] for f in present]) if present else None
    if alike is not None:  # the policy ranks each distinct context once
        first, inverse = alike
        return probabilities(policy, options, {f: table[f][first] for f in
                                               [*present, "shown"] if f in table})[inverse]
    codes: dict[tuple[Any, ...], int] = {}
    inverse = np.fromiter((codes.setdefault(k, len(codes)) for k in zip(
        *[table[f].tolist() for f in present], strict=True)) if present else iter([0] * n),
        dtype=np.int64, count=n)
    keys = list(codes) if present else [()]
    index = {o.id: i for i, o in enumerate(options)}
    per_key = np.zeros((len(keys), len(options)))
    for u, key in enumerate(keys):
        context = {f: v for f, v in zip(present, key, strict=True) if v is not None}
        for ranked in policy.rank(options, context):
            per_key[u, index[ranked.option_id]] = ranked.probability
    return per_key[inverse]


def case_folds(case_ids: Array, folds: int, seed: int) -> Array:
    """A fold per row; all rows of a case share one."""
    if folds < 2:
        raise ValueError("folds must be at least 2")
    cases, inverse = np.unique(np.asarray(case_ids).astype(str), return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(cases))
    return (order % folds)[inverse.reshape(-1)].astype(np.int64)


def take(columns: Mapping[str, Array], rows: Array) -> dict[str, Array]:
    """`rows` (a mask or row numbers) of every column (a mask made row numbers once, not
    once per column)."""
    index = np.flatnonzero(rows) if rows.dtype == bool else rows
    return {name: values[index] for name, values in columns.items()}


def text_levels(values: Array, max_levels: int) -> tuple[list[Any], Array] | None:
    """(sorted levels, per row its level or -1 for None) of a column of 2 to `max_levels`
    distinct text or bool values besides None; None for any other column. The values are
    hashed once (pandas.factorize) and only the distinct ones are looked at."""
    index, uniques = pd.factorize(values)
    distinct = uniques.tolist()
    if (index < 0).any():  # factorize sets aside None and NaN alike; NaN is no level
        missing = {type(v) for v in values[index < 0].tolist()}
        if missing != {type(None)}:
            return None
    if not all(isinstance(v, str) for v in distinct):
        # bools (and mixtures, where True == 1) keep the plain set semantics
        return _text_levels_by_set(values, max_levels)
    if not 2 <= len(distinct) <= max_levels:
        return None
    levels = sorted(distinct, key=str)
    position = np.array([levels.index(v) for v in distinct] + [-1], dtype=np.int64)
    codes: Array = position[index]  # index -1 (None) picks the -1 at the end
    return levels, codes


def _text_levels_by_set(values: Array, max_levels: int) -> tuple[list[Any], Array] | None:
    distinct = set(values.tolist()) - {None}
    if not (2 <= len(distinct) <= max_levels and all(isinstance(v, str | bool)
                                                     for v in distinct)):
        return None
    levels = sorted(distinct, key=str)
    lookup = {v: i for i, v in enumerate(levels)}
    return levels, np.array([lookup.get(v, -1) for v in values.tolist()])


def _numeric(values: Array) -> bool:
    """Every present value is a number (not a bool), and there is one."""
    if values.dtype.kind in "iuf":
        return True
    found = False
    for v in values:  # a text column stops at its first value
        if v is None:
            continue
        if not isinstance(v, int | float) or isinstance(v, bool):
            return False
        found = True
    return found


def numeric_levels(values: Array, fit: Array, bins: int, max_values: int
                   ) -> tuple[list[Any], Array] | None:
    """Quantile bins of a numeric attribute, cut on the `fit` rows: (per bin the tuple of
    values seen in it, per row its bin or -1), or None when it cannot segment (fewer than two
    values, or more than `max_values`). A 0/1 bin also lists False/True, so a flag sent as a
    bool matches it (the decision table stores flags as numbers)."""
    x = np.asarray(values.tolist() if values.dtype.kind == "O" else values, dtype=np.float64)
    seen = np.unique(x[fit & np.isfinite(x)])
    if not 2 <= seen.size <= max_values:
        return None
    if seen.size <= bins:
        cuts = seen[1:]
    else:  # cut between distinct values, so a value never straddles two bins
        weights = x[fit & np.isfinite(x)]
        cuts = np.unique(np.quantile(weights, np.arange(1, bins) / bins, method="higher"))
        cuts = cuts[cuts > seen[0]]
    bin_of_seen = np.searchsorted(cuts, seen, side="right")
    levels = []
    for b in range(cuts.size + 1):
        members: list[Any] = [float(v) for v in seen[bin_of_seen == b]]
        members += [bool(v) for v in members if v in (0.0, 1.0)]
        levels.append(tuple(members))
    codes = np.searchsorted(cuts, x, side="right")
    present = np.isfinite(x) & np.isin(x, seen)
    return levels, np.where(present, codes, -1)
