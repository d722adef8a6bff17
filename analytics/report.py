"""One self-contained HTML report for a process: the map with a heat overlay, the funnel as a
chart, time to first sale, and the tables behind them.

    from analytics.report import write_report
    data = write_report(store, "prospect_journey", Path("report.html"), clock=SystemClock())

`collect` reads the database into `ReportData` (plain rows: each analytics result's
`to_dict()`), and `render_html` turns that into the page without touching the database, so
either half can be used alone. The page needs nothing but itself: styles and drawings are
inline, the one script (the cohort and date filter) is inline and allowed by its hash, and a
Content-Security-Policy forbids fetching anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from analytics._read_definitions import latest_definition, process_ids
from analytics._report_people import people_rows, render_people, render_trail
from analytics._report_views import (
    draw_map,
    render_decisions,
    render_filter,
    render_survival,
    script_hash,
    survival_view,
)
from analytics._svgtext import esc
from analytics.chart import funnel_chart
from analytics.funnel import funnel
from analytics.indicators import cohorts, indicators
from analytics.log import content_use
from analytics.people import People
from analytics.stuck import stuck
from analytics.svg import Heat
from engine.clock import Clock, as_utc
from engine.errors import DefinitionNotFound, ErrorCode, NextmoveError
from engine.store.database import Store

__all__ = ["HEAT_METRICS", "ReportData", "WhichProcess", "collect", "heat_from_funnel",
           "only_process", "render_html", "write_report"]

HEAT_METRICS = ("waiting", "dwell", "dropout", "conversion")
HEAT_NOTES = {"waiting": "Steps are coloured by how many prospects wait there now",
              "dwell": "Steps are coloured by the median hours prospects spent there",
              "dropout": "Steps are coloured by the share of arrivals who dropped out there",
              "conversion": "Steps are coloured by the share of arrivals who went on to the "
                            "outcome"}


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows, as plain values."""

    process_id: str
    process_name: str
    version: int | None
    generated_at: datetime
    outcome: str
    heat_metric: str
    summary: dict[str, Any]  # instances, converted, conversion, first-sale share
    funnel: list[dict[str, Any]]  # one row per people's step or end, in map order
    stuck: list[dict[str, Any]]  # groups of instances waiting past the usual time
    cohorts: list[dict[str, Any]]  # leading indicators by enrollment week
    indicator_names: list[str]
    content: list[dict[str, Any]]  # per hook: shown, used, skipped, varied
    map_svg: str | None = None
    map_problem: str | None = None  # why there is no map, when there is none
    heat: dict[str, float] = field(default_factory=dict)
    drift: list[dict[str, Any]] = field(default_factory=list)  # drift alerts acted on
    decisions: list[dict[str, Any]] = field(default_factory=list)  # split at each decision
    survival: dict[str, Any] | None = None  # time to first sale (analytics._report_views)
    scope: dict[str, Any] | None = None  # whose figures: `People.to_dict()`, None: everybody
    distributors: list[dict[str, Any]] = field(default_factory=list)  # indicators per person
    distributors_meta: dict[str, Any] = field(default_factory=dict)  # what those columns mean
    trail: dict[str, Any] | None = None  # `compliance.trail_summary(...).to_dict()`, if given
    incidents: list[dict[str, Any]] = field(default_factory=list)  # waiting for an operator

    @property
    def title(self) -> str:
        return f"{self.process_name or self.process_id}: journey report"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["generated_at"] = as_utc(self.generated_at).isoformat()
        out.pop("map_svg")
        out["has_map"] = self.map_svg is not None
        if out.get("survival"):  # the per-distributor rows are the page filter's, not figures
            out["survival"] = {k: v for k, v in out["survival"].items() if k != "distributors"}
        return out


def heat_from_funnel(rows: Sequence[Mapping[str, Any]], metric: str) -> Heat:
    """The map overlay from funnel rows: instances waiting at each step now, or the median
    hours arrivals spent there (steps where none has ended yet have no dwell time)."""
    if metric == "waiting":
        values = {str(r["step_id"]): float(r["waiting"]) for r in rows
                  if r.get("waiting") is not None}
        return Heat(values, "Waiting there now", "")
    if metric == "dwell":
        values = {str(r["step_id"]): float(r["median_hours"]) for r in rows
                  if r.get("median_hours") is not None}
        return Heat(values, "Median time spent there", "h", decimals=1)
    if metric in ("dropout", "conversion"):
        key, title = (("dropped", "Drop-out rate") if metric == "dropout"
                      else ("conversion", "Conversion after the step"))
        values = {str(r["step_id"]): (float(r[key]) / r["instances"] if metric == "dropout"
                                      else float(r[key])) * 100
                  for r in rows if r.get(key) is not None and r.get("instances")}
        return Heat(values, title, "%")
    raise NextmoveError(f"heat must be one of {', '.join(HEAT_METRICS)}, not {metric!r}")


def collect(store: Store, process_id: str, *, now: datetime, heat: str = "waiting",
            outcome: str | None = None, people: People | None = None,
            trail: Mapping[str, Any] | None = None) -> ReportData:
    """Read what the report shows for the latest deployed version of `process_id`: of
    everybody, or of `people` only (one distributor, or a sponsor's downline), in every
    section. `trail` is the `audit --trail` summary to show (`compliance.trail_summary`)."""
    if heat not in HEAT_METRICS:
        raise NextmoveError(f"heat must be one of {', '.join(HEAT_METRICS)}, not {heat!r}")
    definition = _latest_definition(store, process_id)
    who = None if people is None else people.members
    steps = funnel(store, process_id, outcome=outcome, people=who)
    # the map is coloured over all its elements; the table and chart show the people's steps
    overlay = heat_from_funnel([s.to_dict() for s in steps], heat)
    rows = [s.to_dict() for s in steps.people()]
    map_svg, problem, decisions = draw_map(store, definition, process_id, overlay, who)
    leading = indicators(store, as_of=now, people=who)
    weeks = cohorts(store, as_of=now, people=who)
    per_person, per_person_meta = people_rows(store, leading)
    names = [d.name for d in weeks.definitions]
    summary = {"instances": steps.instances, "converted": steps.converted,
               "conversion": steps.conversion,
               "first_sale_window_days": leading.window_days,
               "distributors_observed": leading.observed,
               "first_sale_share": leading.first_sale_share}
    stuck_view = stuck(store, process_id, now, people=who)
    return ReportData(
        process_id=process_id, process_name=str(definition["name"] or process_id),
        version=int(definition["version"]), generated_at=as_utc(now), outcome=steps.outcome,
        heat_metric=heat, summary=summary, funnel=rows,
        stuck=[g.to_dict() for g in stuck_view.groups],
        incidents=[i.to_dict() for i in stuck_view.incidents],
        cohorts=[_flat_cohort(c.to_dict(), names) for c in weeks.weeks],
        indicator_names=names,
        content=[c.to_dict() for c in content_use(store, process_id, who)],
        map_svg=map_svg, map_problem=problem, heat=dict(overlay.values),
        drift=_drift_rows(store, process_id), decisions=decisions,
        survival=survival_view(store, now, who),
        scope=None if people is None else people.to_dict(), distributors=per_person,
        distributors_meta=per_person_meta, trail=None if trail is None else dict(trail))


def _drift_rows(store: Store, process_id: str) -> list[dict[str, Any]]:
    from content_catalog.drift_alerts import drift_records

    return [{"hook": r.hook, "option_id": r.option_id, "rate_before": r.alert["rate_before"],
             "rate_after": r.alert["rate_after"], "since": r.alert["since"],
             "detected_at": r.alert["detected_at"], "version": r.version,
             "status": r.status + (f" ({r.reviewer})" if r.reviewer else "")}
            for r in drift_records(store) if r.alert.get("process") == process_id]


class WhichProcess(NextmoveError):
    """No process was named and the database holds several (or none)."""

    code = ErrorCode.USAGE

    def __init__(self, known: Sequence[str]) -> None:
        self.known = list(known)
        super().__init__(
            "the database holds no deployed process" if not known else
            f"the database holds {len(known)} processes ({', '.join(known)}); "
            "say which with --process")


def only_process(store: Store) -> str:
    """The one process the database holds; WhichProcess when it holds none or several."""
    with store.read() as conn:
        known = sorted(process_ids(conn))
    if len(known) != 1:
        raise WhichProcess(known)
    return known[0]


def write_report(store: Store, process_id: str, output: Path, *, clock: Clock,
                 heat: str = "waiting", outcome: str | None = None,
                 people: People | None = None,
                 trail: Mapping[str, Any] | None = None) -> ReportData:
    """Collect, render and write the report to `output`; returns what it shows. `outcome`
    defaults to the outcomes the map declares as converting (else a sale); `people` limits
    every section to one distributor or a sponsor's downline (`analytics.people`)."""
    data = collect(store, process_id, now=clock.now(), heat=heat, outcome=outcome,
                   people=people, trail=trail)
    try:
        output.write_text(render_html(data), encoding="utf-8")
    except OSError as exc:
        raise NextmoveError(f"cannot write {output}: {exc}") from exc
    return data


def _latest_definition(store: Store, process_id: str) -> Mapping[str, Any]:
    with store.read() as conn:
        row = latest_definition(conn, process_id)
        if row is None:
            raise DefinitionNotFound(process_id, process_ids(conn))
    return row


def _scope_label(scope: Mapping[str, Any]) -> str:
    return People(tuple(scope.get("distributor_ids") or ()), scope.get("distributor_id"),
                  scope.get("sponsor_id")).label


def _flat_cohort(row: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    per_week = row.get("per_week") or {}
    flat = {k: v for k, v in row.items() if k != "per_week"}
    flat.update({f"per_week_{n}": per_week.get(n) for n in names})
    return flat


# Columns: (row key, header, formatter). A table shows the columns its rows carry.
Column = tuple[str, str, Callable[[Any], str]]


def _int(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, int | float) else "–"


def _hours(value: Any) -> str:
    return f"{value:,.1f}" if isinstance(value, int | float) else "–"


def _share(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "–"


def _rate(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "–"


def _text(value: Any) -> str:
    return "–" if value is None else str(value)


def _time(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{as_utc(value):%Y-%m-%d %H:%M}"
    return _text(value).replace("T", " ")[:16] if value else "–"


FUNNEL_COLUMNS: list[Column] = [
    ("step_name", "Step", _text), ("instances", "Prospects", _int), ("entered", "Arrivals", _int),
    ("completed", "Completed", _int), ("skipped", "Skipped", _int), ("varied", "Varied", _int),
    ("moved_on", "Moved on", _int), ("waiting", "Waiting now", _int),
    ("dropped", "Dropped out", _int), ("median_hours", "Median h", _hours),
    ("p90_hours", "p90 h", _hours), ("conversion", "Reached outcome", _share),
]
STUCK_COLUMNS: list[Column] = [
    ("step_name", "Step", _text), ("distributor_id", "Distributor", _text),
    ("instances", "Stuck", _int), ("oldest_since", "Waiting since", _time),
    ("limit_hours", "Usual limit h", _hours),
]
INCIDENT_COLUMNS: list[Column] = [
    ("instance_id", "Instance", _text), ("distributor_id", "Distributor", _text),
    ("step_id", "Step", _text), ("since", "Since", _time), ("error", "Error (retry once the "
                                                            "map is fixed)", _text),
]
DRIFT_COLUMNS: list[Column] = [
    ("hook", "Hook", _text), ("option_id", "Item", _text), ("rate_before", "Rate before", _share),
    ("rate_after", "Rate after", _share), ("since", "Since", _time),
    ("detected_at", "Detected", _time), ("version", "Demoted in policy", _int),
    ("status", "Review", _text),
]
CONTENT_COLUMNS: list[Column] = [
    ("hook", "Hook", _text), ("shown", "Shown", _int), ("used_suggestion", "Used suggestion", _int),
    ("used_other", "Used another", _int), ("skipped", "Skipped", _int), ("varied", "Varied", _int),
]


def _cohort_columns(names: Sequence[str]) -> list[Column]:
    return [("week", "Enrolled (week of)", _text), ("distributors", "Distributors", _int),
            *((f"per_week_{n}", f"{n.replace('_', ' ').capitalize()} / week", _rate)
              for n in names),
            ("observed", "Observed 14 days", _int), ("first_sale_within", "First sale in time",
                                                     _int),
            ("first_sale_share", "Share", _share),
            ("median_days_to_first_sale", "Median days to sale", _hours)]


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], empty: str,
           numeric_from: int = 1) -> str:
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    shown = [c for c in columns if any(c[0] in r for r in rows)]
    head = "".join(f'<th{" class=num" if i >= numeric_from else ""}>{esc(h)}</th>'
                   for i, (_, h, _f) in enumerate(shown))
    body = "".join(
        "<tr>" + "".join(
            f'<td{" class=num" if i >= numeric_from else ""}>{esc(fmt(r.get(key)))}</td>'
            for i, (key, _h, fmt) in enumerate(shown)) + "</tr>"
        for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:Arial,Helvetica,sans-serif;color:#222;margin:24px;max-width:1400px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid
#ccc;padding-bottom:4px}.meta{color:#555;margin:0 0 16px}.kpis{display:flex;gap:16px;
flex-wrap:wrap;margin:12px 0}.kpi{border:1px solid #ddd;border-radius:6px;padding:8px 14px}
.kpi b{display:block;font-size:22px}figure{margin:0}figure svg{max-width:100%;height:auto;
border:1px solid #ddd}figcaption,.note{color:#555;font-size:13px;margin:6px 0}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border-bottom:1px solid #e3e3e3;
padding:4px 10px;text-align:left}th{background:#f4f4f4}.num{text-align:right}
.empty{color:#555;font-style:italic}.charts{display:flex;gap:16px;flex-wrap:wrap}
.filter{border:1px solid #ddd;border-radius:6px;padding:8px 14px;margin:12px 0;font-size:13px}
.filter label{margin-right:12px}.distributors summary{cursor:pointer;font-size:13px}
"""
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src "
        + script_hash())


def render_html(data: ReportData) -> str:
    """The report as one HTML document; everything it shows is escaped."""
    s = data.summary
    heat_note = HEAT_NOTES.get(data.heat_metric, HEAT_NOTES["waiting"])
    if data.map_svg is not None:
        map_html = (f'<figure class="map">{data.map_svg}<figcaption>{esc(heat_note)}; '
                    "white steps have no data; hatched: a deliberate wait (timer). Edges: times "
                    "taken, and the share at each decision. Hover a step for its figure."
                    "</figcaption></figure>" + render_decisions(data.decisions))
    else:
        map_html = f'<p class="note">{esc(data.map_problem or "No map.")}</p>'
    kpis = [
        ("Prospects", _int(s.get("instances"))),
        (f"Reached {data.outcome}", f"{_int(s.get('converted'))} "
                                    f"({_share(s.get('conversion'))})"),
        (f"First sale within {s.get('first_sale_window_days', 14)} days",
         f"{_share(s.get('first_sale_share'))} of {_int(s.get('distributors_observed'))}"),
    ]
    kpi_html = "".join(f'<div class="kpi">{esc(k)}<b>{esc(v)}</b></div>' for k, v in kpis)
    version = f" v{data.version}" if data.version is not None else ""
    filter_html, script = render_filter(data.survival)
    scope = f" · showing {esc(_scope_label(data.scope))}" if data.scope else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(data.title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(data.title)}</h1>"
        f'<p class="meta">Process <code>{esc(data.process_id)}</code>{esc(version)} · '
        f"generated {esc(f'{as_utc(data.generated_at):%Y-%m-%d %H:%M} UTC')} · "
        f"outcome <code>{esc(data.outcome)}</code>{scope}</p>"
        f'<div class="kpis">{kpi_html}</div>{filter_html}'
        f'<h2 id="map">The map</h2>{map_html}'
        f'<h2 id="funnel">Funnel</h2>'
        f'<figure class="chart">{funnel_chart(data.funnel, outcome=data.outcome)}</figure>'
        + _table(data.funnel, FUNNEL_COLUMNS, "No prospect has arrived at any step yet.")
        + render_survival(data.survival)
        + '<h2 id="stuck">Where prospects are stuck</h2>'
        '<p class="note">Waiting past the step\'s limit: the map\'s stuck_after where it has '
        'one, else longer than 90% of earlier arrivals at the same step took.</p>'
        + _table(data.stuck, STUCK_COLUMNS, "Nobody is waiting past the usual time.", 2)
        + ('<h3 id="incidents">Waiting for an operator: a step failed</h3>'
           + _table(data.incidents, INCIDENT_COLUMNS, "", 5) if data.incidents else "")
        + '<h2 id="indicators">Leading indicators by enrollment week</h2>'
        + _table(data.cohorts, _cohort_columns(data.indicator_names),
                 "No distributor has enrolled yet.")
        + render_people(data.distributors, data.distributors_meta)
        + render_trail(data.trail)
        + '<h2 id="content">Content shown and used</h2>'
        + _table(data.content, CONTENT_COLUMNS, "No card has offered content yet.")
        + '<h2 id="drift">Drift alerts</h2>'
        '<p class="note">Of all distributors, whoever the view shows: items whose outcome '
        'rate dropped (a sequential CUSUM test); each was '
        'lowered to its exploration floor pending review (<code>nextmove drift --ack</code>).'
        "</p>"
        + _table(data.drift, DRIFT_COLUMNS, "No content item has drifted.", 2)
        + script + "</body></html>\n")
