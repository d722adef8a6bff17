"""The rollout gate: a proposed policy's lift over the active one, judged conservatively, and
how many decisions it would take to see one.

Three policies are judged on the same cross-fitted terms and bootstrap resamples:

* `new`: the proposed policy (its ranking with its exploration);
* `current`: the active policy as it runs;
* `baseline`: the active policy's ranking with the *proposed* policy's exploration.

`lift` = new - baseline compares the greedy parts (what each puts first, explored alike), so a
change of exploration rate alone is not lift; `exploration` = baseline - current is what the
change of exploration alone would do, reported apart. The gate passes when the lower end of
the lift's interval is above `min_lift` on every estimator of `GATE`: DR, whose model can
invent value where rewards are rare, and SNIPW, which uses no model at all.

`Power` answers "why did nothing change, and how long to wait": the decisions needed for the
lower bound to clear `min_lift` with 80% power when the true lift is `min_lift` above it, at
the log's base rate p. The per-decision variance of the lift of two policies whose leading
options differ is about p (E[1/μ(new leader)] + E[1/μ(old leader)]) (the variance of each
importance-weighted term), with E[1/μ(leader)] estimated from the log as the mean of
[a_i = leader_i] / μ_i²; n = ((z_c + z_0.8) σ / min_lift)², z_c the gate's one-sided quantile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

from learner import ope

GATE = ("dr", "snipw")
POWER = 0.8  # the chance to detect a lift of min_lift that `Power.needed` is sized for

Array = NDArray[Any]
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Power:
    """How many decisions the gate needs to detect a lift of `min_lift` at `base_rate`."""

    base_rate: float  # the hook's logged outcome rate
    min_lift: float
    decisions: int  # in this log
    sd: float  # per-decision standard deviation of the lift's terms (design estimate)
    needed: int  # decisions for 80% power
    power: float  # the chance with this log's decisions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sentence(self) -> str:
        more = "enough decisions" if self.needed <= self.decisions else (
            f"about {self.needed:,} decisions are needed (this log has {self.decisions:,})")
        return (f"to detect a lift of {self.min_lift:+.4f} at the base rate "
                f"{self.base_rate:.4f}, {more}; power now {self.power:.0%}")


@dataclass(frozen=True)
class Judgement:
    new: Mapping[str, ope.Estimate]
    current: Mapping[str, ope.Estimate]
    lift: Mapping[str, ope.Estimate]
    exploration: Mapping[str, ope.Estimate]


def judge(actions: Array, rewards: Array, mu: Array, q: Array, pi_new: Array, pi_old: Array,
          pi_base: Array, *, n_boot: int, confidence: float, seed: int) -> Judgement:
    """IPW, SNIPW and DR of the three policies (probability matrices), their lift and the
    exploration effect, all from one set of bootstrap resamples (the same seed and rows)."""
    new_t = ope.policy_terms(actions, rewards, mu, pi_new, q)
    base_t = ope.policy_terms(actions, rewards, mu, pi_base, q)
    old_t = ope.policy_terms(actions, rewards, mu, pi_old, q)
    (new, _, lift), (_, current, exploration) = ope.paired_many(
        [(new_t, base_t), (base_t, old_t)], n_boot=n_boot, confidence=confidence, seed=seed)
    return Judgement(new, current, lift, exploration)


def passes(lift: Mapping[str, ope.Estimate], min_lift: float) -> bool:
    return all(lift[e].low > min_lift for e in GATE)


def power(actions: Array, rewards: Array, mu: Array, lead_new: Array, lead_old: Array, *,
          min_lift: float, confidence: float) -> Power:
    """See the module docstring; `lead_*` hold each row's leading option (column index)."""
    n = int(actions.size)
    base = (float(rewards.sum()) + 0.5) / (n + 1)  # never 0: a log without outcomes needs more

    def inverse_mu(lead: Array) -> float:
        hit = actions == lead
        return float(np.mean(hit / mu**2)) if hit.any() else float(np.mean(1 / mu))

    sd = math.sqrt(base * (inverse_mu(lead_new) + inverse_mu(lead_old)))
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    needed = math.ceil(((z + _NORMAL.inv_cdf(POWER)) * sd / min_lift) ** 2) if min_lift > 0 \
        else n
    chance = _NORMAL.cdf(math.sqrt(n) * min_lift / sd - z) if sd > 0 else 1.0
    return Power(round(base, 6), min_lift, n, round(sd, 6), needed, round(chance, 4))
