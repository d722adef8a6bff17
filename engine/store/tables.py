"""The database tables, declared once, as SQLAlchemy Core `Table`s on `METADATA`.

`engine.store.schema` is the typed public view the rest of nextmove queries through; nothing
outside the store sees these declarations, and rows come back as plain mappings turned into
frozen dataclasses. Core, not ORM classes: opening the store loads neither the ORM nor
pydantic, so a command that only reads (`nextmove cards`) starts fast.

Times are stored as naive UTC (plain DateTime columns). JSON documents are stored as text so
SQLite and PostgreSQL behave the same. Text ids are VARCHAR without a length (`String()`).
Adding a table or column means bumping SCHEMA_VERSION and adding a migration
(`engine.store.migrations`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_VERSION = 5  # 2: policy_activation.policy_hash and chain, policy_trail_head;
# 3: step_event.visit_ms and paired, instance.visits (see engine.store.visits);
# 4: message_receipt.status, expires_at, settled_at; ids unique per (prospect, message);
# 5: signoff (reviewers' sign-offs of audit findings, hash-chained)

METADATA = MetaData()


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True)


def _text(name: str, *, nullable: bool = False, index: bool = False,
          unique: bool = False) -> Column[str]:
    """A short text column (an id, a name, a hash)."""
    return Column(name, String(), nullable=nullable, index=index, unique=unique)


META = Table(
    "nextmove_meta", METADATA,
    Column("key", String(), primary_key=True),
    _text("value"),
)

# One deployed version of one process.
DEFINITION = Table(
    "definition", METADATA,
    _id(),
    _text("process_id", index=True),
    Column("version", Integer, nullable=False),
    _text("name"),
    _text("content_hash", index=True),
    _text("source_file"),
    _text("source_format"),
    Column("documents", Text, nullable=False),  # JSON {name: xml}
    Column("steps", Text, nullable=False),  # JSON step metadata
    Column("deployed_at", DateTime, nullable=False),
    UniqueConstraint("process_id", "version"),
)

# One prospect's journey through one definition version.
INSTANCE = Table(
    "instance", METADATA,
    _id(),
    Column("definition_id", Integer, ForeignKey("definition.id"), nullable=False, index=True),
    _text("process_id"),
    _text("prospect_id"),
    _text("distributor_id"),
    _text("sponsor_id", nullable=True, index=True),  # from context "sponsor_id"
    # "process:prospect" while a deduplicated instance is active, NULL otherwise: the unique
    # index makes a racing second `start` for the same prospect fail instead of duplicating.
    _text("active_key", nullable=True, unique=True),
    _text("status"),  # active | completed | incident
    Column("context", Text, nullable=False),  # JSON
    Column("waiting", Text, nullable=False),  # JSON list of waits
    Column("next_due_at", DateTime, nullable=True, index=True),
    Column("version", Integer, nullable=False),  # optimistic lock: every step bumps it
    _text("chain_head", nullable=True),  # hash of the last step event (tamper evidence)
    # A timer worker's claim on a due instance; it lapses at lease_until if the worker dies.
    _text("lease_owner", nullable=True),
    Column("lease_until", DateTime, nullable=True),
    Column("state", Text, nullable=False),  # versioned state document
    # open step visits and the last event's time (JSON, see engine.store.visits)
    Column("visits", Text, nullable=False, server_default="{}"),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_instance_distributor_status", "distributor_id", "status"),
    Index("ix_instance_prospect_process", "prospect_id", "process_id"),
    Index("ix_instance_process_status", "process_id", "status"),
    # the analytics' start times without reading the wide rows (state documents)
    Index("ix_instance_process_created", "process_id", "created_at"),
)

# Append-only token log: what happened at which step, when, by whom.
STEP_EVENT = Table(
    "step_event", METADATA,
    _id(),
    Column("instance_id", Integer, ForeignKey("instance.id"), nullable=False),
    _text("step_id"),
    _text("step_name"),
    _text("kind"),  # entered | completed | skipped | varied | cancelled | timer | message | ...
    _text("actor", nullable=True),
    # Recommendations: what the card offered (with the policy's propensity) and what was used.
    _text("hook", nullable=True),
    _text("content_shown", nullable=True),
    _text("content_used", nullable=True),
    Column("propensity", Float, nullable=True),
    Column("policy_version", Integer, nullable=True),
    _text("chain", nullable=True),  # sha256 over the previous event's chain and this event
    # The visit a closing event ends (see engine.store.visits): did an `entered` event open
    # it, and how long did it take. NULL on other events.
    Column("paired", Boolean, nullable=True),
    Column("visit_ms", BigInteger, nullable=True),
    Column("data", Text, nullable=True),  # JSON
    Column("at", DateTime, nullable=False, index=True),
    Index("ix_step_event_instance", "instance_id", "id"),
    # the analytics read events through it (per instance and step, an outcome reached):
    # it covers every column they read, so they never touch the wide event rows
    Index("ix_step_event_visit", "instance_id", "step_id", "id", "kind", "at", "visit_ms",
          "paired"),
)

# Prospect events received: one row per instance the event moved, or one `held` row
# (instance 0) while nothing waits for it (see `engine.runtime.held`).
#
# A message id is unique per (prospect, message): the unique key is written in the same
# transaction as the step the event causes, so an id delivered twice moves an instance at
# most once. A held row is delivered (status `delivered`, its instance set) by the step that
# makes a catch start waiting for it, or marked `expired` once `expires_at` has passed.
# Rows from before schema 4 that moved nothing have status `unmatched`.
MESSAGE_RECEIPT = Table(
    "message_receipt", METADATA,
    _id(),
    _text("message_id"),
    _text("message"),
    _text("prospect_id"),
    Column("instance_id", Integer, nullable=False),  # 0 while held (or expired, unmatched)
    # delivered | held | expired | unmatched
    Column("status", Text, nullable=False, server_default="delivered"),
    Column("data", Text, nullable=True),  # JSON
    Column("received_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=True),  # held rows: delivered only before this
    Column("settled_at", DateTime, nullable=True),  # when a held row was delivered or expired
    UniqueConstraint("prospect_id", "message", "message_id", "instance_id",
                     name="uq_message_receipt_event"),
    Index("ix_message_receipt_prospect", "prospect_id", "message"),
    Index("ix_message_receipt_status", "status", "expires_at"),
)

# One stored version of one content catalog: its YAML source, numbered per name.
CATALOG = Table(
    "catalog", METADATA,
    _id(),
    _text("name", index=True),
    Column("version", Integer, nullable=False),
    _text("content_hash"),  # sha256 of the source: storing identical text again is a no-op
    _text("source_file", nullable=True),
    Column("source", Text, nullable=False),
    Column("deployed_at", DateTime, nullable=False),
    UniqueConstraint("name", "content_hash"),
    UniqueConstraint("name", "version"),
)

# One version of one hook's recommendation policy (immutable once written).
POLICY = Table(
    "policy", METADATA,
    _id(),
    _text("hook", index=True),
    Column("version", Integer, nullable=False),
    _text("kind"),  # catalog | learned | manual
    Column("document", Text, nullable=False),  # JSON policy document
    Column("note", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("hook", "version"),
)

# The policy version each hook uses now.
POLICY_ACTIVE = Table(
    "policy_active", METADATA,
    Column("hook", String(), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("changed_at", DateTime, nullable=False),
)

# Append-only, hash-chained log of every policy change: a version saved, activated or
# rolled back to. Replaying its activations and rollbacks defines what rollback undoes.
POLICY_ACTIVATION = Table(
    "policy_activation", METADATA,
    _id(),
    _text("hook"),
    Column("version", Integer, nullable=False),
    _text("action"),  # save | activate | rollback
    Column("reason", Text, nullable=True),
    _text("policy_hash"),  # sha256 of the version's stored policy document
    _text("chain"),  # sha256 over the previous record's chain and this record
    Column("at", DateTime, nullable=False),
    Index("ix_policy_activation_hook", "hook", "id"),
)

# The policy log's chain head (one row, id 1): cutting records off the end shows here.
# Writers lock this row first, so two policy changes never link to the same predecessor.
POLICY_TRAIL_HEAD = Table(
    "policy_trail_head", METADATA,
    Column("id", Integer, primary_key=True),
    _text("head"),
    Column("records", Integer, nullable=False),
)

# A reviewer's sign-off of one audit finding on one version of its map (`map_hash`). The
# records form one hash chain; its head and count are the `nextmove_meta` row
# `signoff_trail_head` ("<records> <head>"), locked by each writer.
SIGNOFF = Table(
    "signoff", METADATA,
    _id(),
    _text("finding", index=True),  # NM003:process/step[/element]
    _text("rule"),
    _text("process"),
    _text("map_hash"),  # ProcessDefinition.content_hash of the map version audited
    _text("reviewer"),
    Column("reason", Text, nullable=False),
    _text("chain"),  # sha256 over the previous record's chain and this record
    Column("at", DateTime, nullable=False),
)
