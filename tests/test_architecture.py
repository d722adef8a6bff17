"""Architecture rules that import-linter (`make lint`) cannot state: one place builds the
engine, and nothing imports the CLI module."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO

SKIP = {".venv", ".git", "build", "node_modules", "fixtures", "__pycache__"}
# Tests of the engine itself may build a bare engine; everything else opens one with nextmove.
BUILDS_ENGINES = ("nextmove/", "tests/engine/")
CONSTRUCTION = re.compile(r"(?<![\w])Engine\(")
IMPORTS_CLI = re.compile(r"^\s*(import cli\b|from cli import)", re.M)


def sources() -> list[Path]:
    return sorted(p for p in REPO.rglob("*.py")
                  if not SKIP & set(p.relative_to(REPO).parts))


def test_sources_are_found() -> None:
    names = {p.relative_to(REPO).as_posix() for p in sources()}
    assert {"cli.py", "nextmove/_open.py", "engine/runtime/engine.py"} <= names


def test_only_nextmove_and_engine_tests_construct_an_engine() -> None:
    found = [f"{p.relative_to(REPO)}:{n}" for p in sources()
             if not p.relative_to(REPO).as_posix().startswith(BUILDS_ENGINES)
             and p != Path(__file__).resolve()  # its own examples below
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if CONSTRUCTION.search(line)]
    assert found == [], "build engines with nextmove.open_engine"
    assert CONSTRUCTION.search("    engine = engine.Engine(store)")  # the rule can fail
    assert not CONSTRUCTION.search("ClockedScriptEngine(clock)")


def test_no_package_imports_the_cli_module() -> None:
    found = [str(p.relative_to(REPO)) for p in sources()
             if p.relative_to(REPO).parts[0] not in ("tests", "cli.py")
             and IMPORTS_CLI.search(p.read_text(encoding="utf-8"))]
    assert found == []
