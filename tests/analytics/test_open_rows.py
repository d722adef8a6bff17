"""Stuck's open arrivals in one pass (`analytics._read_stuck.open_rows`): the arrivals past
their limits and those at timer steps come out as if each were asked for alone, and either
may be asked for without the other."""

from __future__ import annotations

import pytest

import analytics
from analytics._read_stuck import OpenRows, open_rows
from analytics._sql import Filters
from bench._million import JOURNEY, NOW, build
from engine import Store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    path = build(tmp_path_factory.mktemp("open") / "journeys.db", 400, 8, 3)
    found = Store(f"sqlite:///{path}")
    found.prepare()
    return found


def test_stuck_and_waiting_arrivals_in_one_pass_are_those_of_each_alone(store: Store) -> None:
    whole = analytics.stuck(store, JOURNEY, NOW)
    limits = dict(whole.limits)
    timers = {w.step_id for w in whole.waits}
    assert limits and timers and whole.groups  # the map has both, and some are stuck
    both = open_rows(store, Filters(JOURNEY), NOW, limits, timers)
    stuck_alone = open_rows(store, Filters(JOURNEY), NOW, limits, ())
    waiting_alone = open_rows(store, Filters(JOURNEY), NOW, {}, timers)
    assert both == OpenRows(stuck_alone.stuck, waiting_alone.waiting)
    assert stuck_alone.waiting == [] and waiting_alone.stuck == []
    assert sum(r[3] for r in both.stuck) == whole.instances
    assert [(r[0], r[2]) for r in both.waiting] == [(w.step_id, w.instances)
                                                     for w in whole.waits]
    assert open_rows(store, Filters(JOURNEY), NOW, {}, ()).stuck == []
