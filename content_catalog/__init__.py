"""The content catalog: the videos, documents, message templates and training a brand offers
for the hooks of its process maps, with variants to compare.

    from content_catalog import load_catalog
    catalog = load_catalog("processes/lifevantage/catalog.yaml")
    for option in catalog.options_for("intro_video", locale="en-US"):
        print(option.id, option.title, option.url, option.weight)

A catalog file (YAML, checked against `schema/catalog.schema.json` in this package)::

    catalog: lifevantage-us
    brand: LifeVantage
    locale: en-US                 # default for items that set none
    items:
      - id: protandim_nrf2_intro
        kind: video               # video audio image document slide_deck link
        title: Protandim Nrf2 in 90 seconds   #   message_template training_module article
        url: https://example.invalid/v/nrf2
        hooks: [intro_video]
        variants:                 # optional; when given, the variants are the options
          - id: protandim_nrf2_intro_90s
          - {id: protandim_nrf2_intro_3min, url: https://example.invalid/v/nrf2-3, weight: 0.8}

Loading raises `engine.errors.DefinitionErrors` listing every problem, each with file, line,
YAML path (`items[3].variants[0].id`) and, for misspelled keys and values, a suggestion.

Recommendations: a `Policy` per hook (versioned, stored, one active) ranks a hook's options for
a context and explores with exact, logged propensities; `StoredRecommender` serves the engine::

    store_catalog(store, text, "catalog.yaml")   # version-1 'catalog' policy for each new hook
    recommender = StoredRecommender(store)
    rec = recommender.recommend("intro_video", {"market": "US"}, random.Random(7))
    rec.shown, rec.propensity

Names are imported when first used (PEP 562): reading a stored catalog
(`read_stored_catalog_text`) or drift alerts (`content_catalog.drift_alerts`) loads no
SQLAlchemy, so `nextmove cards` on an SQLite file starts without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from content_catalog._crosscheck import cross_check
    from content_catalog._errors import CatalogNotFound, PolicyError, PolicyNotFound
    from content_catalog._exploration import Exploration
    from content_catalog._loader import (
        catalog_schema,
        load_catalog,
        load_catalog_text,
        read_stored_catalog_text,
    )
    from content_catalog._model import Catalog, ContentItem, ContentOption, NearerReward, Variant
    from content_catalog.policy import Policy, Rule, catalog_policy
    from content_catalog.policy_store import (
        Activation,
        PolicyVersion,
        StoredCatalog,
        activate,
        activations,
        active_policies,
        active_versions,
        get_policy,
        history,
        load_stored_catalog,
        rollback,
        save_policy,
        store_catalog,
        stored_catalogs,
    )
    from content_catalog.recommend import Ranked, Recommendation, Recommender
    from content_catalog.recommender import StoredRecommender

_WHERE = {
    "Activation": "content_catalog.policy_store",
    "Catalog": "content_catalog._model",
    "CatalogNotFound": "content_catalog._errors",
    "ContentItem": "content_catalog._model",
    "ContentOption": "content_catalog._model",
    "NearerReward": "content_catalog._model",
    "Exploration": "content_catalog._exploration",
    "Policy": "content_catalog.policy",
    "PolicyError": "content_catalog._errors",
    "PolicyNotFound": "content_catalog._errors",
    "PolicyVersion": "content_catalog.policy_store",
    "Ranked": "content_catalog.recommend",
    "Recommendation": "content_catalog.recommend",
    "Recommender": "content_catalog.recommend",
    "Rule": "content_catalog.policy",
    "StoredCatalog": "content_catalog.policy_store",
    "StoredRecommender": "content_catalog.recommender",
    "Variant": "content_catalog._model",
    "activate": "content_catalog.policy_store",
    "activations": "content_catalog.policy_store",
    "active_policies": "content_catalog.policy_store",
    "active_versions": "content_catalog.policy_store",
    "catalog_policy": "content_catalog.policy",
    "catalog_schema": "content_catalog._loader",
    "cross_check": "content_catalog._crosscheck",
    "get_policy": "content_catalog.policy_store",
    "history": "content_catalog.policy_store",
    "load_catalog": "content_catalog._loader",
    "load_catalog_text": "content_catalog._loader",
    "load_stored_catalog": "content_catalog.policy_store",
    "read_stored_catalog_text": "content_catalog._loader",
    "rollback": "content_catalog.policy_store",
    "save_policy": "content_catalog.policy_store",
    "store_catalog": "content_catalog.policy_store",
    "stored_catalogs": "content_catalog.policy_store",
}

__all__ = [
    "Activation",
    "Catalog",
    "CatalogNotFound",
    "ContentItem",
    "ContentOption",
    "Exploration",
    "NearerReward",
    "Policy",
    "PolicyError",
    "PolicyNotFound",
    "PolicyVersion",
    "Ranked",
    "Recommendation",
    "Recommender",
    "Rule",
    "StoredCatalog",
    "StoredRecommender",
    "Variant",
    "activate",
    "activations",
    "active_policies",
    "active_versions",
    "catalog_policy",
    "catalog_schema",
    "cross_check",
    "get_policy",
    "history",
    "load_catalog",
    "load_catalog_text",
    "load_stored_catalog",
    "read_stored_catalog_text",
    "rollback",
    "save_policy",
    "store_catalog",
    "stored_catalogs",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
