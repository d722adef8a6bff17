"""Kaplan–Meier curves as an inline SVG chart: the share with a first sale by each day since
enrollment, one step line per group with its 95% band shaded, and a legend.

Input is plain rows (`Curve.to_dict()`), so the chart does not care which query produced
them. Each curve is a `<g class="km-curve" data-group="...">`, so a page can show or hide
groups without redrawing. No script, no fonts or styles fetched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from analytics._svgtext import FONT, esc, num

__all__ = ["PALETTE", "survival_chart"]

# ColorBrewer Dark2: distinct for up to eight groups, readable by most colour-blind viewers.
PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
           "#666666")
_W, _H = 640, 300
_LEFT, _TOP, _RIGHT, _BOTTOM = 56, 36, 200, 44


def _x(days: float, window: float) -> float:
    return _LEFT + (_W - _LEFT - _RIGHT) * min(days, window) / window


def _y(share: float) -> float:
    return _TOP + (_H - _TOP - _BOTTOM) * (1.0 - share)


def _step_points(points: Sequence[Mapping[str, Any]], key: str, window: float) -> list[str]:
    out = [f"{num(_x(0, window))},{num(_y(0.0))}"]
    level = 0.0
    for p in points:
        if p["days"] > window:
            break
        x = _x(float(p["days"]), window)
        out.append(f"{num(x)},{num(_y(level))}")
        level = float(p[key])
        out.append(f"{num(x)},{num(_y(level))}")
    out.append(f"{num(_x(window, window))},{num(_y(level))}")
    return out


def survival_chart(curves: Sequence[Mapping[str, Any]], *, window_days: int,
                   title: str = "Time to first sale") -> str:
    """One step line per curve (at most len(PALETTE)), the band shaded behind it."""
    window = float(window_days)
    parts = [f'<text x="{_LEFT}" y="20" font-size="14" font-weight="bold">{esc(title)}</text>']
    for tick in range(0, 101, 25):
        y = _y(tick / 100)
        parts.append(f'<line x1="{_LEFT}" y1="{num(y)}" x2="{num(_x(window, window))}" '
                     f'y2="{num(y)}" stroke="#e3e3e3"/>'
                     f'<text x="{_LEFT - 6}" y="{num(y + 4)}" font-size="11" '
                     f'text-anchor="end">{tick}%</text>')
    step = 7 if window_days > 21 else (2 if window_days > 7 else 1)
    for day in range(0, window_days + 1, step):
        x = _x(day, window)
        parts.append(f'<text x="{num(x)}" y="{_H - _BOTTOM + 16}" font-size="11" '
                     f'text-anchor="middle">{day}</text>')
    parts.append(f'<text x="{num((_LEFT + _x(window, window)) / 2)}" y="{_H - 8}" '
                 'font-size="11" text-anchor="middle">days since enrollment</text>'
                 f'<text x="14" y="{num(_y(0.5))}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 14 {num(_y(0.5))})">with a first sale</text>')
    for n, curve in enumerate(curves[:len(PALETTE)]):
        colour = PALETTE[n]
        points = curve.get("points") or []
        upper = _step_points(points, "upper", window)
        lower = _step_points(points, "lower", window)
        band = " ".join(upper + list(reversed(lower)))
        line = " ".join(_step_points(points, "share", window))
        label = str(curve.get("label", ""))
        share = float(curve.get("share_within") or 0.0)
        y = _TOP + 18 * n
        legend_x = _W - _RIGHT + 16
        parts.append(
            f'<g class="km-curve" data-group="{esc(label)}">'
            f"<title>{esc(label)}: {share:.0%} by day {window_days} "
            f'({float(curve.get("lower") or 0):.0%}–{float(curve.get("upper") or 0):.0%}), '
            f'{int(curve.get("subjects") or 0)} distributors</title>'
            f'<polygon points="{band}" fill="{colour}" fill-opacity="0.15" stroke="none"/>'
            f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2.5"/>'
            f'<rect x="{legend_x}" y="{y - 9}" width="14" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 20}" y="{y}" font-size="11">{esc(label[:22])} '
            f"{share:.0%}</text></g>")
    if not curves:
        parts.append(f'<text x="{_LEFT + 10}" y="{num(_y(0.5))}" font-size="12">'
                     "No distributor has enrolled yet.</text>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="km-chart" role="img" '
            f'viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" font-family="{FONT}">'
            f"<title>{esc(title)}</title>"
            f'<rect width="{_W}" height="{_H}" fill="#ffffff"/>' + "".join(parts) + "</svg>")
