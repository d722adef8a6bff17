"""The reviewer's report: open findings, findings accepted (in the map or by a reviewer's
sign-off), and the runtime evidence of what contractors did at each step — as Markdown or as
a self-contained HTML page.

    text = review_markdown(audit(paths, signoffs=signoffs(store)), trail_summary(store))
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from compliance.audit import DEFAULT_FAIL_ON, AuditReport, Finding
from compliance.catalogue import DOC, RULES_BY_ID
from compliance.report import signoff_line
from compliance.trail import StepTrail, TrailSummary

_TITLE = "nextmove compliance review"


def _steps(report: AuditReport, summary: TrailSummary | None) -> list[StepTrail]:
    audited = {m.process for m in report.maps}
    return [s for s in summary.steps if s.process in audited] if summary else []


def _result(report: AuditReport) -> str:
    threshold = report.fail_on or DEFAULT_FAIL_ON
    open_ = report.unacknowledged(threshold)
    if report.failed(threshold):
        return (f"FAILED: {len(open_)} open finding(s) at or above {threshold}"
                + (f"; {len(report.problems)} file(s) could not be audited"
                   if report.problems else ""))
    return f"PASSED: no open finding at or above {threshold}"


def _accepted(report: AuditReport) -> list[Finding]:
    return [f for f in report.findings if f.acknowledged or f.signed_off]


def _why_accepted(f: Finding) -> str:
    if f.signoff is not None:
        return signoff_line(f)
    return f"Justified in the map: {f.justification}"


def _evidence_rows(steps: Iterable[StepTrail]) -> list[tuple[str, ...]]:
    return [(s.process, s.name, s.control, str(s.offered), str(s.followed), str(s.skipped),
             str(s.varied), f"{s.deviation_share:.0%}") for s in steps]


_EVIDENCE_HEAD = ("process", "step", "control", "offered", "followed", "skipped", "varied",
                  "contractors who deviated")


def review_markdown(report: AuditReport, summary: TrailSummary | None = None) -> str:
    """The reviewer's report as Markdown."""
    out = [f"# {_TITLE}", "", f"**Result: {_result(report)}.**", "",
           f"Maps: {', '.join(f'`{m.process}`' for m in report.maps) or 'none'}.", "",
           "## Open findings", ""]
    open_ = [f for f in report.findings if not f.acknowledged and not f.signed_off]
    out += [f"- **{f.id}** ({f.severity}; {RULES_BY_ID[f.rule].title}) at `{f.file}"
            f"{':' + str(f.line) if f.line else ''}`: {f.message}. Fix: {f.fix}. "
            f"[Why]({DOC}#{RULES_BY_ID[f.rule].anchor})" for f in open_] or ["None."]
    out += ["", "## Accepted findings (signed off or justified in the map)", ""]
    out += [f"- **{f.id}** ({f.severity}): {f.message}.\n  - {_why_accepted(f)}"
            for f in _accepted(report)] or ["None."]
    if report.notes:
        out += ["", "## Notes", ""] + [f"- {n.message}" for n in report.notes]
    out += ["", "## What contractors did (runtime evidence)", ""]
    rows = _evidence_rows(_steps(report, summary))
    if rows:
        out += ["| " + " | ".join(_EVIDENCE_HEAD) + " |",
                "|---|---|---|" + "---:|" * (len(_EVIDENCE_HEAD) - 3)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        out.append("No runtime trail for these maps yet.")
    return "\n".join(out) + "\n"


def _e(text: object) -> str:
    return html.escape(str(text))


def review_html(report: AuditReport, summary: TrailSummary | None = None) -> str:
    """The reviewer's report as one self-contained HTML page (no scripts, no external
    files)."""
    open_ = [f for f in report.findings if not f.acknowledged and not f.signed_off]
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{_TITLE}</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
             "padding:0 1rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:.25rem .5rem}td.n{text-align:right}.open{color:#a00}</style>",
             "</head><body>", f"<h1>{_TITLE}</h1>",
             f'<p class="result"><strong>Result: {_e(_result(report))}.</strong></p>',
             '<h2 id="open">Open findings</h2>']
    if open_:
        parts.append("<ul>")
        parts += [f'<li class="open"><strong>{_e(f.id)}</strong> ({_e(f.severity)}; '
                  f"{_e(RULES_BY_ID[f.rule].title)}): {_e(f.message)}. Fix: {_e(f.fix)}. "
                  f'<a href="{_e(DOC)}#{_e(RULES_BY_ID[f.rule].anchor)}">Why</a></li>'
                  for f in open_]
        parts.append("</ul>")
    else:
        parts.append("<p>None.</p>")
    parts.append('<h2 id="accepted">Accepted findings (signed off or justified in the map)'
                 "</h2>")
    accepted = _accepted(report)
    if accepted:
        parts.append("<ul>")
        parts += [f"<li><strong>{_e(f.id)}</strong> ({_e(f.severity)}): {_e(f.message)}."
                  f"<br>{_e(_why_accepted(f))}</li>" for f in accepted]
        parts.append("</ul>")
    else:
        parts.append("<p>None.</p>")
    if report.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n.message)}</li>"
                                                    for n in report.notes) + "</ul>")
    parts.append('<h2 id="evidence">What contractors did (runtime evidence)</h2>')
    rows = _evidence_rows(_steps(report, summary))
    if rows:
        parts.append("<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>"
                                                    for h in _EVIDENCE_HEAD) + "</tr></thead>")
        parts.append("<tbody>" + "".join(
            "<tr>" + "".join(f'<td{" class=n" if i > 2 else ""}>{_e(v)}</td>'
                             for i, v in enumerate(r)) + "</tr>" for r in rows) + "</tbody>")
        parts.append("</table>")
    else:
        parts.append("<p>No runtime trail for these maps yet.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
