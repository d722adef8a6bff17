"""API tokens: high-entropy bearer secrets, shown once and stored as their SHA-256 hash.

A token is `nm_` and 43 URL-safe characters (256 random bits), so a fast hash is enough: no
one can guess their way back from the hash to a token, and checking one costs a single
indexed lookup. Revoking sets `revoked_at`; a revoked token authenticates no one.

Each server process remembers a token it has checked for `CACHE_SECONDS` (5 s), so a busy
client costs one lookup per few seconds instead of one per request (a database round trip
was a quarter of a step's time through the API). Revoking clears the revoking process's
memory at once; other server processes stop accepting the token within those 5 seconds.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select

from engine import Clock, NextmoveError, Store, SystemClock
from engine.clock import as_utc
from service._tables import API_TOKEN
from service.roles import ROLES, Principal, Role

PREFIX = "nm_"
CACHE_SECONDS = 5.0
_CACHE_LIMIT = 10_000
# (database, token hash) -> (valid until, on time.monotonic(); who the token is)
_checked: dict[tuple[str, str], tuple[float, Principal]] = {}


@dataclass(frozen=True)
class TokenInfo:
    """A stored token, without its secret."""

    id: int
    prefix: str
    role: str
    subject: str
    created_at: datetime
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "prefix": self.prefix, "role": self.role,
                "subject": self.subject, "created_at": self.created_at.isoformat(),
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


@dataclass(frozen=True)
class NewToken:
    info: TokenInfo
    token: str  # the secret: shown once, never stored


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(store: Store, role: str, subject: str, clock: Clock | None = None
                 ) -> NewToken:
    """A new token for `subject` acting as `role`."""
    if role not in ROLES:
        raise NextmoveError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if not subject.strip():
        raise NextmoveError("a token needs a subject (who it is for)")
    token = PREFIX + secrets.token_urlsafe(32)
    now = (clock or SystemClock()).now()
    with store.write() as conn:
        token_id = conn.execute(API_TOKEN.insert().values(
            token_hash=digest(token), prefix=token[:10], role=role, subject=subject,
            created_at=now).returning(API_TOKEN.c.id)).scalar_one()
    return NewToken(TokenInfo(int(token_id), token[:10], role, subject, as_utc(now), None),
                    token)


def revoke_token(store: Store, token_id: int, clock: Clock | None = None) -> TokenInfo:
    """Revoke token `token_id` (revoking it again changes nothing)."""
    now = (clock or SystemClock()).now()
    _checked.clear()
    with store.write() as conn:
        done = conn.execute(API_TOKEN.update().where(
            API_TOKEN.c.id == token_id, API_TOKEN.c.revoked_at.is_(None)).values(
            revoked_at=now))
        if not done.rowcount and conn.execute(select(API_TOKEN.c.id).where(
                API_TOKEN.c.id == token_id)).first() is None:
            raise NextmoveError(f"no token with id {token_id}")
    return next(t for t in list_tokens(store) if t.id == token_id)


def list_tokens(store: Store) -> list[TokenInfo]:
    rows = store.select(select(API_TOKEN).order_by(API_TOKEN.c.id))
    return [TokenInfo(r["id"], r["prefix"], r["role"], r["subject"], as_utc(r["created_at"]),
                      as_utc(r["revoked_at"]) if r["revoked_at"] else None) for r in rows]


_LOOKUP = select(API_TOKEN.c.id, API_TOKEN.c.role, API_TOKEN.c.subject).where(
    API_TOKEN.c.token_hash == bindparam("hash"),
    API_TOKEN.c.revoked_at.is_(None))


def remembered(store: Store, token: str) -> Principal | None | bool:
    """Who `token` is without touching the database: the Principal if this process checked
    it in the last CACHE_SECONDS, False if it is malformed (no one), True if it must be
    looked up (`authenticate`). What the server's event loop asks before it hands a
    request to a thread."""
    if not token.startswith(PREFIX) or len(token) > 100:
        return False
    known = _checked.get((store.url, digest(token)))
    if known is not None and known[0] > time.monotonic():
        return known[1]
    return True


def authenticate(store: Store, token: str) -> Principal | None:
    """Who `token` is, or None for an unknown or revoked one."""
    if not token.startswith(PREFIX) or len(token) > 100:
        return None
    key, now = (store.url, digest(token)), time.monotonic()
    known = _checked.get(key)
    if known is not None and known[0] > now:
        return known[1]
    rows = store.select(_LOOKUP, {"hash": key[1]})
    if not rows:
        _checked.pop(key, None)
        return None
    row = rows[0]
    who = Principal(row["subject"], Role(row["role"]), row["id"])
    if len(_checked) >= _CACHE_LIMIT:
        _checked.clear()
    _checked[key] = (now + CACHE_SECONDS, who)
    return who
