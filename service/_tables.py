"""The service's own tables: API tokens, idempotency keys and sign-in links.

They live in the service's own `MetaData`, not in the store's schema: a database that never
served HTTP has none of them, an older nextmove ignores them, and they need no schema version
(adding a table changes nothing the engine reads). `prepare` creates the missing ones; it
runs once when the server starts (before any worker process) and in the `token` commands.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from engine import Store

METADATA = MetaData()

API_TOKEN = Table(
    "api_token", METADATA,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the token
    Column("prefix", String(16), nullable=False),  # the first characters, to tell tokens apart
    Column("role", String(32), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
)

IDEMPOTENCY_KEY = Table(
    "api_idempotency_key", METADATA,
    Column("subject", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("fingerprint", String(64), nullable=False),  # what was asked, to refuse reuse
    Column("status", Integer),  # None while the first request is being answered
    Column("body", Text),
    Column("created_at", DateTime, nullable=False),
    PrimaryKeyConstraint("subject", "key"),
)

SIGN_IN_LINK = Table(
    "api_sign_in_link", METADATA,
    Column("code_hash", String(64), primary_key=True),
    Column("token_id", Integer, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("used_at", DateTime),
)


def prepare(store: Store) -> None:
    """Create the service's tables that the (prepared) database lacks."""
    with store.write() as conn:
        METADATA.create_all(conn, checkfirst=True)
