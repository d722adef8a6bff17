"""Fixtures for the engine tests: LifeVantage deployed with the stored recommender.

Most tests start from a copy of one SQLite file with LifeVantage deployed (deploying costs far
more than copying); those that need both backends deploy into the root conftest's `db_url`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import Engine, ManualClock
from nextmove import open_engine, open_store
from tests.engine._lifevantage import LIFEVANTAGE, T0, recommending_engine


@pytest.fixture(scope="module")
def sqlite_deployed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lifevantage") / "deployed.db"
    store = open_store(f"sqlite:///{path}")
    open_engine(store, clock=ManualClock(T0), recommend=False).deploy([LIFEVANTAGE])
    store.dispose()  # closes the last connection: the WAL is merged into the file
    return path


@pytest.fixture
def lv(db_url: str, clock: ManualClock) -> Iterator[Engine]:
    """LifeVantage on a real SQLite file and on a real PostgreSQL database."""
    store = open_store(db_url)
    engine = recommending_engine(store, clock)
    engine.deploy([LIFEVANTAGE])
    yield engine
    store.dispose()


@pytest.fixture
def lv_sqlite(sqlite_deployed: Path, tmp_path: Path, clock: ManualClock) -> Iterator[Engine]:
    """LifeVantage on a copy of the deployed SQLite file."""
    target = tmp_path / "nextmove.db"
    shutil.copyfile(sqlite_deployed, target)
    store = open_store(f"sqlite:///{target}")
    yield recommending_engine(store, clock)
    store.dispose()
