"""The store's tables as typed SQLAlchemy Core `Table` objects: what queries are built on.

`engine.store.tables` declares each table once; this module is the public view of them, so
code outside the store writes `STEP_EVENT.c.kind` with typed columns.
"""

from __future__ import annotations

from engine.store.tables import (
    CATALOG,
    DEFINITION,
    INSTANCE,
    MESSAGE_RECEIPT,
    META,
    METADATA,
    POLICY,
    POLICY_ACTIVATION,
    POLICY_ACTIVE,
    POLICY_TRAIL_HEAD,
    SIGNOFF,
    STEP_EVENT,
)

__all__ = [
    "CATALOG",
    "DEFINITION",
    "INSTANCE",
    "MESSAGE_RECEIPT",
    "META",
    "METADATA",
    "POLICY",
    "POLICY_ACTIVATION",
    "POLICY_ACTIVE",
    "POLICY_TRAIL_HEAD",
    "SIGNOFF",
    "STEP_EVENT",
]
