"""Seeded decision logs at a realistic volume: three items shown uniformly at random to 9,000
prospects over 90 days, base conversion 12%, one item optionally dropping from a given day."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

START = datetime(2025, 1, 1)
ITEMS = ("video_a", "video_b", "video_c")
HORIZON = timedelta(days=14)


def quarter_log(seed: int, *, drop: float = 0.0, drop_day: float = 30.0, item: str = "video_b",
                prospects: int = 9000, days: float = 90.0, base: float = 0.12
                ) -> dict[str, np.ndarray[Any, Any]]:
    """A decision table (the columns `detect_table` reads); the offer comes 0-48 h after the
    prospect's start; `item`'s rate is `base`·(1 - drop) for offers from `drop_day` on."""
    rng = np.random.default_rng(seed)
    start_day = np.sort(rng.uniform(0, days, prospects))
    offset_h = rng.uniform(0, 48, prospects)
    offer_day = start_day + offset_h / 24
    shown = np.array(ITEMS, dtype=object)[rng.integers(0, len(ITEMS), prospects)]
    rate = np.where((shown == item) & (offer_day >= drop_day), base * (1 - drop), base)
    at = np.datetime64(START, "us") + (offer_day * 86_400_000_000).astype("timedelta64[us]")
    keep = offer_day < days
    return {"hook": np.full(keep.sum(), "intro_video", dtype=object), "shown": shown[keep],
            "at": at[keep], "hours_since_start": offset_h[keep],
            "reward": (rng.random(prospects) < rate).astype(np.int8)[keep]}


def end_of(days: float = 90.0) -> datetime:
    return START + timedelta(days=days)
