"""Cases and decision tables from a real simulated log and from an imported one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from engine import Store
from engine.runtime.queries import INSTANCE, STEP_EVENT
from learner import UnknownOutcome, cases, decisions, import_log
from nextmove import open_store
from simulator import SimulationConfig, simulate

JOURNEY = "prospect_journey"
WEEK = timedelta(days=7)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('sim') / 'sim.db'}")
    simulate(store, SimulationConfig(distributors=12, days=21, seed=3), policy="catalog")
    yield store
    store.dispose()


def outcome_times(store: Store, name: str) -> dict[int, list[datetime]]:
    """Straight from the table: instance → times of its `name` outcome events."""
    query = (select(STEP_EVENT.c.instance_id, STEP_EVENT.c.at)
             .join(INSTANCE, INSTANCE.c.id == STEP_EVENT.c.instance_id)
             .where(INSTANCE.c.process_id == JOURNEY, STEP_EVENT.c.kind == "outcome",
                    STEP_EVENT.c.step_id == name))
    out: dict[int, list[datetime]] = {}
    with store.read() as conn:
        for instance_id, at in conn.execute(query):
            out.setdefault(instance_id, []).append(at)
    return out


def test_cases_carry_the_timeline_and_logged_propensities(sim: Store) -> None:
    found = cases(sim, JOURNEY, outcome="customer_order")
    with sim.read() as conn:
        n = conn.execute(select(INSTANCE.c.id).where(INSTANCE.c.process_id == JOURNEY)).all()
    assert len(found) == len(n) > 20
    assert [c.instance_id for c in found] == sorted(c.instance_id for c in found)
    offers = [e for c in found for e in c.steps if e.kind == "entered" and e.content_shown]
    assert len(offers) > 50
    assert all(e.propensity is not None and 0 < e.propensity <= 1 for e in offers)
    assert all(e.policy_version is not None and e.policy_version >= 1 for e in offers)
    for case in found:
        assert case.started_at.tzinfo is UTC and case.steps[0].step_id == "Event_start"
        times = [e.at for e in case.steps]
        assert times == sorted(times)
        assert "prospect_personality" in case.context and case.distributor_id.startswith("d")


def split_horizon(sim: Store) -> timedelta:
    """A horizon between the quickest and the slowest conversion of the simulated log, so
    that it must turn some conversions into non-conversions."""
    delays = sorted({c.outcome_at - c.started_at
                     for c in cases(sim, JOURNEY, outcome="customer_order") if c.converted})
    assert len(delays) >= 2, "the simulation should convert at different speeds"
    return (delays[0] + delays[-1]) / 2


def test_outcome_and_horizon(sim: Store) -> None:
    truth = outcome_times(sim, "customer_order")
    horizon = split_horizon(sim)
    anytime = cases(sim, JOURNEY, outcome="customer_order")
    within = cases(sim, JOURNEY, outcome="customer_order", horizon=horizon)
    assert {c.instance_id for c in anytime if c.converted} == set(truth)
    for case in anytime:
        if case.converted:
            assert case.outcome_at == min(truth[case.instance_id]).replace(tzinfo=UTC)
    late = {c.instance_id for c in anytime if c.converted and c.outcome_at - c.started_at
            > horizon}
    early = [c for c in within if c.converted]
    assert late and early
    assert all(c.outcome_at - c.started_at <= horizon for c in early)
    assert len(early) == sum(c.converted for c in anytime) - len(late)
    assert not any(c.converted for c in within if c.instance_id in late)
    assert [c.instance_id for c in within] == [c.instance_id for c in anytime]


def test_observed_until_drops_cases_still_inside_their_horizon(sim: Store) -> None:
    everything = cases(sim, JOURNEY, outcome="sale", horizon=WEEK)
    starts = sorted({c.started_at for c in everything})
    cut = starts[len(starts) // 2] + WEEK  # the later half of the cases are still in horizon
    observed = cases(sim, JOURNEY, outcome="sale", horizon=WEEK, observed_until=cut)
    assert 0 < len(observed) < len(everything)
    assert {c.case_id for c in observed} == {
        c.case_id for c in everything if c.started_at + WEEK <= cut}


def test_outcome_may_be_a_step_and_unknown_outcomes_are_named(sim: Store) -> None:
    onboarding = cases(sim, "distributor_onboarding", outcome="first_sale")
    assert 0 < sum(c.converted for c in onboarding) < len(onboarding)
    with pytest.raises(UnknownOutcome) as caught:
        cases(sim, JOURNEY, outcome="customer_ordr")
    assert caught.value.suggestion == "customer_order"


def test_decisions_pair_offers_with_actions_and_rewards(sim: Store) -> None:
    horizon = split_horizon(sim)
    table = decisions(sim, JOURNEY, outcome="customer_order", horizon=horizon)
    n = len(table)
    assert n > 50 and all(len(v) == n for v in table.columns.values())
    assert set(table.action) <= {"completed", "skipped", "varied"}
    assert np.all((table.propensity > 0) & (table.propensity <= 1))
    assert np.all(table.policy_version >= 1)
    assert all(s is not None for s in table.shown)
    skipped = table.action == "skipped"
    assert skipped.any() and all(u is None for u in table.used[skipped])
    acted = ~skipped
    assert any(s != u for s, u in zip(table.shown[acted], table.used[acted], strict=True))
    assert np.all(table.acted_at >= table.at) and np.all(table.hours_since_previous_step >= 0)
    assert np.all(table.step_index >= 1)  # the start event is step 0
    # rewards, recomputed from the outcome rows themselves
    truth = outcome_times(sim, "customer_order")
    starts = {c.instance_id: c.started_at.replace(tzinfo=None)
              for c in cases(sim, JOURNEY, outcome="customer_order")}
    expected = [int(any(t >= acted_at and t - starts[i] <= horizon
                        for t in truth.get(i, [])))
                for i, acted_at in zip(table.instance_id.tolist(),
                                       table.acted_at.astype(datetime), strict=True)]
    assert table.reward.tolist() == expected and 0 < sum(expected) < n
    anytime = decisions(sim, JOURNEY, outcome="customer_order")
    assert anytime.reward.sum() > table.reward.sum()


def test_decision_table_columns_and_pandas(sim: Store) -> None:
    table = decisions(sim, JOURNEY, outcome="sale")
    assert table.context["prospect_personality"].dtype == object
    assert {"market", "prospect_interest", "distributor_skill"} <= set(table.context)
    intro = table.select(table.hook == "intro_video")
    assert 0 < len(intro) < len(table) and set(intro.hook) == {"intro_video"}
    frame = table.to_pandas()
    assert len(frame) == len(table) and str(frame["hook"].dtype) == "category"
    assert str(frame["propensity"].dtype) == "float64" and str(frame["reward"].dtype) == "int8"


def test_decisions_from_an_imported_log(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text(
        "case:concept:name,concept:name,time:timestamp,org:resource,nextmove:hook,"
        "nextmove:content,nextmove:propensity,nextmove:kind,case:age\n"
        "p1,contact,2026-01-05T09:00:00Z,d1,,,,,34\n"
        "p1,share_intro,2026-01-05T10:00:00Z,d1,intro_video,video_a,0.8,,34\n"
        "p1,sale,2026-01-07T10:00:00Z,d1,,,,outcome,34\n"
        "p2,contact,2026-01-05T09:00:00Z,d2,,,,,51\n"
        "p2,share_intro,2026-01-06T09:00:00Z,d2,intro_video,video_b,0.2,skipped,51\n"
        "p3,contact,2026-01-05T09:00:00Z,d2,,,,,\n"
        "p3,share_intro,2026-01-05T11:00:00Z,d2,intro_video,video_b,0.2,,\n"
        "p3,sale,2026-01-20T09:00:00Z,d2,,,,outcome,\n")
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    report = import_log(store, path, "history")
    assert report.activities == ("contact", "share_intro")
    table = decisions(store, "history", outcome="sale", horizon=WEEK)
    assert table.case_id.tolist() == ["p1", "p2", "p3"]
    assert table.shown.tolist() == ["video_a", "video_b", "video_b"]
    assert table.used.tolist() == ["video_a", "video_b", "video_b"]
    assert table.action.tolist() == ["completed", "skipped", "completed"]
    assert table.propensity.tolist() == [0.8, 0.2, 0.2]
    assert table.reward.tolist() == [1, 0, 0]  # p3's sale came after the week
    assert table.hours_since_previous_step.tolist() == [1.0, 24.0, 2.0]
    assert table.context["age"].dtype == np.float64  # CSV text typed per column
    assert np.isnan(table.context["age"][2]) and table.context["age"][0] == 34
    assert decisions(store, "history", outcome="sale").reward.tolist() == [1, 0, 1]
    store.dispose()


def test_a_horizon_of_zero_is_refused_by_every_reader_of_outcomes(tmp_path: Path) -> None:
    """No outcome could count within it: the learner's readers refuse it before reading."""
    from engine import InvalidInput
    from learner import variants
    from learner._read_online import online_log
    from nextmove import open_store

    store = open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    zero = timedelta(0)
    for read in (lambda: decisions(store, "p", outcome="sale", horizon=zero),
                 lambda: cases(store, "p", outcome="sale", horizon=-zero - timedelta(hours=1)),
                 lambda: variants(store, "p", outcome="sale", horizon=zero),
                 lambda: online_log(store, "p", outcome="sale", horizon=zero)):
        with pytest.raises(InvalidInput, match="is no time at all"):
            read()
    store.dispose()
