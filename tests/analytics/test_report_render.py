"""The report as a person sees it: a simulated field force runs the LifeVantage journeys, the
report is written, headless Chromium draws the page to PNG, and the pixels must show the map
with its heated steps (not just a file that exists)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from collections import deque
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from lxml import html

from analytics._svgtext import hex_rgb
from analytics.report import write_report
from engine import ManualClock
from nextmove import open_store
from simulator import SimulationConfig, simulate

WINDOW = (1400, 1100)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "headless Chromium is needed to render the report (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def decode_png(data: bytes) -> np.ndarray:
    """An 8-bit, non-interlaced RGB(A) PNG as a height x width x 3 array (what Chromium
    writes); rows are un-filtered as the PNG specification says."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks = 8, []
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6), "unexpected PNG format"
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            chunks.append(body)
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    image = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=start + 1)
        if kind == 0:
            row = line.copy()
        elif kind == 1:  # Sub: a running sum per channel, wrapping at 256
            row = np.cumsum(line.reshape(width, channels), axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:  # Up
            row = line + previous
        else:  # Average and Paeth depend on the byte just decoded: one at a time
            row = np.frombuffer(_unfilter(kind, bytearray(line.tobytes()),
                                          previous.tobytes(), channels), dtype=np.uint8)
        image[y] = row
        previous = row
    return image.reshape(height, width, channels)[:, :, :3]


def _unfilter(kind: int, row: bytearray, up: bytes, channels: int) -> bytes:
    for i in range(len(row)):
        a = row[i - channels] if i >= channels else 0
        b = up[i]
        if kind == 3:
            row[i] = (row[i] + ((a + b) >> 1)) & 0xFF
            continue
        c = up[i - channels] if i >= channels else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    return bytes(row)


def largest_blob(mask: np.ndarray) -> tuple[int, int, int, int, int]:
    """The largest 4-connected region of a mask: (pixels, left, top, right, bottom)."""
    seen = np.zeros_like(mask, dtype=bool)
    best = (0, 0, 0, 0, 0)
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        queue, count = deque([(y0, x0)]), 0
        seen[y0, x0] = True
        left, top, right, bottom = x0, y0, x0, y0
        while queue:
            y, x = queue.popleft()
            count += 1
            left, right, top, bottom = min(left, x), max(right, x), min(top, y), max(bottom, y)
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] \
                        and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        if count > best[0]:
            best = (count, int(left), int(top), int(right), int(bottom))
    return best


def test_the_rendered_page_shows_the_map_with_heated_steps(tmp_path: Path) -> None:
    browser = chromium()
    config = SimulationConfig(distributors=8, days=14, seed=3)
    store = open_store(f"sqlite:///{tmp_path / 'sim.db'}")
    try:
        simulate(store, config)
        clock = ManualClock(config.start + timedelta(days=config.days))
        report = tmp_path / "report.html"
        data = write_report(store, "prospect_journey", report, clock=clock, heat="dwell")
    finally:
        store.dispose()
    png = tmp_path / "report.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--force-color-profile=srgb", f"--screenshot={png}",
         f"--window-size={WINDOW[0]},{WINDOW[1]}", report.as_uri()],
        check=True, capture_output=True, timeout=120)
    image = decode_png(png.read_bytes())
    assert image.shape == (WINDOW[1], WINDOW[0], 3)

    # The heated tasks, and the fill each was given, read back from the page itself.
    page = html.fromstring(report.read_text(encoding="utf-8"))
    tasks = {g.get("data-element"): g.xpath("rect/@fill")[0]
             for g in page.xpath("//svg[contains(@class,'bpmn-map')]"
                                 "//g[contains(@class,'userTask') and contains(@class,'heated')]")}
    assert len(tasks) >= 4, f"expected several heated tasks, got {sorted(tasks)}"
    assert set(tasks) <= set(data.heat)
    for step, fill in tasks.items():
        painted = int(np.all(image == hex_rgb(fill), axis=2).sum())
        # a 100x80 task drawn at the page's scale, less its name and icon
        assert painted >= 1200, f"{step}: only {painted} pixels of its heat colour {fill}"

    # The hottest task is one solid box of its colour with a task's proportions (100 x 80).
    hottest = max(tasks, key=lambda step: data.heat[step])
    mask = np.all(image == hex_rgb(tasks[hottest]), axis=2)
    pixels, left, top, right, bottom = largest_blob(mask)
    width, height = right - left + 1, bottom - top + 1
    assert 1.1 < width / height < 1.45, (hottest, width, height)
    assert pixels > 0.6 * width * height

    # Ink: the map's outlines and flows are drawn in near-black across the map's width.
    ink = np.all(image < 60, axis=2)
    rows_with_map = ink[top - 150:bottom + 250]
    columns = np.nonzero(rows_with_map.any(axis=0))[0]
    assert rows_with_map.sum() > 3000
    assert columns.max() - columns.min() > WINDOW[0] * 0.6
