"""Time to first sale as a survival view: who counts as an event, who is censored and when,
by cohort and by content variant, on SQLite and PostgreSQL; and the `survival` command."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import analytics
from cli import app
from engine import ManualClock, ProspectRef
from nextmove import open_engine
from tests.analytics.test_funnel import LIFEVANTAGE, T0

DAY = timedelta(days=1)
US = {"market": "US", "locale": "en-US"}


def field_force(db_url: str, clock: ManualClock) -> None:
    """Five distributors enroll: a (day 0) sells on day 3, b (day 0) on day 20 (after its
    window), c (day 1) never; d (day 10) sells on day 12; e (day 15) has not sold by day 20."""
    engine = open_engine(db_url, clock=clock, rng=random.Random(1))
    engine.deploy([LIFEVANTAGE])
    enroll = {"a": 0, "b": 0, "c": 1, "d": 10, "e": 15}
    sales = {"a": 3, "d": 12, "b": 20}
    for day in range(21):
        clock.set(T0 + day * DAY)
        for who, when in enroll.items():
            if when == day:
                engine.start("distributor_onboarding", who, who, US, actor=who)
                engine.start("prospect_journey", f"{who}-p", who, US, actor=who)
        for who, when in sales.items():
            if when == day:
                engine.outcome(ProspectRef(f"{who}-p"), "sale", amount=50.0)
    engine.store.dispose()


def test_kaplan_meier_censors_those_still_inside(db_url: str, clock: ManualClock) -> None:
    field_force(db_url, clock)
    from nextmove import open_store

    store = open_store(db_url)
    found = analytics.survival(store, as_of=T0 + 20 * DAY)
    overall = found.overall
    assert (overall.subjects, overall.events, overall.still_inside) == (5, 2, 1)
    # d sells after 2 days, a after 3; e is censored at 5 days (still inside); b (sold on
    # day 20) and c are censored at the window's end
    steps = [(s.time, s.at_risk, s.events, s.censored) for s in overall.steps]
    assert steps == [(2.0, 5, 1, 0), (3.0, 4, 1, 0), (5.0, 3, 0, 1), (14.0, 2, 0, 2)]
    assert overall.share_within == pytest.approx(1 - (4 / 5) * (3 / 4))
    low, high = overall.band
    assert 0 < low < overall.share_within < high < 1
    # the plain share can only use a, b and c (observed 14 days): 1 of 3; KM also uses d
    plain = analytics.indicators(store, as_of=T0 + 20 * DAY)
    assert (plain.observed, plain.first_sale_share) == (3, pytest.approx(1 / 3))
    weeks = {c.label: (c.subjects, c.events) for c in found.cohorts}
    assert weeks == {"2026-01-05": (3, 1), "2026-01-12": (1, 1), "2026-01-19": (1, 0)}
    assert found.hook == "first_sale_tips"
    store.dispose()


def test_survival_command(tmp_path: Path, clock: ManualClock) -> None:
    db = tmp_path / "s.db"
    field_force(f"sqlite:///{db}", clock)
    runner = CliRunner()
    result = runner.invoke(app, ["survival", "--db", str(db), "--as-of",
                                 (T0 + 20 * DAY).isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["overall"]["events"] == 2 and body["overall"]["still_inside_window"] == 1
    assert body["overall"]["points"][-1]["days"] == 14.0
    shown = runner.invoke(app, ["survival", "--db", str(db), "--as-of",
                                (T0 + 20 * DAY).isoformat()])
    assert shown.exit_code == 0 and "2026-01-12" in shown.output and "censored" in shown.output
