"""The learner's commands beside `commands.learning`: the worker's scheduled continuous
learning (the engine's worker runs it; the learner does it: every `--learn-every`, and sooner
once `--learn-outcomes` new outcomes were recorded), and what `variants`, `learn` and
`evaluate` print."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from rich.table import Table

from commands._options import duration
from commands._outcome import resolve_outcome
from commands._output import err, out
from engine import Engine, NextmoveError
from engine.worker import Chore

if TYPE_CHECKING:
    from engine import Store
    from learner import Evaluation, Proposal, Variant

POLL = timedelta(minutes=5)  # how often the outcome count is looked at


def learn_chores(engine: Engine, every: str | None, process: str | None, outcome: str | None,
                 horizon: str | None, outcomes: int | None) -> list[Chore]:
    """The continuous-learning chore for `worker --learn-every`, or none without it."""
    interval = duration(every, "--learn-every", positive=True)
    if interval is None:
        if outcomes is not None:
            raise NextmoveError("--learn-outcomes needs --learn-every")
        return []
    if process is None:
        raise NextmoveError("--learn-every needs --learn-process")
    outcome = resolve_outcome(engine.store, process, outcome)
    window = duration(horizon, "--learn-horizon", positive=True) or timedelta(days=14)
    state: dict[str, datetime | int | None] = {"at": None, "seen": None}

    def check(now: datetime) -> None:
        import learner

        count = learner.outcome_count(engine.store, process, outcome)
        last, seen = state["at"], state["seen"]
        due = last is None or now - last >= interval  # type: ignore[operator]
        many = (outcomes is not None and isinstance(seen, int)
                and count - seen >= outcomes)
        if not (due or many):
            return
        done = learner.refresh(engine.store, process, outcome=outcome, horizon=window,
                               clock=engine.clock)
        state["at"], state["seen"] = now, count
        for h in done.hooks:
            what = (f"rolled back to v{h.rolled_back_to}" if h.rolled_back_to is not None
                    else f"v{h.version} ({h.decisions} decisions, {h.pending} pending)")
            err.print(f"learn: {h.hook} {what}", markup=False)

    return [Chore(min(interval, POLL) if outcomes is not None else interval, check)]


def observed_until(store: Store, horizon: timedelta | None, now: str | None) -> datetime | None:
    """With a horizon, "now" by the one rule (`now_of`): only cases whose horizon has passed
    by then have a known outcome. Without one every case counts: None."""
    from commands._wiring import now_of

    return None if horizon is None else now_of(store, now)


def unobserved(count: int, what: str, horizon: str | None, until: datetime | None) -> str:
    """The line saying what was left out as not yet observed ("" when nothing was)."""
    if not count or until is None:
        return ""
    return (f"{count:,} {what} left out as not yet observed: their {horizon} horizon had not "
            f"passed by {until:%Y-%m-%d %H:%M} UTC")


def print_variants(found: list[Variant], top: int, left_out: str) -> None:
    if not found and left_out:  # a horizon longer than the log: no rate to show
        out.print(f"no case whose horizon has passed; {left_out}", markup=False)
        return
    table = Table("#", "cases", "share", "rate (95% CI)", "p", "path", box=None)
    for v in found[:top]:
        rate = "" if v.rate is None else f"{v.rate:.1%} ({v.ci_low:.1%}-{v.ci_high:.1%})"
        p_value = "" if v.p_adjusted is None else f"{v.p_adjusted:.3f}" + (
            " *" if v.significant else "")
        table.add_row(str(v.rank), str(v.cases), f"{v.share:.1%}", rate, p_value, v.label)
    out.print(table)
    out.print(f"{len(found)} variant(s); * = outcome rate differs from variant 1 "
              "(Holm-adjusted p < 0.05)", markup=False)
    if left_out:
        out.print(left_out, markup=False)


def print_proposal(proposal: Proposal, process: str, applied: list[str], dry_run: bool,
                   left_out: str) -> None:
    out.print(f"{proposal.decisions} logged decisions of {process!r}, outcome "
              f"{proposal.outcome!r}", markup=False)
    if left_out:
        out.print(left_out + ("; nothing to learn from" if not proposal.decisions else ""),
                  markup=False)
    for hp in proposal.hooks:
        dr, cur, new = hp.lift["dr"], hp.current["dr"], hp.new["dr"]
        state = "applied" if hp.hook in applied else ("better" if hp.beats else "kept current")
        out.print(f"\n{hp.hook}: {state} — DR value {cur.value:.3f} → {new.value:.3f}, lift "
                  f"{dr.value:+.3f} [{dr.low:+.3f}, {dr.high:+.3f}] ({hp.decisions} decisions)",
                  markup=False)
        snipw = hp.lift["snipw"]
        out.print(f"  SNIPW lift {snipw.value:+.3f} [{snipw.low:+.3f}, {snipw.high:+.3f}]; "
                  f"exploration alone {hp.exploration['dr'].value:+.3f} (not counted as lift)",
                  markup=False)
        if not hp.beats:  # say whether to wait for more data or explore more
            out.print(f"  - {hp.power.sentence()}", markup=False)
        for reason in hp.reasons[:4]:
            out.print(f"  - {reason}", markup=False)
    for hook, why in proposal.skipped.items():
        out.print(f"{hook}: no proposal ({why})", markup=False)
    if dry_run:
        out.print("\ndry run: nothing applied", markup=False)


def print_evaluation(found: Evaluation, process: str, left_out: str) -> None:
    out.print(f"policy {found.policy} on {process!r}, outcome {found.outcome!r}", markup=False)
    if left_out:
        out.print(left_out, markup=False)
    if found.hooks:
        table = Table("hook", "estimator", "value", "interval", "active", "lift", "ESS",
                      box=None)
        for h in found.hooks:
            for name in ("ipw", "snipw", "dr"):
                e, a, d = h.estimates[name], h.active[name], h.lift[name]
                table.add_row(h.hook if name == "ipw" else "", name, f"{e.value:.4f}",
                              _interval(e.low, e.high, "{:.4f}"), f"{a.value:.4f}",
                              f"{d.value:+.4f} " + _interval(d.low, d.high, "{:+.4f}"),
                              f"{e.ess:,.0f}")
        out.print(table)
    for h in found.hooks:
        for note in h.notes:
            out.print(f"{h.hook}: {note}", markup=False)
    for name, why in found.skipped.items():
        out.print(f"{name}: not judged ({why})", markup=False)


def _interval(low: float, high: float, spec: str) -> str:
    # a zero-width bootstrap interval is no measure of certainty: never print it as one
    if low == high:
        return "(no spread)"
    return f"[{spec.format(low)}, {spec.format(high)}]"
