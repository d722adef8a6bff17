"""Who may do what: the roles a token carries and a distributor's reach down their line.

    designer     deploys and validates maps
    integrator   starts instances (one or in bulk) and records outcomes
    distributor  their own cards and instances (instances whose distributor_id is theirs)
    sponsor      a distributor who also sees and acts on their downline's instances: every
                 distributor whose instances name them as sponsor_id, transitively
    lead         reads analytics and the policies, runs learn, evaluate and rollback
    reviewer     reads everything, the trail included; writes only sign-offs of audit
                 findings (POST /compliance/signoffs)
    admin        everything
    webhook      (not a bearer role) prospect events are signed with per-source secrets

Acting on a step (complete, skip, vary; the card page's taps too): a distributor or
sponsor token may act on a step whose card is theirs or, for a sponsor, their downline's:
`reaches(store, who, owner)`, where the owner is the instance's sponsor for a step with
role `sponsor` (an instance without a sponsor: no scoped caller) and its distributor for
any other step. A step that does not wait now is checked against the instance's
distributor, so the engine's "not waiting" (409) answers as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from engine import Store
from engine.store import INSTANCE


class Role(StrEnum):
    DESIGNER = "designer"
    INTEGRATOR = "integrator"
    DISTRIBUTOR = "distributor"
    SPONSOR = "sponsor"
    LEAD = "lead"
    REVIEWER = "reviewer"
    ADMIN = "admin"


ROLES = tuple(r.value for r in Role)
EVERYONE = frozenset(Role)
# Roles whose reach is limited to some distributors' instances.
SCOPED = frozenset({Role.DISTRIBUTOR, Role.SPONSOR})


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: what the token says."""

    subject: str
    role: Role
    token_id: int

    def to_dict(self) -> dict[str, object]:
        return {"subject": self.subject, "role": self.role.value, "token_id": self.token_id}


def downline(store: Store, sponsor: str) -> set[str]:
    """Every distributor below `sponsor`: those whose instances name them as sponsor_id, and
    theirs, and so on (a cycle in the data ends the walk)."""
    seed = select(INSTANCE.c.distributor_id.label("member")).where(
        INSTANCE.c.sponsor_id == sponsor)
    walk = seed.cte("downline", recursive=True)
    walk = walk.union(select(INSTANCE.c.distributor_id).join(
        walk, INSTANCE.c.sponsor_id == walk.c.member))
    rows = store.select(select(walk.c.member))
    return {r["member"] for r in rows} - {sponsor}


def reaches(store: Store, who: Principal, distributor_id: str) -> bool:
    """May `who` see and act on the instances of `distributor_id`?"""
    if who.role not in SCOPED or distributor_id == who.subject:
        return True
    return who.role is Role.SPONSOR and distributor_id in downline(store, who.subject)
