"""Retiring a process: no new instance, no hook a later catalog must fill, running instances go
on; deploying it again reinstates it. SQLite and PostgreSQL (`lv`: tests/engine/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from engine import (
    DefinitionErrors,
    DefinitionNotFound,
    Engine,
    InvalidInput,
    ManualClock,
    ProcessRetired,
    ProspectRef,
)
from engine.store import INSTANCE, RETIREMENT
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
JOURNEY = "prospect_journey"
US = {"market": "US", "locale": "en-US"}


def onboarding_only_catalog(folder: Path) -> Path:
    """The LifeVantage catalog without the content only the prospect journey uses."""
    catalog = yaml.safe_load((LIFEVANTAGE / "catalog.yaml").read_text(encoding="utf-8"))
    journey = {s.get("hook") for s in yaml.safe_load(
        (LIFEVANTAGE / "prospect_journey.yaml").read_text(encoding="utf-8"))["steps"]}
    catalog["items"] = [i for i in catalog["items"] if not set(i["hooks"]) <= journey]
    catalog.pop("learn_from")
    path = folder / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog, sort_keys=False), encoding="utf-8")
    return path


def instances(lv: Engine) -> int:
    return int(lv.store.select(select(func.count()).select_from(INSTANCE))[0]["count_1"])


def test_a_retired_process_starts_nothing_new_and_its_running_instances_go_on(
    lv: Engine, clock: ManualClock
) -> None:
    running = lv.start(JOURNEY, "p1", "d1", US, actor="d1").id
    retired = lv.retire(JOURNEY, reason="  replaced by the live-event journey ", actor="ana")
    assert (retired.process_id, retired.version, retired.actor, retired.reason,
            retired.running, retired.created) == (
        JOURNEY, 1, "ana", "replaced by the live-event journey", 1, True)
    assert retired.at == clock.now()

    before = instances(lv)
    with pytest.raises(ProcessRetired, match=r"'prospect_journey' was retired on .* by ana "
                                             r"\(replaced by the live-event journey\)"):
        lv.start(JOURNEY, "p2", "d1", US)
    assert instances(lv) == before  # nothing written
    assert lv.start(JOURNEY, "p1", "d1", US).id == running  # a running one is still theirs
    lv.complete(ProspectRef("p1"), "add_contact", actor="d1")  # it goes on
    assert lv.get(running).waiting_steps[0] == "share_intro"

    twice = lv.retire(JOURNEY, reason="another reason", actor="bo")
    assert (twice.created, twice.actor, twice.reason, twice.at) == (
        False, "ana", "replaced by the live-event journey", retired.at)
    assert lv.store.select(select(func.count()).select_from(RETIREMENT))[0]["count_1"] == 1


def test_a_catalog_may_drop_the_hooks_of_a_retired_process_only(
    lv: Engine, tmp_path: Path
) -> None:
    trimmed = onboarding_only_catalog(tmp_path)
    with pytest.raises(DefinitionErrors, match=r"prospect_journey.yaml \(as deployed\).* "
                                               "is filled by no item"):
        lv.deploy([trimmed])  # the journey still needs its content
    lv.retire(JOURNEY, reason="the brand stopped this journey")
    deployed = lv.deploy([trimmed])
    assert [c.version for c in deployed.catalogs] == [2]


def test_deploying_the_process_again_reinstates_it(lv: Engine, clock: ManualClock) -> None:
    lv.retire(JOURNEY, reason="paused for the summer")
    (unchanged,) = lv.deploy([LIFEVANTAGE / "prospect_journey.yaml"])
    assert (unchanged.created, unchanged.reinstated) == (False, True)
    assert lv.start(JOURNEY, "p2", "d1", US).status == "active"
    (still,) = lv.deploy([LIFEVANTAGE / "prospect_journey.yaml"])
    assert still.reinstated is False
    history = lv.store.select(select(RETIREMENT.c.reason, RETIREMENT.c.reinstated_at))
    assert [(r["reason"], r["reinstated_at"] is not None) for r in history] == [
        ("paused for the summer", True)]  # the retirement is kept, as history
    assert lv.retire(JOURNEY, reason="for good now").created  # and may happen again


def test_retiring_needs_a_deployed_process_and_a_reason(lv: Engine) -> None:
    with pytest.raises(DefinitionNotFound, match="did you mean 'prospect_journey'"):
        lv.retire("prospect_journy", reason="typo")
    with pytest.raises(InvalidInput, match="reason"):
        lv.retire(JOURNEY, reason="  ")
    assert lv.start(JOURNEY, "p1", "d1", US).status == "active"
