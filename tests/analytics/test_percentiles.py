"""Per-group continuous percentiles (`analytics._sql.percentiles`): SQLite's sorted temporary
table, its groups' spans found by probing row ids, gives PostgreSQL's `percentile_cont`."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import Column, Float, MetaData, String, Table, create_engine, insert, select

from analytics._sql import percentiles


def percentile_cont(values: list[float], p: float) -> float:
    ordered = sorted(values)
    pos = p * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@pytest.mark.parametrize("sizes", [[1], [1, 1, 1], [2, 3, 1, 64, 5, 1, 33, 2], [257, 1, 1000]])
def test_percentiles_per_group(db_url: str, sizes: list[int]) -> None:
    rng = random.Random(len(sizes))
    rows = [(f"step{n:02d}", rng.choice([float(rng.randint(0, 9)), rng.random() * 100]))
            for n, size in enumerate(sizes) for _ in range(size)]
    rng.shuffle(rows)
    table = Table("visits", MetaData(), Column("g", String), Column("v", Float))
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            table.create(conn)
            conn.execute(insert(table), [{"g": g, "v": v} for g, v in rows])
            conn.execute(insert(table), [{"g": "step00", "v": None}])  # nulls do not count
            found = percentiles(conn, select(table.c.g, table.c.v), (0.5, 0.9))
            table.drop(conn)
    finally:
        engine.dispose()
    groups: dict[str, list[float]] = {}
    for g, v in rows:
        groups.setdefault(g, []).append(v)
    assert found.keys() == groups.keys()
    for g, values in groups.items():
        assert found[g] == pytest.approx((percentile_cont(values, 0.5),
                                          percentile_cont(values, 0.9)))
