"""Learning one hook's policy from its doubly robust scores, and judging it honestly.

`HookLearner.hook` runs the rewrite's procedure for one hook (see `learner.rewrite`): the
proposed policy from every fold's scores, and, for each fold k, the same procedure run on the
other folds with reward models that never saw k (`_crossfit.CrossFit`), whose policy then
scores fold k. The judged folds are pooled into one set of off-policy terms (`_gate.judge`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from content_catalog import ContentOption, Exploration, Policy, Rule
from learner import _gate, ope
from learner._crossfit import CrossFit
from learner._segments import Segments, Shared, available, probabilities, select, take
from learner.model import OutcomeModel

_EXPLAIN_ROWS = 2000  # rows per hook whose contributions are averaged for the reasons

Array = NDArray[Any]


@dataclass(frozen=True)
class Learned:
    """What `HookLearner.hook` found for one hook (`rewrite.HookProposal` adds the names)."""

    policy: Policy
    decisions: int
    features: tuple[str, ...]
    judgement: _gate.Judgement
    power: _gate.Power
    contributions: Mapping[str, float]
    reasons: tuple[str, ...]


@dataclass
class HookLearner:
    context: list[str]
    min_support: int
    epsilon: float
    max_levels: int
    selection: dict[str, Any]  # max_features, min_gain, z: see `_segments.select`
    segments: dict[str, Any]  # bins, max_values: see `_segments.Segments`
    min_lift: float

    def hook(self, hook: str, options: Sequence[ContentOption], table: dict[str, Array],
             fold: Array, current: Policy, fits: CrossFit, full: OutcomeModel, *,
             n_boot: int, confidence: float, seed: int) -> Learned:
        ids = [o.id for o in options]
        n = len(fold)
        avail = available(options, table)
        index = {o: i for i, o in enumerate(ids)}
        actions = np.array([index[s] for s in table["shown"]], dtype=np.int64)
        rewards = np.asarray(table["reward"], dtype=np.float64)
        mu = np.asarray(table["propensity"], dtype=np.float64)
        # an option unavailable to a row is never shown there (its probability is 0 under
        # every policy, its Γ is NaN): its q is never read, so it is not predicted
        needed = avail.copy()
        needed[np.arange(n), actions] = True  # the DR correction reads the logged one's
        q, nested = fits.predictions(table, fold, ids, needed=needed)

        shared = Shared()  # what its six segment tables (folds) have in common, found once

        def segments(q: Array, fit: Array | None) -> Segments:
            gamma = q.copy()
            gamma[np.arange(n), actions] += (rewards - q[np.arange(n), actions]) / mu
            gamma[~avail] = np.nan
            return Segments(table, self.context, self.max_levels, self.min_support, gamma,
                            avail, fold, fit=fit, shared=shared,
                            **self.segments)

        every = [int(k) for k in np.unique(fold)]
        seg = segments(q, None)
        features = select(seg, every, **self.selection)
        policy = self.policy(hook, ids, seg, features, every)
        pi_new = np.zeros_like(q)
        for k in every:  # fold k judged by the procedure run without it, models included
            others = [j for j in every if j != k]
            seg_k = segments(nested[k], fold != k)
            learned = self.policy(hook, ids, seg_k, select(seg_k, others, **self.selection),
                                  others)
            pi_new[fold == k] = probabilities(learned, options, take(table, fold == k))
        pi_old = probabilities(current, options, table)
        baseline = replace(current, exploration=policy.exploration)
        pi_base = probabilities(baseline, options, table)
        judgement = _gate.judge(actions, rewards, mu, q, pi_new, pi_old, pi_base,
                                n_boot=n_boot, confidence=confidence, seed=seed)
        power = _gate.power(actions, rewards, mu, pi_new.argmax(axis=1),
                            pi_base.argmax(axis=1), min_lift=self.min_lift,
                            confidence=confidence)
        sample = np.random.default_rng(seed).permutation(n)[:_EXPLAIN_ROWS]
        contributions, policy = _explain(policy, full, table, sample, seed)
        reasons = _reasons(policy, current, options, features, seg, table, judgement,
                           contributions, power, self.min_lift)
        explain = {"decisions": n, "features": list(features),
                   "estimate": _dicts(judgement.new), "active": _dicts(judgement.current),
                   "lift": _dicts(judgement.lift), "exploration": _dicts(judgement.exploration),
                   "gate": {"estimators": list(_gate.GATE), "min_lift": self.min_lift},
                   "power": power.to_dict(), "contributions": contributions}
        policy = replace(policy, reasons=reasons, explain=explain)
        return Learned(policy, n, features, judgement, power, contributions, reasons)

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


def _dicts(estimates: Mapping[str, ope.Estimate]) -> dict[str, Any]:
    return {k: e.to_dict() for k, e in estimates.items()}


def _matching(table: dict[str, Array], when: Mapping[str, Any]) -> Array:
    mask = np.ones(len(table["shown"]), dtype=bool)
    for feature, value in when.items():
        values = value if isinstance(value, tuple) else (value,)
        mask &= np.isin(table[feature], [v for v in values if not isinstance(v, bool)]
                        or list(values))
    return mask


def _label(feature: str, value: Any) -> str:
    """`tier=gold`, or a numeric bin as `visits 5–9`."""
    if not isinstance(value, tuple):
        return f"{feature}={value}"
    numbers = [v for v in value if not isinstance(v, bool)]
    low, high = min(numbers), max(numbers)
    return f"{feature}={low:g}" if low == high else f"{feature} {low:g}–{high:g}"
def _explain(policy: Policy, model: OutcomeModel, table: dict[str, Array], sample: Array,
             seed: int, top: int = 3) -> tuple[dict[str, float], Policy]:
    """(mean |contribution| per feature over the `sample` rows, the policy with each rule's
    reasons: the option it puts first, by how much, and which features the outcome model
    credits for that option's chance in the rule's segment (LightGBM's per-row
    contributions, averaged over up to `_EXPLAIN_ROWS // 4` of its decisions with the option
    in place of what was shown))."""
    rng = np.random.default_rng(seed)
    found: list[tuple[Rule, list[str], str, Array]] = []
    for rule in policy.rules:
        ranked = sorted(rule.scores.items(), key=lambda kv: -kv[1])
        if not ranked:
            found.append((rule, [], "", np.zeros(0, dtype=np.int64)))
            continue
        best, score = ranked[0]
        reasons = [f"{best} leads: estimated rate {score:.3f}" + (
            f" against {ranked[1][0]} {ranked[1][1]:.3f}" if len(ranked) > 1 else "")]
        rows = np.flatnonzero(_matching(table, rule.when))
        if rows.size:
            rows = rng.permutation(rows)[:_EXPLAIN_ROWS // 4]
        found.append((rule, reasons, best, rows))
    # the hook's sample and every rule's in one call: rules overlap, and rows the trees
    # cannot tell apart are explained once (`OutcomeModel.contribution_matrix`); per row
    # the same numbers as a call of their own
    sizes = [rows.size for *_, rows in found]
    every = np.concatenate([sample, *(rows for *_, rows in found)])
    rows_table = take(table, every)
    rows_table["shown"] = np.concatenate([
        table["shown"][sample],
        np.array([best for _, _, best, rows in found for _ in range(rows.size)], dtype=object)])
    contributions = model.contribution_matrix(rows_table)
    rules, start = [], sample.size
    for (rule, reasons, best, _), size in zip(found, sizes, strict=True):
        if size:
            mean = contributions[start:start + size, :-1].mean(axis=0)
            start += size
            order = np.argsort(-np.abs(mean))[:top]
            credited = ", ".join(f"{model.features_[j]} {mean[j]:+.2f}" for j in order
                                 if mean[j] != 0)
            if credited:
                reasons.append(f"model contributions to {best}'s log-odds here: {credited}")
        rules.append(replace(rule, reasons=tuple(reasons)) if reasons else rule)
    mean_abs = np.abs(contributions[:sample.size, :-1]).mean(axis=0)
    ranked = sorted(zip(model.features_, mean_abs, strict=True), key=lambda kv: -kv[1])
    return ({f: round(float(v), 6) for f, v in ranked if v > 0},
            replace(policy, rules=tuple(rules)))


def _score_dict(ids: list[str], scores: Array) -> dict[str, float]:
    return {o: round(float(v), 6) for o, v in zip(ids, scores, strict=True) if np.isfinite(v)}


def _reasons(policy: Policy, current: Policy, options: Sequence[ContentOption],
             features: tuple[str, ...], seg: Segments, table: dict[str, Array],
             judged: _gate.Judgement, contributions: Mapping[str, float], power: _gate.Power,
             min_lift: float) -> tuple[str, ...]:
    dr, snipw, explore = judged.lift["dr"], judged.lift["snipw"], judged.exploration["dr"]
    out = [f"estimated lift (DR) {dr.value:+.4f}, {dr.confidence:.0%} interval "
           f"[{dr.low:+.4f}, {dr.high:+.4f}]; SNIPW {snipw.value:+.4f} "
           f"[{snipw.low:+.4f}, {snipw.high:+.4f}]: over the active version {current.version}'s "
           f"ranking at the same exploration",
           f"exploration {_explored(current)} -> {_explored(policy)} alone: DR "
           f"{explore.value:+.4f} [{explore.low:+.4f}, {explore.high:+.4f}] (not lift)"]
    if not _gate.passes(judged.lift, min_lift):
        out.append(f"not better with confidence: a lower bound is not above {min_lift:+.4f}; "
                   + power.sentence())
    out.append("segments by " + " × ".join(features) if features
               else "no context attribute changes which option is best: one ranking for all")
    inverse = seg.ids(features) if features else np.zeros(len(table["shown"]), dtype=np.int64)
    for s in np.unique(inverse[inverse >= 0]):
        first = int(np.argmax(inverse == s))
        row = {c: _scalar(v[first]) for c, v in table.items()}
        new, old = policy.rank(options, row), current.rank(options, row)
        if new and old and new[0].option_id != old[0].option_id:
            key = seg.key(features, int(s)) if features else ()
            where = " & ".join(_label(f, v) for f, v in zip(features, key, strict=True))
            out.append(f"{where or 'everyone'}: {new[0].option_id} now leads (estimated rate "
                       f"{new[0].score:.3f}; was {old[0].option_id})")
    top = ", ".join(f"{f} {v:.3f}" for f, v in list(contributions.items())[:5])
    out.append(f"top feature contributions (mean |log-odds|): {top}")
    return tuple(out)


def _explored(policy: Policy) -> str:
    e = policy.exploration
    if e.method == "table":
        return "a table of probabilities"
    return f"epsilon {e.epsilon:g}" if e.method == "epsilon" else f"softmax τ={e.temperature:g}"


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
