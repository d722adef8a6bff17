"""The report's per-person sections: leading indicators per distributor, and what contractors
did with the guidance at each step (the `audit --trail` evidence: followed, skipped, varied).

The trail summary comes from `compliance.trail_summary`, which the analytics layer may not
import: whoever writes the report (the `report` command) passes its `to_dict()` in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from analytics._svgtext import esc
from analytics.indicators import Indicators
from analytics.measures import first_sale_rule
from engine.store.database import Store

MAX_PEOPLE = 500  # distributors listed in the per-distributor table


def people_rows(store: Store, found: Indicators) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(one row per distributor of `found`, what the columns mean): activity counts by
    indicator, their prospects and conversions (the map's converting outcomes), days to the
    first sale and whether it came within the map's declared window."""
    rule = first_sale_rule(store)
    rows = [{"distributor_id": d.distributor_id, "enrolled": d.enrolled_at.date().isoformat(),
             **{f"count_{k}": v for k, v in d.counts.items()},
             "prospects": d.prospects, "converted": d.converted,
             "days_to_first_sale": d.days_to_first_sale,
             "first_sale_within": d.first_sale_within}
            for d in found.distributors]
    meta = {"indicators": [d.name for d in found.definitions],
            "first_sale": rule.name, "first_sale_outcome": rule.first,
            "window_days": found.window_days, "outcomes": list(found.outcomes),
            "distributors": len(rows), "prospects": found.prospects,
            "converted": found.converted}
    return rows, meta


def _num(value: Any, decimals: int = 0) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "–"}[value]
    if isinstance(value, int | float):
        return f"{value:,.{decimals}f}"
    return esc(str(value))


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def render_people(rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """The per-distributor table of leading indicators."""
    window = meta.get("window_days", 14)
    outcomes = " or ".join(meta.get("outcomes") or []) or "the outcome"
    head = ('<h2 id="people">Leading indicators per distributor</h2>'
            f'<p class="note">Counts since enrollment; converted: prospects who reached '
            f"{esc(outcomes)}; first sale: the map's <code>{esc(meta.get('first_sale', ''))}"
            f"</code> (the first <code>{esc(meta.get('first_sale_outcome', ''))}</code> "
            f"within {window} days; “–” while still inside the window).</p>")
    if not rows:
        return head + '<p class="empty">No distributor in this view has enrolled yet.</p>'
    names = list(meta.get("indicators") or [])
    cells = ["Distributor", "Enrolled", *(_label(n) for n in names), "Prospects",
             "Converted", "Days to first sale", f"First sale within {window} days"]
    thead = "".join(f"<th{' class=num' if i > 1 else ''}>{esc(c)}</th>"
                    for i, c in enumerate(cells))
    body = "".join(
        f"<tr><td>{esc(r['distributor_id'])}</td><td>{esc(r['enrolled'])}</td>"
        + "".join(f"<td class=num>{_num(r.get(f'count_{n}'))}</td>" for n in names)
        + f"<td class=num>{_num(r['prospects'])}</td><td class=num>{_num(r['converted'])}</td>"
        f"<td class=num>{_num(r['days_to_first_sale'], 1)}</td>"
        f"<td class=num>{_num(r['first_sale_within'])}</td></tr>"
        for r in rows[:MAX_PEOPLE])
    more = (f'<p class="note">The first {MAX_PEOPLE} of {len(rows):,} distributors; '
            "<code>nextmove indicators --json</code> lists them all.</p>"
            if len(rows) > MAX_PEOPLE else "")
    return (head + f'<table class="people"><thead><tr>{thead}</tr></thead>'
            f"<tbody>{body}</tbody></table>{more}")


def render_trail(trail: Mapping[str, Any] | None) -> str:
    """Per person's step: offered, followed, skipped, varied, and who deviated."""
    head = ('<h2 id="trail">Guidance followed, skipped, varied</h2>'
            '<p class="note">What contractors did with each card (the evidence of '
            "<code>nextmove audit --trail</code>): guidance people visibly skip and vary is a "
            "tool, not an order.</p>")
    if trail is None:
        return head + ('<p class="empty">Not included: <code>nextmove report --trail</code> '
                       "adds it (it reads the whole log; a report for a distributor or a "
                       "sponsor includes it).</p>")
    steps = trail.get("steps") or []
    if not steps:
        return head + '<p class="empty">Nobody has acted on a card yet.</p>'
    cells = ["Step", "Control", "Offered", "Followed", "Skipped", "Varied",
             "Contractors", "Deviated at least once"]
    thead = "".join(f"<th{' class=num' if i > 1 else ''}>{esc(c)}</th>"
                    for i, c in enumerate(cells))
    body = "".join(
        f"<tr><td>{esc(s['name'] or s['step'])}</td><td>{esc(s['control'])}</td>"
        + "".join(f"<td class=num>{_num(s[k])}</td>"
                  for k in ("offered", "followed", "skipped", "varied", "contractors"))
        + f"<td class=num>{_num(s['deviated'])} ({s['deviation_share']:.0%})</td></tr>"
        for s in steps)
    total = (f'<p class="note">{int(trail.get("deviated", 0)):,} of '
             f'{int(trail.get("contractors", 0)):,} contractors skipped or varied some step '
             f'at least once ({float(trail.get("deviation_share", 0.0)):.0%}).</p>')
    return head + f'<table class="trail"><thead><tr>{thead}</tr></thead><tbody>{body}' \
                  f"</tbody></table>{total}"
