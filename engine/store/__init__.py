"""Persistence: SQLite by default, PostgreSQL with the same code."""

from engine.store.database import DEFAULT_DB, Store, StoreError, database_url

__all__ = ["DEFAULT_DB", "Store", "StoreError", "database_url"]
