"""Stuck's open arrivals in one pass (`analytics._read_stuck.open_rows`): the arrivals past
their limits and those at timer steps come out as if each were asked for alone, and either
may be asked for without the other."""

from __future__ import annotations

import analytics
from analytics._read_stuck import OpenRows, open_rows
from analytics._sql import Filters
from bench._million import JOURNEY, NOW
from engine import Store


def test_stuck_and_waiting_arrivals_in_one_pass_are_those_of_each_alone(journeys: Store) -> None:
    whole = analytics.stuck(journeys, JOURNEY, NOW)
    limits = dict(whole.limits)
    timers = {w.step_id for w in whole.waits}
    assert limits and timers and whole.groups  # the map has both, and some are stuck
    both = open_rows(journeys, Filters(JOURNEY), NOW, limits, timers)
    stuck_alone = open_rows(journeys, Filters(JOURNEY), NOW, limits, ())
    waiting_alone = open_rows(journeys, Filters(JOURNEY), NOW, {}, timers)
    assert both == OpenRows(stuck_alone.stuck, waiting_alone.waiting)
    assert stuck_alone.waiting == [] and waiting_alone.stuck == []
    assert sum(r[3] for r in both.stuck) == whole.instances
    assert [(r[0], r[2]) for r in both.waiting] == [(w.step_id, w.instances)
                                                     for w in whole.waits]
    assert open_rows(journeys, Filters(JOURNEY), NOW, {}, ()).stuck == []
