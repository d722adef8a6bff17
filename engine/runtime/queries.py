"""Read-side queries over indexed columns: they never deserialize a workflow."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, select

from engine.clock import as_utc
from engine.errors import (
    AmbiguousInstance,
    InstanceNotFound,
    InvalidInput,
    UnknownStep,
    did_you_mean,
    meant,
)
from engine.runtime.model import Instance, InstanceRef, ProspectRef, StepEvent, Waiting
from engine.store.database import Store
from engine.store.schema import DEFINITION, INSTANCE, STEP_EVENT
from engine.store.schema import MESSAGE_RECEIPT as RECEIPT
from engine.store.steplog import check_process, stored_steps_and_hooks

# The tables are the store's (`engine.store.schema`); the runtime's writers import them here.
__all__ = ["DEFINITION", "INSTANCE", "RECEIPT", "STEP_EVENT", "get", "header_query", "history",
           "list_instances", "resolve", "to_instance", "waits_of"]
HEADER_COLUMNS = [c for c in INSTANCE.c if c.name not in ("state", "lease_owner", "lease_until")]


STATUSES = ("active", "completed", "incident")  # an instance's status

def header_query() -> Select[Any]:
    """Instance columns (not the state document) plus the definition's version."""
    return select(*HEADER_COLUMNS, DEFINITION.c.version.label("definition_version")).join(
        DEFINITION, DEFINITION.c.id == INSTANCE.c.definition_id)


def waits_of(header: Mapping[Any, Any]) -> list[Waiting]:
    return [Waiting.from_dict(w) for w in json.loads(header["waiting"])]


def to_instance(
    header: Mapping[Any, Any], waits: list[Waiting] | None = None,
    context: dict[str, Any] | None = None,
) -> Instance:
    """The row as an Instance; `waits` and `context` when the caller has them parsed."""
    return Instance(
        id=header["id"],
        process_id=header["process_id"],
        definition_id=header["definition_id"],
        definition_version=header["definition_version"],
        prospect_id=header["prospect_id"],
        distributor_id=header["distributor_id"],
        status=header["status"],
        context=json.loads(header["context"]) if context is None else context,
        waiting=tuple(waits_of(header) if waits is None else waits),
        next_due_at=as_utc(header["next_due_at"]) if header["next_due_at"] else None,
        version=header["version"],
        created_at=as_utc(header["created_at"]),
        updated_at=as_utc(header["updated_at"]),
    )


def resolve(store: Store, ref: InstanceRef) -> int:
    """The instance id for an id or a prospect (their active instance, else the latest)."""
    if isinstance(ref, int):
        return ref
    assert isinstance(ref, ProspectRef)
    query = select(INSTANCE.c.id, INSTANCE.c.process_id, INSTANCE.c.status).where(
        INSTANCE.c.prospect_id == ref.prospect_id).order_by(INSTANCE.c.id.desc())
    if ref.process_id:
        query = query.where(INSTANCE.c.process_id == ref.process_id)
    rows = store.select(query)
    if not rows:
        raise InstanceNotFound(str(ref))
    active = [r for r in rows if r["status"] == "active"]
    processes = sorted({r["process_id"] for r in active})
    if len(processes) > 1:
        raise AmbiguousInstance(ref.prospect_id, processes)
    return int((active or rows)[0]["id"])


def get(store: Store, instance_id: int) -> Instance:
    rows = store.select(header_query().where(INSTANCE.c.id == instance_id))
    if not rows:
        raise InstanceNotFound(str(instance_id))
    return to_instance(rows[0])


def history(store: Store, instance_id: int) -> list[StepEvent]:
    query = select(STEP_EVENT).where(
        STEP_EVENT.c.instance_id == instance_id).order_by(STEP_EVENT.c.id)
    rows = store.select(query)
    return [
        StepEvent(r["id"], r["instance_id"], r["step_id"], r["step_name"], r["kind"],
                  as_utc(r["at"]), r["actor"], json.loads(r["data"]) if r["data"] else None,
                  r["hook"], r["content_shown"], r["content_used"], r["propensity"],
                  r["policy_version"])
        for r in rows
    ]


def list_instances(
    store: Store, *, process_id: str | None = None, distributor_id: str | None = None,
    prospect_id: str | None = None, step: str | None = None, status: str | None = None,
    limit: int = 100, offset: int = 0,
) -> list[Instance]:
    """Instances matching every filter given, newest first. A status that is none of
    `STATUSES` is refused; when nothing matches, a process never deployed or a step no
    deployed map has is refused by name (a typo is not "no instances")."""
    if status is not None and status not in STATUSES:
        hint = did_you_mean(status, STATUSES)
        raise InvalidInput("status", f"one of {', '.join(STATUSES)}, not {status!r}"
                           + meant(hint))
    query = header_query().order_by(INSTANCE.c.id.desc()).limit(limit).offset(offset)
    for column, value in (("process_id", process_id), ("distributor_id", distributor_id),
                          ("prospect_id", prospect_id), ("status", status)):
        if value is not None:
            query = query.where(INSTANCE.c[column] == value)
    if step is not None:
        # waiting is JSON text; this matches `"step_id": "<step>"` exactly as it is written.
        needle = json.dumps({"step_id": step})[1:-1]
        query = query.where(INSTANCE.c.waiting.contains(needle, autoescape=True))
    found = [to_instance(r) for r in store.select(query)]
    if not found:
        if process_id is not None:
            check_process(store, process_id)
        if step is not None:
            _check_step(store, step)
    return found


def _check_step(store: Store, step: str) -> None:
    """Raise UnknownStep unless some deployed map version has a step with this id."""
    needle = json.dumps({"id": step})[1:-1]  # as the steps column writes it
    if store.select(select(DEFINITION.c.id).where(
            DEFINITION.c.steps.contains(needle, autoescape=True)).limit(1)):
        return
    raise UnknownStep(step, stored_steps_and_hooks(store)[0])
