"""A mistyped --db: the commands that only read refuse an SQLite file that does not exist
(not-found, exit 4, one line) and leave nothing behind; the commands that write still create
it; PostgreSQL URLs are not checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from cli import app
from commands._wiring import READ_ONLY
from engine.errors import ErrorCode
from engine.store.database import DatabaseNotFound
from nextmove import open_store
from tests.conftest import REPO

LIFEVANTAGE = str(REPO / "processes" / "lifevantage")
JOURNEY = "prospect_journey"
# Each read-only command with the arguments it needs.
READERS = {
    "audit maps": ["audit", "--verify"], "audit review": ["audit", "review", LIFEVANTAGE],
    "cards": ["cards", "-d", "d1"], "cohorts": ["cohorts"], "drift": ["drift", "--open"],
    "evaluate": ["evaluate", "uniform", "--process", JOURNEY],
    "export-log": ["export-log", "--process", JOURNEY, "-o", "log.csv"],
    "funnel": ["funnel", "--process", JOURNEY], "indicators": ["indicators"],
    "list": ["list"], "policy history": ["policy", "history"],
    "recommend": ["recommend", "--hook", "intro_video"], "report": ["report", "-o", "r.html"],
    "show": ["show", "-p", "p1"], "stuck": ["stuck", "--process", JOURNEY],
    "survival": ["survival"], "token list": ["token", "list"],
    "variants": ["variants", "--process", JOURNEY],
}
MORE_READS = [["audit", "--trail"], ["audit", LIFEVANTAGE]]  # `audit maps` in other guises


def test_every_read_only_name_is_a_command() -> None:
    """A misspelt name in READ_ONLY would quietly let its command create databases again."""
    root = get_command(app)
    for name in READ_ONLY:
        group = root
        for word in name.split():
            group = group.commands[word]  # type: ignore[attr-defined]
    assert set(READERS) == READ_ONLY


@pytest.mark.parametrize("args", [*READERS.values(), *MORE_READS],
                         ids=[*READERS, "audit --trail", "audit MAPS"])
def test_a_reading_command_refuses_a_missing_database(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # report/export-log outputs, and ./nextmove.db, land here
    typo = tmp_path / "typo.db"
    result = CliRunner().invoke(app, [*args, "--db", str(typo)])
    assert result.exit_code == 4, result.output
    assert result.output.strip() == (
        f"error: no database at {typo}; deploy or simulate first, or check --db")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing created


def test_the_default_database_is_refused_too_and_json_says_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEXTMOVE_DB", raising=False)
    result = CliRunner().invoke(app, ["indicators", "--json"])
    assert result.exit_code == 4
    body = json.loads(result.output)
    assert (body["code"], body["message"]) == (
        "not-found", "no database at nextmove.db; deploy or simulate first, or check --db")
    assert not (tmp_path / "nextmove.db").exists()


def test_writing_commands_still_create_it_and_then_it_reads(tmp_path: Path) -> None:
    db = str(tmp_path / "new.db")
    runner = CliRunner()
    assert runner.invoke(app, ["deploy", LIFEVANTAGE, "--db", db]).exit_code == 0
    assert runner.invoke(app, ["start", JOURNEY, "-p", "p1", "-d", "d1", "--db", db]
                         ).exit_code == 0
    result = runner.invoke(app, ["audit", "--verify", "--db", db])
    assert result.exit_code == 0 and "step log intact" in result.output
    result = runner.invoke(app, ["show", "-p", "p1", "--db", db])
    assert result.exit_code == 0, result.output


def test_open_store_without_create(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    for db in (str(missing), f"sqlite:///{missing}"):
        with pytest.raises(DatabaseNotFound) as raised:
            open_store(db, create=False)
        assert raised.value.code == ErrorCode.NOT_FOUND and raised.value.path == str(missing)
    assert not missing.exists()
    open_store(missing).dispose()  # created by default
    open_store(missing, create=False).dispose()  # and opened once it exists


@pytest.mark.postgres
def test_postgresql_urls_are_not_checked(pg_url: str) -> None:
    result = CliRunner().invoke(app, ["indicators", "--db", pg_url])
    assert result.exit_code == 0, result.output
