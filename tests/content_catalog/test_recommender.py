"""Stored catalogs, policy versions (activate, history, rollback) and StoredRecommender,
on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import math
import random
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import content_catalog
from content_catalog import (
    CatalogNotFound,
    Exploration,
    Policy,
    PolicyError,
    PolicyNotFound,
    Recommender,
    Rule,
    StoredRecommender,
    activate,
    activations,
    active_policies,
    active_versions,
    catalog_policy,
    get_policy,
    history,
    load_catalog_text,
    load_stored_catalog,
    rollback,
    save_policy,
    store_catalog,
    stored_catalogs,
)
from engine import ManualClock, Store
from nextmove import open_store

ROOT = Path(__file__).resolve().parents[2]
LIFEVANTAGE = ROOT / "processes" / "lifevantage" / "catalog.yaml"
TEXT = LIFEVANTAGE.read_text(encoding="utf-8")
NEW_HOOK_ITEM = """
  - id: sample_pack_offer
    kind: message_template
    title: Offer a sample pack
    hooks: [sample_offer]
    body: Hi {prospect_first_name}, want to try a sample pack first?
"""
US = {"market": "US", "locale": "en-US"}
MX = {"market": "MX", "locale": "es-MX"}


class Ticker:
    """A monotonic clock the test moves by hand (cache freshness, not business time)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    db = open_store(db_url)
    yield db
    db.dispose()


@pytest.fixture
def stored(store: Store, clock: ManualClock) -> Store:
    store_catalog(store, TEXT, str(LIFEVANTAGE), clock=clock)
    return store


def learned(hook: str = "intro_video", best: str = "customer_story_dave") -> Policy:
    return Policy(hook, kind="learned", default={best: 2.0, "truescience_intro": 1.0},
                  rules=(Rule({"market": "MX"}, {"protandim_intro_es_3min": 1.0}),),
                  reasons=("dave converts best",))


def test_public_api_is_exported() -> None:
    for name in ("Policy", "Rule", "Exploration", "StoredRecommender", "store_catalog",
                 "load_stored_catalog", "save_policy", "activate", "rollback", "history"):
        assert name in content_catalog.__all__
    for name in content_catalog.__all__:
        assert getattr(content_catalog, name).__module__.startswith("content_catalog"), name


def test_storing_a_catalog_creates_and_activates_a_catalog_policy_per_hook(
        store: Store, clock: ManualClock) -> None:
    catalog = load_catalog_text(TEXT)
    result = store_catalog(store, TEXT, str(LIFEVANTAGE), clock=clock)
    assert (result.name, result.version, result.created) == ("lifevantage-us", 1, True)
    assert result.deployed_at == clock.now()
    assert result.policies_created == tuple(sorted(catalog.hooks)) and len(catalog.hooks) == 12
    assert active_versions(store) == dict.fromkeys(catalog.hooks, 1)
    versions = history(store)
    assert [(v.hook, v.version, v.kind, v.active) for v in versions] == [
        (hook, 1, "catalog", True) for hook in sorted(catalog.hooks)]
    assert all(v.created_at == v.last_activated_at == clock.now() for v in versions)
    for hook, policy in active_policies(store).items():
        expected = catalog_policy(catalog, hook)
        assert policy.default == expected.default and policy.version == 1
        assert math.isclose(sum(policy.default.values()), 1.0)
    assert [(a.hook, a.version, a.action) for a in activations(store)] == [
        (hook, 1, "activate") for hook in sorted(catalog.hooks)]
    assert load_stored_catalog(store) == catalog
    assert load_stored_catalog(store, "lifevantage-us").file == str(LIFEVANTAGE)


def test_an_identical_catalog_is_a_no_op_and_a_new_one_only_adds_new_hooks(
        stored: Store, clock: ManualClock) -> None:
    clock.advance(timedelta(days=1))
    again = store_catalog(stored, TEXT, "elsewhere.yaml", clock=clock)
    assert (again.version, again.created, again.policies_created) == (1, False, ())
    assert again.deployed_at == clock.now() - timedelta(days=1)
    assert len(stored_catalogs(stored)) == 1 and len(activations(stored)) == 12

    changed = TEXT.replace("weight: 1.2\n", "weight: 1.5\n", 1) + NEW_HOOK_ITEM
    second = store_catalog(stored, changed, "catalog.yaml", clock=clock)
    assert (second.version, second.created, second.policies_created) == (
        2, True, ("sample_offer",))
    assert [c.version for c in stored_catalogs(stored, "lifevantage-us")] == [1, 2]
    assert load_stored_catalog(stored) == load_catalog_text(changed)
    assert active_versions(stored)["sample_offer"] == 1
    assert history(stored, "intro_video")[0].created_at == clock.now() - timedelta(days=1)
    assert len(history(stored, "intro_video")) == 1  # existing hooks keep their policies


def test_catalog_not_found_names_the_known_catalogs(store: Store) -> None:
    with pytest.raises(CatalogNotFound, match="no catalog is stored yet"):
        load_stored_catalog(store)
    store_catalog(store, TEXT)
    with pytest.raises(CatalogNotFound) as caught:
        load_stored_catalog(store, "lifevantage-uk")
    assert caught.value.suggestion == "lifevantage-us"


def test_learned_version_activate_history_and_rollback(stored: Store, clock: ManualClock) -> None:
    clock.advance(timedelta(hours=1))
    v2 = save_policy(stored, learned(), note="LightGBM run 1", clock=clock)
    assert (v2.version, v2.kind) == (2, "learned")
    assert get_policy(stored, "intro_video").version == 1  # stored, not active yet
    assert get_policy(stored, "intro_video", 2) == v2

    clock.advance(timedelta(hours=1))
    assert activate(stored, "intro_video", 2, reason="beats v1 (SNIPS)", clock=clock).active
    v3 = save_policy(stored, learned(best="truescience_intro"), note="run 2", activate=True,
                     clock=clock)
    assert v3.version == 3 and active_versions(stored)["intro_video"] == 3
    rows = history(stored, "intro_video")
    assert [(v.version, v.kind, v.note, v.active) for v in rows] == [
        (1, "catalog", "from catalog 'lifevantage-us' version 1", False),
        (2, "learned", "LightGBM run 1", False),
        (3, "learned", "run 2", True),
    ]
    assert rows[1].last_activated_at == clock.now()

    before = len(activations(stored, "intro_video"))
    activate(stored, "intro_video", 3, clock=clock)  # already active: nothing logged
    assert len(activations(stored, "intro_video")) == before

    clock.advance(timedelta(hours=1))
    back = rollback(stored, "intro_video", reason="conversion dropped", clock=clock)
    assert (back.version, back.active) == (2, True)
    assert rollback(stored, "intro_video", clock=clock).version == 1
    with pytest.raises(PolicyNotFound, match="no earlier active version"):
        rollback(stored, "intro_video", clock=clock)
    assert get_policy(stored, "intro_video").version == 1
    log = activations(stored, "intro_video")
    assert [(a.version, a.action, a.reason) for a in log] == [
        (1, "activate", "default from catalog 'lifevantage-us' version 1"),
        (2, "activate", "beats v1 (SNIPS)"),
        (3, "activate", None),
        (2, "rollback", "conversion dropped"),
        (1, "rollback", None),
    ]
    assert log[-1].at == clock.now()
    assert active_versions(stored)["presentation"] == 1  # other hooks untouched


def test_rollback_undoes_activations_in_order(stored: Store) -> None:
    for _ in range(2):
        save_policy(stored, learned())
    activate(stored, "intro_video", 3)
    activate(stored, "intro_video", 2)
    activate(stored, "intro_video", 3)
    assert [rollback(stored, "intro_video").version for _ in range(3)] == [2, 3, 1]


def test_missing_hooks_and_versions_are_reported(stored: Store) -> None:
    with pytest.raises(PolicyNotFound, match=r"no version 7 \(stored versions: 1\)"):
        activate(stored, "intro_video", 7)
    with pytest.raises(PolicyNotFound) as caught:
        rollback(stored, "intro_vidoe")
    assert caught.value.suggestion == "intro_video"
    with pytest.raises(PolicyNotFound):
        history(stored, "intro_vidoe")
    with pytest.raises(PolicyNotFound):
        get_policy(stored, "intro_video", 2)
    catalog = load_stored_catalog(stored)
    with pytest.raises(PolicyError) as bad:
        save_policy(stored, learned(best="customer_story_davey"), catalog=catalog)
    assert bad.value.suggestion == "customer_story_dave"
    assert len(history(stored, "intro_video")) == 1  # nothing stored


def test_concurrent_saves_get_distinct_versions(stored: Store) -> None:
    errors: list[BaseException] = []

    def save() -> None:
        try:
            save_policy(stored, learned(), activate=True)
        except BaseException as exc:  # noqa: B036 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [v.version for v in history(stored, "intro_video")] == list(range(1, 8))
    assert len(activations(stored, "intro_video")) == 7


def test_recommender_follows_the_active_version_after_the_refresh_interval(
        stored: Store) -> None:
    ticker = Ticker()
    recommender: Recommender = StoredRecommender(stored, refresh_seconds=5.0, monotonic=ticker)
    assert isinstance(recommender, StoredRecommender)
    rng = random.Random(1)
    first = recommender.recommend("intro_video", US, rng)
    assert first is not None and first.policy_version == 1
    assert first.ranked[0].option_id == "protandim_nrf2_intro_90s"  # highest catalog weight

    save_policy(stored, learned(), activate=True)
    ticker.now += 4.9  # cached: no database check yet
    assert recommender.recommend("intro_video", US, rng).policy_version == 1  # type: ignore[union-attr]
    ticker.now += 0.1
    now = recommender.recommend("intro_video", US, rng)
    assert now is not None and now.policy_version == 2
    assert now.ranked[0].option_id == "customer_story_dave"
    mx = recommender.recommend("intro_video", MX, rng)
    assert mx is not None and mx.ranked[0].option_id == "protandim_intro_es_3min"
    assert {r.option_id for r in mx.ranked} == {"protandim_intro_es_90s",
                                                "protandim_intro_es_3min"}

    rollback(stored, "intro_video")
    recommender.refresh()
    assert recommender.active_versions()["intro_video"] == 1
    assert recommender.policy("intro_video") == get_policy(stored, "intro_video", 1)

    store_catalog(stored, TEXT + NEW_HOOK_ITEM)
    assert recommender.recommend("sample_offer", US, rng) is None  # not refreshed yet
    ticker.now += 5
    offer = recommender.recommend("sample_offer", US, rng)
    assert offer is not None and (offer.shown, offer.propensity) == ("sample_pack_offer", 1.0)


def test_recommend_many_equals_one_by_one_and_skips_what_cannot_be_filled(
        stored: Store) -> None:
    save_policy(stored, Policy("intro_video", kind="manual",
                               default={"truescience_intro": 1.0, "customer_story_maria": 0.5},
                               exploration=Exploration("softmax", temperature=0.4)),
                activate=True)
    recommender = StoredRecommender(stored)
    contexts = [US, MX, {"market": "US"}, {}, {"locale": "fr-FR"}, {"market": "MX"}] * 50
    many = recommender.recommend_many("intro_video", contexts, random.Random(42))
    rng = random.Random(42)
    assert many == [recommender.recommend("intro_video", c, rng) for c in contexts]
    assert many[4] is None and many[0] is not None and many[0].policy_version == 2
    assert recommender.recommend_many("no_such_hook", contexts[:3], rng) == [None] * 3
    assert recommender.recommend_many("intro_video", [], rng) == []
    assert many[3] is not None and len(many[3].ranked) == 7  # no locale or market: everything


def test_logged_propensities_hold_end_to_end(stored: Store) -> None:
    policy = Policy("intro_video", kind="learned",
                    default={"customer_story_dave": 0.9, "truescience_intro": 0.5,
                             "protandim_nrf2_intro_90s": 0.1},
                    rules=(Rule({"market": "US", "segment": "cold"}, {"customer_story_maria": 1}),
                           Rule({"market": "MX"}, {"protandim_intro_es_3min": 0.3,
                                                   "protandim_intro_es_90s": 0.2}),),
                    exploration=Exploration("softmax", temperature=0.2))
    save_policy(stored, policy, activate=True)
    recommender = StoredRecommender(stored)
    groups = [US, {**US, "segment": "cold"}, MX]
    contexts = [groups[i % 3] for i in range(60_000)]
    shown: dict[int, Counter[str]] = defaultdict(Counter)
    logged: dict[int, dict[str, float]] = defaultdict(dict)
    for i, rec in enumerate(recommender.recommend_many("intro_video", contexts,
                                                       random.Random(2026))):
        assert rec is not None
        shown[i % 3][rec.shown] += 1
        logged[i % 3][rec.shown] = rec.propensity
    for group, context in enumerate(groups):
        ranked = {r.option_id: r.probability for r in policy.rank(
            load_stored_catalog(stored).options_for("intro_video"), context)}
        assert math.isclose(sum(ranked.values()), 1.0)
        assert logged[group] == {k: ranked[k] for k in shown[group]}
        for option_id, p in ranked.items():
            draws = 20_000
            sigma = math.sqrt(draws * p * (1 - p))
            assert abs(shown[group][option_id] - draws * p) <= 4 * sigma + 1, (group, option_id)


def test_recommender_without_a_catalog(store: Store) -> None:
    assert StoredRecommender(store).recommend("intro_video", US, random.Random(1)) is None
    store_catalog(store, TEXT)
    with pytest.raises(CatalogNotFound) as caught:
        StoredRecommender(store, "lifevantage-uk").recommend("intro_video", US, random.Random(1))
    assert caught.value.suggestion == "lifevantage-us"
    named = StoredRecommender(store, "lifevantage-us")
    assert named.catalog is not None and named.catalog.name == "lifevantage-us"
