"""Stored catalogs and policy versions: which policy each hook uses, its history, rollback.

    stored = store_catalog(store, text, "catalog.yaml")   # v1 'catalog' policies for new hooks
    policy = save_policy(store, learned, note="LightGBM run 12", activate=True)
    rollback(store, "intro_video")                         # back to the version active before

Policy versions are immutable; `policy_active` says which one each hook uses, and the
append-only `policy_activation` log records every change — each version saved, activated or
rolled back to — hash-chained with the stored document's hash (`engine.store.trail`), in the
same transaction as the change. Rollback undoes the latest activation that has not been undone
yet, so repeated rollbacks walk back through history. Each operation is one transaction that
first locks the log's head, so policy writers queue; racing writers still retry on the keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from content_catalog._errors import CatalogNotFound, PolicyNotFound
from content_catalog._loader import load_catalog_text, read_stored_catalog_text
from content_catalog._model import Catalog
from content_catalog.policy import Policy, catalog_policy
from engine.clock import Clock, SystemClock, as_utc
from engine.store import CATALOG, POLICY
from engine.store import POLICY_ACTIVATION as ACTIVATION
from engine.store import POLICY_ACTIVE as ACTIVE
from engine.store.database import Store
from engine.store.trail import PolicyTrail

_ATTEMPTS = 20  # racing writers on PostgreSQL: each round lets at least one of them through
_CHANGES = ("activate", "rollback")  # the log's other action, "save", changes no active version


@dataclass(frozen=True)
class StoredCatalog:
    """One stored catalog version; `created` is False when it was the newest version's text
    already."""

    name: str
    version: int
    content_hash: str
    source_file: str | None
    deployed_at: datetime
    created: bool = False
    policies_created: tuple[str, ...] = ()  # hooks that got their version-1 catalog policy


@dataclass(frozen=True)
class PolicyVersion:
    """One stored policy version, as `history` lists it."""

    hook: str
    version: int
    kind: str
    created_at: datetime
    note: str | None
    active: bool
    last_activated_at: datetime | None


@dataclass(frozen=True)
class Activation:
    """One row of the activation log: `action` is "activate" or "rollback"."""

    hook: str
    version: int
    action: str
    reason: str | None
    at: datetime


def store_catalog(store: Store, catalog_text: str, file: str | None = None, *,
                  clock: Clock | None = None) -> StoredCatalog:
    """Check and store a catalog version; give every hook without a policy its version 1.

    The text of the catalog's newest version again is a no-op; the text of an older version
    is stored again as a new version, which is served from then on (the way to go back). Each
    new hook gets a 'catalog' policy (the normalized catalog weights), activated. Raises
    `DefinitionErrors` for an invalid catalog, storing nothing.
    """
    catalog = load_catalog_text(catalog_text, file=file)
    digest = hashlib.sha256(catalog_text.encode("utf-8")).hexdigest()
    now = _now(clock)
    for attempt in range(_ATTEMPTS):
        try:
            with store.write() as conn:
                log = PolicyTrail(conn)
                row = conn.execute(select(CATALOG).where(CATALOG.c.name == catalog.name)
                                   .order_by(CATALOG.c.version.desc()).limit(1)
                                   ).mappings().first()
                if row is not None and row["content_hash"] == digest:
                    return _stored_catalog(row)
                version = (row["version"] if row is not None else 0) + 1
                values = {"name": catalog.name, "version": version, "content_hash": digest,
                          "source_file": file, "source": catalog_text, "deployed_at": now}
                conn.execute(insert(CATALOG).values(**values))
                created = _seed_policies(conn, log, catalog, version, now)
                return _stored_catalog(values, created=True, policies_created=created)
        except IntegrityError:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def load_stored_catalog(store: Store, name: str | None = None) -> Catalog:
    """The latest stored version of catalog `name` (None: the catalog stored last)."""
    query = select(CATALOG.c.source, CATALOG.c.source_file).order_by(CATALOG.c.id.desc())
    if name is not None:
        query = query.where(CATALOG.c.name == name)
    with store.read() as conn:
        row = conn.execute(query.limit(1)).first()
        if row is None:
            raise CatalogNotFound(name, conn.execute(select(CATALOG.c.name).distinct()).scalars())
    return read_stored_catalog_text(row.source, file=row.source_file)


def stored_catalogs(store: Store, name: str | None = None) -> list[StoredCatalog]:
    """Every stored catalog version, by name then version."""
    query = select(CATALOG).order_by(CATALOG.c.name, CATALOG.c.version)
    if name is not None:
        query = query.where(CATALOG.c.name == name)
    with store.read() as conn:
        return [_stored_catalog(r) for r in conn.execute(query).mappings()]


def save_policy(store: Store, policy: Policy, *, note: str | None = None,
                activate: bool = False, reason: str | None = None,
                catalog: Catalog | None = None, clock: Clock | None = None) -> Policy:
    """Store `policy` as the hook's next version and return it with that version.

    With `catalog`, first check that the hook and every scored option exist in it. With
    `activate`, the new version also becomes the active one in the same transaction.
    """
    if catalog is not None:
        policy.check_against(catalog)
    now = _now(clock)
    for attempt in range(_ATTEMPTS):
        try:
            with store.write() as conn:
                log = PolicyTrail(conn)
                version = (conn.execute(select(func.max(POLICY.c.version)).where(
                    POLICY.c.hook == policy.hook)).scalar() or 0) + 1
                stored = replace(policy, version=version)
                document = _insert_policy(conn, log, stored, note, now)
                if activate:
                    _set_active(conn, log, policy.hook, version, document, "activate", reason,
                                now)
                return stored
        except IntegrityError:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def activate(store: Store, hook: str, version: int, *, reason: str | None = None,
             clock: Clock | None = None) -> PolicyVersion:
    """Make `version` the hook's active policy (already active: nothing changes)."""
    now = _now(clock)
    for attempt in range(_ATTEMPTS):
        try:
            with store.write() as conn:
                log = PolicyTrail(conn)
                versions = _versions(conn, hook)
                if version not in versions:
                    raise PolicyNotFound(hook, version, known=versions)
                if _active_version(conn, hook, lock=True) != version:
                    _set_active(conn, log, hook, version, _document(conn, hook, version),
                                "activate", reason, now)
            return _one_version(store, hook, version)
        except IntegrityError:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def rollback(store: Store, hook: str, *, reason: str | None = None,
             clock: Clock | None = None) -> PolicyVersion:
    """Undo the hook's latest activation that is not undone yet; return the version now active.

    After v1 → v2 → v3, rollbacks give v2, then v1, then `PolicyNotFound`.
    """
    now = _now(clock)
    with store.write() as conn:
        log = PolicyTrail(conn)
        if _active_version(conn, hook, lock=True) is None:
            raise PolicyNotFound(hook, known=_hooks(conn))
        stack = _activation_stack(conn, hook)
        if len(stack) < 2:
            raise PolicyNotFound(hook, message="no earlier active version to roll back to")
        target = stack[-2]
        _set_active(conn, log, hook, target, _document(conn, hook, target), "rollback", reason,
                    now)
    return _one_version(store, hook, target)


def history(store: Store, hook: str | None = None) -> list[PolicyVersion]:
    """Every stored policy version (of `hook`, or of all hooks), by hook then version."""
    last = (select(ACTIVATION.c.hook, ACTIVATION.c.version,
                   func.max(ACTIVATION.c.at).label("last_at"))
            .where(ACTIVATION.c.action.in_(_CHANGES))
            .group_by(ACTIVATION.c.hook, ACTIVATION.c.version).subquery())
    query = (select(POLICY.c.hook, POLICY.c.version, POLICY.c.kind, POLICY.c.created_at,
                    POLICY.c.note, ACTIVE.c.version.label("active_version"), last.c.last_at)
             .outerjoin(ACTIVE, ACTIVE.c.hook == POLICY.c.hook)
             .outerjoin(last, (last.c.hook == POLICY.c.hook)
                        & (last.c.version == POLICY.c.version))
             .order_by(POLICY.c.hook, POLICY.c.version))
    if hook is not None:
        query = query.where(POLICY.c.hook == hook)
    with store.read() as conn:
        rows = conn.execute(query).all()
        if hook is not None and not rows:
            raise PolicyNotFound(hook, known=_hooks(conn))
    return [PolicyVersion(r.hook, r.version, r.kind, as_utc(r.created_at), r.note,
                          r.active_version == r.version,
                          as_utc(r.last_at) if r.last_at is not None else None) for r in rows]


def activations(store: Store, hook: str | None = None) -> list[Activation]:
    """The activations and rollbacks (of `hook`, or of all hooks), oldest first."""
    query = select(ACTIVATION).where(ACTIVATION.c.action.in_(_CHANGES)).order_by(ACTIVATION.c.id)
    if hook is not None:
        query = query.where(ACTIVATION.c.hook == hook)
    with store.read() as conn:
        return [Activation(r["hook"], r["version"], r["action"], r["reason"], as_utc(r["at"]))
                for r in conn.execute(query).mappings()]


def get_policy(store: Store, hook: str, version: int | None = None) -> Policy:
    """Version `version` of the hook's policy (None: the active one)."""
    with store.read() as conn:
        if version is None:
            version = _active_version(conn, hook)
            if version is None:
                raise PolicyNotFound(hook, known=_hooks(conn))
        document = conn.execute(select(POLICY.c.document).where(
            POLICY.c.hook == hook, POLICY.c.version == version)).scalar()
        if document is None:
            raise PolicyNotFound(hook, version, known=_versions(conn, hook))
    return Policy.from_json(document)


def active_versions(store: Store) -> dict[str, int]:
    """The active policy version of every hook."""
    with store.read() as conn:
        return read_active_versions(conn)


def active_policies(store: Store) -> dict[str, Policy]:
    """The active policy of every hook."""
    with store.read() as conn:
        return read_active_policies(conn)


def read_active_versions(conn: Connection) -> dict[str, int]:
    """`active_versions` inside a transaction the caller holds."""
    rows = conn.execute(select(ACTIVE.c.hook, ACTIVE.c.version))
    return {hook: int(version) for hook, version in rows}


def read_active_policies(conn: Connection) -> dict[str, Policy]:
    """`active_policies` inside a transaction the caller holds."""
    query = select(POLICY.c.hook, POLICY.c.document).join(
        ACTIVE, (ACTIVE.c.hook == POLICY.c.hook) & (ACTIVE.c.version == POLICY.c.version))
    return {hook: Policy.from_json(document) for hook, document in conn.execute(query)}


def latest_catalog_id(conn: Connection, name: str | None) -> int | None:
    """The row id of the latest stored version of catalog `name` (None: of any catalog)."""
    query = select(func.max(CATALOG.c.id))
    if name is not None:
        query = query.where(CATALOG.c.name == name)
    found = conn.execute(query).scalar()
    return None if found is None else int(found)


def _seed_policies(conn: Connection, log: PolicyTrail, catalog: Catalog, version: int,
                   now: datetime) -> tuple[str, ...]:
    have = set(conn.execute(select(POLICY.c.hook).where(
        POLICY.c.hook.in_(sorted(catalog.hooks))).distinct()).scalars())
    created = tuple(sorted(catalog.hooks - have))
    for hook in created:
        policy = replace(catalog_policy(catalog, hook), version=1)
        document = _insert_policy(conn, log, policy,
                                  f"from catalog {catalog.name!r} version {version}", now)
        _set_active(conn, log, hook, 1, document, "activate",
                    f"default from catalog {catalog.name!r} version {version}", now)
    return created


def _insert_policy(conn: Connection, log: PolicyTrail, policy: Policy, note: str | None,
                   now: datetime) -> str:
    """Store a new version and log its saving; return its stored document."""
    document = policy.to_json()
    conn.execute(insert(POLICY).values(
        hook=policy.hook, version=policy.version, kind=policy.kind, document=document,
        note=note, created_at=now))
    log.append(hook=policy.hook, version=policy.version, action="save", reason=note,
               document=document, at=now)
    return document


def _set_active(conn: Connection, log: PolicyTrail, hook: str, version: int, document: str,
                action: str, reason: str | None, now: datetime) -> None:
    changed = conn.execute(update(ACTIVE).where(ACTIVE.c.hook == hook).values(
        version=version, changed_at=now)).rowcount
    if not changed:
        conn.execute(insert(ACTIVE).values(hook=hook, version=version, changed_at=now))
    log.append(hook=hook, version=version, action=action, reason=reason, document=document,
               at=now)


def _document(conn: Connection, hook: str, version: int) -> str:
    return str(conn.execute(select(POLICY.c.document).where(
        POLICY.c.hook == hook, POLICY.c.version == version)).scalar_one())


def _active_version(conn: Connection, hook: str, lock: bool = False) -> int | None:
    query = select(ACTIVE.c.version).where(ACTIVE.c.hook == hook)
    if lock:  # PostgreSQL: activations of one hook queue here (SQLite: BEGIN IMMEDIATE)
        query = query.with_for_update()
    found = conn.execute(query).scalar()
    return None if found is None else int(found)


def _activation_stack(conn: Connection, hook: str) -> list[int]:
    """Replay the log: an activation pushes its version, a rollback pops one."""
    stack: list[int] = []
    for action, version in conn.execute(select(ACTIVATION.c.action, ACTIVATION.c.version)
                                        .where(ACTIVATION.c.hook == hook,
                                               ACTIVATION.c.action.in_(_CHANGES))
                                        .order_by(ACTIVATION.c.id)):
        if action == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(version)
    return stack


def _versions(conn: Connection, hook: str) -> list[int]:
    return list(conn.execute(select(POLICY.c.version).where(POLICY.c.hook == hook)
                             .order_by(POLICY.c.version)).scalars())


def _hooks(conn: Connection) -> list[str]:
    return list(conn.execute(select(POLICY.c.hook).distinct()).scalars())


def _one_version(store: Store, hook: str, version: int) -> PolicyVersion:
    return next(v for v in history(store, hook) if v.version == version)


def _stored_catalog(row: Mapping[Any, Any], created: bool = False,
                    policies_created: tuple[str, ...] = ()) -> StoredCatalog:
    return StoredCatalog(row["name"], row["version"], row["content_hash"], row["source_file"],
                         as_utc(row["deployed_at"]), created, policies_created)


def _now(clock: Clock | None) -> datetime:
    return as_utc((clock or SystemClock()).now()).replace(tzinfo=None)
