"""Instances: start (one or in bulk), a person's steps, outcomes, show, list, cards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response
from pydantic import Field

from engine import Along, Engine, ProspectRef
from engine.runtime import NewProspect
from service._deps import EngineDep, allow, forbidden, require_reach, require_step
from service._strict import Body
from service.idempotency import fingerprint, once, once_claimed
from service.roles import SCOPED, Principal, Role
from service.step_route import StepRoute

router = APIRouter(tags=["instances"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
ANY_READER = (Role.INTEGRATOR, Role.DISTRIBUTOR, Role.SPONSOR, Role.LEAD, Role.REVIEWER)
Starter = Annotated[Principal, allow(Role.INTEGRATOR)]
Reader = Annotated[Principal, allow(*ANY_READER)]
Actor = Annotated[Principal, allow(Role.DISTRIBUTOR, Role.SPONSOR)]


class StartRequest(Body):
    elsewhere = {"sponsor_id": "context.sponsor_id"}
    process: str = Field(examples=["prospect_journey"])
    prospect_id: str
    distributor_id: str
    context: dict[str, Any] = Field(default_factory=dict,
                                    description="Prospect attributes; sponsor_id goes here.")
    new: bool = Field(False, description="Start another instance even if one is active.")


class Prospect(Body):
    elsewhere = StartRequest.elsewhere
    prospect_id: str
    distributor_id: str
    context: dict[str, Any] = Field(default_factory=dict)


class BulkStartRequest(Body):
    process: str
    prospects: list[Prospect] = Field(min_length=1, max_length=1000)
    new: bool = False


class CompleteRequest(Body):
    step: str
    data: dict[str, Any] = Field(default_factory=dict, description="What the prospect said.")
    used: str | None = Field(None, description=(
        "The content used: the suggestion or another option of the step's hook (anything else "
        "is refused with 422)."))


class SkipRequest(Body):
    step: str
    reason: str | None = None


class VaryRequest(Body):
    step: str
    note: str = Field(description="What was done instead.")
    data: dict[str, Any] = Field(default_factory=dict)
    used: str | None = None


class OutcomeRequest(Body):
    prospect_id: str
    kind: str = Field(examples=["sale"], description="customer_order, distributor_enrolled, "
                      "sale or lost.")
    process: str | None = None
    amount: float | None = None
    data: dict[str, Any] = Field(default_factory=dict)


def _owned(engine: Engine, who: Principal, instance_id: int) -> None:
    """Refuse a scoped caller an instance outside their reach (404 stays 404)."""
    if who.role in SCOPED:
        require_reach(engine.store, who, engine.distributor_of(instance_id),
                      f"instance {instance_id}")


def _checked(engine: Engine, who: Principal, instance_id: int, step: str,
             act: Callable[[Along | None], object]) -> Callable[[Along | None], object]:
    """`act` once the caller may act on the step (`require_step`). Checked inside `once`:
    a retry with the key gets its stored answer even after the step has moved on."""
    def work(along: Along | None) -> object:
        require_step(engine, who, instance_id, step)
        return act(along)
    return work


def complete(instance_id: int, body: CompleteRequest, engine: EngineDep, who: Actor,
             idempotency_key: IdempotencyKey = None) -> Response:
    return once(engine, who, idempotency_key,
                fingerprint("complete", instance_id, body.model_dump()),
                _checked(engine, who, instance_id, body.step, lambda along: engine.complete(
                    instance_id, body.step, body.data, actor=who.subject, used=body.used,
                    along=along)))


def skip(instance_id: int, body: SkipRequest, engine: EngineDep, who: Actor,
         idempotency_key: IdempotencyKey = None) -> Response:
    return once(engine, who, idempotency_key, fingerprint("skip", instance_id, body.model_dump()),
                _checked(engine, who, instance_id, body.step, lambda along: engine.skip(
                    instance_id, body.step, body.reason, actor=who.subject, along=along)))


def vary(instance_id: int, body: VaryRequest, engine: EngineDep, who: Actor,
         idempotency_key: IdempotencyKey = None) -> Response:
    return once(engine, who, idempotency_key, fingerprint("vary", instance_id, body.model_dump()),
                _checked(engine, who, instance_id, body.step, lambda along: engine.vary(
                    instance_id, body.step, body.note, actor=who.subject, data=body.data,
                    used=body.used, along=along)))


# A person's steps are the busiest routes: registered first (a request is matched against
# the routes in order), and StepRoute answers them without FastAPI's general parameter
# solver when the request is plainly valid (same answers, same OpenAPI).
for _path, _endpoint, _summary in (
        ("complete", complete, "The person did the waiting step"),
        ("skip", skip, "The person chose not to do the step"),
        ("vary", vary, "The person did something else than the card suggested")):
    router.add_api_route(f"/instances/{{instance_id}}/{_path}", _endpoint, methods=["POST"],
                         summary=_summary, route_class_override=StepRoute)


@router.post("/instances", status_code=201, summary="Start a process for a prospect")
def start(body: StartRequest, engine: EngineDep, who: Starter,
          idempotency_key: IdempotencyKey = None) -> Response:
    def work() -> dict[str, Any]:
        (started,) = engine.start_many(
            body.process, [NewProspect(body.prospect_id, body.distributor_id, body.context)],
            new=body.new, actor=who.subject)
        return started.to_dict()

    return once_claimed(engine, who, idempotency_key, fingerprint("start", body.model_dump()),
                        work, status=201)


@router.post("/instances/bulk", status_code=201,
             summary="Start a process for many prospects in one transaction")
def start_bulk(body: BulkStartRequest, engine: EngineDep, who: Starter,
               idempotency_key: IdempotencyKey = None) -> Response:
    def work() -> dict[str, Any]:
        started = engine.start_many(
            body.process, [NewProspect(p.prospect_id, p.distributor_id, p.context)
                           for p in body.prospects], new=body.new, actor=who.subject)
        return {"started": sum(s.created for s in started),
                "existing": sum(not s.created for s in started),
                "instances": [{"id": s.instance.id, "prospect": s.instance.prospect_id,
                               "created": s.created} for s in started]}

    return once_claimed(engine, who, idempotency_key, fingerprint("bulk", body.model_dump()),
                        work, status=201)


@router.post("/outcomes", status_code=201, summary="Record a business result for a prospect")
def outcome(body: OutcomeRequest, engine: EngineDep,
            who: Annotated[Principal, allow(Role.INTEGRATOR)],
            idempotency_key: IdempotencyKey = None) -> Response:
    return once(engine, who, idempotency_key, fingerprint("outcome", body.model_dump()),
                lambda along: engine.outcome(ProspectRef(body.prospect_id, body.process),
                                             body.kind, amount=body.amount, actor=who.subject,
                                             data=body.data, along=along), status=201)


@router.get("/instances/{instance_id}", summary="An instance's current steps and its history")
def show(instance_id: int, engine: EngineDep, who: Reader) -> dict[str, Any]:
    _owned(engine, who, instance_id)
    return engine.show(instance_id).to_dict()


@router.get("/instances", summary="Instances, newest first, filtered")
def list_instances(
    engine: EngineDep, who: Reader,
    process: str | None = None, distributor: str | None = None, prospect: str | None = None,
    step: str | None = None, status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    if who.role in SCOPED:
        distributor = distributor or who.subject
        require_reach(engine.store, who, distributor, f"distributor {distributor!r}'s instances")
    found = engine.list_instances(process_id=process, distributor_id=distributor,
                                  prospect_id=prospect, step=step, status=status, limit=limit)
    return [i.to_dict() for i in found]


@router.get("/cards", summary="A distributor's action cards, most urgent first, keyset-paged",
            description="About `limit` cards after the cursor `after` (none: the first page). "
            "When more are waiting, the `Next-Cursor` header holds the next page's cursor and "
            "`Link` its URL (rel=\"next\"). Cards done or added between pages neither skip "
            "nor repeat the others.")
def cards(engine: EngineDep, response: Response,
          who: Annotated[Principal, allow(Role.DISTRIBUTOR, Role.SPONSOR, Role.REVIEWER)],
          distributor: str | None = None,
          limit: Annotated[int, Query(ge=1, le=500)] = 100,
          after: Annotated[str | None, Query(max_length=64)] = None) -> list[dict[str, Any]]:
    target = distributor or who.subject
    if who.role in SCOPED:
        require_reach(engine.store, who, target, f"distributor {target!r}'s cards")
    elif distributor is None and who.role is not Role.ADMIN:
        raise forbidden(who, "cards without ?distributor=")
    found, next_page = engine.cards_page(target, size=limit, after=after)
    if next_page is not None:
        query = urlencode({k: v for k, v in (("distributor", distributor), ("limit", limit),
                                             ("after", next_page)) if v is not None})
        response.headers["Next-Cursor"] = next_page
        response.headers["Link"] = f'</cards?{query}>; rel="next"'
    return [c.to_dict() for c in found]
