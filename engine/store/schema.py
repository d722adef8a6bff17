"""The store's tables as typed SQLAlchemy Core `Table` objects: what queries are built on.

The SQLModel classes in `engine.store.tables` declare each table once; this module looks each
one up once in their metadata, so code outside the store writes `STEP_EVENT.c.kind` with
typed columns instead of reaching for the classes' untyped table attribute.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlmodel import SQLModel

from engine.store.tables import (
    CatalogRow,
    DefinitionRow,
    InstanceRow,
    MessageReceiptRow,
    MetaRow,
    PolicyActivationRow,
    PolicyActiveRow,
    PolicyRow,
    PolicyTrailHeadRow,
    RetirementRow,
    SignoffRow,
    StepEventRow,
)

__all__ = [
    "CATALOG",
    "DEFINITION",
    "INSTANCE",
    "MESSAGE_RECEIPT",
    "META",
    "POLICY",
    "POLICY_ACTIVATION",
    "POLICY_ACTIVE",
    "POLICY_TRAIL_HEAD",
    "RETIREMENT",
    "SIGNOFF",
    "STEP_EVENT",
    "table_of",
]


def table_of(row: type[SQLModel]) -> Table:
    """The Core table a SQLModel table class declares."""
    name = row.__tablename__
    if not isinstance(name, str) or name not in SQLModel.metadata.tables:
        raise TypeError(f"{row.__name__} is not a table class of the store")
    return SQLModel.metadata.tables[name]


META = table_of(MetaRow)
DEFINITION = table_of(DefinitionRow)
INSTANCE = table_of(InstanceRow)
STEP_EVENT = table_of(StepEventRow)
MESSAGE_RECEIPT = table_of(MessageReceiptRow)
CATALOG = table_of(CatalogRow)
POLICY = table_of(PolicyRow)
POLICY_ACTIVE = table_of(PolicyActiveRow)
POLICY_ACTIVATION = table_of(PolicyActivationRow)
POLICY_TRAIL_HEAD = table_of(PolicyTrailHeadRow)
SIGNOFF = table_of(SignoffRow)
RETIREMENT = table_of(RetirementRow)
