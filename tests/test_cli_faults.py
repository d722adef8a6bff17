"""Issue 17's table, row by row, through the CLI: each bad input or fault gives its documented
exit code and one clear line (never a traceback), and the database — or the foreign file — is
unchanged where the command refused. On SQLite and PostgreSQL where the backend matters."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._faults import EVENTS, LIFEVANTAGE, cli, files, snapshot

T0 = "2026-01-05T09:00:00Z"


@pytest.fixture
def deployed(db_url: str) -> str:
    cli(["deploy", LIFEVANTAGE, "--db", db_url], 0)
    cli(["start", "prospect_journey", "-p", "ann", "-d", "d1", "--now", T0, "--db", db_url], 0)
    return db_url


# -- databases that are not ours --------------------------------------------------------------


def test_a_file_of_random_bytes_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "random.db"
    path.write_bytes(os.urandom(8192))
    before = files(tmp_path)
    result = cli(["list", "--db", path], 6)
    assert "is not a nextmove database: file is not a database" in result.stderr
    assert files(tmp_path) == before


def test_another_apps_sqlite_file_with_an_instance_table_is_refused_untouched(
        tmp_path: Path) -> None:
    path = tmp_path / "other_app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE instance (id INTEGER PRIMARY KEY, host TEXT, port INTEGER)")
        conn.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO instance (host, port) VALUES ('db1', 5432)")
    conn.close()
    before = files(tmp_path)
    result = cli(["start", "prospect_journey", "-p", "p", "-d", "d", "--db", path], 6)
    assert "other_app.db is not a nextmove database" in result.stderr
    assert "its 'instance' table is not nextmove's" in result.stderr
    assert files(tmp_path) == before  # no table, no meta row, no -wal or -shm file
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


def test_a_schema_version_that_is_not_a_number_is_refused_untouched(deployed: str) -> None:
    from sqlalchemy import create_engine, text
    engine = create_engine(deployed)
    with engine.begin() as conn:
        conn.execute(text("UPDATE nextmove_meta SET value = 'abc' WHERE key = 'schema_version'"))
    engine.dispose()
    before = snapshot(deployed)
    result = cli(["list", "--db", deployed], 6)
    assert "schema version is 'abc', not a number" in result.stderr
    assert snapshot(deployed) == before


def test_an_unsupported_database_url_is_refused_in_one_line() -> None:
    result = cli(["list", "--db", "mysql://u@h/x"], 6)
    assert "unsupported database 'mysql'" in result.stderr
    error = json.loads(cli(["list", "--db", "mysql://u@h/x", "--json"], 6).stdout)
    assert (error["error"], error["code"]) == ("StoreError", "database")


# -- ids, contexts, data, numbers and times ---------------------------------------------------


@pytest.mark.parametrize(("args", "says"), [
    (["-p", "x" * 10_000, "-d", "d1"], "prospect: is 10,000 characters long; at most 200"),
    (["-p", "", "-d", "d1"], "prospect: must not be empty"),
    (["-p", "a\x00b", "-d", "d1"], "prospect: contains the control character U+0000"),
    (["-p", "p", "-d", "d" * 201], "distributor: is 201 characters long"),
    (["-p", "p", "-d", "d1", "--context", '{"sponsor_id": {"x": 1}}'],
     "context.sponsor_id: must be text, not dict"),
    (["-p", "p", "-d", "d1", "--context", "[" * 40_000 + "]" * 40_000],
     "--context: is nested more than 20 levels deep"),
    (["-p", "p", "-d", "d1", "--context", '{"a": ' + "[" * 40_000 + "]" * 40_000 + "}"],
     "--context: is nested more than 20 levels deep"),
    (["-p", "p", "-d", "d1", "--context", json.dumps({"big": "x" * 70_000})],
     "--context: is 70,011 bytes as JSON; at most 65,536"),
    (["-p", "p", "-d", "d1", "--context", '{"n": 1e309}'], "--context.n: must be a finite"),
])
def test_bad_start_input_is_refused_the_same_on_both_backends(
        deployed: str, args: list[str], says: str) -> None:
    before = snapshot(deployed)
    result = cli(["start", "prospect_journey", *args, "--db", deployed], 3)
    assert says in result.stderr
    assert snapshot(deployed) == before


def test_deeply_nested_step_data_is_refused_and_the_instance_lives_on(deployed: str) -> None:
    before = snapshot(deployed)
    deep = '{"a": ' + "[" * 900 + "]" * 900 + "}"
    result = cli(["complete", "add_contact", "-p", "ann", "--data", deep, "--db", deployed], 3)
    assert "--data: is nested more than 20 levels deep" in result.stderr
    assert snapshot(deployed) == before
    # the prospect is not lost to the engine: it loads and moves on
    cli(["complete", "add_contact", "-p", "ann", "--data", '{"a": [[1]]}', "--db", deployed], 0)
    cli(["show", "-p", "ann", "--db", deployed], 0)


@pytest.mark.parametrize(("args", "code", "says"), [
    (["show", "99999999999999999999"], 3, "instance id: 99999999999999999999 is not between"),
    (["complete", "add_contact", "0"], 3, "instance id: 0 is not between 1 and"),
    (["tick", "--now", "9999-12-31T23:59:59Z"], 3, "is outside 1970-01-01 .. 9000-01-01"),
    (["tick", "--now", "1969-12-31T23:59:59Z"], 3, "is outside 1970-01-01 .. 9000-01-01"),
    (["outcome", "sale", "-p", "ann", "--amount", "nan"], 3, "amount: must be a finite number"),
    (["outcome", "sale", "-p", "ann", "--amount", "1e309"], 3, "amount: must be a finite"),
    (["outcome", "sale", "-p", "ann", "--amount", "-5"], 3, "amount: must be zero or more"),
    (["signal", "video_played", "-p", "ann", "--id", "m" * 300], 3, "message id: is 300"),
    (["show", "-p", "nobody"], 4, "no instance found for prospect 'nobody'"),
])
def test_bad_numbers_times_and_ids_are_refused(deployed: str, args: list[str], code: int,
                                              says: str) -> None:
    before = snapshot(deployed)
    result = cli([*args, "--db", deployed], code)
    assert says in result.stderr
    assert snapshot(deployed) == before


def test_a_zero_batch_is_a_usage_error(deployed: str) -> None:
    result = cli(["tick", "--batch", "0", "--db", deployed], 2)
    assert "--batch" in result.output


# -- the storage itself -----------------------------------------------------------------------


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` (root only: skipped where mount is not allowed)."""
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs."""
    with _tmpfs(tmp_path / "small", "2m") as where:
        yield where


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass  # no space left
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_is_one_line_exit_7_and_no_partial_step(tmp_path: Path,
                                                             small_disk: Path) -> None:
    made = tmp_path / "made.db"
    # the maps only: the event fixtures' hooks are not the LifeVantage catalog's
    cli(["deploy", LIFEVANTAGE / "prospect_journey.yaml", EVENTS, "--db", made], 0)
    cli(["start", "prospect_journey", "-p", "ann", "-d", "d1", "--now", T0, "--db", made], 0)
    cli(["start", "video_follow_up", "-p", "vic", "-d", "d1", "--now", T0, "--db", made], 0)
    cli(["complete", "share_video", "-p", "vic", "--now", T0, "--db", made], 0)
    db = small_disk / "nextmove.db"
    db.write_bytes(made.read_bytes())
    # A reader keeps the WAL open and empty, so every write must grow it on a full disk.
    holder = sqlite3.connect(db)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = snapshot(str(db))
    filler = _fill(small_disk)
    try:
        for args in (["complete", "add_contact", "-p", "ann"],
                     ["start", "prospect_journey", "-p", "bob", "-d", "d1"],
                     ["tick", "--now", "2026-02-01T00:00:00Z"],
                     ["signal", "video_played", "-p", "ann", "--id", "m1"]):
            result = cli([*args, "--db", db], 7)
            assert "the database's disk is full (database or disk is full)" in result.stderr
            assert "nothing of this command was stored" in result.stderr
    finally:
        filler.unlink()
        holder.close()
    assert snapshot(str(db)) == before
    cli(["complete", "add_contact", "-p", "ann", "--db", db], 0)  # space again: it works


def test_an_unreachable_postgres_is_exit_7() -> None:
    result = cli(["list", "--db", "postgresql://nobody@127.0.0.1:1/none"], 7)
    assert "cannot open database" in result.stderr


def test_a_read_only_database_is_exit_7(tmp_path: Path) -> None:
    made = tmp_path / "made.db"
    cli(["deploy", LIFEVANTAGE, "--db", made], 0)
    sqlite3.connect(made).execute("PRAGMA wal_checkpoint(TRUNCATE)").connection.close()
    if os.geteuid() != 0:  # an ordinary user: file permissions are enough
        made.chmod(0o444)
        tmp_path.chmod(0o555)
        try:
            cli(["start", "prospect_journey", "-p", "p", "-d", "d", "--db", made], 7)
        finally:
            tmp_path.chmod(0o755)
        return
    # Root writes through file permissions; only a read-only file system stops it.
    with _tmpfs(tmp_path / "ro", "8m") as where:
        db = where / "nextmove.db"
        db.write_bytes(made.read_bytes())
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        before = db.read_bytes()
        result = cli(["start", "prospect_journey", "-p", "p", "-d", "d", "--db", db], 7)
        assert "read-only file system" in result.stderr, result.stderr
        assert db.read_bytes() == before
