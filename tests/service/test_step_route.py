"""A person's step through `StepRoute`: the short path answers a well-formed step without
FastAPI's parameter solver, and every answer (refusals, 422s, conflicts, idempotent replays,
successes) is the one FastAPI's general handler gives for the same request."""

from __future__ import annotations

import json
from typing import Any

import fastapi.routing
import httpx
import pytest

from tests.service._server import Running
from tests.service._world import start


def _unused() -> None:  # a dependency no route has: overriding it only disables the short path
    pass


def _clients(api: Running) -> dict[str | None, httpx.Client]:
    return {"d1": api.client("distributor"), "s1": api.client("sponsor"),
            "rey": api.client("reviewer"), "d2": api.client(token=api.token("distributor", "d2")),
            None: api.client()}


def _counting_solver(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    solve = fastapi.routing.solve_dependencies

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    return calls


def test_a_well_formed_step_skips_fastapis_solver_and_a_malformed_one_does_not(
        api: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    instance = start(api, "p-short", "d1", "s1")
    d1 = api.client("distributor")
    calls = _counting_solver(monkeypatch)
    done = d1.post(f"/instances/{instance}/complete", json={"step": "add_contact"})
    assert done.status_code == 200 and calls == []
    bad = d1.post(f"/instances/{instance}/skip", json={"step": 5})
    assert bad.status_code == 422 and calls == [1]


# (path after /instances/, JSON body or raw bytes, extra headers, whose token)
REQUESTS: list[tuple[str, Any, dict[str, str], str | None]] = [
    ("{i}/complete", {"step": "add_contact"}, {}, None),
    ("{i}/complete", {"step": "add_contact"}, {}, "rey"),
    ("{i}/complete", {"step": "add_contact"}, {}, "d2"),
    ("{i}/complete", {"step": 5}, {}, "rey"),
    ("abc/complete", {"step": "add_contact"}, {}, "d1"),
    ("007/complete", {"step": "nope"}, {}, "d1"),
    ("99999999/complete", {"step": "add_contact"}, {}, "d1"),
    ("{i}/complete", b'{"step": ', {}, "d1"),
    ("{i}/complete", b"", {}, "d1"),
    ("{i}/complete", {"data": {}}, {}, "d1"),
    ("{i}/complete", {"step": "add_contact", "data": []}, {}, "d1"),
    ("{i}/complete", b'{"step": "add_contact"}', {"Content-Type": "text/plain"}, "d1"),
    ("{i}/complete", {"step": "share_intro"}, {}, "d1"),
    ("{i}/complete", {"step": "add_contact"}, {"Idempotency-Key": "x" * 201}, "d1"),
    ("{i}/complete", {"step": "add_contact"}, {"Idempotency-Key": ""}, "d1"),
    ("{i}/skip", {"step": "share_intro", "reason": 3}, {}, "s1"),
    ("{i}/vary", {"step": "add_contact"}, {}, "d1"),
    # these act: each app acts on its own twin instance
    ("{i}/complete", {"step": "add_contact", "used": "x", "extra": 1}, {}, "s1"),
    ("{i}/skip", {"step": "share_intro"}, {"Idempotency-Key": "k{i}"}, "d1"),
    ("{i}/skip", {"step": "share_intro"}, {"Idempotency-Key": "k{i}"}, "d1"),
    ("{i}/skip", {"step": "other"}, {"Idempotency-Key": "k{i}"}, "d1"),
]


def _send(clients: dict[str | None, httpx.Client], instance: int,
          request: tuple[str, Any, dict[str, str], str | None]) -> tuple[int, str, Any]:
    """Status, content type and JSON body, with this instance's id taken out."""
    path, body, headers, who = request
    client = clients[who]
    headers = {k: v.format(i=instance) for k, v in headers.items()}
    url = "/instances/" + path.format(i=instance)
    if isinstance(body, bytes):
        answer = client.post(url, content=body,
                             headers={"Content-Type": "application/json", **headers})
    else:
        answer = client.post(url, json=body, headers=headers)
    text = answer.text.replace(f"/instances/{instance}/", "/instances/{i}/").replace(
        f"instance {instance}", "instance {i}").replace(f"'k{instance}'", "'k{i}'")
    return answer.status_code, answer.headers["content-type"], _without_ids(json.loads(text))


# What differs between twin instances whichever way they are answered: their ids, the
# engine's task ids and its randomised content suggestion.
TWIN_FIELDS = ("id", "instance_id", "task_id", "recommendation")


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in TWIN_FIELDS}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def test_every_answer_is_the_general_handlers(api: Running) -> None:
    clients = _clients(api)
    short, general = (start(api, "p-twin", "d1", "s1") for _ in (1, 2))
    assert api.app is not None
    overrides = api.app.dependency_overrides
    for request in REQUESTS:
        by_short = _send(clients, short, request)
        overrides[_unused] = _unused
        by_general = _send(clients, general, request)
        overrides.clear()
        assert by_short == by_general, request
