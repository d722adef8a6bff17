"""What the step log says: report, funnel, stuck, indicators, cohorts, export-log.

`analytics` and `learner` load pandas and LightGBM, so they are imported inside the commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from commands._errors import exit_codes
from commands._options import (
    AsOfOption,
    DbOption,
    JsonOption,
    duration,
    instant,
    optional_instant,
)
from commands._output import err, out, print_json
from commands._wiring import now_of, open_store
from engine.errors import NextmoveError

if TYPE_CHECKING:
    from analytics import Indicator, People
    from engine import Store

app = typer.Typer()

NowOption = Annotated[str | None, typer.Option(
    "--now", envvar="NEXTMOVE_NOW", help="Judge as of this time (ISO 8601). Default: now, "
    "which on a database a simulation wrote is its simulated clock.")]

DistributorOption = Annotated[str | None, typer.Option(
    "--distributor", help="Only this distributor's instances and figures.")]
SponsorOption = Annotated[str | None, typer.Option(
    "--sponsor", help="Only this sponsor and their whole downline (every distributor below "
    "them, through the instances' sponsor_id).")]


def _people(store: Store, distributor: str | None, sponsor: str | None) -> People | None:
    """`analytics.People` for --distributor / --sponsor (None: everybody)."""
    import analytics

    return analytics.people(store, distributor=distributor, sponsor=sponsor)


# analytics.DEFAULT_OUTCOME (what converts when a map declares no outcomes), written out so
# that --help need not import analytics;
# tests/test_cli_app.py checks that the two agree.
DEFAULT_OUTCOME = "sale"


@app.command()
@exit_codes
def report(
    process: Annotated[str | None, typer.Option(help="The process to report on, e.g. "
                                                "prospect_journey (default: the database's "
                                                "only process).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "report.html"),
    colour_by: Annotated[str | None, typer.Option(
        "--colour-by", help="Colour the steps on the map by: waiting (prospects waiting there "
        "now), dwell (median hours spent there), dropout (share of arrivals who dropped out "
        "there) or conversion (share of arrivals who went on to the outcome). Deliberate "
        "waits (timers) are never coloured.")] = None,
    heat: Annotated[str, typer.Option(help="The older name of --colour-by.")] = "waiting",
    outcome: Annotated[str | None, typer.Option(help="The outcome that counts as converted "
                                                "(default: the outcomes the map declares as "
                                                "converting, else sale).")] = None,
    distributor: DistributorOption = None,
    sponsor: SponsorOption = None,
    trail: Annotated[bool | None, typer.Option(
        "--trail/--no-trail", help="Include what contractors did with each card (the audit "
        "trail: followed, skipped, varied per step). Default: with --distributor or "
        "--sponsor; for everybody it reads the whole log, so ask for it.")] = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One self-contained HTML page: the map with flow counts, decision shares and a colour
    measure, the funnel chart, time to first sale (Kaplan–Meier), stuck prospects, leading
    indicators (by week and per distributor), the guidance followed, skipped and varied (the
    audit trail) and content use, with a cohort and date filter in the page. Opens without a
    network. --distributor or --sponsor limits every section to those people."""
    import compliance
    from analytics import write_report
    from analytics.report import HEAT_METRICS, only_process

    heat = colour_by or heat
    if heat not in HEAT_METRICS:
        raise NextmoveError(f"--colour-by must be one of {', '.join(HEAT_METRICS)}")
    if now:
        instant(now, "--now")  # a bad --now is refused before the database is opened
    from engine.clock import ManualClock

    with open_store(db) as store:
        clock = ManualClock(now_of(store, now))
        who = _people(store, distributor, sponsor)
        chosen = process or only_process(store)
        evidence = None
        if trail if trail is not None else who is not None:
            evidence = compliance.trail_summary(
                store, process=chosen, people=None if who is None else who.members).to_dict()
        data = write_report(store, chosen, output, clock=clock, heat=heat, outcome=outcome,
                            people=who, trail=evidence)
    if as_json:
        print_json({"output": str(output), **data.to_dict()})
        return
    shown = f" of {who.label}" if who is not None else ""
    out.print(f"wrote {output}: {data.process_id} v{data.version}, "
              f"{data.summary['instances']} prospect(s){shown}, map coloured by {heat}",
              markup=False)
    if data.map_problem:
        err.print(f"[yellow]warning:[/yellow] {escape(data.map_problem)}")


def _hours(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


@app.command()
@exit_codes
def funnel(
    process: Annotated[str, typer.Option(help="Process (or imported log) name.")],
    since: Annotated[str | None, typer.Option(help="Only instances started at or after this "
                                              "time (ISO 8601).")] = None,
    distributor: Annotated[str | None, typer.Option(help="Only this distributor's "
                                                    "instances.")] = None,
    sponsor: SponsorOption = None,
    market: Annotated[str | None, typer.Option(help="Only instances whose context market is "
                                               "this, e.g. US.")] = None,
    outcome: Annotated[str | None, typer.Option(help="Step or outcome event that counts as "
                                                "conversion (default: the outcomes the map "
                                                "declares as converting, else sale).")] = None,
    all_elements: Annotated[bool, typer.Option(
        "--all-elements", help="Show every element the log has: start and timer events, "
        "gateways, stuck paths (default: the people's steps and the journey's ends).")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per step, in map order: arrivals, what people did, who moved on or dropped, time
    spent, conversion from the step."""
    import analytics

    start = optional_instant(since, "--since")
    with open_store(db) as store:
        who = _people(store, distributor, sponsor)
        found = analytics.funnel(store, process, since=start, distributor=distributor,
                                 market=market, outcome=outcome, all_elements=all_elements,
                                 people=None if who is None else who.members)
    if as_json:
        print_json({**found.to_dict(), "scope": None if who is None else who.to_dict()})
        return
    table = Table("step", "instances", "entered", "completed", "skipped", "varied", "moved on",
                  "waiting", "dropped", "median h", "p90 h", f"→ {found.outcome}", box=None)
    for s in found:
        table.add_row(s.step_name, str(s.instances), str(s.entered), str(s.completed),
                      str(s.skipped), str(s.varied), str(s.moved_on), str(s.waiting),
                      str(s.dropped), _hours(s.median_hours), _hours(s.p90_hours),
                      f"{s.conversion:.1%}")
    out.print(table)
    out.print(f"{found.instances} instance(s), {found.converted} reached {found.outcome!r} "
              f"({found.conversion:.1%})", markup=False)


@app.command()
@exit_codes
def stuck(
    process: Annotated[str, typer.Option(help="Process name.")],
    older_than: Annotated[str | None, typer.Option(help="Waiting longer than this ISO "
                                                   "duration, e.g. P3D (default: the step's "
                                                   "stuck_after in the map, else its own 90th "
                                                   "percentile).")] = None,
    distributor: Annotated[str | None, typer.Option(help="Only this distributor.")] = None,
    sponsor: SponsorOption = None,
    market: Annotated[str | None, typer.Option(help="Only this market.")] = None,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Instances waiting on a step longer than the map's stuck_after (else than usual), by
    step and distributor; timers waiting on purpose apart; and the instances in incident (a
    step failed: they wait for an operator's retry). --distributor or --sponsor: those
    people's instances, against the step's usual time over everybody."""
    import analytics

    limit = duration(older_than, "--older-than")
    if now:
        instant(now, "--now")
    with open_store(db) as store:
        moment = now_of(store, now)
        who = _people(store, distributor, sponsor)
        found = analytics.stuck(store, process, moment, older_than=limit, market=market,
                                people=None if who is None else who.members)
        broken = [i.to_dict() for i in found.incidents]
    if as_json:
        print_json({**found.to_dict(), "scope": None if who is None else who.to_dict()})
        return
    table = Table("step", "distributor", "instances", "oldest waiting h", "limit h",
                  "limit from", box=None)
    for g in found.groups:
        table.add_row(g.step_name, g.distributor_id, str(g.instances),
                      f"{g.waited_hours(moment):.1f}", f"{g.limit_hours:.1f}",
                      found.limit_sources.get(g.step_id, ""))
    out.print(table)
    out.print(f"{found.instances} stuck instance(s) in {len(found.groups)} group(s)",
              markup=False)
    for w in found.waits:  # timers: waiting on purpose, not stuck
        waited = (moment - w.oldest_since).total_seconds() / 3600
        out.print(f"waiting on purpose at {w.step_name}: {w.instances} instance(s), the "
                  f"oldest for {waited:.1f} h (a timer, not stuck)", markup=False)
    for item in broken:
        out.print(f"incident: instance {item['instance_id']} (prospect {item['prospect_id']}) "
                  f"at {item['step_id']} since {item['since']}: {item['error']}; after fixing "
                  f"the map: nextmove retry {item['instance_id']}", markup=False)


IndicatorOption = Annotated[list[str] | None, typer.Option(
    "--indicator", help="Redefine or add an indicator: NAME=ITEM[,ITEM][@KIND[+KIND]], items "
    "are step ids or hook:NAME (e.g. contacts_added=add_contact@entered).")]
EventsOfOption = Annotated[str | None, typer.Option(help="Count only this process's events.")]


def _definitions(specs: list[str] | None) -> Sequence[Indicator]:
    import analytics

    return analytics.with_overrides([analytics.parse_indicator(s) for s in specs or []])


@app.command()
@exit_codes
def indicators(
    indicator: IndicatorOption = None,
    as_of: AsOfOption = None,
    process: EventsOfOption = None,
    top: Annotated[int, typer.Option(min=1, help="Show this many distributors.")] = 20,
    distributor: DistributorOption = None,
    sponsor: SponsorOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Leading indicators per distributor: activity per week, days to first sale, prospects
    converted. --distributor or --sponsor (with their downline) lists those people only."""
    import analytics

    definitions = _definitions(indicator)
    if as_of:
        instant(as_of, "--as-of")
    with open_store(db) as store:
        moment = now_of(store, as_of, "--as-of")
        who = _people(store, distributor, sponsor)
        found = analytics.indicators(store, definitions=definitions, as_of=moment,
                                     process_id=process,
                                     people=None if who is None else who.members)
    if as_json:
        print_json({**found.to_dict(), "scope": None if who is None else who.to_dict()})
        return
    names = [d.name for d in definitions]
    table = Table("distributor", "enrolled", *(f"{n}/wk" for n in names), "days to sale",
                  box=None)
    for d in found.distributors[:top]:
        table.add_row(d.distributor_id, f"{d.enrolled_at:%Y-%m-%d}",
                      *(f"{d.per_week(n):.1f}" for n in names),
                      "" if d.days_to_first_sale is None else f"{d.days_to_first_sale:.1f}")
    out.print(table)
    out.print(f"{len(found.distributors)} distributor(s); first sale within "
              f"{found.window_days} days: {found.first_sale_share:.1%} of {found.observed} "
              "observed long enough", markup=False)
    if found.journey:
        out.print(f"{found.converted} of {found.prospects} prospects converted "
                  f"({found.conversion:.1%}, {found.outcome_label})", markup=False)


@app.command()
@exit_codes
def cohorts(
    indicator: IndicatorOption = None,
    as_of: AsOfOption = None,
    process: EventsOfOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Distributors by enrollment week: activity per week and first sales within 14 days."""
    import analytics

    definitions = _definitions(indicator)
    if as_of:
        instant(as_of, "--as-of")
    with open_store(db) as store:
        moment = now_of(store, as_of, "--as-of")
        found = analytics.cohorts(store, definitions=definitions, as_of=moment,
                                  process_id=process)
    if as_json:
        print_json(found.to_dict())
        return
    names = [d.name for d in definitions]
    table = Table("week", "distributors", *(f"{n}/wk" for n in names), "first sale ≤14d",
                  "median days", box=None)
    for w in found.weeks:
        share = f"{w.first_sale_share:.0%} of {w.observed}" if w.observed else ""
        table.add_row(f"{w.week:%Y-%m-%d}", str(w.distributors),
                      *(f"{w.per_week[n]:.2f}" for n in names), share,
                      _hours(w.median_days_to_first_sale))
    out.print(table)


@app.command("export-log")
@exit_codes
def export_log(
    process: Annotated[str, typer.Option(help="Process (or imported log) name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write: .xes, "
                                         ".xes.gz, .csv, .csv.gz or .parquet.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export a process's event log with XES column names (imports back with import-log)."""
    import learner

    try:
        with open_store(db) as store:
            report = learner.export_log(store, process, output)
    except NextmoveError:
        raise
    except ValueError as exc:  # an unknown file suffix
        raise NextmoveError(str(exc)) from exc
    if as_json:
        print_json(report.to_dict())
    else:
        out.print(f"wrote {report.cases} case(s), {report.events} event(s) to {output}",
                  markup=False)
