"""content_catalog.policy: scores by context, availability, exploration with exact propensities."""

from __future__ import annotations

import copy
import json
import math
import pickle
import random
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from content_catalog import (
    Catalog,
    Exploration,
    Policy,
    PolicyError,
    Rule,
    catalog_policy,
    load_catalog_text,
)
from content_catalog.policy import UNSCORED_MARGIN

CATALOG = textwrap.dedent("""\
    catalog: acme
    brand: Acme
    items:
      - {id: a, kind: link, title: A, url: "https://x.invalid/a", hooks: [intro],
         locale: en-US, markets: [US], weight: 2}
      - {id: b, kind: link, title: B, url: "https://x.invalid/b", hooks: [intro],
         locale: en-US, markets: [US]}
      - id: c
        kind: link
        title: C
        url: https://x.invalid/c
        hooks: [intro]
        locale: en-US
        markets: [US]
        variants:
          - {id: c1}
          - {id: c2, weight: 0.5}
      - {id: es, kind: link, title: ES, url: "https://x.invalid/es", hooks: [intro],
         locale: es-MX, markets: [MX]}
      - {id: anywhere, kind: link, title: Anywhere, url: "https://x.invalid/any",
         hooks: [intro, other]}
    """)
US = {"market": "US", "locale": "en-US"}
DRAWS = 20_000


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog_text(CATALOG, file="acme.yaml")


def ids(ranked: Sequence[Any]) -> list[str]:
    return [r.option_id for r in ranked]


def assert_frequencies_match(shown: Counter[str], probabilities: Mapping[str, float],
                             draws: int) -> None:
    """Each option's count within 4 binomial sigmas of draws × p, and nothing else shown."""
    assert set(shown) <= {k for k, p in probabilities.items() if p > 0}
    for option_id, p in probabilities.items():
        expected, sigma = draws * p, math.sqrt(draws * p * (1 - p))
        assert abs(shown[option_id] - expected) <= 4 * sigma + 1, (option_id, shown, expected)


def draw(policy: Policy, catalog: Catalog, context: Mapping[str, Any], seed: int,
         draws: int = DRAWS) -> tuple[Counter[str], dict[str, float]]:
    """How often each option was shown, and the propensity logged with it (always the same)."""
    rng, shown, logged = random.Random(seed), Counter[str](), dict[str, float]()
    options = catalog.options_for("intro")
    for _ in range(draws):
        rec = policy.choose(options, context, rng)
        assert rec is not None
        shown[rec.shown] += 1
        assert logged.setdefault(rec.shown, rec.propensity) == rec.propensity
        assert rec.propensity == {r.option_id: r.probability for r in rec.ranked}[rec.shown]
    return shown, {r.option_id: r.probability for r in policy.rank(options, context)}


def test_catalog_policy_scores_are_the_weights_normalized(catalog: Catalog) -> None:
    policy = catalog_policy(catalog, "intro")
    total = 2 + 1 + 1 + 0.5 + 1 + 1
    assert dict(policy.default) == {"a": 2 / total, "b": 1 / total, "c1": 1 / total,
                                    "c2": 0.5 / total, "es": 1 / total, "anywhere": 1 / total}
    assert math.isclose(sum(policy.default.values()), 1.0)
    assert (policy.kind, policy.version, policy.exploration) == ("catalog", 0, Exploration())
    with pytest.raises(PolicyError, match="no item of catalog 'acme' fills") as caught:
        catalog_policy(catalog, "intro_vid")
    assert caught.value.suggestion == "intro"


def test_the_most_specific_matching_rule_supplies_the_scores(catalog: Catalog) -> None:
    policy = Policy("intro", default={"a": 1.0}, rules=(
        Rule({"market": "US"}, {"b": 1.0}),
        Rule({"market": "US", "segment": "warm"}, {"c1": 1.0}),
        Rule({"segment": "warm", "market": "US"}, {"c2": 1.0}),  # as specific: loses the tie
        Rule({"age_band": ["18-24", "25-34"]}, {"anywhere": 1.0}),
        Rule({"vip": True}, {"es": 1.0}),
    ))
    cases: list[tuple[dict[str, Any], int | None, str]] = [
        ({"market": "US"}, 0, "b"),
        ({"market": "US", "segment": "warm"}, 1, "c1"),
        ({"market": "US", "segment": "warm", "age_band": "18-24"}, 1, "c1"),
        ({"segment": "warm"}, None, "a"),  # a rule matches only when all its conditions hold
        ({"age_band": "25-34"}, 3, "anywhere"),  # a list means "one of"
        ({"age_band": "45+"}, None, "a"),
        ({"vip": 1}, None, "a"),  # JSON's true is not 1
        ({"vip": True}, 4, "es"),
        ({}, None, "a"),
    ]
    for context, index, best in cases:
        assert policy.rule_index(context) == index, context
        assert policy.matching_rule(context) == (None if index is None else policy.rules[index])
        assert policy.rank(catalog.options_for("intro"), context)[0].option_id == best, context


def test_unscored_options_rank_last_below_the_lowest_score(catalog: Catalog) -> None:
    policy = Policy("intro", default={"c2": 0.5, "b": 0.2, "retired_video": 9.0})
    ranked = policy.rank(catalog.options_for("intro"), US)
    assert ids(ranked) == ["c2", "b", "a", "c1", "anywhere"]  # unscored: catalog order
    assert [r.score for r in ranked] == [0.5, 0.2] + [0.2 - UNSCORED_MARGIN] * 3
    unscored = Policy("intro").rank(catalog.options_for("intro"), US)
    assert ids(unscored) == ["a", "b", "c1", "c2", "anywhere"]
    assert {r.score for r in unscored} == {0.0}


def test_options_not_available_for_the_locale_or_market_are_left_out(catalog: Catalog) -> None:
    policy = catalog_policy(catalog, "intro")
    options = catalog.options_for("intro")
    assert set(ids(policy.rank(options, US))) == {"a", "b", "c1", "c2", "anywhere"}
    assert ids(policy.rank(options, {"market": "MX", "locale": "es-MX"})) == ["es", "anywhere"]
    assert ids(policy.rank(options, {"market": "mx"})) == ["es", "anywhere"]
    assert ids(policy.rank(options, {"locale": "fr-FR"})) == ["anywhere"]
    assert len(policy.rank(options, {})) == 6
    assert len(policy.rank(options, {"market": None, "locale": 5})) == 6  # not strings: unset
    ranked = policy.rank(options, {"market": "MX", "locale": "es-MX"})
    assert [r.probability for r in ranked] == [1 - 0.2 + 0.1, 0.1]
    nothing = Policy("other").choose(catalog.options_for("other"), {"locale": "de-DE"},
                                     random.Random(1))
    assert nothing is not None and nothing.shown == "anywhere" and nothing.propensity == 1.0
    assert Policy("intro").choose((), US, random.Random(1)) is None


def test_epsilon_greedy_propensities_are_exact(catalog: Catalog) -> None:
    policy = Policy("intro", default={"b": 0.9, "a": 0.9, "c1": 0.1},
                    exploration=Exploration("epsilon", epsilon=0.3))
    ranked = policy.rank(catalog.options_for("intro"), US)
    assert ids(ranked)[:2] == ["a", "b"]  # a tie at the top goes to catalog order
    assert [r.probability for r in ranked] == [1 - 0.3 + 0.3 / 5] + [0.3 / 5] * 4
    assert math.isclose(math.fsum(r.probability for r in ranked), 1.0, abs_tol=1e-12)

    greedy = Policy("intro", default={"b": 1.0}, exploration=Exploration(epsilon=0.0))
    shown, _ = draw(greedy, catalog, US, seed=3, draws=2_000)
    assert shown == Counter({"b": 2_000})


def test_softmax_propensities_are_exact_and_stable(catalog: Catalog) -> None:
    scores = {"a": 1.0, "b": 0.5, "c1": 0.0, "c2": -1.0, "anywhere": 0.25}
    policy = Policy("intro", default=scores, exploration=Exploration("softmax", temperature=0.5))
    ranked = policy.rank(catalog.options_for("intro"), US)
    total = sum(math.exp(s / 0.5) for s in scores.values())
    assert ids(ranked) == ["a", "b", "anywhere", "c1", "c2"]
    for r in ranked:
        assert math.isclose(r.probability, math.exp(scores[r.option_id] / 0.5) / total,
                            rel_tol=1e-12)
    assert math.isclose(math.fsum(r.probability for r in ranked), 1.0, abs_tol=1e-12)

    huge = Policy("intro", default={"a": 1e6, "b": 1e6 - 1},
                  exploration=Exploration("softmax", temperature=1e-3))
    probabilities = [r.probability for r in huge.rank(catalog.options_for("intro"), US)]
    assert all(math.isfinite(p) for p in probabilities)
    assert probabilities[0] == 1.0 and math.isclose(sum(probabilities), 1.0)


@pytest.mark.parametrize("exploration", [
    Exploration("epsilon", epsilon=0.2),
    Exploration("epsilon", epsilon=0.9),
    Exploration("softmax", temperature=0.3),
    Exploration("softmax", temperature=5.0),
], ids=["epsilon-0.2", "epsilon-0.9", "softmax-0.3", "softmax-5"])
def test_shown_options_follow_their_logged_propensities(
        catalog: Catalog, exploration: Exploration) -> None:
    policy = Policy("intro", default={"a": 0.4, "b": 1.1, "c1": 0.7, "c2": 0.0, "anywhere": 0.2},
                    rules=(Rule({"segment": "cold"}, {"c2": 2.0, "a": 1.0}),),
                    exploration=exploration)
    for context in (US, {**US, "segment": "cold"}):
        shown, probabilities = draw(policy, catalog, context, seed=20260105)
        assert_frequencies_match(shown, probabilities, DRAWS)


def test_the_frequency_check_catches_a_wrong_propensity(catalog: Catalog) -> None:
    # The check above must be able to fail: draws at ε = 0.2 against probabilities of ε = 0.3.
    scores = {"a": 0.4, "b": 1.1}
    shown, _ = draw(Policy("intro", default=scores), catalog, US, seed=11)
    other = Policy("intro", default=scores, exploration=Exploration(epsilon=0.3))
    wrong = {r.option_id: r.probability for r in other.rank(catalog.options_for("intro"), US)}
    with pytest.raises(AssertionError):
        assert_frequencies_match(shown, wrong, DRAWS)


def test_same_seed_same_choices_and_no_global_randomness(catalog: Catalog) -> None:
    policy = Policy("intro", default={"a": 0.4, "b": 1.1},
                    exploration=Exploration("softmax", temperature=0.5))
    options = catalog.options_for("intro")

    def sequence(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [policy.choose(options, US, rng).shown for _ in range(300)]  # type: ignore[union-attr]

    random.seed(99)
    before = random.getstate()
    first = sequence(5)
    assert random.getstate() == before
    assert sequence(5) == first
    assert sequence(6) != first
    rng = random.Random(5)
    policy.choose(options, US, rng)
    assert rng.getstate() != random.Random(5).getstate()  # it drew from the rng it was given
    follow = random.Random(5)
    follow.random()
    assert rng.getstate() == follow.getstate()  # exactly one draw per choice


def test_policy_json_round_trip(catalog: Catalog) -> None:
    policy = Policy(
        "intro", kind="learned", version=4,
        default={"a": 0.31, "b": 0.2},
        rules=(Rule({"market": "MX", "age_band": ["18-24", "25-34"]}, {"es": 0.5},
                    reasons=("age_band=18-24 lifts es by +0.12",)),),
        exploration=Exploration("softmax", temperature=0.25),
        reasons=("trained on 41,200 cards",), explain={"ipw": 0.31, "snips": 0.29},
    )
    document = json.loads(policy.to_json())
    assert document["format"] == 1
    assert document["rules"][0]["when"] == {"market": "MX", "age_band": ["18-24", "25-34"]}
    assert document["exploration"] == {"method": "softmax", "temperature": 0.25}
    back = Policy.from_json(policy.to_json())
    assert back == policy
    assert back.to_dict() == policy.to_dict()
    context = {"market": "MX", "age_band": "25-34", "locale": "es-MX"}
    options = catalog.options_for("intro")
    assert back.rank(options, context) == policy.rank(options, context)
    assert pickle.loads(pickle.dumps(policy)) == policy  # e.g. to learner worker processes
    assert copy.deepcopy(policy.rules[0]) == policy.rules[0]
    minimal = Policy.from_dict({"hook": "intro"})
    assert minimal == Policy("intro") and minimal.exploration.epsilon == 0.2


@pytest.mark.parametrize(("document", "field", "suggestion"), [
    ({"hook": "intro", "rulez": []}, "rulez", "rules"),
    ({"hook": "intro", "kind": "learnt"}, "kind", "learned"),
    ({"hook": "intro", "exploration": {"method": "epsilon", "epsilon": 1.5}},
     "exploration.epsilon", None),
    ({"hook": "intro", "exploration": {"method": "softmax"}}, "exploration.temperature", None),
    ({"hook": "intro", "exploration": {"method": "softmax", "temprature": 1}},
     "exploration", "temperature"),
    ({"hook": "intro", "exploration": {"method": "thompson"}}, "exploration.method", None),
    ({"hook": "intro", "default": {"a": float("nan")}}, "default", None),
    ({"hook": "intro", "default": {"a": True}}, "default", None),
    ({"hook": "intro", "format": 2}, "format", None),
    ({"hook": "intro", "rules": [{"when": {"x": {"y": 1}}, "scores": {}}]},
     "rules[0].when.x", None),
    ({"hook": "intro", "rules": [{"when": {}, "scores": {}, "reason": []}]},
     "rules[0].reason", "reasons"),
    ({"hook": "intro", "reasons": "because"}, "reasons", None),
    ({"hook": "", "default": {}}, "hook", None),
    ({"hook": "intro", "version": -1}, "version", None),
])
def test_a_bad_document_names_the_field(document: dict[str, Any], field: str,
                                        suggestion: str | None) -> None:
    with pytest.raises(PolicyError) as caught:
        Policy.from_dict(document)
    assert (caught.value.field, caught.value.suggestion) == (field, suggestion)
    if document["hook"]:
        assert caught.value.hook == "intro" and "policy for hook 'intro'" in str(caught.value)


def test_check_against_the_catalog_suggests_names(catalog: Catalog) -> None:
    catalog_policy(catalog, "intro").check_against(catalog)
    with pytest.raises(PolicyError) as caught:
        Policy("intro", rules=(Rule({"market": "US"}, {"anywher": 1.0}),)).check_against(catalog)
    assert (caught.value.field, caught.value.suggestion) == ("rules[0].scores", "anywhere")
    with pytest.raises(PolicyError) as caught:
        Policy("intros").check_against(catalog)
    assert (caught.value.field, caught.value.suggestion) == ("hook", "intro")


def test_policies_are_immutable() -> None:
    policy = Policy("intro", default={"a": 1.0})
    with pytest.raises(TypeError):
        policy.default["a"] = 2.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        policy.version = 3  # type: ignore[misc]


def test_rule_lookup_agrees_with_testing_every_rule_in_order() -> None:
    rng = random.Random(8)
    values: list[Any] = ["US", "MX", 1, 1.0, 2, True, False, None, "warm"]
    features = ["market", "segment", "n", "vip"]

    def random_rule() -> Rule:
        when: dict[str, Any] = {}
        for feature in rng.sample(features, rng.randint(0, 3)):
            when[feature] = (rng.sample(values, rng.randint(1, 3)) if rng.random() < 0.3
                             else rng.choice(values))
        return Rule(when, {})

    wide = Rule({"n": list(range(100)), "m": list(range(50))}, {})  # too many keys to expand
    for _ in range(200):
        rules = tuple(random_rule() for _ in range(rng.randint(0, 8)))
        policy = Policy("intro", rules=(*rules, wide) if rng.random() < 0.3 else rules)
        for _ in range(50):
            context: dict[str, Any] = {f: rng.choice(values) for f in features
                                       if rng.random() < 0.7}
            if rng.random() < 0.1:
                context["market"] = ["US"]  # unhashable: matches no condition
            if rng.random() < 0.1:
                context.update(n=rng.randrange(120), m=rng.randrange(60))
            matching = [i for i, r in enumerate(policy.rules) if r.matches(context)]
            expected = min(matching, key=lambda i: (-len(policy.rules[i].when), i),
                           default=None)
            assert policy.rule_index(context) == expected, (policy.rules, context)


def test_a_table_policy_shows_each_option_with_its_stored_probability(
        catalog: Catalog) -> None:
    """Exploration "table" (continuous learning): the scores are the probabilities, divided
    by their sum over what is available, and sampled as they are."""
    table = {"a": 0.5, "b": 0.2, "c1": 0.1, "c2": 0.1, "es": 0.05, "anywhere": 0.05}
    policy = Policy("intro", default=table, exploration=Exploration("table"))
    again = Policy.from_json(policy.to_json())
    assert again.exploration.method == "table" and again == policy
    options = catalog.options_for("intro")
    ranked = policy.rank(options, US)  # es is not available in the US: the rest renormalize
    probabilities = {r.option_id: r.probability for r in ranked}
    assert probabilities == pytest.approx({k: v / 0.95 for k, v in table.items() if k != "es"})
    rng = random.Random(3)
    shown: Counter[str] = Counter()
    for _ in range(DRAWS):
        rec = policy.choose(options, US, rng)
        assert rec is not None and rec.propensity == pytest.approx(probabilities[rec.shown])
        shown[rec.shown] += 1
    assert_frequencies_match(shown, probabilities, DRAWS)
    with pytest.raises(PolicyError):
        Exploration.from_dict({"method": "table", "epsilon": 0.1})


def test_a_catalog_says_how_its_policies_learn() -> None:
    assert load_catalog_text(CATALOG).learning == "continuous"  # the default
    batch = load_catalog_text(CATALOG.replace("brand: Acme\n", "brand: Acme\nlearning: batch\n"
                                              "segments: [tier]\n"))
    assert batch.learning == "batch" and batch.segments == ("tier",)
    with pytest.raises(Exception, match="learning is 'batch' or 'continuous'"):
        load_catalog_text(CATALOG.replace("brand: Acme\n", "brand: Acme\nlearning: daily\n"))
