"""Shared fixtures: real SQLite files always, real PostgreSQL when reachable (always in CI)."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from engine import Engine, ManualClock
from nextmove import open_engine, open_store

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CORPORA = FIXTURES / "corpora"  # real files made by others: see its SOURCES.md
LOGS = CORPORA / "logs"
# Stored gzipped to keep the repository small; the tests read the original bytes.
INFLATED = {
    "receipt.csv": "8d00a7d15e02796ae262336d304a7265a158956e8914aeb8ee2242f37d778854",
}
PG_ADMIN_URL = os.environ.get("NEXTMOVE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_reachable() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


PG_AVAILABLE = _pg_reachable()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true",
                     help="also run the tests marked long (many minutes each: make test-long)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--long"):  # deselected, not skipped: they are a separate run
        long = [item for item in items if "long" in item.keywords]
        if long:
            config.hook.pytest_deselected(items=long)
            items[:] = [item for item in items if "long" not in item.keywords]
    if PG_AVAILABLE:
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL}; in CI the PostgreSQL tests must run"
        )
    skip = pytest.mark.skip(reason="PostgreSQL not reachable (tests run on SQLite only)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def inflate(packed: Path, out: Path, sha256: str) -> Path:
    """Write `packed` (gzip) to `out` and check it is the original file, byte for byte."""
    with gzip.open(packed, "rb") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest == sha256, f"{packed} does not inflate to the recorded file"
    return out


@pytest.fixture(scope="session")
def corpus_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus event logs as the files they were upstream (`receipt.csv` inflated)."""
    out = tmp_path_factory.mktemp("corpus_logs")
    for path in LOGS.iterdir():
        if path.name.removesuffix(".gz") not in INFLATED:
            shutil.copyfile(path, out / path.name)
    for name, sha256 in INFLATED.items():
        inflate(LOGS / f"{name}.gz", out / name, sha256)
    return out


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A database with nextmove's schema, copied for each test (much faster than creating it)."""
    name = f"nextmove_tmpl_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    open_store(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}").dispose()
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database with nextmove's (empty) schema for one test, then dropped."""
    name = f"nextmove_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
            ), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on a real SQLite file and on a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nextmove.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))


@pytest.fixture
def engine(db_url: str, clock: ManualClock) -> Iterator[Engine]:
    eng = open_engine(db_url, clock=clock, recommend=False)
    yield eng
    eng.store.dispose()
