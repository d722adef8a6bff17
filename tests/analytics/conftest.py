"""Fixtures of the analytics tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench._million import build
from engine import Store


@pytest.fixture(scope="session")
def journeys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """400 LifeVantage prospect journeys over 8 distributors, written by the real engine
    (`bench._million`, seed 5), in an SQLite file: read-only for the tests that use it."""
    path = build(tmp_path_factory.mktemp("journeys") / "journeys.db", 400, 8, 5)
    store = Store(f"sqlite:///{path}")
    store.prepare()
    yield store
    store.dispose()
