"""Persistence: SQLite by default, PostgreSQL with the same code.

    store = Store("nextmove.db")       # connects to nothing yet
    store.prepare(progress=None)       # creates or upgrades the schema; refuses a foreign one

    Store                  the database: connections, transactions, schema
    DEFINITION, INSTANCE, STEP_EVENT, ...   the tables, typed (`engine.store.schema`)
    EventKind, *_KINDS     what a step event records (`engine.store.kinds`)
    engine.store.steplog   the step log read for learning and analytics
"""

from engine.store.database import (
    DEFAULT_DB,
    Prepared,
    Store,
    StoreError,
    database_url,
)
from engine.store.kinds import (
    ACTED_KINDS,
    CATCH_KINDS,
    CLOSING_KINDS,
    DEVIATED_KINDS,
    DONE_KINDS,
    EVENT_KINDS,
    PATH_KINDS,
    REACHED_KINDS,
    SETTLED_KINDS,
    VISIT_KINDS,
    EventKind,
)
from engine.store.migrations import Progress
from engine.store.schema import (
    CATALOG,
    DEFINITION,
    INSTANCE,
    MESSAGE_RECEIPT,
    META,
    POLICY,
    POLICY_ACTIVATION,
    POLICY_ACTIVE,
    POLICY_TRAIL_HEAD,
    SIGNOFF,
    STEP_EVENT,
    table_of,
)

__all__ = [
    "ACTED_KINDS",
    "CATALOG",
    "CATCH_KINDS",
    "CLOSING_KINDS",
    "DEFAULT_DB",
    "DEFINITION",
    "DEVIATED_KINDS",
    "DONE_KINDS",
    "EVENT_KINDS",
    "INSTANCE",
    "MESSAGE_RECEIPT",
    "META",
    "PATH_KINDS",
    "POLICY",
    "POLICY_ACTIVATION",
    "POLICY_ACTIVE",
    "POLICY_TRAIL_HEAD",
    "Prepared",
    "Progress",
    "REACHED_KINDS",
    "SETTLED_KINDS",
    "SIGNOFF",
    "STEP_EVENT",
    "VISIT_KINDS",
    "EventKind",
    "Store",
    "StoreError",
    "database_url",
    "table_of",
]
