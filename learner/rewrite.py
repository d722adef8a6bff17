"""The policy rewrite: learn which content converts where, propose new policies, apply them.

    proposal = propose(store, "prospect_journey", outcome="Event_end")
    for hook in proposal.hooks:
        print(hook.hook, hook.lift["dr"].value, hook.beats, *hook.reasons, sep="\\n  ")
    apply(store, proposal)                  # only hooks whose estimate beats the active policy
    rollback(store, "intro_video")          # content_catalog.rollback: the previous version

An `OutcomeModel` for all hooks (the hook is a feature) predicts q(x, a) = P(outcome | context
x, content a). Each logged decision i has a doubly robust score per option a,
Γ(i, a) = q(x_i, a) + [a shown] (r_i - q(x_i, a)) / μ_i: its average over any group of
decisions estimates that group's outcome rate had it always been shown a, without bias even
where the model is wrong (the logged propensities μ correct it; Dudík, Langford & Li 2011,
"Doubly robust policy evaluation and learning", ICML). The decisions are split by case into
`folds`, and q is cross-fitted: a row's q comes from a model fitted without its fold
(Chernozhukov et al. 2018, "Double/debiased machine learning for treatment and structural
parameters", Econometrics Journal 21(1)), so the model's own fit to a row's outcome never
enters that row's score. From those scores, per hook:

1. Segment features: the set of context attributes (at most `max_features`; text ones with 2
   to `max_levels` values, numeric ones (amounts, counts, flags) cut into up to `bins`
   quantile bins: `_segments`) under which "show each segment its best-scoring option" has
   the highest value, cross-validated over the folds: all sets of one or two attributes are
   tried, then the best is extended one attribute at a time. A larger set is taken only if it
   beats each smaller one by `min_gain` plus `selection_z` standard errors (1: the
   one-standard-error rule), so noise attributes rarely get in.
2. One `Rule` per observed combination of those features, and per combination of each subset
   of them (fallbacks for rare combinations), with at least `min_support` decisions; its
   scores are the segment's mean Γ per option (over decisions where the option is available).
   `default` is the same over all decisions.
3. Exploration: epsilon-greedy with `epsilon`, so the policy keeps logging every option.

Evaluation (what gates a rollout) is nested cross-fitting: fold k is judged by a policy *and*
a reward model that never saw it. The whole procedure above (bins, feature choice, rules) is
rerun on the other folds, with their scores Γ computed by models fitted without fold k and
without the scored row's own fold (`_crossfit`: one model per pair of folds); the DR terms of
fold k use the model fitted on all folds but k. Were the other folds' scores to come from
models that had seen fold k, their fit to fold k's noise would make the policy agree with
fold k's outcomes, and the estimate would credit it with that agreement: on sparse rewards
that alone made noise look like a large lift. The estimate is of the procedure run on
(folds - 1) / folds of the data: slightly conservative for the policy proposed, which had it
all.

The gate (`_gate`): IPW, SNIPW and DR of the proposed policy, of the active one, and of the
active one's ranking with the proposed exploration, with paired bootstrap intervals. `lift`
compares the greedy parts (the proposed ranking against the active ranking, explored alike):
a change of exploration rate is not lift and is reported apart as `exploration`. A hook
`beats` its active policy when the lower end of the lift's interval is above `min_lift`
(0.001: a tenth of a percentage point) on DR *and* on SNIPW; with the default `confidence` of
0.9 each is a one-sided 95% bound. SNIPW uses no model, so a reward model's invention on a
hook that almost never converts cannot pass alone. When a hook does not beat, `power` says how
many decisions it would take to detect `min_lift` at the hook's base rate. `apply` activates
only hooks that beat (every hook with `force`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from content_catalog import (
    Catalog,
    Policy,
    active_policies,
    active_versions,
    catalog_policy,
    load_stored_catalog,
    save_policy,
)
from engine.clock import Clock
from engine.store.database import Store
from learner import _gate, ope
from learner._crossfit import CrossFit, parallel
from learner._hook import HookLearner
from learner._segments import case_folds, take
from learner.model import EXCLUDED, OutcomeModel, as_columns, identifying

FIXED = frozenset({*EXCLUDED, "hook", "step_id", "shown", "reward", "step_index", "action",
                   "hours_since_previous_step", "hours_since_start", "distributor_id", "at",
                   "acted_at"})
# Pre-decision features of the model besides the context; `hours_since_previous_step` runs to
# the step's completion, after the card was shown, so it is left out.
PATH_FEATURES = ("hook", "step_id", "shown", "step_index", "hours_since_start")

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
    lift: Mapping[str, ope.Estimate]  # new - active ranking at new exploration, paired
    exploration: Mapping[str, ope.Estimate]  # active ranking: new exploration - its own
    power: _gate.Power  # decisions needed to detect min_lift at this hook's base rate
    contributions: Mapping[str, float]  # mean |log-odds contribution| per feature
    reasons: tuple[str, ...]
    min_lift: float = 0.001

    @property
    def beats(self) -> bool:
        """The lower end of the lift's interval is above `min_lift` on DR and on SNIPW."""
        return _gate.passes(self.lift, self.min_lift)

    def to_dict(self) -> dict[str, Any]:
        """Every estimator side by side; `gate` says which lower bounds pass, `power` how many
        decisions the gate would need (what to print when nothing is applied)."""
        return {
            "hook": self.hook, "decisions": self.decisions, "features": list(self.features),
            "beats": self.beats, "active_version": self.active.version,
            "new": {k: e.to_dict() for k, e in self.new.items()},
            "current": {k: e.to_dict() for k, e in self.current.items()},
            "lift": {k: e.to_dict() for k, e in self.lift.items()},
            "exploration": {
                "current": self.active.exploration.to_dict(),
                "new": self.policy.exploration.to_dict(),
                "effect": {k: e.to_dict() for k, e in self.exploration.items()}},
            "gate": {"estimators": list(_gate.GATE), "min_lift": self.min_lift,
                     "passed": {k: self.lift[k].low > self.min_lift for k in _gate.GATE}},
            "power": self.power.to_dict(),
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
    pending: int = 0  # decisions left out: their horizon had not passed by observed_until
    observed_until: datetime | None = None

    def hook(self, name: str) -> HookProposal:
        return next(h for h in self.hooks if h.hook == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "process_id": self.process_id, "outcome": self.outcome,
            "horizon_hours": None if self.horizon is None
            else self.horizon.total_seconds() / 3600,
            "decisions": self.decisions, "hooks": [h.to_dict() for h in self.hooks],
            "skipped": dict(self.skipped), "importance": dict(self.importance),
            "not_yet_observed": self.pending,
            "observed_until": None if self.observed_until is None
            else self.observed_until.isoformat(),
        }


def propose(store: Store, process_id: str, *, outcome: str, horizon: timedelta | None = None,
            observed_until: datetime | None = None, min_support: int = 50,
            epsilon: float = 0.1, seed: int = 0, **options: Any) -> Proposal:
    """Learn from the process's logged decisions and propose a policy per hook.

    With a horizon, `observed_until` (now) leaves out the decisions of cases whose horizon
    had not passed by then: counted as failures, they would drag every rate down
    (`Proposal.pending` says how many). `options` go to `propose_from`: max_features,
    max_levels, bins, max_values, min_gain, selection_z, min_lift, folds, n_boot,
    confidence, model_params (OutcomeModel parameters), hooks.
    Raises `UnknownOutcome` when the outcome is neither a step nor an outcome event.
    """
    from learner.dataset import decisions

    table = decisions(store, process_id, outcome=outcome, horizon=horizon,
                      observed_until=observed_until)
    found = propose_from(table, load_stored_catalog(store), active_policies(store),
                         process_id=process_id, outcome=outcome, horizon=horizon,
                         min_support=min_support, epsilon=epsilon, seed=seed, **options)
    return replace(found, pending=sum(table.pending.values()),
                   observed_until=observed_until if horizon is not None else None)


def propose_from(table: Any, catalog: Catalog, active: Mapping[str, Policy], *,
                 process_id: str, outcome: str, horizon: timedelta | None = None,
                 min_support: int = 50, epsilon: float = 0.1, seed: int = 0,
                 max_features: int = 3, max_levels: int = 12, bins: int = 4,
                 max_values: int = 100, min_gain: float = 0.0, selection_z: float = 1.0,
                 min_lift: float = 0.001, folds: int = 5, n_boot: int = 500,
                 confidence: float = 0.9, model_params: Mapping[str, Any] | None = None,
                 hooks: Sequence[str] | None = None) -> Proposal:
    """`propose` on a decision table already read, against `active` policies by hook."""
    columns, rows, known = usable(table, catalog)
    data = take(columns, rows)
    fold = case_folds(data["case_id"], folds, seed)
    context = context_columns(table, columns)
    params = {"seed": seed, **dict(model_params or {})}
    features = [c for c in (*PATH_FEATURES, *context) if c in columns]
    hook_col = columns["hook"]
    names = sorted(set(hook_col[rows]) | (set(hook_col) - set(known)))
    chosen = names if hooks is None else list(hooks)
    rows_of = {hook: np.flatnonzero(data["hook"] == hook) for hook in chosen}
    wanted, skipped = [], {}
    for hook in chosen:
        if hook not in known:
            skipped[hook] = "no option of the stored catalog fills this hook"
        elif rows_of[hook].size < min_support:
            skipped[hook] = (f"{rows_of[hook].size} usable decisions, fewer than "
                             f"min_support={min_support}")
        else:
            wanted.append(hook)
    # the model on every row (for the explanations) is fitted beside the fold models
    fits = CrossFit(data, fold, features, params, full=True) if wanted else None
    if fits is not None:
        full = fits.full
    else:
        full = OutcomeModel(features=features, **params).fit(data) if rows.size else None
    learner = HookLearner(context, min_support, epsilon, max_levels,
                          {"max_features": max_features, "min_gain": min_gain,
                           "z": selection_z}, {"bins": bins, "max_values": max_values},
                          min_lift)

    def learn(hook: str) -> HookProposal:
        assert fits is not None and full is not None  # the hook is wanted
        mine = rows_of[hook]
        current = active.get(hook) or catalog_policy(catalog, hook)
        found = learner.hook(hook, catalog.options_for(hook), take(data, mine), fold[mine],
                             current, fits, full, n_boot=n_boot, confidence=confidence,
                             seed=seed)
        j = found.judgement
        return HookProposal(hook, found.policy, current, found.decisions, found.features,
                            j.new, j.current, j.lift, j.exploration, found.power,
                            found.contributions, found.reasons, min_lift)

    # hooks side by side, as the fits: one hook's Python fills the gaps of another's LightGBM
    # predictions; each hook's numbers depend on nothing but its own rows and seed. Two hooks
    # may predict from one model at once: thread-safe with the same number of iterations,
    # which is always all of them here (LightGBM's maintainers, lightgbm-org/LightGBM#666)
    out = parallel(learn, wanted, params)
    importance = {} if full is None else dict(
        sorted(full.feature_importances_.items(), key=lambda kv: -kv[1]))
    return Proposal(process_id, outcome, horizon, len(rows), tuple(out), skipped, importance)


def usable(table: Any, catalog: Catalog) -> tuple[dict[str, Array], Array, dict[str, set[str]]]:
    """(the table's columns, the rows a policy of `catalog` can be judged on: an option of
    the catalog for the hook, logged with a propensity in (0, 1], the option ids by hook)."""
    columns = as_columns(table)
    shown, hook_col = columns["shown"], columns["hook"]
    propensity = np.asarray(columns["propensity"], dtype=np.float64)
    known = {h: {o.id for o in catalog.options_for(h)} for h in catalog.hooks}
    # each distinct (hook, shown) looked up once; a missing hook or shown (code -1) is no id
    h_code, hooks = pd.factorize(hook_col)
    s_code, options = pd.factorize(shown)
    member = np.array([[s in known.get(h, ()) for s in options.tolist()]
                       for h in hooks.tolist()], dtype=bool).reshape(len(hooks), len(options))
    ok = (h_code >= 0) & (s_code >= 0)
    ok[ok] = member[h_code[ok], s_code[ok]]
    ok &= (propensity > 0) & (propensity <= 1)
    return columns, np.flatnonzero(ok), known


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
        dr, sn = hp.lift["dr"], hp.lift["snipw"]
        save_policy(store, hp.policy, activate=True, clock=clock,
                    note=f"learned from {hp.decisions} decisions of {proposal.process_id!r} "
                         f"(outcome {proposal.outcome!r})",
                    reason=f"DR lift {dr.value:+.4f} [{dr.low:+.4f}, {dr.high:+.4f}], "
                           f"SNIPW lift {sn.value:+.4f} [{sn.low:+.4f}, {sn.high:+.4f}]"
                           + (" (forced)" if force and not hp.beats else ""))
        applied.append(hp.hook)
    return applied
