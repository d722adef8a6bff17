"""The database tables. SQLModel lives here only: the rest of nextmove sees plain dataclasses.

Times are stored as naive UTC (plain DateTime columns,
not SQLModel's aware type). JSON documents are stored as text so SQLite and PostgreSQL
behave the same. Adding a table or column means bumping SCHEMA_VERSION (in
`engine.store.version`) and adding a migration in `database.py`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from engine.store.version import SCHEMA_VERSION as SCHEMA_VERSION  # bumped there

ONLY_ON = "nextmove_only_on"  # Index.info key: the one dialect an index is made on


def only_on(dialect: str, index: Index) -> Index:
    """`index`, made on `dialect` only: by `create_all` (its DDL condition) and by
    `Store.prepare` on an existing database (which reads the mark in `info`)."""
    index.info[ONLY_ON] = dialect
    return index.ddl_if(dialect=dialect)


class MetaRow(SQLModel, table=True):
    __tablename__ = "nextmove_meta"

    key: str = Field(primary_key=True)
    value: str


class DefinitionRow(SQLModel, table=True):
    """One deployed version of one process."""

    __tablename__ = "definition"
    __table_args__ = (UniqueConstraint("process_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    process_id: str = Field(index=True)
    version: int
    name: str
    content_hash: str = Field(index=True)
    source_file: str
    source_format: str
    documents: str = Field(sa_column=Column(Text, nullable=False))  # JSON {name: xml}
    steps: str = Field(sa_column=Column(Text, nullable=False))  # JSON step metadata
    deployed_at: datetime = Field(sa_column=Column(DateTime, nullable=False))


class RetirementRow(SQLModel, table=True):
    """A process retired by a designer (`Engine.retire`): no new instance starts and no later
    catalog must fill its hooks; its running instances go on. Deploying it again (a new or
    the same version) reinstates it (`reinstated_at`); the rows stay as its history."""

    __tablename__ = "retirement"
    __table_args__ = (
        # one open retirement per process
        Index("ux_retirement_open", "process_id", unique=True,
              sqlite_where=text("reinstated_at IS NULL"),
              postgresql_where=text("reinstated_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    process_id: str
    definition_id: int  # the version that was newest when it was retired
    actor: str | None = None
    reason: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(sa_column=Column(DateTime, nullable=False))
    reinstated_at: datetime | None = Field(default=None, sa_column=Column(DateTime))


class InstanceRow(SQLModel, table=True):
    """One prospect's journey through one definition version."""

    __tablename__ = "instance"
    __table_args__ = (
        Index("ix_instance_distributor_status", "distributor_id", "status"),
        Index("ix_instance_prospect_process", "prospect_id", "process_id"),
        # with the distributor, so per-person analytics (stuck) never read the wide rows
        Index("ix_instance_process_status_person", "process_id", "status", "distributor_id"),
        # the analytics' start times without reading the wide rows (state documents)
        Index("ix_instance_process_created", "process_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    definition_id: int = Field(foreign_key="definition.id", index=True)
    process_id: str
    prospect_id: str
    distributor_id: str
    sponsor_id: str | None = Field(default=None, index=True)  # from context "sponsor_id"
    # "process:prospect" while a deduplicated instance is active, NULL otherwise: the unique
    # index makes a racing second `start` for the same prospect fail instead of duplicating.
    active_key: str | None = Field(default=None, unique=True)
    status: str  # active | completed
    context: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    waiting: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of waits
    next_due_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime, nullable=True, index=True))
    # When its cards came or come due: the next timer or, earlier, a step flagged stuck
    # (whose timer has fired). Cards are paged in this order (`engine.runtime.cards`).
    card_due_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime, nullable=True))
    version: int  # optimistic lock: every step bumps it
    chain_head: str | None = None  # hash of the instance's last step event (tamper evidence)
    # A timer worker's claim on a due instance; it lapses at lease_until if the worker dies.
    lease_owner: str | None = None
    lease_until: datetime | None = Field(default=None, sa_column=Column(DateTime, nullable=True))
    state: str = Field(sa_column=Column(Text, nullable=False))  # versioned state document
    # open step visits and the last event's time (JSON, see engine.store.visits)
    visits: str = Field(default="{}", sa_column=Column(Text, nullable=False,
                                                       server_default="{}"))
    created_at: datetime = Field(sa_column=Column(DateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime, nullable=False))


class StepEventRow(SQLModel, table=True):
    """Append-only token log: what happened at which step, when, by whom."""

    __tablename__ = "step_event"
    __table_args__ = (
        Index("ix_step_event_instance", "instance_id", "id"),
        # the analytics read events through it (per instance and step, an outcome reached):
        # it covers every column they read, so they never touch the wide event rows
        Index("ix_step_event_visit", "instance_id", "step_id", "id", "kind", "at", "visit_ms",
              "paired"),
        # SQLite only: each step's ended visits in order of their time, so the analytics'
        # percentiles step along it instead of sorting (`analytics._sql.visit_percentiles`)
        only_on("sqlite", Index("ix_step_event_visit_ms", "step_id", "visit_ms", "instance_id",
                                sqlite_where=text("visit_ms IS NOT NULL"))),
    )

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="instance.id")
    step_id: str
    step_name: str
    kind: str  # entered | completed | skipped | varied | cancelled | timer | message | outcome
    actor: str | None = None
    # Recommendations: what the card offered (with the policy's propensity) and what was used.
    hook: str | None = None
    content_shown: str | None = None
    content_used: str | None = None
    propensity: float | None = None
    policy_version: int | None = None
    chain: str | None = None  # sha256 over the previous event's chain and this event
    # The visit a closing event ends (see engine.store.visits): did an `entered` event open
    # it, and how long did it take. NULL on other events.
    paired: bool | None = None
    visit_ms: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    data: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON
    at: datetime = Field(sa_column=Column(DateTime, nullable=False, index=True))


class MessageReceiptRow(SQLModel, table=True):
    """Prospect events received: one row per instance the event moved, or one `held` row
    (instance 0) while nothing waits for it (see `engine.runtime.held`).

    A message id is unique per (prospect, message): the unique key is written in the same
    transaction as the step the event causes, so an id delivered twice moves an instance at
    most once. A held row is delivered (status `delivered`, its instance set) by the step that
    makes a catch start waiting for it, or marked `expired` once `expires_at` has passed.
    Rows from before schema 4 that moved nothing have status `unmatched`. An event whose
    step failed is recorded with its instance and status `incident` along with the incident,
    and marked `delivered` by the retry that delivers it.
    """

    __tablename__ = "message_receipt"
    __table_args__ = (
        UniqueConstraint("prospect_id", "message", "message_id", "instance_id",
                         name="uq_message_receipt_event"),
        Index("ix_message_receipt_prospect", "prospect_id", "message"),
        Index("ix_message_receipt_status", "status", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: str
    message: str
    prospect_id: str
    instance_id: int  # 0 while held (or expired, or unmatched before schema 4)
    # delivered | held | expired | unmatched | incident
    status: str = Field(default="delivered", sa_column=Column(
        Text, nullable=False, server_default="delivered"))
    data: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON
    received_at: datetime = Field(sa_column=Column(DateTime, nullable=False))
    expires_at: datetime | None = Field(  # held rows: delivered only before this moment
        default=None, sa_column=Column(DateTime, nullable=True))
    settled_at: datetime | None = Field(  # when a held row was delivered or expired
        default=None, sa_column=Column(DateTime, nullable=True))


class CatalogRow(SQLModel, table=True):
    """One stored version of one content catalog: its YAML source, numbered per name."""

    __tablename__ = "catalog"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    version: int
    # sha256 of the source: storing the text of the newest version again is a no-op; the
    # text of an older one is stored again as a new version (it is served from then on)
    content_hash: str
    source_file: str | None = None
    source: str = Field(sa_column=Column(Text, nullable=False))
    deployed_at: datetime = Field(sa_column=Column(DateTime, nullable=False))


class PolicyRow(SQLModel, table=True):
    """One version of one hook's recommendation policy (immutable once written)."""

    __tablename__ = "policy"
    __table_args__ = (UniqueConstraint("hook", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    hook: str = Field(index=True)
    version: int
    kind: str  # catalog | learned | manual
    document: str = Field(sa_column=Column(Text, nullable=False))  # JSON policy document
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=Column(DateTime, nullable=False))


class PolicyActiveRow(SQLModel, table=True):
    """The policy version each hook uses now."""

    __tablename__ = "policy_active"

    hook: str = Field(primary_key=True)
    version: int
    changed_at: datetime = Field(sa_column=Column(DateTime, nullable=False))


class PolicyActivationRow(SQLModel, table=True):
    """Append-only, hash-chained log of every policy change: a version saved, activated or
    rolled back to. Replaying its activations and rollbacks defines what rollback undoes."""

    __tablename__ = "policy_activation"
    __table_args__ = (Index("ix_policy_activation_hook", "hook", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    hook: str
    version: int
    action: str  # save | activate | rollback
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    policy_hash: str  # sha256 of the version's stored policy document
    chain: str  # sha256 over the previous record's chain and this record
    at: datetime = Field(sa_column=Column(DateTime, nullable=False))


class PolicyTrailHeadRow(SQLModel, table=True):
    """The policy log's chain head (one row, id 1): cutting records off the end shows here.
    Writers lock this row first, so two policy changes never link to the same predecessor."""

    __tablename__ = "policy_trail_head"

    id: int = Field(primary_key=True)
    head: str
    records: int


class SignoffRow(SQLModel, table=True):
    """A reviewer's sign-off of one audit finding on one version of its map (`map_hash`).
    The records form one hash chain; its head and count are the `nextmove_meta` row
    `signoff_trail_head` ("<records> <head>"), locked by each writer."""

    __tablename__ = "signoff"

    id: int | None = Field(default=None, primary_key=True)
    finding: str = Field(index=True)  # NM003:process/step[/element]
    rule: str
    process: str
    map_hash: str  # ProcessDefinition.content_hash of the map version audited
    reviewer: str
    reason: str = Field(sa_column=Column(Text, nullable=False))
    chain: str  # sha256 over the previous record's chain and this record
    at: datetime = Field(sa_column=Column(DateTime, nullable=False))
