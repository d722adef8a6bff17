"""The report's process-mining and survival views, and the in-page filter.

`draw_map` draws the map with flow counts, decision shares and the chosen colour measure;
`survival_view` collects the time-to-first-sale curves and one row per distributor;
`render_survival` and `render_filter` turn them into markup. The filter is a small inline
script (allowed by the page's Content-Security-Policy through its SHA-256 hash only) over a
JSON block in the page: choosing a cohort or an enrollment date range hides the rows and
curves outside it and recomputes the Kaplan–Meier share for the selection; the selection is
kept in the address (`report.html#cohort=2026-01-05&from=2026-01-01&to=`), so it can be
shared. Nothing is fetched; the page stays one file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from analytics._bpmndi import read_diagram
from analytics._flows import decision_rows, flow_stats
from analytics._read_flows import visit_events
from analytics._svgtext import esc
from analytics.survival import survival
from analytics.survival_chart import survival_chart
from analytics.svg import Heat, draw_diagram
from engine.errors import DefinitionError
from engine.store.database import Store

MAX_ROWS = 20_000  # distributors embedded for the filter


def draw_map(store: Store, definition: Mapping[str, Any], process_id: str, overlay: Heat,
             people: Collection[str] | None = None
             ) -> tuple[str | None, str | None, list[dict[str, Any]]]:
    """(svg, why there is none, the decisions' split rows); flows counted over the instances
    of `people` (distributor ids) when given."""
    if definition["source_format"] == "imported-log":
        return None, "This process is an imported event log: there is no map to draw.", []
    documents: dict[str, str] = json.loads(definition["documents"])
    problems = []
    for name, xml in documents.items():
        try:
            diagram = read_diagram(xml.encode("utf-8"), process_id, file=name)
        except DefinitionError as exc:
            problems.append(str(exc))
            continue
        events = visit_events(store, process_id, people)
        stats = flow_stats(diagram, events)
        return (draw_diagram(diagram, heat=overlay, flows=stats), None,
                decision_rows(diagram, stats))
    return None, "The map could not be drawn: " + "; ".join(problems), []


def survival_view(store: Store, now: datetime,
                  people: Collection[str] | None = None) -> dict[str, Any]:
    found = survival(store, as_of=now, people=people)
    rows = [{"id": d, "enrolled": enrolled.date().isoformat(),
             "week": (enrolled.date() - timedelta(days=enrolled.weekday())).isoformat(),
             "days": round(days, 4), "sold": sold, "inside": inside, "variant": variant}
            for d, enrolled, days, sold, inside, variant in found.subjects[:MAX_ROWS]]
    return {**found.to_dict(), "distributors": rows,
            "truncated": len(found.subjects) > MAX_ROWS}


def _test_line(test: Mapping[str, Any] | None, what: str) -> str:
    if not test:
        return f'<p class="note">No log-rank test: fewer than two {what} with a sale.</p>'
    verdict = "differ" if test["p"] < 0.05 else "do not differ detectably"
    return (f'<p class="note">Log-rank test between {what}: χ² = {test["chi2"]:.2f} on '
            f'{test["df"]} df, p = {test["p"]:.3g}: the curves {verdict} (at 5%).</p>')


def render_survival(view: Mapping[str, Any] | None) -> str:
    if not view:
        return ""
    window = int(view["window_days"])
    overall = view["overall"]
    hook = view.get("hook")
    parts = [
        '<h2 id="survival">Time to first sale</h2>',
        f'<p class="note">Kaplan–Meier share of distributors with a first sale by each day '
        f"since enrollment, with 95% bands. {overall['still_inside_window']} distributor(s) "
        f"still inside their {window} days are censored (counted while observed), not taken "
        f"as failures. Overall: {overall['share_within']:.0%} "
        f"({overall['lower']:.0%}–{overall['upper']:.0%}) by day {window}.</p>",
        '<div class="charts"><figure class="chart" id="km-cohorts">'
        + survival_chart(view["cohorts"], window_days=window,
                         title="By enrollment week") + "</figure>",
    ]
    if view.get("variants"):
        parts.append('<figure class="chart" id="km-variants">'
                     + survival_chart(view["variants"], window_days=window,
                                      title=f"By content shown at {hook}") + "</figure>")
    parts.append("</div>")
    parts.append(_test_line(view.get("variant_test"), "variants"))
    return "".join(parts)


def render_decisions(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    body = "".join(f"<tr><td>{esc(r['decision'])}</td><td>{esc(r['to'])}</td>"
                   f"<td class=num>{int(r['taken']):,}</td>"
                   f"<td class=num>{float(r['share']):.0%}</td></tr>" for r in rows)
    return ('<h3>Decisions</h3><table class="decisions"><thead><tr><th>At</th><th>Went to'
            '</th><th class=num>Times</th><th class=num>Share</th></tr></thead>'
            f"<tbody>{body}</tbody></table>")


_SCRIPT = """
(function(){
var data=JSON.parse(document.getElementById('report-data').textContent);
var rows=data.distributors||[],win=data.window_days;
var sel=document.getElementById('f-cohort'),from=document.getElementById('f-from'),
to=document.getElementById('f-to'),status=document.getElementById('f-status');
function km(list){var n=list.length,s=1,i=0;list=list.slice().sort(function(a,b){
return a.days-b.days;});while(i<list.length){var t=list[i].days,d=0,c=0;
while(i<list.length&&list[i].days===t){if(list[i].sold)d++;else c++;i++;}
if(d&&t<=win)s*=1-d/n;n-=d+c;}return 1-s;}
function inside(week,date){var c=sel.value,f=from.value,e=to.value;
return (!c||week===c)&&(!f||date>=f)&&(!e||date<=e);}
function apply(){var shown=rows.filter(function(r){return inside(r.week,r.enrolled);});
var sold=shown.filter(function(r){return r.sold;}).length;
document.querySelectorAll('[data-week]').forEach(function(el){
el.style.display=inside(el.getAttribute('data-week'),el.getAttribute('data-date')||
el.getAttribute('data-week'))?'':'none';});
var weeks={};shown.forEach(function(r){weeks[r.week]=1;});
document.querySelectorAll('#km-cohorts .km-curve').forEach(function(g){
g.style.display=weeks[g.getAttribute('data-group')]?'':'none';});
status.textContent=shown.length+' of '+rows.length+' distributors; '+sold+
' first sale(s) within '+win+' days; Kaplan–Meier share by day '+win+': '+
(shown.length?Math.round(100*km(shown))+'%':'–');}
function save(){var h='cohort='+encodeURIComponent(sel.value)+'&from='+from.value+
'&to='+to.value;if(history.replaceState)history.replaceState(null,'','#'+h);apply();}
location.hash.replace(/^#/,'').split('&').forEach(function(kv){var p=kv.split('=');
var v=decodeURIComponent(p[1]||'');if(p[0]==='cohort')sel.value=v;
if(p[0]==='from')from.value=v;if(p[0]==='to')to.value=v;});
[sel,from,to].forEach(function(el){el.addEventListener('input',save);});
document.getElementById('f-reset').addEventListener('click',function(){
sel.value='';from.value='';to.value='';save();});apply();})();
"""


def script_hash() -> str:
    """The CSP source that allows exactly the inline script."""
    digest = hashlib.sha256(_SCRIPT.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _json_block(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    # inside <script> only "</" could end the block early; \\u003c keeps the JSON equal
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_filter(view: Mapping[str, Any] | None) -> tuple[str, str]:
    """(the filter bar and distributor table, the data block and script)."""
    if not view:
        return "", ""
    weeks = sorted({r["week"] for r in view["distributors"]})
    options = "".join(f'<option value="{esc(w)}">{esc(w)}</option>' for w in weeks)
    bar = ('<form class="filter" id="filter" onsubmit="return false">'
           '<label>Enrollment week <select id="f-cohort"><option value="">all</option>'
           f"{options}</select></label> <label>enrolled from "
           '<input type="date" id="f-from"></label> <label>to <input type="date" id="f-to">'
           '</label> <button type="button" id="f-reset">Show all</button>'
           '<p id="f-status" class="note" aria-live="polite">Filtering needs JavaScript; '
           "every distributor is shown.</p></form>")
    body = "".join(
        f'<tr data-week="{esc(r["week"])}" data-date="{esc(r["enrolled"])}">'
        f'<td>{esc(r["id"])}</td><td>{esc(r["enrolled"])}</td><td>{esc(r["week"])}</td>'
        f'<td class=num>{"yes" if r["sold"] else ("not yet" if r["inside"] else "no")}</td>'
        f'<td class=num>{r["days"]:.1f}</td><td>{esc(r["variant"] or "–")}</td></tr>'
        for r in view["distributors"])
    table = ('<details class="distributors"><summary>Distributors in the selection</summary>'
             '<table><thead><tr><th>Distributor</th><th>Enrolled</th><th>Week</th>'
             '<th class=num>First sale in window</th><th class=num>Days observed / to sale'
             "</th><th>Content shown</th></tr></thead>"
             f"<tbody>{body}</tbody></table></details>")
    data = {"window_days": view["window_days"], "distributors": view["distributors"]}
    tail = (f'<script type="application/json" id="report-data">{_json_block(data)}</script>'
            f"<script>{_SCRIPT}</script>")
    return bar + table, tail
