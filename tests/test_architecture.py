"""Architecture rules that import-linter (`make lint`) cannot state: one place builds the
engine, nothing imports the CLI module, and analytics and learning read the log through
their read models."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sqlalchemy import Table

import engine.store
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


# Analytics and learning read the log through one read-model module per purpose
# (`analytics/_read_*.py`, `learner/_read_*.py`, with the shared building blocks of
# `analytics/_sql.py`); the learner's writers load imported logs. Everything else in these
# packages shapes results and builds no query on the engine's tables.
READERS = ("analytics", "learner")
READ_MODELS = re.compile(r"^(analytics|learner)/_read_\w+\.py$")
MAY_QUERY = {"analytics/_sql.py", "learner/_writer.py"}


def _queries_tables(path: Path, tables: set[str]) -> list[str]:
    """The imports by which a module could build SQL on the engine's tables: SQLAlchemy
    itself, or a table object from the engine's store."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "sqlalchemy"]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "sqlalchemy":
                found.append(node.module)
            elif node.module.startswith("engine.store"):
                found += [f"{node.module}.{a.name}" for a in node.names if a.name in tables]
    return found


def test_only_read_models_query_the_engine_tables_in_analytics_and_learner() -> None:
    tables = {name for name in dir(engine.store)
              if isinstance(getattr(engine.store, name), Table)}
    assert {"INSTANCE", "STEP_EVENT", "DEFINITION"} <= tables
    seen, found = set(), []
    for path in sources():
        name = path.relative_to(REPO).as_posix()
        if name.split("/")[0] not in READERS:
            continue
        seen.add(name)
        if READ_MODELS.match(name) or name in MAY_QUERY:
            continue
        found += [f"{name}: {what}" for what in _queries_tables(path, tables)]
    assert found == [], "move the query into the purpose's read model (_read_*.py)"
    assert {"analytics/funnel.py", "analytics/_read_funnel.py", "learner/variants.py"} <= seen
    # the rule can fail: the read models themselves do what it forbids elsewhere
    assert _queries_tables(REPO / "analytics/_read_funnel.py", tables)
    assert _queries_tables(REPO / "learner/_read_variants.py", tables)
