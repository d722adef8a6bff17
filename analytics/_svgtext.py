"""Small pieces shared by the SVG drawings: escaping, numbers, wrapped text, colours.

Everything a drawing prints comes through `esc` or `num`: names come from BPMN files and the
database, which we do not control, so no value reaches the markup unescaped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

FONT = "Arial, Helvetica, sans-serif"
# Average advance of a sans-serif glyph as a share of the font size: no font metrics are
# available when building markup, and names only need to wrap roughly where a modeler would.
CHAR_WIDTH = 0.52

# Characters XML 1.0 forbids even when escaped; they would make the SVG not well-formed.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def esc(value: object) -> str:
    """Text or attribute value safe inside markup (quotes escaped too)."""
    text = _NOT_XML.sub("\ufffd", str(value))
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def num(value: float) -> str:
    """A coordinate: at most two decimals, no exponent, never NaN."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def text_width(text: str, size: float) -> float:
    return len(text) * size * CHAR_WIDTH


def wrap(text: str, width: float, size: float, max_lines: int | None = None) -> list[str]:
    """Break `text` into lines about `width` wide; over-long words are cut, and a last line
    that had to drop text ends with an ellipsis."""
    per_line = max(1, int(width / (size * CHAR_WIDTH)))
    lines: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > per_line:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:per_line])
            word = word[per_line:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= per_line:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if max_lines is not None and len(lines) > max_lines:
        kept = lines[:max(1, max_lines)]
        kept[-1] = kept[-1][:max(1, per_line - 1)].rstrip() + "…"
        return kept
    return lines


def text_block(lines: Sequence[str], x: float, y: float, size: float, *,
               anchor: str = "middle", css_class: str = "", fill: str | None = None) -> str:
    """A <text> with one <tspan> per line; `y` is the first line's baseline."""
    if not lines:
        return ""
    attrs = f' class="{esc(css_class)}"' if css_class else ""
    if fill:
        attrs += f' fill="{esc(fill)}"'
    spans = "".join(
        f'<tspan x="{num(x)}" dy="{num(0 if i == 0 else size * 1.2)}">{esc(line)}</tspan>'
        for i, line in enumerate(lines))
    return (f'<text x="{num(x)}" y="{num(y)}" font-size="{num(size)}" '
            f'text-anchor="{anchor}"{attrs}>{spans}</text>')


def hex_rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def rgb_hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def is_dark(colour: str) -> bool:
    """Whether white text reads better than black on this fill (relative luminance)."""
    r, g, b = (c / 255 for c in hex_rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5
