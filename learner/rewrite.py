"""The policy rewrite: learn which content converts where, propose new policies, apply them.

    proposal = propose(store, "prospect_journey", outcome="Event_end")
    for hook in proposal.hooks:
        print(hook.hook, hook.lift["dr"].value, hook.beats, *hook.reasons, sep="\\n  ")
    apply(store, proposal)                  # only hooks whose estimate beats the active policy
    rollback(store, "intro_video")          # content_catalog.rollback: the previous version

An `OutcomeModel` for all hooks (the hook is a feature) predicts q(x, a) = P(outcome | context
x, content a), cross-fitted: the decisions are split by case into `folds` and each fold's q
comes from a model fitted on the other folds. Each logged decision i then has a doubly robust
score per option a, Γ(i, a) = q(x_i, a) + [a shown] (r_i - q(x_i, a)) / μ_i: its average over
any group of decisions estimates that group's outcome rate had it always been shown a, without
bias even where the model is wrong (the logged propensities μ correct it). From those scores,
per hook:

1. Segment features: the set of context attributes (at most `max_features`, each with 2 to
   `max_levels` text values) under which "show each segment its best-scoring option" has the
   highest value, cross-validated over the folds: all sets of one or two attributes are tried,
   then the best is extended one attribute at a time. A larger set is taken only if it beats
   each smaller one by `min_gain` plus `selection_z` standard errors (1: the one-standard-error
   rule), so noise attributes rarely get in. Content effects that differ by a *combination*
   (personality × interest) are found even when neither attribute matters alone.
2. One `Rule` per observed combination of those features, and per combination of each subset
   of them (fallbacks for rare combinations), with at least `min_support` decisions; its
   scores are the segment's mean Γ per option (over decisions where the option is available),
   an estimate of each option's outcome rate there. `default` is the same over all decisions.
3. Exploration: epsilon-greedy with `epsilon`, so the policy keeps logging every option.

Evaluation, on the same log for the new and the active policy with the logged propensities:
IPW, SNIPW and DR, and the paired bootstrap interval of the lift (new - active). It is
cross-fitted too: each fold's decisions are judged by the policy the whole procedure (feature
choice included) learns from the other folds, so the estimate is of the procedure on
(folds - 1) / folds of the data: slightly conservative for the policy proposed, which had it
all. The reward model behind the other folds' scores has seen the judged fold; it enters
them only as the baseline that the logged residuals correct.

A hook `beats` its active policy when the lower end of the DR lift's interval is above
`min_lift` (0.001: a tenth of a percentage point). With the default `confidence` of 0.9 that
is a one-sided 95% test: better with high confidence, not merely in its point estimate, which
on small logs flips with noise; `min_lift` keeps model noise on hooks that almost never
convert (where DR is nearly all model) from passing as a gain. `apply` activates only those
hooks (every hook with `force`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from content_catalog import (
    Catalog,
    ContentOption,
    Exploration,
    Policy,
    Rule,
    active_policies,
    active_versions,
    catalog_policy,
    load_stored_catalog,
    save_policy,
)
from engine.clock import Clock
from engine.store.database import Store
from learner import ope
from learner._segments import Segments, available, case_folds, probabilities, select, take
from learner.model import EXCLUDED, OutcomeModel, as_columns, identifying

FIXED = frozenset({*EXCLUDED, "hook", "step_id", "shown", "reward", "step_index", "action",
                   "hours_since_previous_step", "hours_since_start", "distributor_id", "at",
                   "acted_at"})
# Pre-decision features of the model besides the context; `hours_since_previous_step` runs to
# the step's completion, after the card was shown, so it is left out.
PATH_FEATURES = ("hook", "step_id", "shown", "step_index", "hours_since_start")
_EXPLAIN_ROWS = 2000  # rows per hook whose contributions are averaged for the reasons

Array = NDArray[Any]


@dataclass(frozen=True)
class HookProposal:
    """The proposed policy of one hook, its off-policy estimates and why it looks as it does."""

    hook: str
    policy: Policy  # version 0: stored by `apply`
    active: Policy  # the policy it was compared with
    decisions: int
    features: tuple[str, ...]  # the segment features its rules use
    new: Mapping[str, ope.Estimate]  # ipw / snipw / dr of the proposed policy
    current: Mapping[str, ope.Estimate]  # the same of the active policy
    lift: Mapping[str, ope.Estimate]  # new - current, paired
    contributions: Mapping[str, float]  # mean |log-odds contribution| per feature
    reasons: tuple[str, ...]
    min_lift: float = 0.001

    @property
    def beats(self) -> bool:
        """The lower end of the DR lift's interval is above `min_lift`."""
        return self.lift["dr"].low > self.min_lift

    def to_dict(self) -> dict[str, Any]:
        return {
            "hook": self.hook, "decisions": self.decisions, "features": list(self.features),
            "beats": self.beats, "active_version": self.active.version,
            "new": {k: e.to_dict() for k, e in self.new.items()},
            "current": {k: e.to_dict() for k, e in self.current.items()},
            "lift": {k: e.to_dict() for k, e in self.lift.items()},
            "contributions": dict(self.contributions), "reasons": list(self.reasons),
            "policy": self.policy.to_dict(),
        }


@dataclass(frozen=True)
class Proposal:
    """New policies for the hooks of one process, learned from its log."""

    process_id: str
    outcome: str
    horizon: timedelta | None
    decisions: int
    hooks: tuple[HookProposal, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)  # hook -> why no proposal
    importance: Mapping[str, float] = field(default_factory=dict)  # model gain per feature

    def hook(self, name: str) -> HookProposal:
        return next(h for h in self.hooks if h.hook == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "process_id": self.process_id, "outcome": self.outcome,
            "horizon_hours": None if self.horizon is None
            else self.horizon.total_seconds() / 3600,
            "decisions": self.decisions, "hooks": [h.to_dict() for h in self.hooks],
            "skipped": dict(self.skipped), "importance": dict(self.importance),
        }


def propose(store: Store, process_id: str, *, outcome: str, horizon: timedelta | None = None,
            min_support: int = 50, epsilon: float = 0.1, seed: int = 0, **options: Any
            ) -> Proposal:
    """Learn from the process's logged decisions and propose a policy per hook.

    `options` go to `propose_from`: max_features, max_levels, min_gain, selection_z,
    min_lift, folds, n_boot, confidence, model_params (OutcomeModel parameters), hooks.
    Raises `UnknownOutcome` when the outcome is neither a step nor an outcome event.
    """
    from learner.dataset import decisions

    table = decisions(store, process_id, outcome=outcome, horizon=horizon)
    return propose_from(table, load_stored_catalog(store), active_policies(store),
                        process_id=process_id, outcome=outcome, horizon=horizon,
                        min_support=min_support, epsilon=epsilon, seed=seed, **options)


def propose_from(table: Any, catalog: Catalog, active: Mapping[str, Policy], *,
                 process_id: str, outcome: str, horizon: timedelta | None = None,
                 min_support: int = 50, epsilon: float = 0.1, seed: int = 0,
                 max_features: int = 3, max_levels: int = 12, min_gain: float = 0.0,
                 selection_z: float = 1.0, min_lift: float = 0.001,
                 folds: int = 5, n_boot: int = 500, confidence: float = 0.9,
                 model_params: Mapping[str, Any] | None = None,
                 hooks: Sequence[str] | None = None) -> Proposal:
    """`propose` on a decision table already read, against `active` policies by hook."""
    columns = as_columns(table)
    shown, hook_col = columns["shown"], columns["hook"]
    propensity = np.asarray(columns["propensity"], dtype=np.float64)
    known = {h: {o.id for o in catalog.options_for(h)} for h in catalog.hooks}
    usable = np.array([s in known.get(h, ()) for h, s in zip(hook_col, shown, strict=True)],
                      dtype=bool) & (propensity > 0) & (propensity <= 1)
    rows = np.flatnonzero(usable)
    data = take(columns, rows)
    fold = case_folds(data["case_id"], folds, seed)
    context = context_columns(table, columns)
    params = {"seed": seed, **dict(model_params or {})}
    features = [c for c in (*PATH_FEATURES, *context) if c in columns]
    fold_models = [OutcomeModel(features=features, **params).fit(take(data, fold != k))
                   for k in range(folds)]
    full = OutcomeModel(features=features, **params).fit(data)
    learner = _Learner(context, min_support, epsilon, max_levels,
                       {"max_features": max_features, "min_gain": min_gain, "z": selection_z})
    out, skipped = [], {}
    names = sorted(set(hook_col[usable]) | (set(hook_col) - set(known)))
    for hook in names if hooks is None else hooks:
        mine = np.flatnonzero(data["hook"] == hook)
        if hook not in known:
            skipped[hook] = "no option of the stored catalog fills this hook"
        elif len(mine) < min_support:
            skipped[hook] = f"{len(mine)} usable decisions, fewer than min_support={min_support}"
        else:
            current = active.get(hook) or catalog_policy(catalog, hook)
            found = learner.hook(hook, catalog.options_for(hook), take(data, mine), fold[mine],
                                 current, fold_models, full, n_boot=n_boot,
                                 confidence=confidence, seed=seed)
            out.append(replace(found, min_lift=min_lift))
    importance = dict(sorted(full.feature_importances_.items(), key=lambda kv: -kv[1]))
    return Proposal(process_id, outcome, horizon, len(rows), tuple(out), skipped, importance)


def context_columns(table: Any, columns: Mapping[str, Any]) -> list[str]:
    """The columns that hold context keys: a DecisionTable's `context`, else all columns but
    the decision's own (`FIXED`); without those that identify a person (`identifying`)."""
    keys = getattr(table, "context", None)
    if isinstance(keys, Mapping):
        found = [f"context.{k}" if f"context.{k}" in columns else k for k in keys]
    else:
        found = [c for c in columns if c not in FIXED]
    return [c for c in found if not identifying(c)]


def apply(store: Store, proposal: Proposal, *, force: bool = False,
          clock: Clock | None = None) -> list[str]:
    """Store and activate the proposed policy of every hook that `beats` its active policy
    (every hook with `force`); return those hooks. A hook whose active version changed since
    the proposal is left alone unless `force`: its comparison no longer holds."""
    now_active = active_versions(store)
    applied = []
    for hp in proposal.hooks:
        stale = now_active.get(hp.hook, hp.active.version) != hp.active.version
        if not force and (stale or not hp.beats):
            continue
        dr = hp.lift["dr"]
        save_policy(store, hp.policy, activate=True, clock=clock,
                    note=f"learned from {hp.decisions} decisions of {proposal.process_id!r} "
                         f"(outcome {proposal.outcome!r})",
                    reason=f"DR lift {dr.value:+.4f} [{dr.low:+.4f}, {dr.high:+.4f}]"
                           + (" (forced)" if force and not hp.beats else ""))
        applied.append(hp.hook)
    return applied


@dataclass
class _Learner:
    context: list[str]
    min_support: int
    epsilon: float
    max_levels: int
    selection: dict[str, Any]  # max_features, min_gain, z: see `_segments.select`

    def hook(self, hook: str, options: Sequence[ContentOption], table: dict[str, Array],
             fold: Array, current: Policy, fold_models: list[OutcomeModel],
             full: OutcomeModel, *, n_boot: int, confidence: float, seed: int
             ) -> HookProposal:
        ids = [o.id for o in options]
        n, rows = len(fold), np.arange(len(fold))
        avail = available(options, table)
        q = np.zeros((n, len(ids)))
        for k, model in enumerate(fold_models):  # cross-fitted: never a row's own fold
            if (fold == k).any():
                q[fold == k] = model.predict_actions(take(table, fold == k), ids)
        index = {o: i for i, o in enumerate(ids)}
        actions = np.array([index[s] for s in table["shown"]], dtype=np.int64)
        rewards = np.asarray(table["reward"], dtype=np.float64)
        mu = np.asarray(table["propensity"], dtype=np.float64)
        gamma = q.copy()
        gamma[rows, actions] += (rewards - q[rows, actions]) / mu
        gamma[~avail] = np.nan
        seg = Segments(table, self.context, self.max_levels, self.min_support, gamma, avail,
                       fold)
        every = [int(k) for k in np.unique(fold)]
        features = select(seg, every, **self.selection)
        policy = self.policy(hook, ids, seg, features, every)
        pi_new = np.zeros_like(q)
        for k in every:  # each fold judged by the procedure run on the others
            others = [j for j in every if j != k]  # its features are cross-validated on them
            learned = self.policy(hook, ids, seg, select(seg, others, **self.selection),
                                  others)
            pi_new[fold == k] = probabilities(learned, options, take(table, fold == k))
        pi_old = probabilities(current, options, table)
        new_t = ope.policy_terms(actions, rewards, mu, pi_new, q)
        old_t = ope.policy_terms(actions, rewards, mu, pi_old, q)
        new, cur, lift = ope.paired(new_t, old_t, n_boot=n_boot, confidence=confidence,
                                    seed=seed)
        sample = np.random.default_rng(seed).permutation(n)[:_EXPLAIN_ROWS]
        contributions = _mean_abs(full, take(table, sample))
        policy = _explain_rules(policy, full, table, seed)
        reasons = _reasons(policy, current, options, features, seg, table, lift["dr"],
                           contributions)
        explain = {"decisions": n, "features": list(features),
                   "estimate": {k: e.to_dict() for k, e in new.items()},
                   "active": {k: e.to_dict() for k, e in cur.items()},
                   "lift": {k: e.to_dict() for k, e in lift.items()},
                   "contributions": contributions}
        policy = replace(policy, reasons=reasons, explain=explain)
        return HookProposal(hook, policy, current, n, features, new, cur, lift, contributions,
                            reasons)

    def policy(self, hook: str, ids: list[str], seg: Segments, features: tuple[str, ...],
               folds: Sequence[int]) -> Policy:
        """Rules for every well-supported combination of the features and of their subsets."""
        rules = []
        for size in range(len(features), 0, -1):
            for subset in itertools.combinations(features, size):
                for key, scores in seg.tables(subset, folds):
                    rules.append(Rule(dict(zip(subset, key, strict=True)),
                                      _score_dict(ids, scores)))
        default = _score_dict(ids, seg.default(folds))
        return Policy(hook, default=default, rules=tuple(rules), kind="learned",
                      exploration=Exploration("epsilon", self.epsilon))


def _explain_rules(policy: Policy, model: OutcomeModel, table: dict[str, Array], seed: int,
                   top: int = 3) -> Policy:
    """Give each rule its reasons: the option it puts first, by how much, and which features
    the outcome model credits for that option's chance in the rule's segment (LightGBM's
    per-row contributions, averaged over up to `_EXPLAIN_ROWS // 4` of its decisions with the
    option in place of what was shown)."""
    rng = np.random.default_rng(seed)
    rules = []
    for rule in policy.rules:
        ranked = sorted(rule.scores.items(), key=lambda kv: -kv[1])
        if not ranked:
            rules.append(rule)
            continue
        best, score = ranked[0]
        reasons = [f"{best} leads: estimated rate {score:.3f}" + (
            f" against {ranked[1][0]} {ranked[1][1]:.3f}" if len(ranked) > 1 else "")]
        mask = np.ones(len(table["shown"]), dtype=bool)
        for feature, value in rule.when.items():
            mask &= table[feature] == value
        rows = np.flatnonzero(mask)
        if rows.size:
            rows = rng.permutation(rows)[:_EXPLAIN_ROWS // 4]
            sample = take(table, rows)
            sample["shown"] = np.full(rows.size, best, dtype=object)
            mean = model.contribution_matrix(sample)[:, :-1].mean(axis=0)
            order = np.argsort(-np.abs(mean))[:top]
            credited = ", ".join(f"{model.features_[j]} {mean[j]:+.2f}" for j in order
                                 if mean[j] != 0)
            if credited:
                reasons.append(f"model contributions to {best}'s log-odds here: {credited}")
        rules.append(replace(rule, reasons=tuple(reasons)))
    return replace(policy, rules=tuple(rules))


def _score_dict(ids: list[str], scores: Array) -> dict[str, float]:
    return {o: round(float(v), 6) for o, v in zip(ids, scores, strict=True) if np.isfinite(v)}


def _mean_abs(model: OutcomeModel, table: dict[str, Array]) -> dict[str, float]:
    contrib = np.abs(model.contribution_matrix(table)[:, :-1]).mean(axis=0)
    ranked = sorted(zip(model.features_, contrib, strict=True), key=lambda kv: -kv[1])
    return {f: round(float(v), 6) for f, v in ranked if v > 0}


def _reasons(policy: Policy, current: Policy, options: Sequence[ContentOption],
             features: tuple[str, ...], seg: Segments, table: dict[str, Array],
             lift: ope.Estimate, contributions: Mapping[str, float]) -> tuple[str, ...]:
    out = [f"estimated lift (DR) {lift.value:+.4f}, {lift.confidence:.0%} interval "
           f"[{lift.low:+.4f}, {lift.high:+.4f}] over the active version {current.version}",
           "segments by " + " × ".join(features) if features
           else "no context attribute changes which option is best: one ranking for all"]
    inverse = seg.ids(features) if features else np.zeros(len(table["shown"]), dtype=np.int64)
    for s in np.unique(inverse[inverse >= 0]):
        first = int(np.argmax(inverse == s))
        row = {c: v[first] for c, v in table.items() if isinstance(v[first], str | bool)}
        new, old = policy.rank(options, row), current.rank(options, row)
        if new and old and new[0].option_id != old[0].option_id:
            where = " & ".join(f"{f}={row[f]}" for f in features) or "everyone"
            out.append(f"{where}: {new[0].option_id} now leads (estimated rate "
                       f"{new[0].score:.3f}; was {old[0].option_id})")
    top = ", ".join(f"{f} {v:.3f}" for f, v in list(contributions.items())[:5])
    out.append(f"top feature contributions (mean |log-odds|): {top}")
    return tuple(out)
