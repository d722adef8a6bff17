"""The store's public schema: every table exported once, typed, and used through that export
(no package reaches for `__table__` or into another package's private modules)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import Table
from sqlmodel import SQLModel

import engine.store
from engine.store import schema, tables
from engine.store.schema import table_of

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "content_catalog", "learner", "simulator", "analytics", "compliance",
            "bench")


def sources() -> list[Path]:
    found = [p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))]
    return [*found, REPO / "cli.py"]


def test_every_table_is_exported_once_from_the_store() -> None:
    exported = {getattr(engine.store, name).name: name for name in schema.__all__
                if isinstance(getattr(engine.store, name), Table)}
    assert set(exported) == set(SQLModel.metadata.tables)
    assert len(exported) == len([n for n in schema.__all__ if n != "table_of"])


@pytest.mark.parametrize("row", [tables.DefinitionRow, tables.InstanceRow,
                                 tables.StepEventRow, tables.PolicyRow, tables.MetaRow])
def test_the_exported_table_is_the_one_the_row_class_declares(row: type[SQLModel]) -> None:
    table = table_of(row)
    assert table is SQLModel.metadata.tables[table.name]
    assert set(table.c.keys()) == set(row.model_fields)


def test_a_class_that_is_no_table_is_refused() -> None:
    with pytest.raises(TypeError, match="not a table class"):
        table_of(SQLModel)


def test_columns_are_reached_through_the_typed_tables_only() -> None:
    offenders = [str(p.relative_to(REPO)) for p in sources()
                 if "__table__" in p.read_text(encoding="utf-8")]
    assert offenders == []


def _private_imports(path: Path) -> list[str]:
    """Modules of another top-level package with a private (`_name`) part that `path`
    imports."""
    own = path.relative_to(REPO).parts[0].removesuffix(".py")
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] != own and parts[0] in PACKAGES and any(
                    p.startswith("_") and not p.startswith("__") for p in parts[1:]):
                found.append(name)
    return found


def test_no_package_imports_a_private_module_of_another() -> None:
    # bench/profile_steps.py times the engine's private step writer on purpose
    offenders = {str(p.relative_to(REPO)): found for p in sources()
                 if p.parts[-2] != "bench" and (found := _private_imports(p))}
    assert offenders == {}
