"""Persistence: SQLite by default, PostgreSQL with the same code.

    store = Store("nextmove.db")       # connects to nothing yet
    store.prepare(progress=None)       # creates or upgrades the schema; refuses a foreign one

    Store                  the database: connections, transactions, schema
    DEFINITION, INSTANCE, STEP_EVENT, ...   the tables, typed (`engine.store.schema`)
    EventKind, *_KINDS     what a step event records (`engine.store.kinds`)
    engine.store.steplog   the step log read for learning and analytics

Names are imported when first used (PEP 562): `engine.store.plain`, the plain-SQL reads of
`nextmove cards`, is imported without SQLAlchemy or the SQLModel tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine._lazy import lazy_names

if TYPE_CHECKING:
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
        RETIREMENT,
        SIGNOFF,
        STEP_EVENT,
        table_of,
    )

_WHERE = {
    "ACTED_KINDS": "engine.store.kinds",
    "CATALOG": "engine.store.schema",
    "CATCH_KINDS": "engine.store.kinds",
    "CLOSING_KINDS": "engine.store.kinds",
    "DEFAULT_DB": "engine.store.database",
    "DEFINITION": "engine.store.schema",
    "DEVIATED_KINDS": "engine.store.kinds",
    "DONE_KINDS": "engine.store.kinds",
    "EVENT_KINDS": "engine.store.kinds",
    "EventKind": "engine.store.kinds",
    "INSTANCE": "engine.store.schema",
    "MESSAGE_RECEIPT": "engine.store.schema",
    "META": "engine.store.schema",
    "PATH_KINDS": "engine.store.kinds",
    "POLICY": "engine.store.schema",
    "POLICY_ACTIVATION": "engine.store.schema",
    "POLICY_ACTIVE": "engine.store.schema",
    "POLICY_TRAIL_HEAD": "engine.store.schema",
    "Prepared": "engine.store.database",
    "Progress": "engine.store.migrations",
    "REACHED_KINDS": "engine.store.kinds",
    "RETIREMENT": "engine.store.schema",
    "SETTLED_KINDS": "engine.store.kinds",
    "SIGNOFF": "engine.store.schema",
    "STEP_EVENT": "engine.store.schema",
    "Store": "engine.store.database",
    "StoreError": "engine.store.database",
    "VISIT_KINDS": "engine.store.kinds",
    "database_url": "engine.store.database",
    "table_of": "engine.store.schema",
}

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
    "RETIREMENT",
    "SIGNOFF",
    "STEP_EVENT",
    "VISIT_KINDS",
    "EventKind",
    "Store",
    "StoreError",
    "database_url",
    "table_of",
]

__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
