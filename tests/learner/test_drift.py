"""Drift detection: a sequential CUSUM per item, dated after its evidence, calibrated on
seeded stationary logs at a realistic volume, quick on real drops."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from learner.drift import (
    ARL,
    design,
    detect_stream,
    detect_table,
    false_alarm_probability,
)
from tests.learner._drift_logs import HORIZON, START, end_of, quarter_log


def bernoulli(rng: np.random.Generator, *parts: tuple[int, float]) -> np.ndarray:
    return np.concatenate([(rng.random(n) < p).astype(int) for n, p in parts])


def false_alarms(seeds: range) -> tuple[int, int]:
    """(alerts, item-quarters) over stationary quarter logs of three items."""
    alerts = sum(len(detect_table(quarter_log(s), horizon=HORIZON, observed_until=end_of()))
                 for s in seeds)
    return alerts, 3 * len(seeds)


def test_false_alarms_per_stationary_item_quarter() -> None:
    """At most one false alarm per 20 item-quarters: 30 logs, 90 item-quarters."""
    alerts, quarters = false_alarms(range(30))
    print(f"\nfalse alarms: {alerts} in {quarters} stationary item-quarters")
    assert alerts <= quarters / 20


@pytest.mark.slow
def test_false_alarms_per_stationary_item_quarter_many_seeds() -> None:
    alerts, quarters = false_alarms(range(1000, 1400))
    print(f"\nfalse alarms: {alerts} in {quarters} stationary item-quarters "
          f"({alerts / quarters:.1%})")
    assert alerts / quarters <= 1 / 20


def delays(drop: float, seeds: range, days: float) -> tuple[list[float], list[int]]:
    """Days from the drop (day 30) to `detected_at`, and decisions of the item from the drop
    to the alarm, for logs where video_b drops by `drop`."""
    in_days, in_decisions = [], []
    for s in seeds:
        log = quarter_log(s, drop=drop, drop_day=30, prospects=int(100 * days), days=days)
        found = [a for a in detect_table(log, horizon=HORIZON, observed_until=end_of(days))
                 if a.option_id == "video_b"]
        if found:
            a = found[0]
            assert a.detected_at is not None
            in_days.append((a.detected_at.replace(tzinfo=None) - START) / timedelta(days=1)
                           - 30)
            in_decisions.append(a.change_index + a.n_after - _index_of_day(log, 30))
    return in_days, in_decisions


def _index_of_day(log: dict[str, np.ndarray], day: float) -> int:
    mine = np.sort(log["at"][log["shown"] == "video_b"])
    return int(np.searchsorted(mine, np.datetime64(START, "us") + np.timedelta64(
        int(day * 86_400), "s")))


@pytest.mark.parametrize(("drop", "found_at_least"), [(0.3, 9), (0.5, 10), (0.6, 10)])
def test_injected_drops_are_detected_after_they_start(drop: float, found_at_least: int) -> None:
    """video_b drops on day 30 of 150 days at 100 prospects a day; ten seeds per size.
    Delays count from the drop to `detected_at`, which includes the 14-day horizon."""
    in_days, in_decisions = delays(drop, range(200, 210), days=150)
    print(f"\ndrop {drop:.0%}: detected {len(in_days)}/10, median delay "
          f"{np.median(in_days):.0f} days ({np.median(in_decisions):.0f} decisions of the "
          f"item), range {min(in_days):.0f}-{max(in_days):.0f} days")
    assert len(in_days) >= found_at_least
    assert min(in_days) > 14  # the horizon: failures are known 14 days after the start


@pytest.mark.slow
@pytest.mark.parametrize("drop", [0.3, 0.5, 0.6])
def test_detection_delays_many_seeds(drop: float) -> None:
    in_days, in_decisions = delays(drop, range(300, 350), days=150)
    print(f"\ndrop {drop:.0%}: detected {len(in_days)}/50, median delay "
          f"{np.median(in_days):.0f} days (quartiles {np.percentile(in_days, 25):.0f}-"
          f"{np.percentile(in_days, 75):.0f}), {np.median(in_decisions):.0f} decisions")
    assert len(in_days) >= 45


def test_every_alert_is_dated_after_its_change_and_matches_a_daily_replay() -> None:
    """For every alert on stationary and dropping logs: since <= detected_at, and replaying
    the log day by day (what the worker sees) raises it first on the day of `detected_at`
    with the same figures; the day before, it is not there."""
    checked = 0
    for seed, drop in [(1, 0.6), (2, 0.5), (3, 0.3), (4, 0.0), (5, 0.6), (21, 0.0)]:
        log = quarter_log(seed, drop=drop, drop_day=40)
        full = detect_table(log, horizon=HORIZON, observed_until=end_of())
        for alert in full:
            assert alert.since is not None and alert.detected_at is not None
            assert alert.since <= alert.detected_at
            if drop:
                assert alert.since.replace(tzinfo=None) >= START  # dated inside the log
            first_day = None
            for day in range(91):
                now = START + timedelta(days=day)
                seen = [a for a in detect_table(log, horizon=HORIZON, observed_until=now)
                        if a.option_id == alert.option_id]
                if seen:
                    first_day = day
                    assert seen[0] == alert  # the same since, detected_at, statistic
                    break
            assert first_day is not None
            day_of = (alert.detected_at.replace(tzinfo=None) - START) / timedelta(days=1)
            assert first_day - 1 < day_of <= first_day
            checked += 1
    assert checked >= 4


def test_the_reported_statistic_is_the_one_that_crossed_the_threshold() -> None:
    rng = np.random.default_rng(3)
    alert = detect_stream(bernoulli(rng, (1500, 0.12), (1500, 0.05)))
    assert alert is not None
    assert 1500 <= alert.detected < 3000 and alert.change <= alert.detected
    assert alert.statistic >= alert.threshold
    assert alert.arl >= ARL
    assert alert.n_before == alert.change and alert.n_after == alert.detected + 1 - alert.change
    assert alert.rate_after < alert.rate_before
    # The p-value is a measurement, not a floor: it grows with the monitored length.
    chain = design(alert.reference_rate)
    level = round(alert.statistic / chain.unit)
    assert false_alarm_probability(chain, level, 500) < alert.p_value < \
        false_alarm_probability(chain, level, 20_000)
    assert 0 < alert.p_value < 0.1


def test_the_stream_is_read_in_order_only() -> None:
    """The alarm on a prefix is the alarm on the whole stream: nothing after it is used."""
    rng = np.random.default_rng(8)
    stream = bernoulli(rng, (1000, 0.2), (2000, 0.1))
    whole = detect_stream(stream)
    assert whole is not None
    assert detect_stream(stream[:whole.detected + 1]) == whole
    assert detect_stream(stream[:whole.detected]) is None


def test_the_design_meets_its_arl() -> None:
    chain = design(0.12)
    assert chain.arl >= ARL
    shorter = design(0.12, arl=ARL / 10)
    assert shorter.threshold < chain.threshold
    # Monte Carlo: in-control run lengths at a known rate, via the same integer statistic.
    assert chain.down > chain.up > 0 and chain.limit > chain.down


def test_rises_short_and_constant_streams_raise_nothing() -> None:
    rng = np.random.default_rng(1)
    assert detect_stream(bernoulli(rng, (1000, 0.1), (2000, 0.3))) is None  # a rise
    assert detect_stream([1, 0] * 100) is None  # shorter than the warm-up
    assert detect_stream([0] * 3000) is None


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="0 and 1"):
        detect_stream([0, 2, 1])
    with pytest.raises(ValueError, match="drop"):
        detect_stream([0, 1] * 400, drop=1.5)
    with pytest.raises(ValueError, match="warmup"):
        detect_stream([0, 1] * 400, warmup=0)
