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
"""

from content_catalog._crosscheck import cross_check
from content_catalog._errors import CatalogNotFound, PolicyError, PolicyNotFound
from content_catalog._exploration import Exploration
from content_catalog._loader import catalog_schema, load_catalog, load_catalog_text
from content_catalog._model import Catalog, ContentItem, ContentOption, Variant
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

__all__ = [
    "Activation",
    "Catalog",
    "CatalogNotFound",
    "ContentItem",
    "ContentOption",
    "Exploration",
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
    "rollback",
    "save_policy",
    "store_catalog",
    "stored_catalogs",
]
