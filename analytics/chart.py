"""The funnel as an inline SVG bar chart: per step, how many arrived, completed, dropped out,
and how many of those who passed went on to the outcome.

Input is plain rows (the funnel's `to_dict()` per step, or any mapping with the same keys), so
the chart does not care which query produced them. No script, no fonts or styles fetched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from analytics._svgtext import FONT, esc, num, text_block, wrap

__all__ = ["SERIES", "funnel_chart"]

# (row key, legend label, colour): blues and greys, kept apart from the map's heat scale.
SERIES = (
    ("entered", "Entered", "#9ecae1"),
    ("completed", "Completed", "#2171b5"),
    ("dropped", "Dropped out", "#636363"),
)
_LABEL_WIDTH = 190
_BAR_AREA = 440
_RIGHT = 230
_BAR = 9
_GAP = 2
_ROW_GAP = 12
_TOP = 44
_CONVERSION_X = _LABEL_WIDTH + _BAR_AREA + 50  # clear of the longest bar's count


def funnel_chart(rows: Sequence[Mapping[str, Any]], *, outcome: str | None = None,
                 title: str = "Funnel by step") -> str:
    """A horizontal grouped bar chart, one group per step in the order given.

    Bars are drawn for the series in `SERIES` that the rows carry; a row's `conversion`
    (0..1), when present, is printed at the right as the share that reached `outcome`.
    """
    series = [s for s in SERIES if any(s[0] in row for row in rows)]
    scale_max = max((_count(row, key) for row in rows for key, _, _ in series), default=0)
    group_height = len(series) * (_BAR + _GAP) - _GAP
    width = _LABEL_WIDTH + _BAR_AREA + _RIGHT
    height = _TOP + max(1, len(rows)) * (group_height + _ROW_GAP) + 28
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="funnel-chart" role="img" '
        f'viewBox="0 0 {width} {num(height)}" width="{width}" height="{num(height)}" '
        f'font-family="{FONT}">',
        f"<title>{esc(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{num(height)}" fill="#ffffff"/>',
        _legend(series, outcome),
    ]
    if not rows:
        parts.append(f'<text x="{_LABEL_WIDTH}" y="{_TOP + 14}" font-size="12" fill="#555555">'
                     "No arrivals recorded yet.</text>")
    for index, row in enumerate(rows):
        top = _TOP + index * (group_height + _ROW_GAP)
        parts.append(_row(row, top, group_height, series, scale_max))
    axis_y = _TOP + len(rows) * (group_height + _ROW_GAP) - _ROW_GAP / 2
    parts.append(f'<line x1="{_LABEL_WIDTH}" y1="{_TOP - 6}" x2="{_LABEL_WIDTH}" '
                 f'y2="{num(axis_y)}" stroke="#222222" stroke-width="1"/>')
    parts.append(f'<text x="{_LABEL_WIDTH}" y="{num(axis_y + 16)}" font-size="10" '
                 f'fill="#555555">0</text>'
                 f'<text x="{_LABEL_WIDTH + _BAR_AREA}" y="{num(axis_y + 16)}" font-size="10" '
                 f'text-anchor="end" fill="#555555">{scale_max:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _count(row: Mapping[str, Any], key: str) -> int:
    value = row.get(key)
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def _legend(series: list[tuple[str, str, str]], outcome: str | None) -> str:
    x = _LABEL_WIDTH
    items = []
    for _, label, colour in series:
        items.append(f'<rect x="{x}" y="12" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{x + 17}" y="22" font-size="12">{esc(label)}</text>')
        x += 30 + len(label) * 7
    # several outcomes (a+b) break at their "+", within the chart's right margin
    reached = f"reached {outcome.replace('+', ' + ')}" if outcome else "reached the outcome"
    lines = wrap(reached, _RIGHT - 60, 12, 2)
    items.append('<g font-weight="bold">'
                 + text_block(lines, _CONVERSION_X, 22, 12, anchor="start") + "</g>")
    return f'<g class="legend">{"".join(items)}</g>'


def _row(row: Mapping[str, Any], top: float, group_height: float,
         series: list[tuple[str, str, str]], scale_max: int) -> str:
    name = str(row.get("step_name") or row.get("step_id") or "")
    lines = wrap(name, _LABEL_WIDTH - 16, 12, 2)
    middle = top + group_height / 2
    label = text_block(lines, _LABEL_WIDTH - 8, middle + 4 - (len(lines) - 1) * 7, 12,
                       anchor="end")
    bars = []
    tip = [name]
    for i, (key, legend, colour) in enumerate(series):
        value = _count(row, key)
        tip.append(f"{legend}: {value:,}")
        length = _BAR_AREA * value / scale_max if scale_max else 0
        y = top + i * (_BAR + _GAP)
        bars.append(f'<rect class="bar {esc(key)}" x="{_LABEL_WIDTH}" y="{num(y)}" '
                    f'width="{num(max(length, 0.0))}" height="{_BAR}" fill="{colour}"/>'
                    f'<text x="{num(_LABEL_WIDTH + length + 4)}" y="{num(y + _BAR - 1)}" '
                    f'font-size="9" fill="#333333">{value:,}</text>')
    conversion = row.get("conversion")
    right = ""
    if isinstance(conversion, int | float):
        tip.append(f"Reached the outcome: {conversion:.1%}")
        right = (f'<text x="{_CONVERSION_X}" y="{num(middle + 4)}" '
                 f'font-size="12">{conversion:.0%}</text>')
    return (f'<g class="step" data-step="{esc(row.get("step_id", ""))}">'
            f"<title>{esc(chr(10).join(tip))}</title>{label}{''.join(bars)}{right}</g>")
