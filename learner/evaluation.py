"""Off-policy evaluation of a given policy on a process's log: what it would have earned.

    report = evaluate(store, "prospect_journey", "uniform", outcome="Event_end")
    report = evaluate(store, "prospect_journey", Policy.from_json(text), outcome="sale")
    for hook in report.hooks:
        print(hook.hook, hook.estimates["dr"].value, hook.estimates["dr"].low, hook.ess)

The policy is a `Policy`, a policy JSON document (a mapping, the format the policy store
uses), `"uniform"` (every available option alike), `"catalog"` (the catalog's default
policy), `"active"` (the active policies) or a stored version number of `hook`. A document,
a `Policy` or a version judges one hook; the names judge every hook of the catalog that has
decisions in the log (or `hooks`).

Per hook: IPW, SNIPW and DR (`learner.ope`) of the policy as it would run (its exploration
included), with percentile bootstrap intervals and the effective sample size of the weights,
the same of the active policy, and the paired difference (`lift`, policy - active). DR's
reward model is cross-fitted: each fold of cases is scored by a model fitted on the others
(`_crossfit`); the policy was learned from nothing in this log, so that is all it takes for
each decision's estimate to come from a model that never saw its outcome.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from content_catalog import (
    Catalog,
    Exploration,
    Policy,
    PolicyError,
    active_policies,
    catalog_policy,
    get_policy,
    load_stored_catalog,
)
from engine.errors import UnknownHook, did_you_mean
from engine.store.database import Store
from learner import ope
from learner._crossfit import CrossFit
from learner._segments import case_folds, probabilities, take
from learner.rewrite import PATH_FEATURES, context_columns, usable

NAMES = ("uniform", "catalog", "active")
PolicySpec = Policy | Mapping[str, Any] | str | int


@dataclass(frozen=True)
class HookEvaluation:
    """Every estimator of one hook's policy on the log, beside the active policy's."""

    hook: str
    policy: Policy
    decisions: int
    logged_rate: float  # the outcome rate the logging policies earned
    estimates: Mapping[str, ope.Estimate]  # ipw / snipw / dr of the policy
    active: Mapping[str, ope.Estimate]  # the same of the active policy
    lift: Mapping[str, ope.Estimate]  # policy - active, paired

    @property
    def ess(self) -> float:
        """Kish's effective sample size of the policy's importance weights."""
        return self.estimates["ipw"].ess

    def to_dict(self) -> dict[str, Any]:
        return {"hook": self.hook, "decisions": self.decisions,
                "logged_rate": self.logged_rate, "ess": self.ess,
                "estimates": {k: e.to_dict() for k, e in self.estimates.items()},
                "active": {k: e.to_dict() for k, e in self.active.items()},
                "lift": {k: e.to_dict() for k, e in self.lift.items()},
                "policy": self.policy.to_dict()}


@dataclass(frozen=True)
class Evaluation:
    """A policy judged on the log of one process, hook by hook."""

    process_id: str
    outcome: str
    horizon: timedelta | None
    policy: str  # what was asked for: uniform, catalog, active, version N, or a document
    hooks: tuple[HookEvaluation, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)  # hook -> why not judged

    def hook(self, name: str) -> HookEvaluation:
        return next(h for h in self.hooks if h.hook == name)

    def to_dict(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "outcome": self.outcome,
                "horizon_hours": None if self.horizon is None
                else self.horizon.total_seconds() / 3600,
                "policy": self.policy, "hooks": [h.to_dict() for h in self.hooks],
                "skipped": dict(self.skipped)}


def evaluate(store: Store, process_id: str, policy: PolicySpec, *, outcome: str,
             horizon: timedelta | None = None, hook: str | None = None,
             hooks: Sequence[str] | None = None, **options: Any) -> Evaluation:
    """Judge `policy` (see the module docstring) on the process's logged decisions.

    `hook` names the hook of a stored version number, or the one hook to judge a named
    policy (uniform, catalog, active) on; `options` go to `evaluate_from`:
    folds, n_boot, confidence, seed, model_params. Raises `UnknownOutcome` for an outcome
    that is neither a step nor an outcome event, `PolicyError` for a policy that does not
    fit the stored catalog, `PolicyNotFound` for a version that is not stored.
    """
    from learner.dataset import decisions

    catalog = load_stored_catalog(store)
    active = active_policies(store)
    policies = resolve(policy, catalog, active, hook=hook, hooks=hooks, store=store)
    table = decisions(store, process_id, outcome=outcome, horizon=horizon)
    return evaluate_from(table, catalog, policies, active, process_id=process_id,
                         outcome=outcome, horizon=horizon, label=describe(policy), **options)


def resolve(policy: PolicySpec, catalog: Catalog, active: Mapping[str, Policy], *,
            hook: str | None = None, hooks: Sequence[str] | None = None,
            store: Store | None = None) -> dict[str, Policy]:
    """The policy to judge, by hook: every hook of the catalog, or `hooks`, or `hook` alone."""
    if hook is not None and hook not in catalog.hooks:
        raise UnknownHook(hook, catalog.hooks)
    every = [hook] if hook is not None else list(hooks) if hooks is not None else sorted(
        catalog.hooks)
    if isinstance(policy, Mapping):
        policy = Policy.from_dict(policy)
    if isinstance(policy, Policy):
        policy.check_against(catalog)
        return {policy.hook: policy}
    if isinstance(policy, int) and not isinstance(policy, bool):
        if hook is None or store is None:
            raise PolicyError("a stored version needs the hook it belongs to", field="hook")
        return {hook: get_policy(store, hook, policy)}
    if policy == "uniform":
        return {h: catalog_policy(catalog, h, Exploration("epsilon", 1.0)) for h in every}
    if policy == "catalog":
        return {h: catalog_policy(catalog, h) for h in every}
    if policy == "active":
        return {h: active.get(h) or catalog_policy(catalog, h) for h in every}
    raise PolicyError(f"unknown policy {policy!r}: give a policy document, a stored version "
                      f"or one of {', '.join(NAMES)}", suggestion=did_you_mean(str(policy), NAMES))


def describe(policy: PolicySpec) -> str:
    if isinstance(policy, str):
        return policy
    if isinstance(policy, int):
        return f"version {policy}"
    hook = policy.hook if isinstance(policy, Policy) else policy.get("hook")
    return f"document for {hook}"


def evaluate_from(table: Any, catalog: Catalog, policies: Mapping[str, Policy],
                  active: Mapping[str, Policy] | None = None, *, process_id: str,
                  outcome: str, horizon: timedelta | None = None, label: str = "given",
                  folds: int = 5, n_boot: int = 500, confidence: float = 0.9, seed: int = 0,
                  model_params: Mapping[str, Any] | None = None) -> Evaluation:
    """`evaluate` on a decision table already read, with `policies` by hook (`active`: the
    policies to compare with; the catalog default where a hook has none)."""
    columns, rows, known = usable(table, catalog)
    data = take(columns, rows)
    skipped = {}
    judged = []
    for hook in policies:
        if hook not in known:
            skipped[hook] = "no option of the stored catalog fills this hook"
        elif not (data["hook"] == hook).any():
            skipped[hook] = "no logged decision of this hook with a propensity"
        else:
            judged.append(hook)
    fits = None
    fold = case_folds(data["case_id"], folds, seed) if judged else np.zeros(0, np.int64)
    if judged:
        features = [c for c in (*PATH_FEATURES, *context_columns(table, columns))
                    if c in columns]
        fits = CrossFit(data, fold, features, {"seed": seed, **dict(model_params or {})},
                        nested=False)
    out = []
    for hook in judged:
        assert fits is not None
        mine = np.flatnonzero(data["hook"] == hook)
        part, options = take(data, mine), catalog.options_for(hook)
        ids = [o.id for o in options]
        index = {o: i for i, o in enumerate(ids)}
        actions = np.array([index[s] for s in part["shown"]], dtype=np.int64)
        rewards = np.asarray(part["reward"], dtype=np.float64)
        mu = np.asarray(part["propensity"], dtype=np.float64)
        q, _ = fits.predictions(part, fold[mine], ids)
        current = (active or {}).get(hook) or catalog_policy(catalog, hook)
        terms = ope.policy_terms(actions, rewards, mu,
                                 probabilities(policies[hook], options, part), q)
        base = ope.policy_terms(actions, rewards, mu, probabilities(current, options, part), q)
        new, old, lift = ope.paired(terms, base, n_boot=n_boot, confidence=confidence,
                                    seed=seed)
        out.append(HookEvaluation(hook, policies[hook], int(mine.size),
                                  float(rewards.mean()), new, old, lift))
    return Evaluation(process_id, outcome, horizon, label, tuple(out), skipped)
