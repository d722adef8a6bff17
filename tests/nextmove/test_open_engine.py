"""`nextmove.open_engine`, the one way in: a ready engine with store, recommender, catalogs
and clock; it never reads the environment. `nextmove.load` checks maps with their catalogs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import nextmove
from content_catalog import StoredRecommender
from engine import ManualClock, StoreError
from engine import load as load_maps_only
from nextmove import load, open_engine, open_store
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
US = {"market": "US", "locale": "en-US"}


def test_the_public_api_is_what_all_names() -> None:
    assert sorted(nextmove.__all__) == [
        "CONTENT_CATALOGS", "ContentCatalogs", "load", "open_engine", "open_store"]
    assert all(getattr(nextmove, name) is not None for name in nextmove.__all__)


def test_an_opened_engine_deploys_the_catalog_and_recommends(
    db_url: str, clock: ManualClock
) -> None:
    engine = open_engine(db_url, clock=clock)
    try:
        deployed = engine.deploy([LIFEVANTAGE])
        assert [c.name for c in deployed.catalogs] == ["lifevantage-us"]
        assert isinstance(engine.recommender, StoredRecommender)
        assert engine.clock is clock
        engine.start("prospect_journey", "p1", "d1", US)
        (card,) = engine.cards("d1")
        assert card.hook == "first_contact_message" and card.content
        assert sum(s.top for s in card.content) == 1 and card.propensity is not None
    finally:
        engine.store.dispose()


def test_without_recommend_the_engine_deploys_catalogs_but_ranks_nothing(
    tmp_path: Path, clock: ManualClock
) -> None:
    engine = open_engine(tmp_path / "quiet.db", clock=clock, recommend=False)
    assert [c.name for c in engine.deploy([LIFEVANTAGE]).catalogs] == ["lifevantage-us"]
    engine.start("prospect_journey", "p1", "d1", US)
    (card,) = engine.cards("d1")
    assert engine.recommender is None and card.content == ()
    engine.store.dispose()


def test_the_environment_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEXTMOVE_DB", str(tmp_path / "from-env.db"))
    engine = open_engine()
    engine.store.dispose()
    assert engine.store.url == "sqlite:///nextmove.db"
    assert (tmp_path / "nextmove.db").exists() and not (tmp_path / "from-env.db").exists()


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    shutil.copyfile(__file__, path)  # a text file: neither empty nor nextmove's
    with pytest.raises(StoreError, match="is not a nextmove database"):
        open_store(path)


def test_load_cross_checks_maps_and_catalogs(tmp_path: Path) -> None:
    shutil.copytree(LIFEVANTAGE, tmp_path / "lv")
    journey = tmp_path / "lv" / "prospect_journey.yaml"
    journey.write_text(journey.read_text(encoding="utf-8").replace(
        "hook: intro_video", "hook: intro_vidoe"), encoding="utf-8")
    report = load([tmp_path / "lv"])
    assert len(report.catalogs) == 1
    unknown = [p for p in report.errors if p.code == "unknown-hook"]
    assert [(p.element, p.suggestion) for p in unknown] == [("share_intro", "intro_video")]
    assert not any(p.code == "unknown-hook" for p in load_maps_only([tmp_path / "lv"]).problems)
