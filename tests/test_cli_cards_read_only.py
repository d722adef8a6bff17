"""`nextmove cards` on an SQLite file reads read-only through `engine.store.plain`, without
SQLAlchemy; its text and --json must be byte for byte what the normal way in prints
(`nextmove.open_engine` and `Engine.cards`), on a database where cards differ in every way a
card can: several prospects at different steps, a sponsor's step, an overdue follow-up,
content with an open drift alert, a message placeholder with no data. `Engine.cards` on
PostgreSQL, given the same history, must give the same cards as the read-only path on SQLite.
(tests/test_cli_startup.py checks that the read-only path loads no SQLAlchemy.)"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from commands._output import json_text
from commands._read_only import open_read_only
from content_catalog import get_policy, save_policy
from engine import Engine, ManualClock
from engine.store.recorded_clock import record_simulated_clock
from nextmove import open_engine
from tests.conftest import REPO

LIFEVANTAGE = REPO / "processes" / "lifevantage"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
US = {"market": "US", "locale": "en-US"}
runner = CliRunner()


def history(engine: Engine, clock: ManualClock) -> datetime:
    """The same steps on any database; returns the moment to read the cards at."""
    engine.deploy([LIFEVANTAGE])
    named = {**US, "prospect_first_name": "Ann"}
    engine.start("prospect_journey", "ann", "D", named, actor="D")  # add_contact, filled in
    clock.advance(HOUR)
    ben = engine.start("prospect_journey", "ben", "D", US, actor="D").id  # no first name
    engine.complete(ben, "add_contact", actor="D")  # share_intro, stuck after five days
    clock.advance(HOUR)
    cy = engine.start("prospect_journey", "cy", "D", {**US, "prospect_first_name": "Cy"}).id
    engine.complete(cy, "add_contact")
    engine.complete(cy, "share_intro")  # a later step, with its follow-up
    onboarding = engine.start("distributor_onboarding", "D", "D", {**US, "sponsor_id": "S"},
                              actor="D").id
    engine.start("prospect_journey", "sam", "S", US, actor="S")  # the sponsor's own
    engine.complete(onboarding, "welcome", actor="D")
    engine.complete(onboarding, "add_first_prospects", actor="D")
    engine.skip(onboarding, "product_training", actor="D")
    clock.advance(10 * DAY)
    engine.tick()  # the first sale is stuck: the sponsor's check-in, on S's cards
    engine.start("prospect_journey", "eve", "D", US)  # a message, but no first name for it
    dee = engine.start("prospect_journey", "dee", "D", US).id
    engine.complete(dee, "add_contact")  # share_intro: its stuck timer is due in five days
    clock.advance(6 * DAY)  # and no worker ran: overdue, with its follow-up time
    # A drift alert on the content ann's card leads with, open (not reviewed).
    (card,) = [c for c in engine.cards("D") if c.prospect_id == "ann"]
    hook, shown = card.hook, card.content[0].option_id
    assert hook is not None
    live = get_policy(engine.store, hook)
    alert = {"option_id": shown, "rate_before": 0.3, "rate_after": 0.1,
             "since": "2026-01-08T00:00:00+00:00", "detected_at": "2026-01-14T00:00:00+00:00"}
    save_policy(engine.store, replace(live, version=0, explain={"drift": {
        "option_id": shown, "demoted_from": live.version, "alert": alert}}),
        activate=True, clock=clock)
    return clock.now()


def engine_on(url: str, clock: ManualClock) -> Engine:
    return open_engine(url, clock=clock, rng=random.Random(5))


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, datetime]]:
    path = tmp_path_factory.mktemp("read_only") / "nextmove.db"
    engine = engine_on(f"sqlite:///{path}", ManualClock(T0))
    now = history(engine, engine.clock)  # type: ignore[arg-type]
    engine.store.dispose()  # the last connection: the WAL goes into the file
    yield path, now


def cli(*args: str) -> str:
    result = runner.invoke(app, ["cards", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("who", ["D", "S", "nobody"])
def test_read_only_cards_print_what_the_engine_path_prints(
        sqlite_file: tuple[Path, datetime], who: str) -> None:
    path, now = sqlite_file
    at = now.isoformat()
    reads = open_read_only(str(path))
    assert reads is not None  # a plain path to a current database: the read-only way
    reads.close()
    # An `sqlite:///` URL with an option goes the normal way in: open_engine, Engine.cards.
    normal = f"sqlite:///{path}?timeout=30"
    assert open_read_only(normal) is None
    for extra in ([], ["--json"], ["--limit", "2"]):
        lean = cli("-d", who, "--now", at, "--db", str(path), *extra)
        assert lean == cli("-d", who, "--now", at, "--db", normal, *extra)
    engine = engine_on(normal, ManualClock(now))
    expected = json_text({"cards": [c.to_dict() for c in engine.cards(who)]})
    engine.store.dispose()
    assert cli("-d", who, "--now", at, "--db", str(path), "--json") == expected


def test_the_database_has_every_kind_of_card(sqlite_file: tuple[Path, datetime]) -> None:
    """The comparison above covers what it should (it can fail on each of these)."""
    path, now = sqlite_file
    at = now.isoformat()
    cards = json.loads(cli("-d", "D", "--now", at, "--db", str(path), "--json"))["cards"]
    by = {c["prospect_id"]: c for c in cards}
    assert by["ben"]["overdue"] and by["dee"]["overdue"] and by["dee"]["follow_up_at"]
    assert "{prospect_first_name}" in by["eve"]["suggested_message"]  # no data for it
    assert "Ann" in by["ann"]["suggested_message"]
    assert by["cy"]["step_id"] not in (by["ann"]["step_id"], by["ben"]["step_id"])
    sponsor = json.loads(cli("-d", "S", "--now", at, "--db", str(path), "--json"))["cards"]
    assert {(c["step_id"], c["role"]) for c in sponsor} >= {("sponsor_check_in", "sponsor")}
    text = cli("-d", "D", "--now", at, "--db", str(path))
    assert "OVERDUE " in text and "drift alert (for the sponsor or lead)" in text


def test_the_recorded_clock_is_now_on_both_paths(sqlite_file: tuple[Path, datetime],
                                                 tmp_path: Path) -> None:
    path = tmp_path / "recorded.db"
    path.write_bytes(sqlite_file[0].read_bytes())
    engine = engine_on(str(path), ManualClock(T0))
    record_simulated_clock(engine.store, T0 + 20 * DAY)
    engine.store.dispose()
    lean = cli("-d", "D", "--db", str(path), "--json")
    assert lean == cli("-d", "D", "--db", f"sqlite:///{path}?timeout=30", "--json")
    engine = engine_on(str(path), ManualClock(T0 + 20 * DAY))
    assert lean == json_text({"cards": [c.to_dict() for c in engine.cards("D")]})
    engine.store.dispose()


@pytest.mark.postgres
def test_engine_cards_on_postgresql_match_the_read_only_path(
        sqlite_file: tuple[Path, datetime], pg_url: str) -> None:
    path, now = sqlite_file
    engine = engine_on(pg_url, ManualClock(T0))
    on_sqlite = engine_on(f"sqlite:///{path}?timeout=30", ManualClock(now))
    assert history(engine, engine.clock) == now  # type: ignore[arg-type]
    try:
        for who in ("D", "S"):
            got = json_text({"cards": [c.to_dict() for c in engine.cards(who)]})
            assert got == cli("-d", who, "--now", now.isoformat(), "--db", str(path), "--json")
            assert pages(engine, who) == pages(on_sqlite, who)  # the keyset page queries
        assert len(pages(engine, "D")) > 2
    finally:
        engine.store.dispose()
        on_sqlite.store.dispose()


def pages(engine: Engine, who: str) -> list[tuple[list[dict[str, object]], str | None]]:
    """Every page of two or so cards, with its cursor, to the last."""
    found, after = [], None
    while True:
        page, after = engine.cards_page(who, size=2, after=after)
        found.append(([c.to_dict() for c in page], after))
        if after is None:
            return found


def test_what_the_normal_way_in_refuses_or_upgrades_goes_the_normal_way(tmp_path: Path,
        sqlite_file: tuple[Path, datetime]) -> None:
    """Not a database, a newer schema, a missing file: refused with open_engine's message and
    exit code, as every command that only reads does."""
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    result = runner.invoke(app, ["cards", "-d", "D", "--db", str(junk)])
    assert result.exit_code == 6 and "is not a nextmove database" in result.output
    newer = tmp_path / "newer.db"
    newer.write_bytes(sqlite_file[0].read_bytes())
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE nextmove_meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    assert open_read_only(str(newer)) is None
    result = runner.invoke(app, ["cards", "-d", "D", "--db", str(newer), "--json"])
    assert result.exit_code == 6
    assert "newer than this nextmove" in json.loads(result.stdout)["message"]
    missing = tmp_path / "missing.db"  # a mistyped --db: refused, nothing created
    assert open_read_only(str(missing)) is None and not missing.exists()
    result = runner.invoke(app, ["cards", "-d", "D", "--db", str(missing)])
    assert result.exit_code == 4 and f"no database at {missing}" in result.output
    assert not missing.exists()
