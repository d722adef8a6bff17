"""Persistence: SQLite by default, PostgreSQL with the same code.

    store = Store("nextmove.db")       # connects to nothing yet
    store.prepare(progress=None)       # creates or upgrades the schema; refuses a foreign one
"""

from engine.store.database import (
    DEFAULT_DB,
    Prepared,
    Progress,
    Store,
    StoreError,
    database_url,
)

__all__ = ["DEFAULT_DB", "Prepared", "Progress", "Store", "StoreError", "database_url"]
