"""Drift detection: injected drops are found near where they start; null streams rarely alarm."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert, select

from engine import ManualClock
from engine.runtime.queries import DEFINITION, INSTANCE, STEP_EVENT
from learner.drift import detect, detect_stream, detect_table
from nextmove import open_engine, open_store
from simulator import LIFEVANTAGE


def bernoulli(rng: np.random.Generator, *parts: tuple[int, float]) -> np.ndarray:
    return np.concatenate([(rng.random(n) < p).astype(int) for n, p in parts])


def test_an_injected_drop_is_detected_near_its_start() -> None:
    found = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        stream = bernoulli(rng, (600, 0.30), (400, 0.15))
        alert = detect_stream(stream, seed=seed)
        assert alert is not None, seed
        found.append(alert.change)
        assert 600 < alert.detected <= 1000  # raised after the change, while monitoring
        assert alert.rate_before == pytest.approx(0.30, abs=0.05)
        assert alert.rate_after == pytest.approx(0.15, abs=0.05)
        assert alert.drop == pytest.approx(alert.rate_before - alert.rate_after)
        assert alert.p_value <= 0.05 and alert.statistic > alert.threshold
        assert alert.n_before + alert.n_after == 1000
    assert np.median(np.abs(np.array(found) - 600)) <= 50  # the change point, roughly right


def test_false_alarm_rate_on_streams_without_a_drop() -> None:
    """400 seeded streams of 1000 decisions at a constant rate (from 2% to 50%)."""
    alarms = 0
    for seed in range(400):
        rng = np.random.default_rng(10_000 + seed)
        stream = bernoulli(rng, (1000, rng.uniform(0.02, 0.5)))
        alarms += detect_stream(stream, alpha=0.05, n_perm=99, max_points=50,
                                seed=seed) is not None
    assert alarms / 400 <= 0.05


def test_rises_and_short_or_constant_streams_raise_nothing() -> None:
    rng = np.random.default_rng(1)
    assert detect_stream(bernoulli(rng, (500, 0.1), (500, 0.3))) is None  # a rise
    assert detect_stream([1, 0] * 20, min_segment=30) is None  # shorter than 2 segments
    assert detect_stream([0] * 500) is None
    small = detect_stream(bernoulli(rng, (600, 0.30), (400, 0.15)), min_drop=0.3)
    assert small is None  # a real drop, but smaller than asked for


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="0 and 1"):
        detect_stream([0, 2, 1])
    with pytest.raises(ValueError, match="too few"):
        detect_stream([0, 1] * 100, n_perm=10)


def test_detect_table_names_the_item_and_when_it_dropped() -> None:
    """Two videos over 100 days; one stops converting on day 60. The last 14 days' decisions
    are left out: their 14-day outcome is not known yet."""
    rng = np.random.default_rng(7)
    start = datetime(2026, 1, 1)
    rows = []
    for i in range(4000):
        at = start + timedelta(hours=i * 0.6)
        shown = "video_a" if i % 2 else "video_b"
        rate = 0.3 if shown == "video_b" or at < start + timedelta(days=60) else 0.1
        rows.append({"hook": "intro_video", "shown": shown, "at": np.datetime64(at, "us"),
                     "hours_since_start": 0.0, "reward": int(rng.random() < rate)})
    columns = {k: np.array([r[k] for r in rows], dtype=object) for k in rows[0]}
    columns["at"] = np.array([r["at"] for r in rows], dtype="datetime64[us]")
    alerts = detect_table(columns, horizon=timedelta(days=14))
    assert [(a.hook, a.option_id) for a in alerts] == [("intro_video", "video_a")]
    alert = alerts[0]
    assert alert.since is not None and alert.detected_at is not None
    assert abs(alert.since - (start + timedelta(days=60)).replace(
        tzinfo=alert.since.tzinfo)) < timedelta(days=5)
    assert alert.detected_at > alert.since
    assert alert.drop == pytest.approx(0.2, abs=0.06)
    assert alert.confidence >= 0.95
    # Nothing after day 100 - 14 was used.
    assert alert.n_before + alert.n_after < 2000
    assert alert.to_dict()["since"].startswith("2026-03")


def test_detect_reads_the_store(tmp_path: Path) -> None:
    """An engine-shaped log: prospects get one of two first-contact messages; from the 1200th
    prospect on, messages with the permission ask stop converting as well."""
    store = open_store(str(tmp_path / "drift.db"))
    clock = ManualClock(datetime(2026, 1, 5))
    open_engine(store, clock=clock, recommend=False).deploy([LIFEVANTAGE])
    with store.read() as conn:
        definition = conn.execute(select(DEFINITION.c.id).where(
            DEFINITION.c.process_id == "prospect_journey")).scalar_one()
    rng = np.random.default_rng(3)
    start = datetime(2026, 1, 5, 8)
    with store.write() as conn:
        for i in range(2000):
            at = start + timedelta(hours=i)
            shown = ("first_contact_checkin_short", "first_contact_permission")[i % 2]
            rate = 0.1 if shown.endswith("permission") and i >= 1200 else 0.3
            iid = conn.execute(insert(INSTANCE).values(
                definition_id=definition, process_id="prospect_journey", prospect_id=f"p{i}",
                distributor_id="d1", status="completed", context="{}", waiting="[]",
                state="{}", version=1, created_at=at, updated_at=at)).inserted_primary_key[0]
            events = [("add_contact", "entered", shown, None, 0.5),
                      ("add_contact", "completed", None, shown, None)]
            if rng.random() < rate:
                events.append(("Event_end", "completed", None, None, None))
            conn.execute(insert(STEP_EVENT), [
                {"instance_id": iid, "step_id": step, "step_name": step, "kind": kind,
                 "hook": "first_contact_message" if step == "add_contact" else None,
                 "content_shown": offered, "content_used": used, "propensity": p,
                 "policy_version": 1 if p else None, "at": at + timedelta(minutes=n)}
                for n, (step, kind, offered, used, p) in enumerate(events)])
    alerts = detect(store, "prospect_journey", outcome="Event_end")
    assert [a.option_id for a in alerts] == ["first_contact_permission"]
    assert abs(alerts[0].change_index - 600) < 60  # the item's 600th decision
    assert alerts[0].since is not None and alerts[0].since.tzinfo is not None
    store.dispose()
