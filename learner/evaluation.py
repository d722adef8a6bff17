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

No verdict where the log cannot give one (the hook goes to `skipped`, with why, as `propose`
does): fewer than `min_support` usable decisions, every decision with the same outcome (the
bootstrap has nothing to resample), or a policy (judged or active) giving some probability
to options never logged for the hook (no weight can stand in for them: IPW would count them
as failures). An estimate judged anyway says so in `notes` when its interval has no spread
or it lies outside [0, 1], the range of a rate: nothing is clipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
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
    notes: tuple[str, ...] = ()  # what makes an estimate less than it looks

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
                "policy": self.policy.to_dict(), "notes": list(self.notes)}


@dataclass(frozen=True)
class Evaluation:
    """A policy judged on the log of one process, hook by hook."""

    process_id: str
    outcome: str
    horizon: timedelta | None
    policy: str  # what was asked for: uniform, catalog, active, version N, or a document
    hooks: tuple[HookEvaluation, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)  # hook -> why not judged
    pending: int = 0  # decisions left out: their horizon had not passed by observed_until
    observed_until: datetime | None = None

    def hook(self, name: str) -> HookEvaluation:
        return next(h for h in self.hooks if h.hook == name)

    def to_dict(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "outcome": self.outcome,
                "horizon_hours": None if self.horizon is None
                else self.horizon.total_seconds() / 3600,
                "policy": self.policy, "hooks": [h.to_dict() for h in self.hooks],
                "skipped": dict(self.skipped), "not_yet_observed": self.pending,
                "observed_until": None if self.observed_until is None
                else self.observed_until.isoformat()}


def evaluate(store: Store, process_id: str, policy: PolicySpec, *, outcome: str,
             horizon: timedelta | None = None, hook: str | None = None,
             hooks: Sequence[str] | None = None, observed_until: datetime | None = None,
             **options: Any) -> Evaluation:
    """Judge `policy` (see the module docstring) on the process's logged decisions.

    `hook` names the hook of a stored version number, or the one hook to judge a named
    policy (uniform, catalog, active) on. With a horizon, `observed_until` (now) leaves out
    the decisions of cases whose horizon had not passed by then (`Evaluation.pending`).
    `options` go to `evaluate_from`: min_support, folds, n_boot, confidence, seed,
    model_params. Raises `UnknownOutcome` for an outcome that is neither a step nor an
    outcome event, `PolicyError` for a policy that does not fit the stored catalog,
    `PolicyNotFound` for a version that is not stored.
    """
    from learner.dataset import decisions

    catalog = load_stored_catalog(store)
    active = active_policies(store)
    policies = resolve(policy, catalog, active, hook=hook, hooks=hooks, store=store)
    table = decisions(store, process_id, outcome=outcome, horizon=horizon,
                      observed_until=observed_until)
    found = evaluate_from(table, catalog, policies, active, process_id=process_id,
                          outcome=outcome, horizon=horizon, label=describe(policy), **options)
    return replace(found, pending=sum(table.pending.get(h, 0) for h in policies),
                   observed_until=observed_until if horizon is not None else None)


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
                  min_support: int = 50, folds: int = 5, n_boot: int = 500,
                  confidence: float = 0.9, seed: int = 0,
                  model_params: Mapping[str, Any] | None = None) -> Evaluation:
    """`evaluate` on a decision table already read, with `policies` by hook (`active`: the
    policies to compare with; the catalog default where a hook has none). A hook with fewer
    than `min_support` usable decisions is not judged (the same floor as `propose`)."""
    columns, rows, known = usable(table, catalog)
    data = take(columns, rows)
    skipped = {}
    judged = []
    for hook in policies:
        mine = data["hook"] == hook
        rewards = data["reward"][mine]
        if hook not in known:
            skipped[hook] = "no option of the stored catalog fills this hook"
        elif not mine.any() and getattr(table, "pending", {}).get(hook):
            skipped[hook] = "no decision of this hook whose horizon has passed"
        elif not mine.any():
            skipped[hook] = "no logged decision of this hook with a propensity"
        elif mine.sum() < min_support:
            skipped[hook] = (f"{mine.sum()} usable decisions, fewer than "
                             f"min_support={min_support}")
        elif (rewards == rewards[0]).all():
            skipped[hook] = (f"{'every one' if rewards[0] else 'none'} of its {mine.sum()} "
                             "decisions reached the outcome: nothing tells one choice "
                             "from another")
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
        current = (active or {}).get(hook) or catalog_policy(catalog, hook)
        target, logging = (probabilities(p, options, part) for p in (policies[hook], current))
        gap = _unlogged(target, actions, ids, "the policy") or _unlogged(
            logging, actions, ids, "the active policy")
        if gap:
            skipped[hook] = gap
            continue
        q, _ = fits.predictions(part, fold[mine], ids)
        terms = ope.policy_terms(actions, rewards, mu, target, q)
        base = ope.policy_terms(actions, rewards, mu, logging, q)
        new, old, lift = ope.paired(terms, base, n_boot=n_boot, confidence=confidence,
                                    seed=seed)
        notes = _notes(new, lift, same=np.array_equal(target, logging))
        out.append(HookEvaluation(hook, policies[hook], int(mine.size),
                                  float(rewards.mean()), new, old, lift, notes))
    return Evaluation(process_id, outcome, horizon, label, tuple(out), skipped)


def _unlogged(pi: np.ndarray, actions: np.ndarray, ids: list[str], whose: str) -> str | None:
    """Why `pi` cannot be judged on these decisions, or None: it gives probability to
    options never logged here, which no importance weight can stand in for."""
    never = np.ones(len(ids), dtype=bool)
    never[np.unique(actions)] = False
    mass = float(pi[:, never].sum(axis=1).mean()) if never.any() else 0.0
    if mass <= 0:
        return None
    given = never & (pi.sum(axis=0) > 0)
    names = ", ".join(i for i, g in zip(ids, given.tolist(), strict=True) if g)
    return (f"{whose} gives {mass:.1%} of its choices to options never logged for this hook "
            f"({names}): the log cannot say what they would earn")


def _notes(new: Mapping[str, ope.Estimate], lift: Mapping[str, ope.Estimate], *,
           same: bool) -> tuple[str, ...]:
    """What makes an estimate less than it looks: an interval with no spread (every
    resample alike: no measure of uncertainty), a rate outside [0, 1] (uneven weights)."""
    out = []
    for name, e in new.items():
        if e.low == e.high:
            out.append(f"{name}: every resample gave {e.value:.4f}: the interval measures no "
                       "uncertainty")
        if not 0 <= e.value <= 1:
            out.append(f"{name}: {e.value:.4f} is outside [0, 1], where a rate lies: an "
                       f"unreliable estimate (ESS {e.ess:,.0f}), shown unclipped")
    for name, d in lift.items():
        if d.low == d.high and not same:  # the same policy twice: a lift of exactly 0
            out.append(f"{name} lift: every resample gave {d.value:+.4f}: the interval "
                       "measures no uncertainty")
    return tuple(out)
