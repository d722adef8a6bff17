"""Per-person views on one simulated field force: every figure of a distributor's view adds
up, over the distributors, to the whole; a sponsor's view is the union of their downline's
views; the report shows the per-distributor indicators and the audit trail, in headless
Chromium too."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import analytics
import compliance
from analytics._report_views import draw_map
from analytics._svgtext import esc, hex_rgb
from analytics.report import _latest_definition, render_html, write_report
from analytics.svg import Heat
from engine import ManualClock, Store
from engine.errors import NextmoveError
from nextmove import open_store
from simulator import SimulationConfig, simulate
from tests.analytics.test_report_views import dom, shoot

JOURNEY = "prospect_journey"
STEP_COUNTS = ("instances", "entered", "completed", "skipped", "varied", "moved_on",
               "waiting", "dropped", "converted")
TRAIL_COUNTS = ("offered", "followed", "followed_suggestion", "followed_other",
                "followed_without_content", "skipped", "varied")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, datetime]]:
    where = tmp_path_factory.mktemp("people")
    config = SimulationConfig(distributors=12, days=24, seed=3)
    store = open_store(f"sqlite:///{where / 'sim.db'}")
    try:
        simulate(store, config)
        yield store, config.start + timedelta(days=config.days)
    finally:
        store.dispose()


def everybody(store: Store) -> list[str]:
    with store.read() as conn:
        return sorted(conn.execute(sa.text(
            "SELECT DISTINCT distributor_id FROM instance")).scalars())


def sponsor_links(store: Store) -> set[tuple[str, str]]:
    """(sponsor, distributor) as the instances record them."""
    with store.read() as conn:
        return {(s, d) for s, d in conn.execute(sa.text(
            "SELECT DISTINCT sponsor_id, distributor_id FROM instance "
            "WHERE sponsor_id IS NOT NULL"))}


def funnel_counts(store: Store, people: Collection[str] | None) -> Counter[str]:
    found = analytics.funnel(store, JOURNEY, people=people)
    counts: Counter[str] = Counter({"instances": found.instances,
                                    "converted": found.converted})
    for step in found:
        for key in STEP_COUNTS:
            counts[f"{step.step_id}.{key}"] += getattr(step, key)
    return counts


def other_counts(store: Store, now: datetime, people: Collection[str] | None) -> Counter[str]:
    """Stuck, content use, survival, the trail and the map's flows, as counts."""
    counts: Counter[str] = Counter()
    for group in analytics.stuck(store, JOURNEY, now, people=people).groups:
        counts[f"stuck.{group.step_id}.{group.distributor_id}"] += group.instances
    for use in analytics.content_use(store, JOURNEY, people):
        for key, value in use.to_dict().items():
            if key != "hook":
                counts[f"content.{use.hook}.{key}"] += value
    found = analytics.survival(store, as_of=now, people=people)
    counts["survival.subjects"] += len(found.subjects)
    counts["survival.sold"] += sum(1 for s in found.subjects if s[3])
    for step in compliance.trail_summary(store, process=JOURNEY, people=people).steps:
        for key in TRAIL_COUNTS:
            counts[f"trail.{step.step}.{key}"] += getattr(step, key)
    _svg, _problem, decisions = draw_map(store, _latest_definition(store, JOURNEY), JOURNEY,
                                         Heat({}, "", ""), people)
    for row in decisions:
        counts[f"flow.{row['decision']}.{row['to']}"] += row["taken"]
    return +counts


def test_per_distributor_figures_add_up_to_the_whole(world: tuple[Store, datetime]) -> None:
    store, now = world
    people = everybody(store)
    assert len(people) >= 12
    whole, summed = funnel_counts(store, None), Counter[str]()
    others, summed_others = other_counts(store, now, None), Counter[str]()
    for person in people:
        summed.update(funnel_counts(store, (person,)))
        summed_others.update(other_counts(store, now, (person,)))
    assert whole["instances"] > 50 and whole["converted"] > 0
    assert summed == whole
    assert summed_others == others
    assert others["survival.subjects"] >= 12 and any(k.startswith("trail.") for k in others)
    assert any(k.startswith("flow.") for k in others) and any(
        k.startswith("stuck.") for k in others)
    # the leading indicators: each distributor's row is the same alone as among all
    rows = {d.distributor_id: d for d in analytics.indicators(store, as_of=now).distributors}
    alone = [d for p in people for d in analytics.indicators(
        store, as_of=now, people=(p,)).distributors]
    assert {d.distributor_id: d for d in alone} == rows and len(alone) == len(rows)
    weeks = analytics.cohorts(store, as_of=now)
    split = Counter[Any]()
    for p in people:
        for w in analytics.cohorts(store, as_of=now, people=(p,)).weeks:
            split[w.week] += w.distributors
    assert split == Counter({w.week: w.distributors for w in weeks.weeks})


def test_a_sponsors_view_is_the_union_of_its_downlines_views(
    world: tuple[Store, datetime],
) -> None:
    store, now = world
    links = sponsor_links(store)
    below: dict[str, set[str]] = {}
    for sponsor, distributor in links:
        below.setdefault(sponsor, set()).add(distributor)

    def walk(sponsor: str) -> set[str]:
        found, todo = {sponsor}, [sponsor]
        while todo:
            for d in below.get(todo.pop(), ()):
                if d not in found:
                    found.add(d)
                    todo.append(d)
        return found

    # a sponsor whose downline goes deeper than their own recruits
    sponsor = next(s for s in sorted(below) if walk(s) - below[s] - {s})
    who = analytics.people(store, sponsor=sponsor)
    assert who is not None and set(who.members) == walk(sponsor)
    assert sponsor in who.members and len(who.members) >= 3
    union, union_others = Counter[str](), Counter[str]()
    for member in who.members:
        union.update(funnel_counts(store, (member,)))
        union_others.update(other_counts(store, now, (member,)))
    assert funnel_counts(store, who.members) == union
    assert other_counts(store, now, who.members) == union_others
    led = analytics.indicators(store, as_of=now, people=who.members)
    assert {d.distributor_id for d in led.distributors} == set(who.members)
    assert led.prospects == sum(analytics.indicators(store, as_of=now, people=(m,)).prospects
                                for m in who.members)
    with pytest.raises(NextmoveError, match="not both"):
        analytics.people(store, distributor=sponsor, sponsor=sponsor)


@pytest.fixture(scope="module")
def page(world: tuple[Store, datetime], tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[Path, analytics.ReportData, analytics.People]:
    store, now = world
    views = [analytics.people(store, sponsor=s) for s in sorted({s for s, _ in
                                                                 sponsor_links(store)})]
    # a sponsor with a downline, not the whole field force
    who = next(v for v in views if v and 2 <= len(v.members) < len(everybody(store)))
    trail = compliance.trail_summary(store, process=JOURNEY, people=who.members)
    out = tmp_path_factory.mktemp("people-page") / "report.html"
    data = write_report(store, JOURNEY, out, clock=ManualClock(now), people=who,
                        trail=trail.to_dict())
    return out, data, who


def test_the_report_shows_one_sponsors_people_in_every_section(
    world: tuple[Store, datetime],
    page: tuple[Path, analytics.ReportData, analytics.People],
) -> None:
    store, now = world
    out, data, who = page
    text = out.read_text(encoding="utf-8")
    for section in ("map", "funnel", "survival", "stuck", "indicators", "people", "trail",
                    "content"):
        assert f'id="{section}"' in text, section
    assert esc(who.label) in text
    listed = {r["distributor_id"] for r in data.distributors}
    assert listed == set(who.members)
    others = set(everybody(store)) - set(who.members)
    assert others and not any(f"<td>{esc(d)}</td>" in text for d in others)
    assert data.summary["instances"] == analytics.funnel(
        store, JOURNEY, people=who.members).instances < analytics.funnel(store, JOURNEY).instances
    assert data.trail is not None and sum(s["offered"] for s in data.trail["steps"]) > 0
    assert data.distributors_meta["indicators"] == [
        d.name for d in analytics.LIFEVANTAGE_INDICATORS]
    assert data.distributors_meta["first_sale"] == analytics.first_sale_rule(store).name
    assert data.distributors_meta["outcomes"] == list(
        analytics.measures(store, JOURNEY).converting)
    # without the trail (a report written by the library alone) the section says so
    bare = write_report(store, JOURNEY, out.with_name("bare.html"), clock=ManualClock(now))
    assert bare.trail is None and bare.scope is None
    bare_page = out.with_name("bare.html").read_text(encoding="utf-8")
    assert "nextmove report --trail</code> adds it" in bare_page
    assert len(bare.distributors) == len(everybody(store)) > len(data.distributors)


def test_chromium_draws_the_per_person_sections(
    page: tuple[Path, analytics.ReportData, analytics.People], tmp_path: Path,
) -> None:
    out, data, who = page
    tree = dom(out.as_uri())
    people_rows = tree.xpath('//table[@class="people"]/tbody/tr')
    assert sorted(r.xpath("td[1]")[0].text_content() for r in people_rows) == sorted(who.members)
    trail_rows = tree.xpath('//table[@class="trail"]/tbody/tr')
    assert len(trail_rows) == len(data.trail["steps"] if data.trail else []) > 0
    # in pixels: each table's grey header row is a band; without the per-distributor rows,
    # or without the trail, the page has one band fewer
    bands = {name: header_bands(shoot(path.as_uri(), tmp_path / f"{name}.png", (1400, 9000)))
             for name, path in written(data, tmp_path).items()}
    assert bands["full"] - 1 == bands["no-people"] == bands["no-trail"] >= 5


def written(data: analytics.ReportData, where: Path) -> dict[str, Path]:
    pages = {"full": data, "no-people": replace(data, distributors=[]),
             "no-trail": replace(data, trail=None)}
    for name, shown in pages.items():
        (where / f"{name}.html").write_text(render_html(shown), encoding="utf-8")
    return {name: where / f"{name}.html" for name in pages}


def header_bands(image: np.ndarray) -> int:
    """Runs of rows where a table header's grey (#f4f4f4) spans more than 200 pixels."""
    grey = np.all(image == hex_rgb("#f4f4f4"), axis=2).sum(axis=1) > 200
    assert not grey[-50:].any(), "the page is taller than the window"
    return int(np.count_nonzero(grey[1:] & ~grey[:-1]) + grey[0])


@pytest.mark.postgres
def test_per_person_views_add_up_on_postgresql(pg_url: str) -> None:
    config = SimulationConfig(distributors=8, days=16, seed=5)
    store = open_store(pg_url)
    try:
        simulate(store, config)
        now = config.start + timedelta(days=config.days)
        people = everybody(store)
        whole = funnel_counts(store, None) + other_counts(store, now, None)
        summed = Counter[str]()
        for person in people:
            summed.update(funnel_counts(store, (person,)) + other_counts(store, now, (person,)))
        assert summed == whole and whole["instances"] > 0
        sponsor = sorted({s for s, _ in sponsor_links(store)})[0]
        who = analytics.people(store, sponsor=sponsor)
        assert who is not None and sponsor in who.members
        union = Counter[str]()
        for member in who.members:
            union.update(funnel_counts(store, (member,)))
        assert funnel_counts(store, who.members) == union
    finally:
        store.dispose()
