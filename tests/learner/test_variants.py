"""Variant paths, their conversion rates and significance, on logs built to know the answer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from engine import Store
from engine.errors import InvalidInput
from learner import UnknownOutcome, cases, import_log, unobserved_cases, variants
from learner._stats import compare, fisher_exact, holm, two_proportion_z, wilson
from nextmove import open_store

START = datetime(2026, 1, 5, 9, 0)
BASELINE = ("contact", "share", "follow_up")
# path, content at "share", cases, converted (a sale `hours` after the start)
PLAN = [
    (BASELINE, "video_a", 60, 6, 48),
    (BASELINE, "video_b", 40, 4, 24),
    (("contact", "share", "call"), "video_a", 50, 25, 30),
    (("contact", "call"), None, 10, 2, 100),
    (("contact",), None, 4, 4, 200),
]


@pytest.fixture
def store(tmp_path: Path, db_url: str) -> Iterator[Store]:
    lines = ["case:concept:name,concept:name,time:timestamp,nextmove:hook,nextmove:content,"
             "nextmove:kind"]
    n = 0
    for path, content, count, converted, hours in PLAN:
        for i in range(count):
            n += 1
            for k, step in enumerate(path):
                at = START + timedelta(days=n % 7, hours=k)
                hooked = step == "share"
                lines.append(f"c{n},{step},{at.isoformat()},{'intro' if hooked else ''},"
                             f"{content if hooked else ''},")
            if i < converted:
                at = START + timedelta(days=n % 7, hours=hours)
                lines.append(f"c{n},sale,{at.isoformat()},,,outcome")
    log = tmp_path / "constructed.csv"
    log.write_text("\n".join(lines) + "\n")
    st = open_store(db_url)
    import_log(st, log, "journey")
    yield st
    st.dispose()


def test_counts_rates_and_significance_against_the_most_common_path(store: Store) -> None:
    found = variants(store, "journey", outcome="sale")
    assert [(v.steps, v.cases, v.converted) for v in found] == [
        (BASELINE, 100, 10), (("contact", "share", "call"), 50, 25),
        (("contact", "call"), 10, 2), (("contact",), 4, 4)]
    base, better, small, tiny = found
    assert [v.rank for v in found] == [1, 2, 3, 4] and sum(v.share for v in found) == 1.0
    assert base.p_value is None and base.significant is None and base.rate == 0.1
    assert (base.ci_low, base.ci_high) == pytest.approx((0.05523, 0.17437), abs=1e-5)
    assert base.median_hours_to_outcome == 48.0  # four sales at 24 h, six at 48 h
    assert better.test == "z" and better.p_value == pytest.approx(4.7563e-08, rel=1e-3)
    assert better.significant is True
    assert small.test == "fisher" and small.p_value == pytest.approx(0.298694, rel=1e-5)
    assert small.significant is False
    assert tiny.test == "fisher" and tiny.p_value == pytest.approx(2.17697e-4, rel=1e-5)
    assert tiny.p_adjusted == pytest.approx(2 * 2.17697e-4, rel=1e-5)  # Holm: 2nd smallest
    assert tiny.significant is True and tiny.ci_high == 1.0
    assert tiny.median_hours_to_outcome == 200.0
    assert "contact → share → call" == better.label


def test_alpha_horizon_and_no_outcome(store: Store) -> None:
    strict = variants(store, "journey", outcome="sale", alpha=1e-4)
    assert [v.significant for v in strict] == [None, True, False, False]
    day = variants(store, "journey", outcome="sale", horizon=timedelta(hours=40))
    assert [v.converted for v in day] == [4, 25, 0, 0]  # only sales within 40 h count
    plain = variants(store, "journey")
    assert [v.cases for v in plain] == [100, 50, 10, 4]
    assert all(v.rate is None and v.converted is None and v.p_value is None for v in plain)
    with pytest.raises(UnknownOutcome):
        variants(store, "journey", outcome="sales")


def test_a_joined_outcome_converts_on_any_of_its_names(store: Store) -> None:
    """Before, "sale+call" was looked up as one name: no path converted."""
    joined = variants(store, "journey", outcome="sale+call")
    assert [v.converted for v in joined] == [10, 50, 10, 4]  # every path with a call
    assert joined == variants(store, "journey", outcome=("call", "sale"))
    for empty in ("+", "sale+", "sale++call"):
        with pytest.raises(InvalidInput, match="empty name"):
            variants(store, "journey", outcome=empty)


def test_cases_whose_horizon_has_not_passed_are_left_out_and_counted(store: Store) -> None:
    until, day = START + timedelta(days=5), timedelta(days=1)
    found = variants(store, "journey", outcome="sale", horizon=day, observed_until=until)
    left = unobserved_cases(store, "journey", horizon=day, observed_until=until)
    late = sum(1 for n in range(1, 165) if n % 7 > 4)  # started on days 5 and 6
    assert left == late and sum(v.cases for v in found) == 164 - late
    assert unobserved_cases(store, "journey", horizon=None, observed_until=until) == 0


def test_with_content_splits_paths_by_what_was_used(store: Store) -> None:
    found = variants(store, "journey", outcome="sale", with_content=True)
    assert [(v.cases, v.content) for v in found] == [
        (60, (None, "video_a", None)), (50, (None, "video_a", None)),
        (40, (None, "video_b", None)), (10, (None, None)), (4, (None,))]
    assert found[0].label == "contact → share [video_a] → follow_up"
    assert found[2].converted == 4 and found[2].p_value == pytest.approx(1.0)


def test_statistics_match_reference_values() -> None:
    # reference values from scipy.stats.fisher_exact and the Wilson formula
    assert fisher_exact(0, 7, 3, 5) == pytest.approx(0.0454545, rel=1e-5)
    assert fisher_exact(1, 9, 11, 14) == pytest.approx(0.00275946, rel=1e-5)
    assert fisher_exact(30, 1000, 45, 1000) == pytest.approx(0.0988018, rel=1e-5)
    assert two_proportion_z(30, 1000, 45, 1000) == pytest.approx(0.0774849, rel=1e-5)
    assert compare(30, 1000, 45, 1000)[1] == "z" and compare(0, 7, 3, 5)[1] == "fisher"
    assert wilson(0, 5) == (0.0, pytest.approx(0.434482, rel=1e-5))
    assert wilson(0, 0) == (0.0, 1.0)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_engine_log_paths_are_the_steps_that_moved_each_case(tmp_path: Path) -> None:
    from simulator import SimulationConfig, simulate

    st = open_store(f"sqlite:///{tmp_path / 'sim.db'}")
    simulate(st, SimulationConfig(distributors=3, days=4, seed=5), policy="catalog")
    moved = {"completed", "skipped", "varied", "timer", "message"}
    expected = Counter(
        tuple(e.step_id for e in case.steps if e.kind in moved)
        for case in cases(st, "prospect_journey", outcome="add_contact"))
    found = variants(st, "prospect_journey")
    assert {v.steps: v.cases for v in found} == dict(expected)
    assert [v.cases for v in found] == sorted((v.cases for v in found), reverse=True)
    assert len(found) > 1 and all(v.steps[0] == "Event_start" for v in found)
    with_entered = [e for case in cases(st, "prospect_journey", outcome="add_contact")
                    for e in case.steps if e.kind == "entered"]
    assert with_entered  # arrivals exist in the log, and no path counts them
    st.dispose()
