from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.service._server import Running, running


@pytest.fixture
def api(db_url: str) -> Iterator[Running]:
    """A real server over a database with the LifeVantage maps, on SQLite and PostgreSQL."""
    with running(db_url) as run:
        yield run


@pytest.fixture
def sqlite_api(tmp_path: object) -> Iterator[Running]:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    with running(f"sqlite:///{tmp_path / 'nextmove.db'}") as run:
        yield run
