"""Learning from the log: recommend, import-log, variants, learn, drift, and policy versions.

`learner` (LightGBM, pandas, pyarrow) is imported only inside the commands that use it.
"""

from __future__ import annotations

import json
import random
import sys
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table

from commands._errors import PARTIAL, exit_codes
from commands._options import (
    DbOption,
    JsonOption,
    NowOption,
    duration,
    instant,
    json_object,
    jsonl_objects,
)
from commands._outcome import resolve_outcome as _outcome
from commands._output import err, out, print_json
from commands._wiring import now_of, open_store
from engine.errors import NextmoveError

if TYPE_CHECKING:
    from content_catalog import PolicyVersion
    from learner import DriftRecord, ImportProgress

app = typer.Typer()

OutcomeOption = Annotated[str | None, typer.Option(
    help="The step or outcome that counts as success, e.g. customer_order or sale; several "
    "joined by + (default: the outcomes the map declares as converting).")]
HorizonOption = Annotated[str | None, typer.Option(help="Count the outcome only within this "
                                                   "ISO duration of the start, e.g. P14D.")]


@app.command()
@exit_codes
def recommend(
    hook: Annotated[str, typer.Option(help="The content hook, e.g. intro_video.")],
    context: Annotated[str | None, typer.Option(help="One context as JSON.")] = None,
    contexts: Annotated[Path | None, typer.Option(help="A JSONL file: one context per line; "
                                                  "prints one JSON result per line.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed the exploration (reproducible).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rank a hook's content for a context with the active policy, with propensities."""
    from content_catalog import StoredRecommender

    rng = random.Random(seed)
    with open_store(db) as store:
        recommender = StoredRecommender(store)
        if contexts is not None:
            rows = jsonl_objects(contexts)
            for result in recommender.recommend_many(hook, rows, rng):
                sys.stdout.write(json.dumps(result.to_dict() if result else None) + "\n")
            return
        one = json_object(context, "--context")
        found = recommender.recommend(hook, one, rng)
        if found is None:
            raise NextmoveError(f"nothing in the catalog fills hook {hook!r} for this context")
        why = recommender.explain(hook, one)
    if as_json:
        print_json({**found.to_dict(), "why": list(why)})
        return
    table = Table("", "option", "score", "probability shown", box=None)
    for item in found.ranked:
        table.add_row("→" if item.option_id == found.shown else "", item.option_id,
                      f"{item.score:.3f}", f"{item.probability:.3f}")
    out.print(table)
    out.print(f"policy v{found.policy_version}; shown {found.shown} with propensity "
              f"{found.propensity:.3f}", markup=False)
    for line in why:
        out.print(f"  why: {line}", markup=False)


@app.command("import-log")
@exit_codes
def import_log(
    path: Annotated[Path, typer.Argument(help="CSV, Parquet or XES (.xes, .xes.gz) event log.")],
    process: Annotated[str, typer.Option(help="Name to file the log under (not a deployed "
                                         "map's id).")],
    on_error: Annotated[str, typer.Option(help="skip: leave out every case with a malformed "
                                          "row, report them and import the others (exit 1); "
                                          "reject: import nothing if any.")] = "skip",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a historical event log with XES column names, to learn and analyse from."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    import learner

    if on_error not in ("skip", "reject"):
        raise NextmoveError("--on-error must be skip or reject")
    mode: Literal["skip", "reject"] = "skip" if on_error == "skip" else "reject"
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                   console=err, disable=as_json)
    task = bar.add_task("importing", total=None)

    def progress(p: ImportProgress) -> None:
        bar.update(task, description=f"{p.phase} {p.unit}", completed=p.done, total=p.total)

    with bar, open_store(db) as store:
        report = learner.import_log(store, path, process, on_error=mode, progress=progress)
    if as_json:
        print_json(report.to_dict())
    else:
        unchanged = (f"; {report.cases_unchanged} case(s) already imported, unchanged"
                     if report.cases_unchanged else "")
        out.print(f"imported {report.cases_written} case(s), {report.events_written} event(s), "
                  f"{len(report.activities)} activities into {process!r}{unchanged}",
                  markup=False)
        if report.timestamps_without_zone:
            err.print(f"{report.timestamps_without_zone} timestamp(s) had no time zone and "
                      "were read as UTC", markup=False)
        for problem in report.problems:
            err.print(f"  skipped: {problem}", markup=False)
        if report.cases_skipped:
            err.print(f"{len(report.cases_skipped)} case(s) skipped whole: "
                      f"{', '.join(report.cases_skipped[:20])}"
                      + (" ..." if len(report.cases_skipped) > 20 else ""), markup=False)
    if report.problems:
        raise typer.Exit(PARTIAL)


@app.command()
@exit_codes
def variants(
    process: Annotated[str, typer.Option(help="Process (or imported log) name.")],
    outcome: Annotated[str | None, typer.Option(help="Step or outcome that counts as success, "
                                                "e.g. customer_order (default: the outcomes "
                                                "the map declares as converting; none for a "
                                                "map or log that declares none).")] = None,
    horizon: Annotated[str | None, typer.Option(help="Only count the outcome within this "
                                                "ISO duration of the start, e.g. P14D.")] = None,
    with_content: Annotated[bool, typer.Option("--with-content", help="Tell paths apart by "
                                               "the content used at each step.")] = False,
    top: Annotated[int, typer.Option(min=1, help="Show this many variants.")] = 20,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Paths prospects took (as process-mining tools count them), with outcome rates; with
    --horizon, only cases whose horizon has passed."""
    import analytics
    import learner
    from commands._learn import observed_until, print_variants, unobserved

    window = duration(horizon, "--horizon", positive=True)
    with open_store(db) as store:
        declared = analytics.measures(store, process)
        outcomes = outcome or (declared.converting if declared.declared else None)
        until = observed_until(store, window, now)
        found = learner.variants(store, process, outcome=outcomes, horizon=window,
                                 with_content=with_content, observed_until=until)
        left = learner.unobserved_cases(store, process, horizon=window, observed_until=until)
    if as_json:
        print_json({"variants": [v.to_dict() for v in found], "not_yet_observed": left,
                    "observed_until": until.isoformat() if until else None})
        return
    print_variants(found, top, unobserved(left, "case(s)", horizon, until))


@app.command()
@exit_codes
def learn(
    process: Annotated[str, typer.Option(help="The process whose log to learn from.")],
    outcome: OutcomeOption = None,
    horizon: HorizonOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Propose and evaluate; change "
                                          "nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Apply even where the estimate is "
                                        "not better.")] = False,
    seed: Annotated[int, typer.Option(help="Seed for the model and the bootstrap.")] = 0,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Learn which content leads to the outcome; propose new policies, evaluated off-policy;
    with --horizon, only from cases whose horizon has passed."""
    import learner
    from commands._learn import observed_until, print_proposal, unobserved

    window = duration(horizon, "--horizon", positive=True)
    with open_store(db) as store:
        with err.status("learning from the log...", spinner="dots") if not as_json \
                else nullcontext():
            outcome = _outcome(store, process, outcome)
            proposal = learner.propose(store, process, outcome=outcome, horizon=window,
                                       observed_until=observed_until(store, window, now),
                                       seed=seed)
        applied = [] if dry_run else learner.apply(store, proposal, force=force)
    if as_json:
        print_json({**proposal.to_dict(), "applied": applied, "dry_run": dry_run})
        return
    print_proposal(proposal, process, applied, dry_run, unobserved(
        proposal.pending, "decision(s)", horizon, proposal.observed_until))


@app.command()
@exit_codes
def drift(
    process: Annotated[str | None, typer.Option(help="The process whose log to watch.")] = None,
    outcome: OutcomeOption = None,
    horizon: HorizonOption = None,
    act: Annotated[bool, typer.Option("--act", help="Demote each newly drifted item to its "
                                      "exploration floor pending review (what the worker's "
                                      "--drift-every does).")] = False,
    open_: Annotated[bool, typer.Option("--open", help="List the alerts waiting for a "
                                        "review.")] = False,
    ack: Annotated[str | None, typer.Option("--ack", metavar="ITEM", help="Record a review "
                                            "of ITEM's open alert.")] = None,
    reviewer: Annotated[str | None, typer.Option(help="Who reviewed (with --ack).")] = None,
    decision: Annotated[str | None, typer.Option(
        help="keep: the item stays demoted; restore: it gets its share back and is watched "
             "again from now (with --ack).")] = None,
    hook: Annotated[str | None, typer.Option(help="The hook of ITEM, if it has open alerts "
                                             "in several (with --ack).")] = None,
    webhook: Annotated[str | None, typer.Option(
        metavar="URL", help="With --act: POST each alert acted on to URL, signed with "
        "NEXTMOVE_DRIFT_WEBHOOK_SECRET (default: NEXTMOVE_DRIFT_WEBHOOK_URL).")] = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Content items whose outcome rate dropped: a sequential test (CUSUM) per item, in time
    order; with --act, demote them; --open lists alerts; --ack records a review."""
    import learner
    from engine.clock import ManualClock, SystemClock

    clock = ManualClock(instant(now, "--now")) if now else SystemClock()
    if ack is not None:
        if reviewer is None or decision is None:
            raise NextmoveError("--ack needs --reviewer NAME and --decision keep|restore")
        with open_store(db) as store:
            record = learner.review(store, ack, reviewer=reviewer, decision=decision,
                                    hook=hook, clock=clock)
        _print_records([record], as_json)
        return
    if hook is not None:  # alone it would filter nothing
        raise NextmoveError("--hook goes with --ack ITEM (the hook of the item's alert)")
    if open_:
        with open_store(db) as store:
            _print_records(learner.drift_records(store, status="open"), as_json, "no open "
                           "drift alerts")
        return
    if process is None:
        raise NextmoveError("give --process (or --open, or --ack ITEM)")
    window = duration(horizon, "--horizon", positive=True)
    from commands._drift import drift_webhook, notify

    notifier = drift_webhook(webhook) if act else None
    with open_store(db) as store:
        outcome = _outcome(store, process, outcome)
        if act:
            actions = learner.watch(store, process, outcome=outcome, horizon=window,
                                    now=clock.now(), clock=clock)
            notify(notifier, actions)
            alerts = [a.alert for a in actions]
            versions = {(a.alert.hook, a.alert.option_id): a.version for a in actions}
        else:
            alerts = learner.detect(store, process, outcome=outcome, horizon=window,
                                    observed_until=clock.now() if now else None)
            versions = {}
    if as_json:
        print_json({"alerts": [{**a.to_dict(), "demoted_in": versions.get((a.hook, a.option_id))}
                               for a in alerts]})
        return
    if not alerts:
        out.print("no drop in any content item's outcome rate" + (" (new)" if act else ""))
    for a in alerts:
        since = f" since {a.since:%Y-%m-%d}" if a.since else ""
        found = f", detected {a.detected_at:%Y-%m-%d}" if a.detected_at else ""
        out.print(f"{a.hook}/{a.option_id}: {a.rate_before:.1%} → {a.rate_after:.1%}{since}"
                  f"{found} (CUSUM {a.statistic:.2f} ≥ {a.threshold:.2f}, false-alarm "
                  f"probability {a.p_value:.2g})", markup=False)
        version = versions.get((a.hook, a.option_id))
        if version is not None:
            out.print(f"  demoted to its exploration floor in policy v{version}, pending "
                      f"review: nextmove drift --ack {a.option_id} --reviewer NAME "
                      "--decision keep|restore", markup=False)


def _print_records(records: list[DriftRecord], as_json: bool, empty: str = "") -> None:
    if as_json:
        print_json({"records": [r.to_dict() for r in records]})
        return
    if not records and empty:
        out.print(empty, markup=False)
    for r in records:
        out.print(r.sentence(), markup=False)


policy_app = typer.Typer(help="Recommendation policies: history, activation, rollback.",
                         no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@policy_app.command("history")
@exit_codes
def policy_history(
    hook: Annotated[str | None, typer.Option(help="Only this hook.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every stored policy version per hook, and which one is active."""
    import content_catalog

    with open_store(db) as store:
        versions = content_catalog.history(store, hook)
    if as_json:
        print_json({"versions": [{**asdict(v), "created_at": v.created_at.isoformat(),
                                  "last_activated_at": v.last_activated_at.isoformat()
                                  if v.last_activated_at else None} for v in versions]})
        return
    table = Table("hook", "version", "kind", "active", "created", "note", box=None)
    for v in versions:
        table.add_row(v.hook, str(v.version), v.kind, "yes" if v.active else "",
                      f"{v.created_at:%Y-%m-%d %H:%M}", v.note or "")
    out.print(table)


HookArgument = Annotated[str, typer.Argument(help="The hook.")]
ReasonOption = Annotated[str | None, typer.Option(help="Why (logged).")]


@policy_app.command("activate")
@exit_codes
def policy_activate(
    hook: HookArgument,
    version: Annotated[int, typer.Argument(help="The version to make active.")],
    reason: ReasonOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a stored policy version the active one for its hook."""
    import content_catalog

    with open_store(db) as store:
        found = content_catalog.activate(store, hook, version, reason=reason)
    _report_active(found, as_json)


@policy_app.command("rollback")
@exit_codes
def policy_rollback(
    hook: HookArgument,
    reason: ReasonOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Go back to the version that was active before the current one."""
    import content_catalog

    with open_store(db) as store:
        found = content_catalog.rollback(store, hook, reason=reason)
    _report_active(found, as_json)


@policy_app.command("refresh")
@exit_codes
def policy_refresh(
    process: Annotated[str, typer.Option(help="The process whose log to learn from.")],
    outcome: OutcomeOption = None,
    horizon: Annotated[str, typer.Option(help="An outcome not seen within this ISO duration "
                                         "of the start is a failure; before, pending.")
                       ] = "P14D",
    hook: Annotated[list[str] | None, typer.Option(help="Only this hook (repeatable).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Refresh even where the catalog says "
                                        "learning: batch.")] = False,
    reward: Annotated[list[str] | None, typer.Option(
        help="HOOK=STEP: the hook learns from reaching STEP, an earlier step its content acts "
             "on (e.g. intro_video=Event_wait_for_video_video_played), over the catalog's "
             "learn_from; the rollback test still judges it on --outcome (repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the Monte Carlo draws.")] = 0,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Continuous learning: store each hook's Thompson-sampling table as a new active version
    (what the worker's --learn-every does), or roll it back if it does worse than before."""
    import learner
    from engine.clock import ManualClock

    window = duration(horizon, "--horizon", positive=True)
    assert window is not None
    rewards = {}
    for pair in reward or ():
        name, _, step = pair.partition("=")
        if not name or not step:
            raise NextmoveError(f"--reward takes HOOK=STEP, not {pair!r}")
        rewards[name] = step
    if now:
        instant(now, "--now")  # a bad --now is refused before the database is opened
    with open_store(db) as store:
        clock = ManualClock(now_of(store, now))  # a simulated database: its recorded clock
        outcome = _outcome(store, process, outcome)
        done = learner.refresh(store, process, outcome=outcome, horizon=window, clock=clock,
                               hooks=hook or None, force=force, rewards=rewards,
                               settings=learner.Settings(seed=seed))
    if as_json:
        print_json(done.to_dict())
        return
    for h in done.hooks:
        if h.rolled_back_to is not None:
            out.print(f"{h.hook}: rolled back to version {h.rolled_back_to} — {h.why}",
                      markup=False)
        else:
            out.print(f"{h.hook}: version {h.version} from {h.decisions} decisions "
                      f"({h.pending} pending, exposure {h.exposure:,.1f}, "
                      f"{h.successes:,.0f} reaching {h.reward}), prior strength "
                      f"{h.prior_strength:.0f}", markup=False)
    for name, why in done.skipped.items():
        out.print(f"{name}: not refreshed ({why})", markup=False)


def _report_active(found: PolicyVersion, as_json: bool) -> None:
    if as_json:
        print_json({"hook": found.hook, "active_version": found.version, "kind": found.kind})
    else:
        out.print(f"{found.hook}: version {found.version} ({found.kind}) is active", markup=False)


@app.command()
@exit_codes
def evaluate(
    policy: Annotated[str, typer.Argument(
        help="The policy to judge: uniform, catalog, active, a stored version number (with "
             "--hook), or a policy JSON file (the format `policy history --json` shows).")],
    process: Annotated[str, typer.Option(help="The process whose log to judge it on.")],
    outcome: OutcomeOption = None,
    horizon: HorizonOption = None,
    hook: Annotated[str | None, typer.Option(help="Only this hook (and the hook of a stored "
                                             "version); else every hook it covers.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the reward model and the bootstrap.")] = 0,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Off-policy evaluation of a given policy on the log: IPW, SNIPW and DR with intervals;
    with --horizon, only on cases whose horizon has passed."""
    import learner
    from commands._learn import observed_until, print_evaluation, unobserved

    spec: int | str | dict[str, object]
    if policy.isdigit():
        spec = int(policy)
    elif policy.endswith(".json") or Path(policy).is_file():
        spec = json_object(_read_text(Path(policy), "POLICY"), "POLICY")
    else:  # uniform, catalog, active; a misspelt name is refused with a suggestion
        spec = policy
    window = duration(horizon, "--horizon", positive=True)
    with open_store(db) as store:
        outcome = _outcome(store, process, outcome)
        found = learner.evaluate(store, process, spec, outcome=outcome, horizon=window, hook=hook,
                                 observed_until=observed_until(store, window, now), seed=seed)
    if as_json:
        print_json(found.to_dict())
        return
    print_evaluation(found, process, unobserved(found.pending, "decision(s)", horizon,
                                                found.observed_until))


def _read_text(path: Path, name: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NextmoveError(f"{name}: cannot read {path}: {exc.strerror}") from exc
