"""Acting on drift: demote a drifted item to its exploration floor, list open alerts, review.

    acted = watch(store, "prospect_journey", outcome="customer_order",
                  horizon=timedelta(days=14), now=clock.now())     # what the worker runs
    for record in drift_records(store, status="open"):
        print(record.hook, record.option_id, record.alert["since"])
    review(store, "video_b", reviewer="ana", decision="restore")

Everything is stored as policy versions, so it is hash-chained with the rest of the policy
log (`content_catalog.policy_store`): an alert saves and activates a new version of the
hook's live policy in which the item scores below every other option (epsilon-greedy: it is
shown only when exploring, ε/n; softmax: ten temperatures below the lowest), its reason
saying why, its `explain["drift"]` holding the alert. A review saves and activates one more
version, `explain["drift_review"]` naming the reviewer and the decision:

* keep: the demotion stands (the item stays at its floor and is no longer watched);
* restore: the item gets back the scores it had before the demotion, and is watched again
  from the time of the review on (the old evidence does not raise the same alert again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from content_catalog import (
    Policy,
    PolicyNotFound,
    Rule,
    get_policy,
    load_stored_catalog,
    save_policy,
)
from content_catalog.drift_alerts import DriftRecord, drift_records
from content_catalog.policy import UNSCORED_MARGIN
from engine.clock import Clock, SystemClock
from engine.errors import NextmoveError
from engine.store.database import Store
from learner.drift import ARL, DROP, WARMUP, Alert, Z, detect

Decision = Literal["keep", "restore"]
DECISIONS = ("keep", "restore")


@dataclass(frozen=True)
class DriftAction:
    """What `watch` did about one alert: `version` is the demotion, None if not demoted."""

    alert: Alert
    version: int | None
    why: str


def demote(policy: Policy, option_id: str, options: Sequence[str]) -> Policy:
    """`policy` with `option_id` scored below every other option in every table (so it is
    shown only as exploration). `options`: the hook's catalog options, to make implicit
    scores explicit (otherwise an unscored option would sort below the demoted one)."""
    gap = 1.0 if policy.exploration.method == "epsilon" else 10 * policy.exploration.temperature

    def lowered(scores: Mapping[str, float]) -> dict[str, float]:
        present = list(scores.values())
        implicit = (min(present) - UNSCORED_MARGIN) if present else 0.0
        table = {o: scores.get(o, implicit) for o in options} | dict(scores)
        others = [s for o, s in table.items() if o != option_id]
        if policy.exploration.method == "table":  # probabilities: keep it explored, rarely
            table[option_id] = min(0.01, *others) if others else 0.01
        else:
            table[option_id] = (min(others) if others else 0.0) - gap
        return table

    rules = tuple(Rule(r.when, lowered(r.scores), r.reasons) for r in policy.rules)
    return replace(policy, default=lowered(policy.default), rules=rules, version=0)


def restore(current: Policy, before: Policy, option_id: str) -> Policy:
    """`current` with `option_id` scored as in `before` (by default table and by rule)."""

    def put_back(scores: Mapping[str, float], old: Mapping[str, float] | None) -> dict[str, float]:
        table = {o: s for o, s in scores.items() if o != option_id}
        if old is not None and option_id in old:
            table[option_id] = old[option_id]
        return table

    old_rules = {_rule_key(r): r.scores for r in before.rules}
    rules = tuple(Rule(r.when, put_back(r.scores, old_rules.get(_rule_key(r))), r.reasons)
                  for r in current.rules)
    return replace(current, default=put_back(current.default, before.default), rules=rules,
                   version=0)


def watch(store: Store, process_id: str, *, outcome: str, horizon: timedelta | None,
          now: datetime, clock: Clock | None = None, drop: float = DROP, arl: float = ARL,
          warmup: int = WARMUP, z: float = Z) -> list[DriftAction]:
    """Detect drift in the log as known at `now`, and demote each newly drifted item.

    Items with an open or kept alert are not watched; a restored item is watched again from
    its review on. Idempotent: running it twice at the same `now` changes nothing more.
    """
    latest: dict[tuple[str, str], DriftRecord] = {}
    for record in drift_records(store):
        latest[(record.hook, record.option_id)] = record
    skip = {k for k, r in latest.items() if r.status in ("open", "kept")}
    monitor_from = {k: r.reviewed_at for k, r in latest.items()
                    if r.status == "restored" and r.reviewed_at is not None}
    alerts = detect(store, process_id, outcome=outcome, horizon=horizon, observed_until=now,
                    monitor_from=monitor_from, drop=drop, arl=arl, warmup=warmup, z=z)
    acted = []
    catalog = None
    for alert in alerts:
        key = (alert.hook, alert.option_id)
        if key in skip:
            continue
        try:
            live = get_policy(store, alert.hook)
        except PolicyNotFound:
            acted.append(DriftAction(alert, None, "the hook has no stored policy to demote in"))
            continue
        if catalog is None:
            catalog = load_stored_catalog(store)
        options = [o.id for o in catalog.options_for(alert.hook)]
        reason = (f"drift: {alert.option_id} converted {alert.rate_after:.1%} since "
                  f"{_day(alert.since)} against {alert.rate_before:.1%} before (CUSUM "
                  f"{alert.statistic:.2f} >= {alert.threshold:.2f}, detected "
                  f"{_day(alert.detected_at)}, false-alarm probability {alert.p_value:.2g}); "
                  "lowered to its exploration floor pending review")
        demoted = demote(live, alert.option_id, options)
        demoted = replace(demoted, reasons=(reason, *live.reasons), explain={
            "drift": {"option_id": alert.option_id, "demoted_from": live.version,
                      "alert": {**alert.to_dict(), "process": process_id,
                                "outcome": outcome}}})
        saved = save_policy(store, demoted, note=reason, activate=True, reason=reason,
                            clock=clock)
        acted.append(DriftAction(alert, saved.version, reason))
    return acted


def review(store: Store, option_id: str, *, reviewer: str, decision: str,
           hook: str | None = None, clock: Clock | None = None) -> DriftRecord:
    """Record a reviewer's decision on the open alert of `option_id` (see the module doc)."""
    if decision not in DECISIONS:
        raise NextmoveError(f"decision must be keep or restore, not {decision!r}")
    if not reviewer.strip():
        raise NextmoveError("a review needs the reviewer's name")
    open_ = [r for r in drift_records(store, status="open")
             if r.option_id == option_id and (hook is None or r.hook == hook)]
    if not open_:
        raise NextmoveError(f"no open drift alert for {option_id!r}"
                            + (f" in hook {hook!r}" if hook else ""))
    if len({r.hook for r in open_}) > 1:
        raise NextmoveError(f"{option_id!r} has open alerts in several hooks: give --hook")
    record = open_[-1]
    now = (clock or SystemClock()).now()
    live = get_policy(store, record.hook)
    if decision == "restore":
        live = restore(live, get_policy(store, record.hook, record.demoted_from), option_id)
    reason = (f"drift review by {reviewer}: {decision} {option_id} "
              f"(alert of policy v{record.version})")
    saved = save_policy(
        store, replace(live, version=0, explain={"drift_review": {
            "option_id": option_id, "alert_version": record.version, "reviewer": reviewer,
            "decision": decision, "at": now.isoformat()}}),
        note=reason, activate=True, reason=reason, clock=clock)
    return replace(record, status="kept" if decision == "keep" else "restored",
                   reviewer=reviewer, reviewed_at=now, review_version=saved.version)


def _rule_key(rule: Rule) -> str:
    return repr(sorted(rule.to_dict()["when"].items()))


def _day(moment: datetime | None) -> str:
    return "?" if moment is None else f"{moment:%Y-%m-%d}"
