"""The runtime trail as evidence: what contractors actually did with the guidance, and proof
that the record of it was not altered.

`trail_summary` counts, per person's step, how often contractors followed the card (with the
content it suggested, other content, or none), skipped it or did something else, and how many
distinct contractors deviated at least once: guidance that everybody always follows looks
like an order in practice; guidance people visibly skip and vary is a tool. The counts are SQL
aggregates; only one row per step (and per step and contractor) reaches Python.

`verify_trail` recomputes every instance's hash chain (`engine.store.trail.verify`) and, for
each broken one, says what happened: an event edited, events removed, moved or cut off; and it
checks the policy log the same way (`compliance.policy_chain`). With a kept anchor it also
checks that no anchored instance is gone and each still reaches its chain as of the anchor
(`compliance.anchor`): what a log rewritten with fresh hashes cannot fake.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select, true

from compliance._chain import diagnose
from compliance.anchor import (
    StepAnchor,
    StepAnchorCheck,
    TrailAnchor,
    anchor_step_log,
    check_step_anchor,
)
from compliance.policy_chain import PolicyAnchor, PolicyTrailCheck, verify_policy_trail
from compliance.signoff import SignoffCheck, verify_signoffs
from engine.clock import as_utc
from engine.definitions.model import HUMAN_TYPES
from engine.store import (
    ACTED_KINDS,
    DEFINITION,
    DEVIATED_KINDS,
    INSTANCE,
    STEP_EVENT,
    EventKind,
    trail,
)
from engine.store.database import Store
from engine.store.steplog import check_process


@dataclass(frozen=True)
class StepTrail:
    """What contractors did at one step. `contractors` counts distinct people who acted there
    (the event's actor, else the instance's distributor); `deviated` those of them who skipped
    or varied it at least once."""

    process: str
    step: str
    name: str
    control: str  # guidance | required (as the latest deployed version says)
    role: str
    offered: int  # arrivals: cards shown
    followed: int  # completed
    followed_suggestion: int  # completed with the content the card led with
    followed_other: int  # completed with other content than the card led with
    followed_without_content: int  # completed naming no content
    skipped: int
    varied: int
    contractors: int
    deviated: int

    @property
    def acted(self) -> int:
        return self.followed + self.skipped + self.varied

    @property
    def deviation_share(self) -> float:
        """Share of the contractors who acted here that skipped or varied it at least once."""
        return self.deviated / self.contractors if self.contractors else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "acted": self.acted, "deviation_share": self.deviation_share}


@dataclass(frozen=True)
class TrailSummary:
    """Per step and overall: how optional the guidance was in practice."""

    process: str | None
    since: datetime | None
    steps: tuple[StepTrail, ...]
    contractors: int  # distinct contractors who acted on any person's step
    deviated: int  # of them, who skipped or varied some step at least once

    @property
    def deviation_share(self) -> float:
        return self.deviated / self.contractors if self.contractors else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"process": self.process,
                "since": self.since.isoformat() if self.since else None,
                "contractors": self.contractors, "deviated": self.deviated,
                "deviation_share": self.deviation_share,
                "steps": [s.to_dict() for s in self.steps]}


def _person_steps(store: Store, process: str | None) -> dict[tuple[str, str], dict[str, Any]]:
    """(process, step) -> the step's metadata, for steps that wait on a person."""
    query = select(DEFINITION.c.process_id, DEFINITION.c.steps).order_by(
        DEFINITION.c.process_id, DEFINITION.c.version)
    if process is not None:
        query = query.where(DEFINITION.c.process_id == process)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    with store.read() as conn:
        for process_id, steps in conn.execute(query):
            for step in json.loads(steps):
                if step.get("type") in HUMAN_TYPES:
                    found[(process_id, step["id"])] = step  # the latest version wins
    return found


def trail_summary(
    store: Store, *, process: str | None = None, since: datetime | None = None,
    people: Collection[str] | None = None,
) -> TrailSummary:
    """What contractors did at each person's step (of `process`, from `since` on, on the
    instances of `people`, distributor ids, when given). `since` counts the cards offered from
    then on and what contractors did with those: an action on a card offered before `since`
    is left out, so no step shows more acted on than offered. Raises DefinitionNotFound for a
    `process` never deployed or imported."""
    if process is not None:
        check_process(store, process)
    who = func.coalesce(STEP_EVENT.c.actor, INSTANCE.c.distributor_id)

    def before(column: Any) -> Any:  # at an action: the offer's (`entered`) value
        return func.lag(column).over(partition_by=(STEP_EVENT.c.instance_id,
                                                   STEP_EVENT.c.step_id),
                                     order_by=STEP_EVENT.c.id)

    offer_at = case((STEP_EVENT.c.kind == EventKind.ENTERED, STEP_EVENT.c.at),
                    (before(STEP_EVENT.c.kind) == EventKind.ENTERED, before(STEP_EVENT.c.at)),
                    else_=STEP_EVENT.c.at)
    events = (
        select(INSTANCE.c.process_id, STEP_EVENT.c.step_id, STEP_EVENT.c.step_name,
               STEP_EVENT.c.id, STEP_EVENT.c.kind, STEP_EVENT.c.content_used,
               who.label("who"), before(STEP_EVENT.c.content_shown).label("offered"),
               offer_at.label("offer_at"))
        .join(INSTANCE, INSTANCE.c.id == STEP_EVENT.c.instance_id)
        .where(STEP_EVENT.c.kind.in_((EventKind.ENTERED, *ACTED_KINDS)))
    )
    if process is not None:
        events = events.where(INSTANCE.c.process_id == process)
    if people is not None:
        events = events.where(INSTANCE.c.distributor_id.in_(list(people)))
    e = events.subquery()  # offers are paired with actions before `since` cuts
    # The window holds offers made from `since` on and what was done with them (even if
    # done later), so followed + skipped + varied <= offered at every step.
    window = e.c.offer_at >= as_utc(since).replace(tzinfo=None) if since is not None else true()
    completed, used = e.c.kind == EventKind.COMPLETED, e.c.content_used

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    per_step = (
        select(e.c.process_id, e.c.step_id, func.max(e.c.step_name),
               count(e.c.kind == EventKind.ENTERED), count(completed),
               count(and_(completed, used.is_not(None), used == e.c.offered)),
               count(and_(completed, used.is_not(None),
                          (e.c.offered.is_(None)) | (used != e.c.offered))),
               count(and_(completed, used.is_(None))),
               count(e.c.kind == EventKind.SKIPPED), count(e.c.kind == EventKind.VARIED),
               func.count(func.distinct(case((e.c.kind.in_(ACTED_KINDS), e.c.who)))),
               func.count(func.distinct(case((e.c.kind.in_(DEVIATED_KINDS), e.c.who)))))
        .where(window)
        .group_by(e.c.process_id, e.c.step_id)
        .order_by(func.min(e.c.id))
    )
    per_person = (
        select(e.c.process_id, e.c.step_id, e.c.who, count(e.c.kind.in_(DEVIATED_KINDS)))
        .where(window, e.c.kind.in_(ACTED_KINDS))
        .group_by(e.c.process_id, e.c.step_id, e.c.who)
    )
    human = _person_steps(store, process)
    with store.read() as conn:
        rows = conn.execute(per_step).all()
        pairs = conn.execute(per_person).all()
    steps = []
    for row in rows:
        meta = human.get((row[0], row[1]))
        if meta is None:
            continue
        props = meta.get("properties", {})
        steps.append(StepTrail(row[0], row[1], row[2], props.get("control") or "guidance",
                               props.get("role") or "distributor",
                               *(int(v or 0) for v in row[3:])))
    acted = {p[2] for p in pairs if (p[0], p[1]) in human}
    deviated = {p[2] for p in pairs if (p[0], p[1]) in human and p[3]}
    return TrailSummary(process, since, tuple(steps), len(acted), len(deviated))


@dataclass(frozen=True)
class Tampering:
    """One place an instance's trail was altered. `what`: edited, removed, moved or
    truncated."""

    instance_id: int
    process: str | None
    prospect: str | None
    distributor: str | None
    what: str
    detail: str
    event_id: int | None = None
    step: str | None = None
    kind: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrailVerification:
    """Every chain recomputed: the step events' (`tampered`), the policy log's (`policy`) and
    the reviewers' sign-offs' (`signoffs`); with an anchor, the step log against it
    (`anchored`). `ok` when none shows tampering. `step_anchor` is the step log's anchor now,
    to keep for the next check (with the policy log's head, in `to_dict`)."""

    checked: int  # events checked
    instances: int
    tampered: tuple[Tampering, ...]
    policy: PolicyTrailCheck
    signoffs: SignoffCheck | None = None
    step_anchor: StepAnchor | None = None
    anchored: StepAnchorCheck | None = None  # None: no anchor given

    @property
    def ok(self) -> bool:
        return not self.tampered and self.policy.ok and (
            self.signoffs is None or self.signoffs.ok) and (
            self.anchored is None or self.anchored.ok)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "instances": self.instances,
                "tampered": [t.to_dict() for t in self.tampered],
                "policy": self.policy.to_dict(),
                "signoffs": self.signoffs.to_dict() if self.signoffs else None,
                "step_anchor": self.step_anchor.to_dict() if self.step_anchor else None,
                "step_anchor_check": self.anchored.to_dict() if self.anchored else None}


def verify_trail(store: Store, *,
                 anchor: TrailAnchor | PolicyAnchor | None = None) -> TrailVerification:
    """Recompute every step-event chain, the policy log's chain and the sign-offs' chain and
    name what was altered. With an `anchor` kept from an earlier verification, also check the
    policy log still leads up to its head (`verify_policy_trail`) and, when the anchor holds
    one (a `PolicyAnchor` alone, or an older file, does not), the step log against the
    step anchor (`check_step_anchor`)."""
    kept = TrailAnchor(anchor) if isinstance(anchor, PolicyAnchor) else anchor
    step_anchor = anchor_step_log(store)  # before the walk, so the walk covers all it holds
    checked, breaks = trail.verify(store)
    tampered: list[Tampering] = []
    broken = sorted({b.instance_id for b in breaks})
    with store.read() as conn:
        instances = int(conn.execute(select(func.count()).select_from(INSTANCE)).scalar() or 0)
        for instance_id in broken:
            header = conn.execute(select(INSTANCE.c.process_id, INSTANCE.c.prospect_id,
                                         INSTANCE.c.distributor_id)
                                  .where(INSTANCE.c.id == instance_id)).first()
            rows = [dict(r) for r in conn.execute(
                select(STEP_EVENT).where(STEP_EVENT.c.instance_id == instance_id)
                .order_by(STEP_EVENT.c.id)).mappings()]
            owner = {"process": header[0] if header else None,
                     "prospect": header[1] if header else None,
                     "distributor": header[2] if header else None}
            found = _diagnose(conn, instance_id, owner, rows)
            for b in breaks:
                if b.instance_id == instance_id and b.event_id is None:
                    found.append(_tampering(instance_id, owner, "truncated", b.reason))
            if not found:  # verify saw a break our finer walk could not place
                found = [_tampering(instance_id, owner, "edited", b.reason, event_id=b.event_id)
                         for b in breaks if b.instance_id == instance_id]
            tampered += found
    policy = verify_policy_trail(store, anchor=kept.policy if kept else None)
    anchored = None
    if kept is not None:
        anchored = (check_step_anchor(store, kept.steps) if kept.steps
                    else StepAnchorCheck(None))
    return TrailVerification(checked, instances, tuple(tampered), policy,
                             verify_signoffs(store), step_anchor, anchored)


def _tampering(instance_id: int, owner: dict[str, Any], what: str, detail: str,
               **where: Any) -> Tampering:
    return Tampering(instance_id=instance_id, what=what, detail=detail, **owner, **where)


def _diagnose(conn: Any, instance_id: int, owner: dict[str, Any],
              rows: list[dict[str, Any]]) -> list[Tampering]:
    """Explain each event of the instance's trail that does not follow the one before it."""
    found = diagnose(rows, trail.link, trail.GENESIS, noun="event",
                     describe=lambda r: f"{r['id']} ({r['step_id']} {r['kind']})",
                     missing=lambda after, before: _missing_ids(conn, after, before))
    return [_tampering(instance_id, owner, b.what, b.detail, event_id=b.row["id"],
                       step=b.row["step_id"], kind=b.row["kind"]) for b in found]


def _missing_ids(conn: Any, after: int | None, before: int) -> list[int]:
    """Event ids between two of an instance's events that no instance has any more (ids are
    given out in order, so a gap there is where rows were deleted)."""
    low = after if after is not None else max(before - 2, 0)  # first: look just before it
    if before - low <= 1:
        return []
    present = set(conn.execute(select(STEP_EVENT.c.id).where(
        STEP_EVENT.c.id > low, STEP_EVENT.c.id < before)).scalars())
    return [i for i in range(low + 1, before) if i not in present]
