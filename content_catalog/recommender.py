"""The engine's recommender over the store: the stored catalog and each hook's active policy.

    recommender = StoredRecommender(store)   # nextmove.open_engine gives its engine one
    recommender.recommend("intro_video", {"market": "US"}, random.Random(7))

Catalog and policies are cached. At most once every `refresh_seconds` (cache freshness, on
the monotonic clock: not business time) one small query checks whether the latest catalog
version or any active policy version changed, and reloads what did. Between checks a
recommendation touches no database: a rule lookup, a cached ranking per (rule, locale, market)
and one `rng.random()`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from content_catalog._errors import CatalogNotFound
from content_catalog._exploration import cumulative, pick
from content_catalog._loader import read_stored_catalog_text
from content_catalog._model import Catalog, ContentOption
from content_catalog.policy import Policy, catalog_policy, locale_market
from content_catalog.policy_store import (
    latest_catalog_id,
    read_active_policies,
    read_active_versions,
)
from content_catalog.recommend import Ranked, Recommendation
from engine.store import CATALOG
from engine.store.database import Store

_MEMO_LIMIT = 4096  # rankings per hook; contexts with ever-new locales must not grow it forever


@dataclass
class _HookRanker:
    """One hook's policy over its catalog options, with rankings memoized by what decides them."""

    policy: Policy
    options: tuple[ContentOption, ...]
    memo: dict[tuple[Any, ...], tuple[tuple[Ranked, ...], tuple[float, ...]]] = field(
        default_factory=dict)

    def recommend(self, context: Mapping[str, Any], rng: random.Random) -> Recommendation | None:
        # A ranking depends on the context only through the rule that matches and the
        # locale/market filter, so it is computed once per such key.
        key = (self.policy.rule_index(context), *locale_market(context))
        entry = self.memo.get(key)
        if entry is None:
            if len(self.memo) >= _MEMO_LIMIT:
                self.memo.clear()
            ranked = self.policy.rank(self.options, context)
            entry = self.memo[key] = (ranked, cumulative(ranked))
        ranked, cum = entry
        if not ranked:
            return None
        shown = ranked[pick(cum, rng.random())]
        return Recommendation(self.policy.hook, self.policy.version, ranked, shown.option_id,
                              shown.probability)


@dataclass
class _Snapshot:
    catalog_id: int | None
    catalog: Catalog | None
    versions: dict[str, int]
    policies: dict[str, Policy]
    rankers: dict[str, _HookRanker | None] = field(default_factory=dict)

    def ranker(self, hook: str) -> _HookRanker | None:
        if hook not in self.rankers:
            options = self.catalog.options_for(hook) if self.catalog is not None else ()
            if not options:
                self.rankers[hook] = None
            else:
                # Storing a catalog gives each of its hooks a policy; version 0 (the catalog
                # weights, unstored) only covers a database whose policy rows were removed.
                assert self.catalog is not None
                policy = self.policies.get(hook) or catalog_policy(self.catalog, hook)
                self.rankers[hook] = _HookRanker(policy, options)
        return self.rankers[hook]


class StoredRecommender:
    """A `Recommender` over the stored catalog `catalog_name` (None: the one stored last).

    `monotonic` is the clock for cache freshness (seconds); tests pass their own.
    """

    def __init__(self, store: Store, catalog_name: str | None = None,
                 refresh_seconds: float = 5.0, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.catalog_name = catalog_name
        self.refresh_seconds = refresh_seconds
        self._monotonic = monotonic
        self._snapshot: _Snapshot | None = None
        self._checked_at = 0.0

    def recommend(self, hook: str, context: Mapping[str, Any],
                  rng: random.Random) -> Recommendation | None:
        """A ranking for `hook` in `context` with the option shown, or None if nothing fits."""
        ranker = self._fresh().ranker(hook)
        return None if ranker is None else ranker.recommend(context, rng)

    def recommend_many(self, hook: str, contexts: Iterable[Mapping[str, Any]],
                       rng: random.Random) -> list[Recommendation | None]:
        """`recommend` for each context in turn (the same draws from `rng`), checking freshness
        once: the fast path for scoring many prospects or simulating."""
        ranker = self._fresh().ranker(hook)
        if ranker is None:
            return [None for _ in contexts]
        one = ranker.recommend
        return [one(context, rng) for context in contexts]

    def refresh(self) -> None:
        """Check the store for a new catalog version or changed active policies now."""
        self._checked_at = self._monotonic()
        self._snapshot = self._load(self._snapshot)

    @property
    def catalog(self) -> Catalog | None:
        """The catalog in use (None when none is stored)."""
        return self._fresh().catalog

    def active_versions(self) -> dict[str, int]:
        """The policy version per hook that recommendations currently use."""
        return dict(self._fresh().versions)

    def policy(self, hook: str) -> Policy | None:
        """The policy `hook` is ranked with now (None: nothing in the catalog fills it)."""
        ranker = self._fresh().ranker(hook)
        return None if ranker is None else ranker.policy

    def explain(self, hook: str, context: Mapping[str, Any]) -> tuple[str, ...]:
        """Why `hook` ranks as it does for `context`: the reasons of the policy rule that
        matches it (a learned rule's carry the outcome model's feature contributions), else
        those of the policy as a whole."""
        policy = self.policy(hook)
        if policy is None:
            return ()
        rule = policy.matching_rule(context)
        if rule is not None and rule.reasons:
            where = " & ".join(f"{k}={v}" for k, v in rule.when.items())
            return (f"rule for {where}", *rule.reasons)
        return ("no segment rule matches this context: the policy's overall ranking",
                *policy.reasons)

    def _fresh(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is None or self._monotonic() - self._checked_at >= self.refresh_seconds:
            self.refresh()
            snapshot = self._snapshot
        assert snapshot is not None
        return snapshot

    def _load(self, previous: _Snapshot | None) -> _Snapshot:
        with self.store.read() as conn:
            catalog_id = latest_catalog_id(conn, self.catalog_name)
            if catalog_id is None and self.catalog_name is not None:
                known = conn.execute(select(CATALOG.c.name).distinct()).scalars().all()
                raise CatalogNotFound(self.catalog_name, known)
            versions = read_active_versions(conn)
            if previous is not None and (previous.catalog_id, previous.versions) == (
                    catalog_id, versions):
                return previous
            catalog = previous.catalog if previous and previous.catalog_id == catalog_id else None
            if catalog is None and catalog_id is not None:
                row = conn.execute(select(CATALOG.c.source, CATALOG.c.source_file).where(
                    CATALOG.c.id == catalog_id)).one()
                catalog = read_stored_catalog_text(row.source, file=row.source_file)
            policies = read_active_policies(conn)
        # Read in one transaction, so versions and policies agree.
        return _Snapshot(catalog_id, catalog, {h: p.version for h, p in policies.items()},
                         policies)

