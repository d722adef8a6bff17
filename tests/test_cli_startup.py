"""A fast command line: commands that do not learn load no LightGBM, pandas, pyarrow, scipy or
numpy, `nextmove --help` loads neither the runtime nor SQLAlchemy, and `cards` (which reads
stored rows only) loads no BPMN runtime or parser and no jsonschema. Each command runs
in a fresh interpreter, which then reports what it imported. (Not timed: bench/cli_start.py
measures the start-up.) Also `--version`, shell completion and the licence."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from tests.conftest import REPO

LEARNING = ("lightgbm", "pandas", "pyarrow", "scipy", "sklearn", "numpy", "learner",
            "analytics", "simulator")
RUNTIME = ("sqlalchemy", "sqlmodel", "SpiffWorkflow", "lxml", "jsonschema", "yaml",
           "engine.runtime", "nextmove", "content_catalog", "compliance", "service", "fastapi")
# Run the command as `nextmove` does, then print which of the modules it loaded, on stderr.
PROBE = """
import json, sys
from cli import app
try:
    app(sys.argv[2:], prog_name="nextmove")
except SystemExit:
    pass
watched = json.loads(sys.argv[1])
print("LOADED " + json.dumps(sorted(m for m in watched if m in sys.modules)), file=sys.stderr)
"""


def loaded(args: list[str], watched: tuple[str, ...]) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(watched), *args], cwd=REPO,
                          capture_output=True, text=True, check=True, timeout=120)
    line = [x for x in done.stderr.splitlines() if x.startswith("LOADED ")][-1]
    found: list[str] = json.loads(line.removeprefix("LOADED "))
    return found


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("startup") / "n.db")
    runner = CliRunner()
    for args in (["deploy", str(REPO / "processes" / "lifevantage")],
                 ["start", "prospect_journey", "-p", "p1", "-d", "d1"]):
        assert runner.invoke(app, [*args, "--db", path]).exit_code == 0
    return path


def test_help_loads_neither_the_learner_nor_the_runtime() -> None:
    assert loaded(["--help"], LEARNING + RUNTIME) == []
    assert loaded(["cards", "--help"], LEARNING + RUNTIME) == []


def test_the_probe_sees_what_a_command_loads(db: str) -> None:
    """The checks here can fail: `funnel` does load the analytics package."""
    assert "analytics" in loaded(["funnel", "--process", "prospect_journey", "--db", db],
                              LEARNING)


@pytest.mark.parametrize("args", [
    ["cards", "-d", "d1"],
    ["list"],
    ["show", "-p", "p1"],
    ["start", "prospect_journey", "-p", "p2", "-d", "d1"],
    ["complete", "add_contact", "-p", "p2"],
    ["signal", "video_played", "-p", "p2"],
    ["tick"],
    ["policy", "history"],
])
def test_commands_that_do_not_learn_load_no_learning_library(db: str, args: list[str]) -> None:
    assert loaded([*args, "--db", db], LEARNING) == []


# What `cards` must not load: it reads stored rows (the instances' waits, the steps' stored
# metadata, the stored catalog), so no BPMN runtime or parser and no schema checks.
NOT_FOR_CARDS = ("SpiffWorkflow", "lxml", "jsonschema", "engine.definitions.loader",
                 "engine.definitions.spiff", "engine.definitions.compile",
                 "engine.runtime.pipeline", "engine.runtime.events", "engine.durations")


def test_cards_reads_stored_data_without_the_bpmn_runtime_or_schema_checks(db: str) -> None:
    for args in (["cards", "-d", "d1"], ["cards", "-d", "d1", "--json"], ["list"]):
        assert loaded([*args, "--db", db], NOT_FOR_CARDS) == []


# On an SQLite file `cards` reads read-only with sqlite3 (commands/_read_only.py): not even
# SQLAlchemy, the SQLModel tables or the engine. (pydantic is loaded: typer 0.29 converts
# every option value that is not a flag with a pydantic TypeAdapter.)
NOT_FOR_SQLITE_CARDS = ("sqlalchemy", "sqlmodel", "engine.store.database",
                        "engine.store.tables", "engine.runtime.engine", "nextmove",
                        "content_catalog.policy_store", "content_catalog.recommender")


def test_cards_on_sqlite_loads_no_sqlalchemy(db: str) -> None:
    for args in (["cards", "-d", "d1"], ["cards", "-d", "d1", "--json"]):
        assert loaded([*args, "--db", db], NOT_FOR_SQLITE_CARDS) == []
        assert loaded([*args, "--db", f"sqlite:///{db}"], NOT_FOR_SQLITE_CARDS) == []


def test_the_probe_sees_sqlalchemy_when_cards_goes_the_normal_way(db: str) -> None:
    """The check above can fail: an SQLite URL with options goes through open_engine."""
    found = loaded(["cards", "-d", "d1", "--db", f"sqlite:///{db}?timeout=30"],
                   NOT_FOR_SQLITE_CARDS)
    assert {"sqlalchemy", "sqlmodel", "nextmove"} <= set(found)


def test_cards_still_shows_what_the_stored_catalog_says(db: str) -> None:
    """The catalog is read back from the store without its schema check: the card still
    names the ranked content and fills in the message template."""
    result = CliRunner().invoke(app, ["cards", "-d", "d1", "--json", "--db", db])
    assert result.exit_code == 0, result.output
    card = next(c for c in json.loads(result.stdout)["cards"] if c["prospect_id"] == "p1")
    assert card["content"] and all(c["title"] for c in card["content"])
    assert card["suggested_message"]


def test_the_probe_sees_the_bpmn_runtime_when_a_step_runs(db: str) -> None:
    """The check above can fail: completing a step does load SpiffWorkflow."""
    found = loaded(["start", "prospect_journey", "-p", "p9", "-d", "d1", "--db", db],
                   NOT_FOR_CARDS)
    assert "SpiffWorkflow" in found and "engine.runtime.pipeline" in found


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    version = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    assert result.stdout.strip() in (f"nextmove {version}", "nextmove 0+unknown")


def test_shell_completion_is_typers_standard_option() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


def test_the_licence_is_in_the_repository_and_the_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = Path(REPO / "LICENSE").read_text("utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "Apache License 2.0" in (REPO / "README.md").read_text("utf-8")
