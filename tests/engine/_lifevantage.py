"""LifeVantage with the stored recommender, for the cards and outcomes tests (their fixtures
`lv`, `lv_sqlite` and `sqlite_deployed` are in tests/engine/conftest.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from engine import Engine, ManualClock, Store
from nextmove import open_engine
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # the conftest clock's start
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
US = {"market": "US", "locale": "en-US"}


def recommending_engine(store: Store, clock: ManualClock, *, seed: int = 1,
                        hot_instances: int = 2048) -> Engine:
    return open_engine(store, clock=clock, rng=random.Random(seed),
                       hot_instances=hot_instances)
