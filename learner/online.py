"""Continuous learning: each hook's policy refreshed from the step log while it serves.

    report = refresh(store, "prospect_journey", outcome="Event_end",
                     horizon=timedelta(days=14), now=clock.now())
    for h in report.hooks:
        print(h.hook, h.version, h.prior_strength, h.rolled_back_to)

A refresh reads the decisions (`_read_online.online_log`), counts each hook's outcomes with
pending ones censored (not failures: `_read_online`), fits a hierarchical Beta-Binomial per
option and segment and stores, as a new version of the hook's policy in the versioned,
hash-chained policy store, the table of how often Thompson sampling leads with each option,
floored and capped (`_thompson`). The recommender samples that stored table
(`Exploration("table")`), so the propensity on every card is exactly the probability it was
shown with, and any policy can still be judged off-policy on the log.

Only catalogs with `learning: continuous` (the default) are refreshed; `learning: batch`
leaves the policies to `nextmove learn`.

**A nearer reward.** The catalog's `learn_from` (or `rewards`, which overrides it) may name, per
hook, an earlier step or event of the funnel (e.g.
the intro video's `video_played` catch event) whose arrival within the horizon is the hook's
reward while learning, where the outcome is far and rare and the hook acts on it only through
that step: the step is reached in days rather than weeks and by many more prospects, so the
policy learns from many more successes. It changes only what the hook's table learns from:
the rollback test still judges the hook's versions on `outcome`, and so do the demo and every
report. A step the hook does not lead to teaches it nothing a test could catch here, so name
only one the hook's content acts on. A step named by `rewards` that the process does not have
is refused before anything is stored; one named by the catalog (which serves several maps)
leaves that hook of this process unrefreshed, with the reason in the report.

**Rollback.** Before refreshing a hook whose live version was made here, the continuous
versions activated in a row up to the live one are checked against the version active before
them, with the drift detector's sequential test (`drift.design`, Page's CUSUM in integer form
with an exact in-control run length): the reference is the earlier version's settled outcome
rate lowered by `z` standard errors, the stream the continuous versions' settled decisions in
the order they were made. An alarm re-activates the earlier version (a logged, chained
activation whose reason says why) and holds the hook: refreshes leave it alone until a person
activates a version again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from content_catalog import (
    ContentOption,
    Exploration,
    Policy,
    Rule,
    activate,
    activations,
    active_policies,
    history,
    load_stored_catalog,
    save_policy,
)
from content_catalog.policy import LOCALE_KEY, MARKET_KEY
from engine.clock import Clock, ManualClock
from engine.errors import UnknownHook
from engine.store.database import Store
from engine.store.steplog import UnknownOutcome
from learner import _thompson
from learner._read_online import OnlineLog, exposure, online_log, outcome_count
from learner._thompson import Settings
from learner.drift import DROP, design, false_alarm_probability

NOTE = "continuous learning"  # every version made here carries this note prefix
HELD = "continuous learning rolled back"  # the reason of a rollback activation
HORIZON = timedelta(days=14)
_PLACE = (LOCALE_KEY, MARKET_KEY)  # what decides which options a card can show
ROLLBACK_ARL = 20_000.0  # in-control run length of the rollback test, in settled decisions
ROLLBACK_MIN = 200  # settled decisions on each side before the test runs
Z = 1.0

__all__ = ["HookRefresh", "Refresh", "Settings", "outcome_count", "refresh",
           "thompson_policy"]


@dataclass(frozen=True)
class HookRefresh:
    """What one refresh did for one hook."""

    hook: str
    version: int | None  # the version stored (None: none)
    decisions: int
    settled: int
    pending: int
    successes: float
    exposure: float
    prior_strength: float | None
    rolled_back_to: int | None = None
    why: str = ""
    reward: str = ""  # what the table learned from: the outcome, or the hook's nearer step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Refresh:
    process_id: str
    outcome: str
    at: datetime
    hooks: tuple[HookRefresh, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "outcome": self.outcome,
                "at": self.at.isoformat(), "hooks": [h.to_dict() for h in self.hooks],
                "skipped": dict(self.skipped)}


def refresh(store: Store, process_id: str, *, outcome: str, horizon: timedelta = HORIZON,
            now: datetime | None = None, clock: Clock | None = None,
            settings: Settings | None = None, hooks: Sequence[str] | None = None,
            force: bool = False, rewards: Mapping[str, str] | None = None) -> Refresh:
    """Refresh every hook of the stored catalog that the process has decisions for (or
    `hooks`) as a new active policy version. `force` refreshes a `learning: batch` catalog
    too. `rewards`: hook -> the nearer step it learns from, over the catalog's `learn_from`
    (module docstring). Raises `UnknownOutcome` for an outcome (or a `rewards` step) the
    process does not know, `UnknownHook` for a hook (in `hooks` or `rewards`) the catalog
    does not have."""
    settings = settings or Settings()
    catalog = load_stored_catalog(store)
    for named in (*(hooks or ()), *(rewards or {})):
        if named not in catalog.hooks:  # mistyped: it would read as a hook with nothing to do
            raise UnknownHook(named, catalog.hooks)
    moment = now or (clock.now() if clock is not None else datetime.now(UTC))
    clock = clock or ManualClock(moment)
    report = Refresh(process_id, outcome, moment)
    if catalog.learning != "continuous" and not force:
        for hook in sorted(hooks or catalog.hooks):
            report.skipped[hook] = "the catalog says learning: batch"
        return report
    columns = (*catalog.segments, *_PLACE)
    log = online_log(store, process_id, outcome=outcome, horizon=horizon, segments=columns)
    success, weight = exposure(log, moment)
    nearer: dict[str, tuple[OnlineLog, np.ndarray, np.ndarray]] = {}  # read once each

    def near_log(step: str) -> tuple[OnlineLog, np.ndarray, np.ndarray]:
        if step not in nearer:
            near = online_log(store, process_id, outcome=step, horizon=horizon,
                              segments=columns)
            nearer[step] = (near, *exposure(near, moment))
        return nearer[step]

    for step in sorted(set((rewards or {}).values()) - {outcome}):
        near_log(step)  # asked for by name: an unknown step is refused before any store
    chosen = {**catalog.nearer_rewards(), **(rewards or {})}
    live = active_policies(store)
    done = []
    rng = np.random.default_rng(settings.seed + int(moment.timestamp()))
    for hook in sorted(hooks or catalog.hooks):
        options = catalog.options_for(hook)
        mine = np.flatnonzero(log.hook == hook)
        if len(options) < 2:
            report.skipped[hook] = "fewer than two options: nothing to choose"
            continue
        if mine.size == 0:
            report.skipped[hook] = "no decision with a propensity logged yet"
            continue
        part = log.select(mine)
        held = _held(store, hook)
        if held:
            report.skipped[hook] = held
            continue
        back = _rollback_check(store, hook, part, moment, clock)
        counts = (int(mine.size),
                  int((part.settles_at <= np.datetime64(_naive(moment))).sum()),
                  int((weight[mine] < 1).sum()), float(success[mine].sum()),
                  float(weight[mine].sum()))
        if back is not None:
            version, why = back
            done.append(HookRefresh(hook, None, *counts, prior_strength=None,
                                    rolled_back_to=version, why=why))
            continue
        reward = chosen.get(hook, outcome)
        learn, hit, seen = part, success[mine], weight[mine]
        if reward != outcome:  # its own read: rows of the same hook, its own censoring
            try:
                near, near_success, near_weight = near_log(reward)
            except UnknownOutcome:  # only a catalog's: the asked-for ones were read above
                report.skipped[hook] = (f"the catalog's learn_from names {reward!r}, which "
                                        f"{process_id} does not have")
                continue
            rows = np.flatnonzero(near.hook == hook)
            learn, hit, seen = near.select(rows), near_success[rows], near_weight[rows]
            counts = (*counts[:3], float(hit.sum()), float(seen.sum()))
        policy, kappa = thompson_policy(hook, options, learn, hit, seen, catalog.segments,
                                        live.get(hook), settings, rng, reward=reward)
        stored = save_policy(
            store, policy, activate=True, clock=clock,
            note=f"{NOTE}: Thompson sampling on {counts[0]} decisions "
                 f"({counts[2]} pending)" + ("" if reward == outcome else
                                             f", learning from {reward}"),
            reason=f"{NOTE}: scheduled refresh")
        done.append(HookRefresh(hook, stored.version, *counts, prior_strength=kappa,
                                why="refreshed", reward=reward))
    return replace(report, hooks=tuple(done))


def thompson_policy(hook: str, options: Sequence[ContentOption], log: OnlineLog,
                    success: np.ndarray, weight: np.ndarray, segments: Sequence[str],
                    live: Policy | None, settings: Settings,
                    rng: np.random.Generator, reward: str | None = None
                    ) -> tuple[Policy, float]:
    """The hook's table policy from its decisions (all of `log` is this hook's) and the prior
    strength used. `live` is the policy the table moves from (None: uniform).

    One rule per segment seen in the log; where the log's `locale`/`market` (when it has
    them) leave some options out, one rule per segment and place, whose draws compete only
    among the options a card there can show (an option nobody there can see must not win
    the draws and leave the others a renormalized remainder)."""
    ids = [o.id for o in options]
    index = {o: i for i, o in enumerate(ids)}
    known = np.array([s in index for s in log.shown], dtype=bool)
    action = np.array([index.get(s, 0) for s in log.shown], dtype=np.int64)
    keys: list[tuple[Any, ...]] = []
    row_of = np.full(len(log), -1, dtype=np.int64)
    places: set[tuple[Any, ...]] = set()
    if segments:
        where: dict[tuple[Any, ...], int] = {}
        columns = [log.segment[k] for k in segments]
        place = [log.segment.get(k) for k in _PLACE]
        for i in range(len(log)):
            key = tuple(c[i] for c in columns)
            if any(v is None for v in key):
                continue
            row_of[i] = where.setdefault(key, len(where))
            places.add((*key, *(None if c is None else c[i] for c in place)))
        keys = sorted(where, key=where.__getitem__)
    k = len(ids)
    succ = np.zeros((len(keys), k))
    expo = np.zeros((len(keys), k))
    seg = known & (row_of >= 0)
    np.add.at(succ, (row_of[seg], action[seg]), success[seg])
    np.add.at(expo, (row_of[seg], action[seg]), weight[seg])
    # the hook-wide counts include rows outside every segment
    wide_s = np.zeros(k)
    wide_n = np.zeros(k)
    np.add.at(wide_s, action[known], success[known])
    np.add.at(wide_n, action[known], weight[known])
    kappa = (settings.prior_strength if settings.prior_strength is not None
             else _thompson.prior_strength(succ, expo) if keys else _thompson.KAPPA_MAX)
    alpha, beta = _thompson.posterior(np.vstack([succ, wide_s - succ.sum(axis=0)]),
                                      np.vstack([expo, wide_n - expo.sum(axis=0)]), kappa)
    # rows: each segment (every option), each segment in a place that leaves options out,
    # then the hook-wide posterior
    contexts: list[dict[str, Any]] = [dict(zip(segments, key, strict=True)) for key in keys]
    rows = list(range(len(keys)))
    masks = [np.ones(k, dtype=bool) for _ in keys]
    seg_of = {key: i for i, key in enumerate(keys)}
    for entry in sorted(places, key=lambda e: tuple(str(v) for v in e)):
        key, (locale, market) = entry[:len(segments)], entry[len(segments):]
        mask = np.array([o.available_in(locale, market) for o in options], dtype=bool)
        if mask.all() or not mask.any():
            continue
        context = dict(zip(segments, key, strict=True))
        context.update({LOCALE_KEY: locale, MARKET_KEY: market})
        contexts.append(context)
        rows.append(seg_of[key])
        masks.append(mask)
    contexts.append({})
    rows.append(len(alpha) - 1)
    masks.append(np.ones(k, dtype=bool))
    target = _thompson.lead_probabilities(alpha[rows], beta[rows], settings.draws, rng,
                                          np.array(masks))
    before = np.array([_probabilities(live, options, ctx) for ctx in contexts])
    table = _thompson.guard(target, before, settings.floor, settings.max_step,
                            np.array(masks))
    rules = tuple(Rule(ctx, _thompson.table_dict(ids, row))
                  for ctx, row in zip(contexts[:-1], table[:-1], strict=True))
    explain = {"online": {
        "method": "thompson sampling, hierarchical Beta-Binomial", "reward": reward,
        "segments": list(segments), "prior_strength": kappa,
        "prior_strength_estimated": settings.prior_strength is None,
        "draws": settings.draws, "mc_standard_error_max": _thompson.mc_standard_error(
            settings.draws),
        "floor": settings.floor, "max_step": settings.max_step,
        "decisions": len(log), "exposure": float(weight.sum()),
        "successes": float(success.sum()),
        "hook_rate": {o: (float(wide_s[j]) + 0.5) / (float(wide_n[j]) + 1.0)
                      for j, o in enumerate(ids)}}}
    reasons = (f"{NOTE}: Thompson sampling over {k} options in {len(keys)} segment(s) of "
               f"{', '.join(segments) or 'the whole hook'}, prior strength {kappa:.0f}",
               f"each option at least {settings.floor:g}; no probability moved more than "
               f"{settings.max_step:g} from the live version")
    policy = Policy(hook, default=_thompson.table_dict(ids, table[-1]), rules=rules,
                    exploration=Exploration("table"), kind="learned", reasons=reasons,
                    explain=explain)
    return policy, float(kappa)


def _probabilities(policy: Policy | None, options: Sequence[ContentOption],
                   context: dict[str, Any]) -> list[float]:
    """The live policy's chance of leading with each option (catalog order): among the options
    available at the context's place when it names one, else every option counted as
    available (uniform without a policy)."""
    placed = LOCALE_KEY in context or MARKET_KEY in context
    free = list(options) if placed else [replace(o, locale=None, markets=()) for o in options]
    if policy is None:
        locale, market = context.get(LOCALE_KEY), context.get(MARKET_KEY)
        shown = [o.available_in(locale, market) for o in free]
        return [1.0 / max(1, sum(shown)) if s else 0.0 for s in shown]
    ranked = {r.option_id: r.probability for r in policy.rank(free, context)}
    return [ranked.get(o.id, 0.0) for o in options]


def _held(store: Store, hook: str) -> str | None:
    log = activations(store, hook)
    if log and log[-1].reason and log[-1].reason.startswith(HELD):
        return (f"held since the rollback of {log[-1].at:%Y-%m-%d %H:%M}: activate a version "
                "to resume")
    return None


def _rollback_check(store: Store, hook: str, log: OnlineLog, now: datetime,
                    clock: Clock) -> tuple[int, str] | None:
    """(the version re-activated, why) when the continuous versions do worse than the
    version before them; None otherwise (module docstring)."""
    online = {v.version for v in history(store, hook) if (v.note or "").startswith(NOTE)}
    timeline: list[int] = []
    for a in activations(store, hook):
        if a.action in ("activate", "rollback"):
            timeline.append(a.version)
    if not timeline or timeline[-1] not in online:
        return None
    run: set[int] = set()
    earlier = None
    for version in reversed(timeline):
        if version in online:
            run.add(version)
        else:
            earlier = version
            break
    if earlier is None:
        return None
    found = rollback_test(log, earlier, run, now)
    if found is None:
        return None
    activate(store, hook, earlier, reason=found, clock=clock)
    return earlier, found


def rollback_test(log: OnlineLog, earlier: int, run: set[int], now: datetime) -> str | None:
    """The sequential test of the module docstring on one hook's decisions: why the versions
    `run` do worse than version `earlier`, or None (no alarm, or too few settled decisions)."""
    t = np.datetime64(_naive(now))
    settled = log.settles_at <= t
    reward = (~np.isnat(log.outcome_at)).astype(np.int64)
    ref = settled & (log.policy_version == earlier)
    mine = settled & np.isin(log.policy_version, sorted(run))
    n_ref, n = int(ref.sum()), int(mine.sum())
    if n_ref < ROLLBACK_MIN or n < ROLLBACK_MIN:
        return None
    rate = float(reward[ref].mean())
    low = rate - Z * math.sqrt(rate * (1 - rate) / n_ref)
    if not 1e-3 < low < 1:
        return None
    chain = design(low, drop=DROP, arl=ROLLBACK_ARL)
    order = np.flatnonzero(mine)[np.argsort(log.acted_at[mine], kind="stable")]
    level = 0
    for i, x in enumerate(reward[order]):
        level = max(0, level + (-chain.down if x else chain.up))
        if level >= chain.limit:
            p = false_alarm_probability(chain, level, i + 1)
            after = float(reward[order[:i + 1]].mean())
            return (f"{HELD}: versions {min(run)}-{max(run)} converted {after:.1%} of "
                    f"{i + 1} settled decisions against {rate:.1%} of {n_ref} under version "
                    f"{earlier} (CUSUM alarm, p = {p:.4f})")
    return None


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
