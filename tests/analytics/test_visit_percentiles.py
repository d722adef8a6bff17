"""The steps' visit-time percentiles read along `ix_step_event_visit_ms` (SQLite) are the ones
the sorted read gives (`analytics._sql.percentiles` of `visit_hours`), to the last bit, for
every filter: the whole process, each distributor (steps with one or two visits), a start date,
and ranks reached from either end of a step's visits."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect

from analytics._sql import Filters, percentiles, visit_hours, visit_percentiles
from bench._million import JOURNEY, START, build
from engine import Store
from tests.analytics.test_percentiles import percentile_cont

PS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)


def test_the_index_walk_gives_the_sorted_reads_percentiles(journeys: Store) -> None:
    with journeys.read() as conn:
        visits = [(process, person, datetime.fromisoformat(created), step, ms / 3_600_000.0)
                  for process, person, created, step, ms in conn.exec_driver_sql(
                      "SELECT i.process_id, i.distributor_id, i.created_at, e.step_id, "
                      "e.visit_ms FROM step_event e JOIN instance i ON i.id = e.instance_id "
                      "WHERE e.visit_ms IS NOT NULL")]
    people = sorted({person for _, person, _, _, _ in visits})
    since = START + timedelta(days=20)
    cases = [(Filters(JOURNEY), lambda v: v[0] == JOURNEY),
             (Filters(JOURNEY, since=since),
              lambda v: v[0] == JOURNEY and v[2] >= since.replace(tzinfo=None)),
             (Filters(JOURNEY, people=tuple(people[:3])),
              lambda v: v[0] == JOURNEY and v[1] in people[:3]),
             (Filters(None), lambda v: True),
             *((Filters(JOURNEY, distributor=d), lambda v, d=d: v[0] == JOURNEY and v[1] == d)
               for d in people)]
    sizes: set[int] = set()
    with journeys.read() as conn:
        cache = conn.exec_driver_sql("PRAGMA temp.cache_size").scalar_one()
        for chosen, keep in cases:
            walked = visit_percentiles(conn, chosen, PS)
            assert walked == percentiles(conn, visit_hours("sqlite", chosen), PS), chosen
            hours: dict[str, list[float]] = {}
            for visit in filter(keep, visits):
                hours.setdefault(visit[3], []).append(visit[4])
            assert walked.keys() == hours.keys()
            for step, values in walked.items():
                sizes.add(len(hours[step]))
                assert values == tuple(percentile_cont(hours[step], p) for p in PS)
        # the walk's larger cache for temporary tables is given back
        assert conn.exec_driver_sql("PRAGMA temp.cache_size").scalar_one() == cache
    assert {1, 2} <= sizes and max(sizes) > 100  # the short steps and the long ones


@pytest.mark.postgres
def test_the_index_is_made_on_sqlite_only(journeys: Store, pg_url: str) -> None:
    with journeys.read() as conn:
        assert "ix_step_event_visit_ms" in {
            ix["name"] for ix in inspect(conn).get_indexes("step_event")}
    on_pg = Store(pg_url)
    try:
        assert on_pg.prepare().indexes == ()
        with on_pg.read() as conn:
            assert "ix_step_event_visit_ms" not in {
                ix["name"] for ix in inspect(conn).get_indexes("step_event")}
        assert on_pg.prepare().indexes == ()  # and is not "added" again on every open
    finally:
        on_pg.dispose()


def test_a_database_without_the_index_gets_it_when_opened(tmp_path: Path) -> None:
    path = build(tmp_path / "old.db", 20, 2, 1)
    with Store(f"sqlite:///{path}").write() as conn:
        conn.exec_driver_sql("DROP INDEX ix_step_event_visit_ms")
    reopened = Store(f"sqlite:///{path}")
    try:
        assert reopened.prepare().indexes == ("ix_step_event_visit_ms",)
        with reopened.read() as conn:
            assert visit_percentiles(conn, Filters(JOURNEY), (0.5,))
    finally:
        reopened.dispose()
