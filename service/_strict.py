"""Requests that say something the route does not take are refused, not half-read: a body
field or a query parameter with a typo (`amout`, `?distributer=`) would otherwise be dropped
silently and the request carried out as if it had not been sent.

`Body` is the base of every request model but the webhook's `ProspectEvent` (a sender's
event may carry fields of its own); `known_query` is an app-level dependency. Both answer
422 with the nearest known name."""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import Request
from fastapi.dependencies.models import Dependant
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from engine.errors import did_you_mean, meant
from service.problems import Problem


class Body(BaseModel):
    """A request body that refuses a field it does not have (422, "did you mean")."""

    # "forbid" also puts additionalProperties: false in the OpenAPI document.
    model_config = ConfigDict(extra="forbid")
    # A field sent where it does not go -> where it goes (said instead of a near name).
    elsewhere: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in data:
                if name not in cls.model_fields:
                    hint = cls.elsewhere.get(name) or did_you_mean(name, cls.model_fields)
                    raise PydanticCustomError(
                        "extra_forbidden", "unknown field {field}{hint}",
                        {"field": repr(name), "hint": meant(hint)})
        return data


# id(route) -> (the route, kept so its id is not reused; the query parameters it takes)
_QUERY_NAMES: dict[int, tuple[Any, frozenset[str]]] = {}


def _query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameters a route takes: its own and its dependencies', all the way down."""
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


async def known_query(request: Request) -> None:
    """Refuse a query parameter the matched route does not take (422)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if not request.query_params or dependant is None:
        return
    cached = _QUERY_NAMES.get(id(route))
    if cached is None:  # routes are not hashable: by id
        cached = _QUERY_NAMES[id(route)] = (route, _query_names(dependant))
    known = cached[1]
    for name in request.query_params:
        if name not in known:
            raise Problem(422, "invalid-input", "Unknown query parameter",
                          f"unknown query parameter {name!r}"
                          f"{meant(did_you_mean(name, known))}; this route takes "
                          f"{', '.join(sorted(known)) or 'none'}",
                          parameter=name, known=sorted(known))
