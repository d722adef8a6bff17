"""Finding a policy's most specific matching rule without testing every rule.

Rules are grouped by the set of features they test; each group is a hash table from the
condition values (a list condition expands into one key per value) to the first rule listed.
A lookup tries the groups with the most conditions first and stops at the first size that
matches, which gives the same answer as testing the rules in order (`Rule.matches`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

Conditions = tuple[tuple[str, Any], ...]
_EXPAND_LIMIT = 4096  # keys per rule; a wider rule is tested condition by condition


def _key(values: tuple[Any, ...]) -> tuple[Any, ...]:
    # JSON tells true from 1, Python's hash and == do not: tag tuples that hold a bool.
    if bool in map(type, values):
        return tuple((type(v) is bool, v) for v in values)
    return values


class RuleIndex:
    """The index of the most specific rule matching a context (ties: the first listed)."""

    def __init__(self, rules: Sequence[Conditions],
                 matches: Callable[[int, Mapping[str, Any]], bool]) -> None:
        self._matches = matches
        tables: dict[tuple[str, ...], dict[tuple[Any, ...], int]] = {}
        wide: dict[int, list[int]] = {}
        for index, conditions in enumerate(rules):
            by_feature = dict(conditions)
            features = tuple(sorted(by_feature))
            choices = [v if isinstance(v, tuple) else (v,) for v in map(by_feature.get, features)]
            if math.prod(len(c) for c in choices) > _EXPAND_LIMIT:
                wide.setdefault(len(features), []).append(index)
                continue
            table = tables.setdefault(features, {})
            for combo in itertools.product(*choices):
                table.setdefault(_key(combo), index)
        sizes = sorted({len(f) for f in tables} | set(wide), reverse=True)
        self._levels = [
            ([(_getter(f), t) for f, t in tables.items() if len(f) == size], wide.get(size, []))
            for size in sizes
        ]

    def find(self, context: Mapping[str, Any]) -> int | None:
        for groups, wide in self._levels:
            best: int | None = None
            for getter, table in groups:
                try:
                    found = table.get(_key(getter(context)))
                except (KeyError, TypeError):  # a feature missing, or a list/object value
                    continue
                if found is not None and (best is None or found < best):
                    best = found
            for index in wide:
                if (best is None or index < best) and self._matches(index, context):
                    best = index
            if best is not None:
                return best
        return None


def _getter(features: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if not features:
        return lambda _context: ()
    if len(features) == 1:
        name = features[0]
        return lambda context: (context[name],)
    getter = itemgetter(*features)
    return getter
