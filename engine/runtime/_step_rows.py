"""What a step writes besides the state: its event rows (chained, with visits) and the
instance's waiting-index columns. Pure functions of the step; `pipeline` writes them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from engine.clock import as_utc
from engine.runtime import tokens
from engine.runtime._acts import Acted
from engine.runtime.model import Waiting
from engine.runtime.versions import LoadedDefinition
from engine.store import trail
from engine.store.visits import Visits


def db_time(moment: datetime) -> datetime:
    """A moment as the database stores it: naive UTC."""
    return as_utc(moment).replace(tzinfo=None)


def mark_stuck(
    waits: list[Waiting], moves: list[tokens.TokenMove], definition: LoadedDefinition,
    previous: Mapping[str, Waiting], now: datetime,
) -> list[Waiting]:
    """A person's step whose watching timer fired stays flagged as stuck until it moves."""
    fired_on = {definition.steps.get(m.step_id, {}).get("attached_to")
                for m in moves if m.kind == "timer"}
    out = []
    for wait in waits:
        earlier = previous.get(tokens.wait_key(wait))
        if wait.kind == "user" and wait.step_id in fired_on:
            wait = replace(wait, stuck_since=now)
        elif earlier is not None and earlier.stuck_since is not None:
            wait = replace(wait, stuck_since=earlier.stuck_since)
        out.append(wait)
    return out


def progress(waits: list[Waiting], now: datetime) -> dict[str, Any]:
    """The instance's waiting-index columns for these waits."""
    dues = [w.due_at for w in waits if w.due_at is not None]
    return {
        "waiting": json.dumps([w.to_dict() for w in waits]),
        "next_due_at": db_time(min(dues)) if dues else None,
        "card_due_at": card_due_at(waits),
        "updated_at": db_time(now),
    }


def card_due_at(waits: list[Waiting]) -> datetime | None:
    """When the instance's cards came or come due: its next timer or, earlier, the moment a
    person's step was flagged stuck (its timer fired and is gone from the dues)."""
    dues = [w.due_at for w in waits if w.due_at is not None]
    dues += [w.stuck_since for w in waits if w.kind == "user" and w.stuck_since is not None]
    return db_time(min(dues)) if dues else None


def event_rows(
    instance_id: int, definition: LoadedDefinition, moves: list[tokens.TokenMove],
    waits: list[Waiting], now: datetime, acted: Acted, previous_head: str | None,
    visits: Visits,
) -> tuple[list[dict[str, Any]], str | None]:
    """The step events, chained to the instance's trail, and the trail's new head;
    `visits` (the instance's visit state) records them.

    The person's own step carries their name, data and the content they used; an arrival
    at a hooked step carries what the card offers; a closing event, its visit."""
    if not moves:
        return [], previous_head
    offers = {w.task_id: w.recommendation for w in waits if w.recommendation}
    at = db_time(now)
    steps = definition.steps
    rows = []
    for move in moves:
        # With no person's task (a start), the actor owns every move but the arrivals.
        mine = move.task_id == acted.task_id if acted.task_id else move.kind != "entered"
        with_data = move.kind in acted.data_kinds or (mine and acted.task_id is not None)
        offer = offers.get(move.task_id) if move.kind == "entered" or mine else None
        info = steps.get(move.step_id, {})
        visit_ms, paired = visits.record(move.step_id, move.kind, at)
        rows.append({
            "instance_id": instance_id,
            "step_id": move.step_id,
            "step_name": info.get("name", move.step_id),
            "kind": move.kind,
            "actor": acted.actor if mine else None,
            "data": json.dumps(own) if (own := acted.move_data.get(move.task_id))
            else json.dumps(acted.data) if with_data and acted.data else None,
            "hook": info.get("properties", {}).get("hook"),
            "content_shown": offer["shown"] if offer else None,
            "content_used": acted.content_used if mine and acted.task_id else None,
            "propensity": offer["propensity"] if offer else None,
            "policy_version": offer["policy_version"] if offer else None,
            "visit_ms": visit_ms,
            "paired": paired,
            "at": at,
        })
    head = trail.chain_rows(previous_head or trail.GENESIS, rows)
    return rows, head
