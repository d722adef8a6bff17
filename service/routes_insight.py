"""What the log says: analytics (lead), the trail and its verification (reviewer), learning
and policies (lead). `analytics` and `learner` load pandas and LightGBM: imported on use."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import HTMLResponse, Response
from pydantic import Field

import compliance
import content_catalog
from engine import Engine, ManualClock, NextmoveError, SystemClock
from engine.clock import parse_duration, parse_instant
from engine.store.recorded_clock import simulated_clock
from service._deps import EngineDep, allow
from service._strict import Body
from service.idempotency import fingerprint, once_claimed
from service.roles import Principal, Role

router = APIRouter()
Analyst = Annotated[Principal, allow(Role.LEAD, Role.REVIEWER)]
Lead = Annotated[Principal, allow(Role.LEAD)]
Reviewer = Annotated[Principal, allow(Role.REVIEWER)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
_LONGEST = timedelta(days=36_525)  # the longest duration taken: 100 years


def _when(text: str | None, name: str) -> Any:
    try:
        return parse_instant(text) if text else None
    except ValueError as exc:
        raise NextmoveError(f"{name} {text!r} is not an ISO 8601 time: {exc}") from exc


def _duration(text: str | None, name: str) -> Any:
    try:  # a horizon of zero would count no outcome at all
        found = parse_duration(text, positive=name == "horizon") if text else None
    except ValueError as exc:
        raise NextmoveError(f"{name}: {exc}") from exc
    except OverflowError:  # more days than a timedelta holds
        found = timedelta.max
    if found is not None and found > _LONGEST:  # dates that far off overflow the arithmetic
        raise NextmoveError(f"{name}: {text!r} is longer than 100 years (P36525D)")
    return found


def _now(engine: Engine) -> datetime:
    """The rule every reading command follows: the engine's own clock when it is not the
    system's (tests give one), else the simulated clock a simulation recorded in the
    database, else the real one."""
    if isinstance(engine.clock, SystemClock):
        return simulated_clock(engine.store) or engine.clock.now()
    return engine.clock.now()


@router.get("/analytics/funnel", tags=["analytics"], summary="Per step: arrivals, what "
            "people did, who moved on or dropped, time spent, conversion")
def funnel(engine: EngineDep, _who: Analyst, process: str, since: str | None = None,
           distributor: str | None = None, market: str | None = None,
           outcome: str | None = None, all_elements: bool = False) -> dict[str, Any]:
    import analytics

    found = analytics.funnel(engine.store, process, since=_when(since, "since"),
                             distributor=distributor, market=market, outcome=outcome,
                             all_elements=all_elements)
    return found.to_dict()


@router.get("/analytics/stuck", tags=["analytics"],
            summary="Instances waiting on a step longer than usual, and those in incident")
def stuck(engine: EngineDep, _who: Analyst, process: str, older_than: str | None = None,
          distributor: str | None = None, market: str | None = None) -> dict[str, Any]:
    import analytics

    found = analytics.stuck(engine.store, process, _now(engine),
                            older_than=_duration(older_than, "older_than"),
                            distributor=distributor, market=market)
    result: dict[str, Any] = found.to_dict()  # incidents included, as `stuck --json` has them
    return result


@router.get("/analytics/report", tags=["analytics"], response_class=HTMLResponse,
            summary="The self-contained HTML report: map with heat, funnel, stuck, content")
def report(engine: EngineDep, _who: Analyst, process: str, heat: str = "waiting",
           outcome: str | None = None) -> HTMLResponse:
    from analytics import write_report
    from analytics.report import HEAT_METRICS

    if heat not in HEAT_METRICS:
        raise NextmoveError(f"heat must be one of {', '.join(HEAT_METRICS)}")
    with tempfile.TemporaryDirectory(prefix="nextmove-report-") as folder:
        path = Path(folder) / "report.html"
        write_report(engine.store, process, path, clock=ManualClock(_now(engine)), heat=heat,
                     outcome=outcome)
        return HTMLResponse(path.read_text(encoding="utf-8"))


@router.get("/compliance/trail", tags=["compliance"],
            summary="What contractors did with each step: followed, skipped, varied")
def trail(engine: EngineDep, _who: Reviewer, process: str | None = None,
          since: str | None = None) -> dict[str, Any]:
    return compliance.trail_summary(engine.store, process=process,
                                    since=_when(since, "since")).to_dict()


@router.get("/compliance/verify", tags=["compliance"],
            summary="Recompute the hash-chained trails (step log and policy log)")
def verify(engine: EngineDep, _who: Reviewer) -> dict[str, Any]:
    return compliance.verify_trail(engine.store).to_dict()


class LearnRequest(Body):
    process: str
    outcome: str = Field(examples=["sale"])
    horizon: str | None = Field(None, examples=["P14D"])
    dry_run: bool = False
    force: bool = False
    seed: int = 0


class EvaluateRequest(Body):
    policy: int | str | dict[str, Any] = Field(
        description="uniform, catalog, active, a stored version number (with hook), or a "
                    "policy document.")
    process: str
    outcome: str
    horizon: str | None = None
    hook: str | None = None
    seed: int = 0


class RollbackRequest(Body):
    reason: str | None = None


@router.post("/learning/learn", tags=["learning"],
             summary="Learn from the log; propose and (unless dry_run) apply new policies")
def learn(body: LearnRequest, engine: EngineDep, who: Lead,
          idempotency_key: IdempotencyKey = None) -> Response:
    import learner

    def work() -> dict[str, Any]:
        proposal = learner.propose(engine.store, body.process, outcome=body.outcome,
                                   horizon=_duration(body.horizon, "horizon"),
                                   observed_until=_now(engine), seed=body.seed)
        applied = [] if body.dry_run else learner.apply(engine.store, proposal,
                                                        force=body.force, clock=engine.clock)
        return {**proposal.to_dict(), "applied": applied, "dry_run": body.dry_run,
                "by": who.subject}

    return once_claimed(engine, who, idempotency_key, fingerprint("learn", body.model_dump()), work)


@router.post("/learning/evaluate", tags=["learning"],
             summary="Off-policy evaluation of a policy on the log (IPW, SNIPW, DR)")
def evaluate(body: EvaluateRequest, engine: EngineDep, _who: Analyst) -> dict[str, Any]:
    import learner

    found = learner.evaluate(engine.store, body.process, body.policy, outcome=body.outcome,
                             horizon=_duration(body.horizon, "horizon"), hook=body.hook,
                             observed_until=_now(engine),
                             seed=body.seed)
    result: dict[str, Any] = found.to_dict()
    return result


@router.get("/policies", tags=["learning"], summary="Every stored policy version per hook")
def policies(engine: EngineDep, _who: Analyst, hook: str | None = None) -> list[dict[str, Any]]:
    return [{**asdict(v), "created_at": v.created_at.isoformat(),
             "last_activated_at": v.last_activated_at.isoformat() if v.last_activated_at
             else None} for v in content_catalog.history(engine.store, hook)]


@router.post("/policies/{hook}/rollback", tags=["learning"],
             summary="Go back to the version active before the current one")
def rollback(hook: str, body: RollbackRequest, engine: EngineDep, who: Lead,
             idempotency_key: IdempotencyKey = None) -> Response:
    # The policy log is hash-chained and has a reason, not an actor: the caller goes there.
    reason = f"{body.reason or 'rollback'} (by {who.role.value} {who.subject})"

    def work() -> dict[str, Any]:
        found = content_catalog.rollback(engine.store, hook, reason=reason,
                                           clock=engine.clock)
        return {"hook": found.hook, "active_version": found.version, "kind": found.kind}

    return once_claimed(engine, who, idempotency_key,
                        fingerprint("rollback", hook, body.model_dump()), work)
