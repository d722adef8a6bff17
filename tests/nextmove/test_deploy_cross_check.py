"""A map and its catalog are accepted or refused the same way whether they are deployed together
or one at a time: a catalog deployed alone must fill the hooks of the maps already deployed,
and a map deployed alone must have its hooks filled by the catalog the database serves.
Nothing is stored when the deploy is refused."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from content_catalog import load_stored_catalog, store_catalog, stored_catalogs
from engine import DefinitionErrors, Engine, ManualClock
from nextmove import open_engine
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
JOURNEY, CATALOG = "prospect_journey.yaml", "catalog.yaml"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    shutil.copytree(LIFEVANTAGE, tmp_path / "lv")
    return tmp_path / "lv"


@pytest.fixture
def deployed(db_url: str, clock: ManualClock) -> Iterator[Engine]:
    engine = open_engine(db_url, clock=clock)
    engine.deploy([LIFEVANTAGE])
    yield engine
    engine.store.dispose()


def edited(path: Path, old: str, new: str, name: str | None = None) -> Path:
    text = path.read_text(encoding="utf-8")
    assert old in text
    out = path.with_name(name or path.name)
    out.write_text(text.replace(old, new), encoding="utf-8")
    return out


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if line.strip() == text)


def test_a_catalog_deployed_alone_must_fill_the_hooks_of_the_maps_already_deployed(
        deployed: Engine, files: Path) -> None:
    # no item fills nurture_message any more
    catalog = edited(files / CATALOG, "hooks: [intro_video, nurture_message]",
                     "hooks: [intro_video]")
    catalog = edited(catalog, "hooks: [nurture_message]", "hooks: [nurture_note]")
    with pytest.raises(DefinitionErrors) as caught:
        deployed.deploy([catalog])
    unknown = [(p.file, p.element, p.code, p.suggestion) for p in caught.value.problems]
    where = f"{LIFEVANTAGE / JOURNEY} (as deployed)"
    assert unknown == [(where, "check_in", "unknown-hook", "nurture_note"),
                       (where, "nurture", "unknown-hook", "nurture_note")]
    assert [c.version for c in stored_catalogs(deployed.store)] == [1]  # nothing stored
    # deployed with a map that no longer uses the hook, it is accepted
    journey = edited(files / JOURNEY, "hook: nurture_message", "hook: nurture_note")
    done = deployed.deploy([catalog, journey])
    assert [c.version for c in done.catalogs] == [2]


def test_a_catalog_deployed_alone_must_learn_from_a_step_the_deployed_maps_have(
        deployed: Engine, files: Path) -> None:
    catalog = edited(files / CATALOG, "intro_video: Event_wait_for_video_video_played",
                     "intro_video: Event_wait_for_video_video_playd")
    with pytest.raises(DefinitionErrors) as caught:
        deployed.deploy([catalog])
    (problem,) = caught.value.problems
    assert (problem.file, problem.code, problem.suggestion) == (
        str(catalog), "unknown-step", "Event_wait_for_video_video_played")
    assert problem.line == line_of(catalog, "intro_video: Event_wait_for_video_video_playd")


def test_a_map_deployed_alone_must_have_its_hooks_filled_by_the_stored_catalog(
        deployed: Engine, files: Path) -> None:
    journey = edited(files / JOURNEY, "hook: intro_video", "hook: intro_vidoe")
    before = deployed.definitions("prospect_journey")
    with pytest.raises(DefinitionErrors) as caught:
        deployed.deploy([journey])
    (problem,) = caught.value.problems
    assert (problem.file, problem.element, problem.code, problem.suggestion) == (
        str(journey), "share_intro", "unknown-hook", "intro_video")
    # the YAML step's line, not the compiled BPMN's
    assert problem.line == line_of(journey, "- id: share_intro")
    assert deployed.definitions("prospect_journey") == before  # nothing stored
    # the same map with the same catalog, deployed together: refused the same way
    with pytest.raises(DefinitionErrors) as together:
        deployed.deploy([journey, files / CATALOG])
    assert [(p.file, p.line, p.element) for p in together.value.problems
            if p.severity == "error"] == [(problem.file, problem.line, problem.element)]


def test_a_map_that_uses_the_catalogs_hooks_is_deployed_alone(
        deployed: Engine, files: Path) -> None:
    journey = edited(files / JOURNEY, "name: Stay in touch", "name: Keep in touch")
    (version,) = deployed.deploy([journey])
    assert (version.process_id, version.version, version.created) == (
        "prospect_journey", 2, True)


def test_with_no_catalog_stored_maps_deploy_alone(db_url: str, clock: ManualClock,
                                                   files: Path) -> None:
    engine = open_engine(db_url, clock=clock)
    try:
        journey = edited(files / JOURNEY, "hook: intro_video", "hook: intro_vidoe")
        (version,) = engine.deploy([journey])
        assert version.created
    finally:
        engine.store.dispose()


def test_the_stored_catalogs_quarrel_with_another_stored_map_is_not_this_deploys(
        tmp_path: Path, clock: ManualClock, files: Path) -> None:
    """A database can hold a map whose hook the catalog does not fill (deployed before any
    catalog was, or by an older nextmove): that does not refuse a deploy of another, sound
    map."""
    engine = open_engine(tmp_path / "mixed.db", clock=clock)
    try:
        engine.deploy([edited(files / JOURNEY, "hook: intro_video", "hook: intro_vidoe")])
        # stored as an older nextmove would have: without a check against the maps
        store_catalog(engine.store, (files / CATALOG).read_text(encoding="utf-8"),
                      str(files / CATALOG), clock=clock)
        onboarding = edited(files / "distributor_onboarding.bpmn", 'name="Welcome aboard"',
                            'name="Welcome on board"')
        (version,) = engine.deploy([onboarding])
        assert (version.process_id, version.version) == ("distributor_onboarding", 1)
        assert load_stored_catalog(engine.store).name == "lifevantage-us"
    finally:
        engine.store.dispose()


def test_a_new_catalog_is_not_refused_for_what_the_served_one_did_not_fill_either(
        tmp_path: Path, clock: ManualClock, files: Path) -> None:
    """Maps deployed before any catalog use a hook no catalog fills. A first catalog deployed
    alone is judged on every stored map; once one is served (here stored as an older nextmove
    would have), a new version is judged on what it changes, not on that old quarrel."""
    engine = open_engine(tmp_path / "old.db", clock=clock)
    try:
        engine.deploy([files / JOURNEY, edited(files / "distributor_onboarding.bpmn",
                                               'value="welcome_training"', 'value="welcome_talk"')])
        with pytest.raises(DefinitionErrors) as first:
            engine.deploy([files / CATALOG])  # nothing served yet: every stored map counts
        assert [(p.element, p.code) for p in first.value.problems] == [
            ("welcome", "unknown-hook")]
        store_catalog(engine.store, (files / CATALOG).read_text(encoding="utf-8"),
                      str(files / CATALOG), clock=clock)
        newer = edited(files / CATALOG, 'version: "2024.1"', 'version: "2024.2"', "v2.yaml")
        assert [c.version for c in engine.deploy([newer]).catalogs] == [2]
        # what it changes still counts: a hook the served catalog fills, dropped
        dropped = edited(newer, "hooks: [intro_video, nurture_message]", "hooks: [intro_video]",
                         "v3.yaml")
        dropped = edited(dropped, "hooks: [nurture_message]", "hooks: [nurture_note]")
        with pytest.raises(DefinitionErrors) as refused:
            engine.deploy([dropped])
        assert [(p.element, p.code) for p in refused.value.problems] == [
            ("check_in", "unknown-hook"), ("nurture", "unknown-hook")]
    finally:
        engine.store.dispose()


def test_a_catalog_deployed_alone_is_warned_only_of_hooks_no_map_in_the_database_uses(
        deployed: Engine, files: Path) -> None:
    """The files alone would say every hook is "used by no process map": the maps already
    deployed use them. A hook that none of them uses is still a warning, and deploys."""
    newer = edited(files / CATALOG, 'version: "2024.1"', 'version: "2024.2"', "v2.yaml")
    assert deployed.deploy([newer]).warnings == []
    extra = edited(newer, "hooks: [intro_video, nurture_message]",
                   "hooks: [intro_video, nurture_message, webinar_invite]", "v3.yaml")
    done = deployed.deploy([extra])
    assert [c.version for c in done.catalogs] == [3]
    assert [(w.code, w.severity, w.message) for w in done.warnings] == [
        ("unused-hook", "warning",
         "hook 'webinar_invite' (filled by item 'customer_stories') is used by no process map")]
