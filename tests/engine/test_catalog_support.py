"""An engine given no `CatalogSupport` deploys maps only and says which catalogs it skipped
(`nextmove.open_engine` gives it the content catalog's: tests/nextmove)."""

from __future__ import annotations

from pathlib import Path

from engine import Engine, ManualClock, load
from nextmove import open_store
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"


def test_a_bare_engine_skips_catalogs_and_says_so(tmp_path: Path, clock: ManualClock) -> None:
    engine = Engine(open_store(tmp_path / "bare.db"), clock=clock)
    assert engine.deploy([LIFEVANTAGE]).catalogs == []
    engine.store.dispose()
    skipped = [p for p in load([LIFEVANTAGE]).problems if p.code == "catalog-skipped"]
    assert [(p.file, p.severity) for p in skipped] == [(str(LIFEVANTAGE / "catalog.yaml"),
                                                        "warning")]
