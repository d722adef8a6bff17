"""The rows the survival view needs, one per distributor, read with three small queries:
enrollment (their onboarding instance's start, else their first instance, as
`analytics.indicators` counts it), their first `sale` outcome, and the content their
onboarding instance was first shown at one hook (the variant they were given).

The first sale is one pass over the events' covering index (no instance row is read but those
with a sale); the database aggregates, so only one row per distributor reaches Python.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from analytics._sql import of_instances
from engine.store import DEFINITION, INSTANCE, STEP_EVENT, EventKind

Row = tuple[str, datetime, datetime | None, str | None]  # distributor, enrolled, sale, variant


def distributor_rows(conn: Connection, dialect: str, *, as_of: datetime, onboarding: str,
                     sale: str, hook: str | None) -> list[Row]:
    i, e = INSTANCE.c, STEP_EVENT.c
    enrolled: dict[str, datetime] = {}
    onboarded = select(i.prospect_id).where(i.process_id == onboarding)
    for distributor, first in conn.execute(
            select(i.prospect_id, func.min(i.created_at)).where(i.process_id == onboarding)
            .group_by(i.prospect_id)):
        enrolled[distributor] = first
    # the others enroll with their first instance; the check reads the distributor index
    # only, so a field force that all went through onboarding costs no instance rows here
    for distributor, first in conn.execute(
            select(i.distributor_id, func.min(i.created_at))
            .where(i.distributor_id.not_in(onboarded)).group_by(i.distributor_id)):
        enrolled.setdefault(distributor, first)
    # first sale per instance from the events alone, then one instance row per sale
    first_sales = (select(e.instance_id.label("instance_id"), func.min(e.at).label("at"))
                   .where(e.kind == EventKind.OUTCOME, e.step_id == sale, e.at <= as_of)
                   .group_by(e.instance_id).subquery())
    sales: dict[str, datetime] = {}
    for distributor, first in conn.execute(
            select(i.distributor_id, func.min(first_sales.c.at))
            .select_from(first_sales.join(INSTANCE, i.id == first_sales.c.instance_id))
            .group_by(i.distributor_id)):
        sales[distributor] = first
    variants: dict[str, str] = {}
    if hook is not None:
        shown = (select(i.prospect_id, e.content_shown)
                 .select_from(INSTANCE.join(STEP_EVENT, of_instances(dialect)))
                 .where(i.process_id == onboarding, e.hook == hook,
                        e.content_shown.is_not(None), e.at <= as_of)
                 .order_by(e.id))
        for distributor, content in conn.execute(shown):
            variants.setdefault(distributor, content)
    return [(d, t, sales.get(d), variants.get(d)) for d, t in enrolled.items() if t <= as_of]


def step_hooks(steps: list[dict[str, Any]]) -> set[str]:
    """The hooks of a map's steps."""
    return {str(h) for s in steps if (h := (s.get("properties") or {}).get("hook"))}


def variant_hook(steps: list[dict[str, Any]], outcome: str) -> str | None:
    """The hook of the onboarding step whose declared outcome is `outcome` (its card is the
    content a distributor got towards it), if the map has one."""
    for step in steps:
        properties = step.get("properties") or {}
        if properties.get("outcome") == outcome and properties.get("hook"):
            return str(properties["hook"])
    return None


def latest_steps(conn: Connection, process_id: str) -> list[dict[str, Any]]:
    """The step list of the process's newest version ([] when none is deployed)."""
    text = conn.execute(select(DEFINITION.c.steps).where(DEFINITION.c.process_id == process_id)
                        .order_by(DEFINITION.c.version.desc()).limit(1)).scalar()
    found = json.loads(text) if text else []
    return found if isinstance(found, list) else []
