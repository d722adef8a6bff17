"""The policy rewrite: segments and options found from logged decisions, judged off-policy,
applied only when they beat the active policy, and rolled back."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from content_catalog import (
    Exploration,
    Policy,
    StoredRecommender,
    active_policies,
    active_versions,
    catalog_policy,
    get_policy,
    history,
    load_catalog_text,
    rollback,
    store_catalog,
)
from learner.model import identifying
from learner.rewrite import Proposal, apply, propose, propose_from
from nextmove import open_store
from simulator import SimulationConfig
from tests.learner._oracle_sim import Arm, run

CATALOG = """
catalog: test
brand: Test
locale: en-US
items:
  - {id: video_a, kind: video, title: A, url: https://example.invalid/a, hooks: [intro_video]}
  - {id: video_b, kind: video, title: B, url: https://example.invalid/b, hooks: [intro_video],
     weight: 0.8}
  - {id: video_c, kind: video, title: C, url: https://example.invalid/c, hooks: [intro_video],
     weight: 0.6}
  - {id: note_x, kind: message_template, title: X, body: hi, hooks: [first_contact_message]}
  - {id: note_y, kind: message_template, title: Y, body: hey, hooks: [first_contact_message]}
"""
VIDEOS = ("video_a", "video_b", "video_c")


def best_video(personality: str, interest: str) -> str:
    """An interaction: neither attribute alone says which video is best."""
    return "video_a" if (personality == "introvert") == (interest == "energy") else "video_b"


def log(n: int, seed: int, *, signal: bool = True, logging: str = "uniform"
        ) -> dict[str, np.ndarray]:
    """Decisions of both hooks. intro_video converts 30% with the segment's best video, else
    10% (with `signal`); first_contact_message converts 15% whatever is shown. `logging`:
    "uniform", or "catalog" (the catalog policy's epsilon-greedy, as it ranks)."""
    rng = np.random.default_rng(seed)
    catalog = load_catalog_text(CATALOG)
    cols: dict[str, list[object]] = {k: [] for k in (
        "case_id", "hook", "step_id", "shown", "propensity", "reward", "step_index",
        "hours_since_start", "prospect_personality", "prospect_interest", "distributor_skill",
        "market", "locale")}
    for i in range(n):
        personality = str(rng.choice(["introvert", "extrovert"]))
        interest = str(rng.choice(["energy", "skin_care"]))
        skill = str(rng.choice(["high", "low"]))
        for j, hook in enumerate(("first_contact_message", "intro_video")):
            options = [o.id for o in catalog.options_for(hook)]
            if logging == "uniform":
                probs = np.full(len(options), 1 / len(options))
            else:
                ranked = catalog_policy(catalog, hook).rank(catalog.options_for(hook), {})
                probs = np.array([next(r.probability for r in ranked if r.option_id == o)
                                  for o in options])
            k = int(rng.choice(len(options), p=probs))
            if hook == "intro_video" and signal:
                rate = 0.3 if options[k] == best_video(personality, interest) else 0.1
            else:
                rate = 0.15
            for key, value in (("case_id", f"p{i}"), ("hook", hook), ("step_id", hook),
                               ("shown", options[k]), ("propensity", float(probs[k])),
                               ("reward", int(rng.random() < rate)), ("step_index", j),
                               ("hours_since_start", float(j * 24)),
                               ("prospect_personality", personality),
                               ("prospect_interest", interest), ("distributor_skill", skill),
                               ("market", "US"), ("locale", "en-US")):
                cols[key].append(value)
    out = {k: np.array(v, dtype=object) for k, v in cols.items()}
    for key in ("propensity", "hours_since_start"):
        out[key] = out[key].astype(np.float64)
    out["reward"] = out["reward"].astype(np.int8)
    out["step_index"] = out["step_index"].astype(np.int64)
    return out


def proposal(n: int = 6000, seed: int = 1, *, logging: str = "uniform") -> Proposal:
    catalog = load_catalog_text(CATALOG)
    active = {h: catalog_policy(catalog, h) for h in catalog.hooks}
    return propose_from(log(n, seed, logging=logging), catalog, active, process_id="journey",
                        outcome="sale", n_boot=300)


@pytest.fixture(scope="module")
def learned() -> Proposal:
    return proposal()


def test_finds_the_segment_that_matters_and_its_best_options(learned: Proposal) -> None:
    intro = learned.hook("intro_video")
    assert set(intro.features) == {"prospect_personality", "prospect_interest"}
    for personality in ("introvert", "extrovert"):
        for interest in ("energy", "skin_care"):
            context = {"prospect_personality": personality, "prospect_interest": interest,
                       "distributor_skill": "low", "market": "US", "locale": "en-US"}
            ranked = intro.policy.rank(load_catalog_text(CATALOG).options_for("intro_video"),
                                       context)
            assert ranked[0].option_id == best_video(personality, interest)
            assert ranked[0].probability == pytest.approx(1 - 0.1 + 0.1 / 3)  # keeps exploring
    assert intro.policy.kind == "learned" and intro.policy.exploration == Exploration(
        "epsilon", 0.1)
    # Off-policy: the segmented policy earns about 0.3 - 0.2 * 0.1 * 2/3 where the logging
    # (and active catalog) policy earned about 0.3 * 1/3 + 0.1 * 2/3 ≈ 0.17 with its top pick.
    for name in ("ipw", "snipw", "dr"):
        assert intro.new[name].value == pytest.approx(0.287, abs=0.025)
        assert intro.lift[name].low > 0
        assert intro.new[name].low <= intro.new[name].value <= intro.new[name].high
    assert intro.beats
    assert any("now leads" in r for r in intro.reasons)
    assert "prospect_interest" in intro.contributions and "shown" in intro.contributions


def test_each_rule_explains_its_recommendation_with_model_contributions(
        learned: Proposal) -> None:
    """A card's recommendation can say why: the matching rule names its leader and the
    features LightGBM credits for that option's chance in the rule's segment."""
    policy = learned.hook("intro_video").policy
    full = [r for r in policy.rules if len(r.when) == 2]
    assert len(full) == 4
    for rule in full:
        best = best_video(rule.when["prospect_personality"], rule.when["prospect_interest"])
        lead, credited = rule.reasons
        assert lead.startswith(f"{best} leads: estimated rate ")
        assert credited.startswith(f"model contributions to {best}'s log-odds here: ")
        named = [part.rsplit(" ", 1)[0] for part in credited.split(": ", 1)[1].split(", ")]
        # The interaction lives in shown × personality × interest; names are never credited.
        assert set(named) & {"shown", "prospect_personality", "prospect_interest"}
        assert not any(identifying(n) for n in named)


def test_content_that_does_not_matter_gets_no_segments_and_is_not_applied(
        learned: Proposal) -> None:
    first = learned.hook("first_contact_message")
    assert first.features == ()
    assert not first.beats
    # Its leader is the active one's: the greedy parts agree on every decision, so the lift
    # is exactly nothing, and the whole change (new - active) is the exploration rate's,
    # whose interval straddles 0 (every message converts alike).
    for name in ("ipw", "snipw", "dr"):
        assert (first.lift[name].low, first.lift[name].value, first.lift[name].high) == (
            0.0, 0.0, 0.0)
    assert first.exploration["dr"].low < 0 < first.exploration["dr"].high
    assert first.new["dr"].value - first.current["dr"].value == pytest.approx(
        first.exploration["dr"].value)
    assert any("lower bound is not above" in r and "decisions are needed" in r
               for r in first.reasons)


def test_proposal_documents_are_json(learned: Proposal) -> None:
    text = learned.hook("intro_video").policy.to_json()  # refuses NaN: must be clean numbers
    document = json.loads(text)
    assert document["explain"]["lift"]["dr"]["low"] > 0
    assert json.dumps(learned.to_dict())


def test_the_active_policy_judged_on_its_own_log_earns_the_observed_rate() -> None:
    data = log(3000, seed=4, logging="catalog")
    result = proposal(3000, seed=4, logging="catalog")
    for hook in ("intro_video", "first_contact_message"):
        observed = data["reward"][data["hook"] == hook].mean()
        assert abs(result.hook(hook).current["ipw"].value - observed) < 1e-12


def test_apply_activates_what_beats_and_rollback_restores(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "learn.db"))
    store_catalog(store, CATALOG, "catalog.yaml")
    before = active_versions(store)
    catalog = load_catalog_text(CATALOG)
    result = propose_from(log(6000, seed=1), catalog, active_policies(store),
                          process_id="journey", outcome="sale", n_boot=300)
    assert apply(store, result) == ["intro_video"]
    now = active_versions(store)
    assert now["intro_video"] == before["intro_video"] + 1
    assert now["first_contact_message"] == before["first_contact_message"]
    stored = get_policy(store, "intro_video")
    assert stored.kind == "learned" and stored.rules == result.hook("intro_video").policy.rules
    context = {"prospect_personality": "introvert", "prospect_interest": "energy",
               "market": "US", "locale": "en-US"}
    why = StoredRecommender(store).explain("intro_video", context)
    assert why[0] in ("rule for prospect_personality=introvert & prospect_interest=energy",
                      "rule for prospect_interest=energy & prospect_personality=introvert")
    assert why[1].startswith("video_a leads")
    assert stored.explain["lift"]["dr"]["low"] > 0
    # The same proposal again: intro_video's active version changed, so it is stale.
    assert apply(store, result) == []
    rollback(store, "intro_video")
    assert active_versions(store) == before
    assert [v.kind for v in history(store, "intro_video")] == ["catalog", "learned"]
    # force applies every hook, beating or not.
    assert sorted(apply(store, result, force=True)) == ["first_contact_message", "intro_video"]


def test_unknown_hooks_and_thin_hooks_are_skipped() -> None:
    data = log(300, seed=2)
    data["hook"] = np.where(data["hook"] == "first_contact_message", "unknown_hook",
                            data["hook"]).astype(object)
    catalog = load_catalog_text(CATALOG)
    result = propose_from(data, catalog, {}, process_id="journey", outcome="sale",
                          min_support=400, n_boot=50)
    assert "unknown_hook" in result.skipped and "catalog" in result.skipped["unknown_hook"]
    assert "min_support" in result.skipped["intro_video"]
    assert result.hooks == ()


# The world's content effects × 3: see the note in test_learned_policy_captures_the_oracle_lift.
STRENGTH = 3.0
TRAIN = SimulationConfig(distributors=800, days=30, seed=1, content_strength=STRENGTH)
EVAL = [SimulationConfig(distributors=150, days=30, seed=s, content_strength=STRENGTH)
        for s in (11, 12)]  # ~1,200 prospects each; TRAIN ~6,000


def _arm(job: tuple[str, str, SimulationConfig, list[Policy]]) -> Arm:
    db, which, config, policies = job
    return run(Path(db), which, config, policies)


@pytest.mark.slow
def test_learned_policy_captures_the_oracle_lift(tmp_path: Path) -> None:
    """On the simulator (its population, journeys and hidden response model, run through the
    real engine): log an exploring phase (every hook's content uniformly random), learn,
    apply what beats the active policy, then simulate the catalog default, the learned
    policies and the oracle on the same seeds. The learned policies must capture at least 80%
    of the oracle's lift over the catalog.

    Metric: each prospect's exact chance to convert at their first conversation, from the
    response model (tests/learner/_oracle_sim.py); the realized rate is reported too.
    Exploration: the oracle shows its best option with epsilon = 0.05; the learned policies
    are proposed with the same epsilon, so the comparison is about what was learned, not
    about how much each explores (at epsilon = 0.1 the learner gives up ~10% of the lift to
    exploring; measured 78% instead of 93% before the simulator fix of the content order).
    Strength: the simulator's calibrated world (content_strength 1.0) has content move a
    prospect's chance by about a point per hook; there a log of ~6,100 explored prospects is
    too small for any proposal to clear its confidence bound, and nothing is applied (measured:
    0% captured; the oracle's lift is 9.6% -> 14.8%). With effects × 2 the learner captured
    61%, with × 3 (used here) 99%: the test checks that the learner finds and applies what a
    log of this size can show, at a size CI can afford. A brand's log is many times larger.
    """
    train = run(tmp_path / "train.db", "explore", TRAIN)
    store = open_store(str(tmp_path / "train.db"))
    proposal = propose(store, "prospect_journey", outcome="Event_end", epsilon=0.05,
                       n_boot=300)
    applied = apply(store, proposal)
    store.dispose()
    policies = [proposal.hook(h).policy for h in applied]
    jobs = [(str(tmp_path / f"{which}_{c.seed}.db"), which, c,
             policies if which == "learned" else []) for c in EVAL
            for which in ("catalog", "learned", "oracle")]
    with ProcessPoolExecutor(max_workers=3) as pool:
        arms = list(pool.map(_arm, jobs))

    def rate(which: str, metric: str) -> float:
        mine = [a for a in arms if a.which == which]
        return sum(getattr(a, metric) * a.prospects for a in mine) / sum(
            a.prospects for a in mine)

    report: dict[str, object] = {"train": train.to_dict(), "applied": applied,
                                 "arms": [a.to_dict() for a in arms]}
    captured = {}
    for metric in ("expected", "realized"):
        c, learned, o = (rate(w, metric) for w in ("catalog", "learned", "oracle"))
        captured[metric] = (learned - c) / (o - c)
        report[metric] = {"catalog": c, "learned": learned, "oracle": o,
                          "captured": captured[metric]}
    print(json.dumps(report, indent=2))
    assert "first_contact_message" in applied
    assert rate("oracle", "expected") > rate("catalog", "expected") + 0.03
    assert captured["expected"] >= 0.8
