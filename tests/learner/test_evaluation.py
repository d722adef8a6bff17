"""Off-policy evaluation of a given policy: on a simulated process's log in a real store, and
on a randomized log whose true values are known."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from content_catalog import Policy, PolicyError, PolicyNotFound, active_policies
from engine import Store
from learner import Evaluation, decisions, evaluate, evaluate_from
from simulator import SimulationConfig, simulate
from tests.learner import _sparse_sim as sim

JOURNEY = "prospect_journey"
OUTCOME = "customer_order"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('eval') / 'sim.db'}")
    simulate(store, SimulationConfig(distributors=12, days=21, seed=3), policy="catalog")
    yield store
    store.dispose()


@pytest.fixture(scope="module")
def active(store: Store) -> Evaluation:
    return evaluate(store, JOURNEY, "active", outcome=OUTCOME, n_boot=200)


def test_the_logging_policy_earns_its_observed_rate_with_full_weight(
        store: Store, active: Evaluation) -> None:
    table = decisions(store, JOURNEY, outcome=OUTCOME)
    assert active.hooks and active.policy == "active"
    for hook in active.hooks:
        observed = table.reward[table.hook == hook.hook].mean()
        assert hook.decisions == int((table.hook == hook.hook).sum())
        assert hook.logged_rate == pytest.approx(observed)
        assert hook.estimates["ipw"].value == pytest.approx(observed, abs=1e-12)
        assert hook.estimates["snipw"].value == pytest.approx(observed, abs=1e-12)
        assert hook.ess == pytest.approx(hook.decisions)  # every weight is 1
        for name in ("ipw", "snipw", "dr"):
            est = hook.estimates[name]
            assert est.low <= est.value <= est.high and est.n == hook.decisions
            assert hook.lift[name].value == 0.0  # the active policy against itself


def test_uniform_reweights_the_log(store: Store, active: Evaluation) -> None:
    uniform = evaluate(store, JOURNEY, "uniform", outcome=OUTCOME, n_boot=200)
    assert [h.hook for h in uniform.hooks] == [h.hook for h in active.hooks]
    for hook in uniform.hooks:
        assert 0 < hook.ess < hook.decisions  # the catalog favoured some options
        assert set(hook.estimates) == {"ipw", "snipw", "dr"}
        for est in hook.estimates.values():
            assert est.low <= est.value <= est.high
        assert hook.lift["dr"].value == pytest.approx(
            hook.estimates["dr"].value - hook.active["dr"].value)
    assert json.loads(json.dumps(uniform.to_dict()))["policy"] == "uniform"


def test_a_document_and_a_stored_version_judge_one_hook(store: Store,
                                                         active: Evaluation) -> None:
    hook = active.hooks[0].hook
    stored = active_policies(store)[hook]
    by_version = evaluate(store, JOURNEY, stored.version, hook=hook, outcome=OUTCOME,
                          n_boot=200)
    assert [h.hook for h in by_version.hooks] == [hook]
    assert by_version.hook(hook).estimates == active.hook(hook).estimates
    document = stored.to_dict() | {"exploration": {"method": "epsilon", "epsilon": 1.0}}
    by_document = evaluate(store, JOURNEY, document, outcome=OUTCOME, n_boot=200)
    assert by_document.policy == f"document for {hook}"
    assert by_document.hook(hook).ess < by_document.hook(hook).decisions


def test_bad_policies_are_named(store: Store) -> None:
    with pytest.raises(PolicyError, match="did you mean 'uniform'"):
        evaluate(store, JOURNEY, "unifrom", outcome=OUTCOME)
    hook = sorted(active_policies(store))[0]
    with pytest.raises(PolicyNotFound, match="no version 99"):
        evaluate(store, JOURNEY, 99, hook=hook, outcome=OUTCOME)
    with pytest.raises(PolicyError, match="needs the hook"):
        evaluate(store, JOURNEY, 1, outcome=OUTCOME)
    with pytest.raises(PolicyError, match="not an option of this hook"):
        evaluate(store, JOURNEY, {"hook": hook, "default": {"no_such_option": 1.0}},
                 outcome=OUTCOME)


def test_a_hand_written_rule_is_judged_near_its_true_value() -> None:
    """Uniformly logged decisions whose true rates are known: a rule by tier and visits (the
    true best offer per segment) and the uniform policy, judged by every estimator."""
    base, effect = 0.05, 2.0
    data = sim.log(8000, seed=11, base=base, effect=effect)
    low, high = [float(v) for v in range(5)], [float(v) for v in range(5, 10)]
    rules = [{"when": {"tier": tier, "visits": visits},
              "scores": {sim.OFFERS[int(sim.best({"tier": np.array([tier]),
                                                  "visits": np.array([visits[0]])})[0])]: 1.0}}
             for tier in ("gold", "silver", "bronze") for visits in (low, high)]
    rule = Policy.from_dict({"hook": sim.HOOK, "rules": rules,
                             "exploration": {"method": "epsilon", "epsilon": 0.1}})
    result = evaluate_from(data, sim.catalog(), {sim.HOOK: rule}, sim.active(),
                           process_id="sparse", outcome="sale", n_boot=300)
    hook = result.hook(sim.HOOK)
    truth = sim.true_value(rule, base=base, effect=effect)
    assert truth == pytest.approx(base * (1 + effect * 0.92), rel=0.01)
    for name in ("ipw", "snipw", "dr"):
        assert hook.estimates[name].contains(truth), hook.estimates[name]
    assert hook.lift["snipw"].low > 0  # better than the catalog's single ranking
    uniform = evaluate_from(data, sim.catalog(), {sim.HOOK: Policy.from_dict(
        {"hook": sim.HOOK, "exploration": {"method": "epsilon", "epsilon": 1.0}})},
        process_id="sparse", outcome="sale", n_boot=100)
    assert uniform.hook(sim.HOOK).estimates["ipw"].value == pytest.approx(
        data["reward"].mean(), abs=1e-12)  # the logging policy on its own log
    assert uniform.hook(sim.HOOK).ess == pytest.approx(8000)


def test_the_evaluate_command_gives_what_the_api_gives(store: Store, active: Evaluation,
                                                       tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", "active", "--process", JOURNEY, "--outcome",
                                 OUTCOME, "--db", store.url, "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert [h["hook"] for h in found["hooks"]] == [h.hook for h in active.hooks]
    for given, expected in zip(found["hooks"], active.hooks, strict=True):
        assert given["estimates"]["ipw"]["value"] == pytest.approx(
            expected.estimates["ipw"].value)
    hook = active.hooks[0].hook
    document = tmp_path / "uniform.json"
    document.write_text(json.dumps(active_policies(store)[hook].to_dict()
                                   | {"exploration": {"method": "epsilon", "epsilon": 1.0}}))
    table = runner.invoke(app, ["evaluate", str(document), "--process", JOURNEY, "--outcome",
                                OUTCOME, "--db", store.url])
    assert table.exit_code == 0, table.output
    assert hook in table.stdout and "snipw" in table.stdout and "ESS" in table.stdout
    typo = runner.invoke(app, ["evaluate", "unifrom", "--process", JOURNEY, "--outcome",
                               OUTCOME, "--db", store.url])
    assert typo.exit_code != 0 and "did you mean 'uniform'" in typo.stderr


def test_learn_says_why_nothing_changed(store: Store) -> None:
    result = CliRunner().invoke(app, ["learn", "--process", JOURNEY, "--outcome", OUTCOME,
                                      "--dry-run", "--db", store.url])
    assert result.exit_code == 0, result.output
    assert "SNIPW lift" in result.stdout and "not counted as lift" in result.stdout
    # a log this small proves nothing: each hook is left alone and says what it would take
    assert "kept current" in result.stdout and ": applied" not in result.stdout
    assert "decisions are needed" in result.stdout and "power now" in result.stdout


def _judge(data: dict[str, np.ndarray], policy: Policy | None = None) -> Evaluation:
    rule = policy or Policy.from_dict({"hook": sim.HOOK, "exploration": {
        "method": "epsilon", "epsilon": 1.0}})
    return evaluate_from(data, sim.catalog(), {sim.HOOK: rule}, sim.active(),
                         process_id="sparse", outcome="sale", n_boot=100)


def test_no_verdict_where_the_log_cannot_give_one() -> None:
    """Before, 8 decisions, a log without an option or without a single outcome were judged
    with intervals of no width and rates above 1."""
    thin = _judge(sim.log(30, seed=1, base=0.3))
    assert thin.hooks == () and thin.skipped == {
        sim.HOOK: "30 usable decisions, fewer than min_support=50"}
    data = sim.log(2000, seed=2, base=0.1)
    nothing = _judge({**data, "reward": np.zeros_like(data["reward"])})
    assert nothing.hooks == () and "none of its 2000 decisions reached the outcome" in (
        nothing.skipped[sim.HOOK])
    logged = data["shown"] != "offer_e"
    gap = _judge({k: v[logged] for k, v in data.items()})
    assert gap.hooks == ()
    assert gap.skipped[sim.HOOK].startswith("the policy gives 20.0% of its choices to "
                                            "options never logged for this hook (offer_e)")


def test_an_estimate_that_is_less_than_it_looks_says_so() -> None:
    data = sim.log(500, seed=4, base=0.2)
    only_a = data["shown"] == "offer_a"
    reward = np.where(only_a, 0, data["reward"]).astype(np.int8)
    greedy = Policy.from_dict({"hook": sim.HOOK, "default": {"offer_a": 1.0},
                               "exploration": {"method": "epsilon", "epsilon": 0.0}})
    never = _judge({**data, "reward": reward}, greedy).hook(sim.HOOK)
    assert never.estimates["ipw"].value == 0.0  # it only shows what never converted
    assert "ipw: every resample gave 0.0000: the interval measures no uncertainty" in (
        never.notes)
    # offer_a logged as if it were rare: its weights of 20 put IPW above 1, and stay there
    reward = np.where(only_a, 1, data["reward"]).astype(np.int8)
    mu = np.where(only_a, 0.05, data["propensity"])
    uneven = _judge({**data, "reward": reward, "propensity": mu}, greedy).hook(sim.HOOK)
    assert uneven.estimates["ipw"].value == pytest.approx(20 * only_a.mean())
    assert any(n.startswith("ipw: ") and "outside [0, 1]" in n for n in uneven.notes)
    assert uneven.to_dict()["notes"] == list(uneven.notes)
