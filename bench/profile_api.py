"""CPU per step through the API in one process: the ASGI app called directly (no HTTP, no
sockets) with the request bench.api sends, against `Engine.complete` called directly.

    python -m bench.profile_api [--db postgres|sqlite] [--instances 100] [--rounds 3]
                                [--yappi N]

Two sets of linear10 instances on one scratch database; each round completes every step of
its instances, one step pass at a time, the API's pass and the direct pass interleaved.
The app runs with its lifespan (request logs written, to /dev/null, by the writer thread as
under `nextmove serve`) and its route in the threadpool, so the CPU counted is this
process's, all threads (`time.process_time`). `--yappi N` profiles one more API round and
prints the N functions with the most CPU of their own, and the routing/dependency groups.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import logging.config
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench._common import MAPS, postgres_problem, scratch_postgres
from bench.steps import Fixture
from engine import Engine
from engine.runtime import NewProspect
from nextmove import open_engine
from service import create_token, prepare_tables
from service.app import LOG_CONFIG, create_app

Call = Callable[[int, str], Awaitable[None]]


def _api_caller(app: Any, token: str) -> Call:
    headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode()),
               (b"content-type", b"application/json")]

    async def call(instance_id: int, step: str) -> None:
        body = json.dumps({"step": step}, separators=(",", ":")).encode()
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": f"/instances/{instance_id}/complete",
                 "raw_path": f"/instances/{instance_id}/complete".encode(),
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
                 "server": ("127.0.0.1", 8000),
                 "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        sent = False
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)  # a disconnect never comes during the request
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        if status != [200]:
            raise RuntimeError(f"step {step} of {instance_id}: {status}")

    return call


def _route_caller(engine: Engine, owner: str) -> Call:
    """The route's function in the threadpool, as the app calls it, without the app."""
    from starlette.concurrency import run_in_threadpool

    from service.roles import Principal, Role
    from service.routes_instances import CompleteRequest, complete

    who = Principal(owner, Role.DISTRIBUTOR, 0)

    async def call(instance_id: int, step: str) -> None:
        body = CompleteRequest(step=step, used=None)
        await run_in_threadpool(complete, instance_id, body, engine, who, None)

    return call


def _direct_caller(engine: Engine, owner: str) -> Call:
    async def call(instance_id: int, step: str) -> None:
        engine.complete(instance_id, step, {}, actor=owner, used=None)

    return call


async def _pass(call: Call, ids: list[int], step: str) -> float:
    started = time.process_time()
    for i in ids:
        await call(i, step)
    return time.process_time() - started


def _logs_to_devnull() -> None:
    config = json.loads(json.dumps(LOG_CONFIG))
    for handler in config["handlers"].values():
        handler["stream"] = "ext://bench.profile_api.DEVNULL"
    logging.config.dictConfig(config)


DEVNULL = open("/dev/null", "w")  # noqa: SIM115 - the request log's sink for the whole run


async def measure(url: str, instances: int, rounds: int, yappi_top: int) -> dict[str, Any]:
    fx = Fixture()
    engine = open_engine(url, recommend=False)
    engine.deploy([MAPS / "linear10.bpmn"])
    prepare_tables(engine.store)
    owner = "prof-d0"
    token = create_token(engine.store, "distributor", owner).token
    _logs_to_devnull()
    app = create_app(engine=engine)
    api_us: list[float] = []
    direct_us: list[float] = []
    route_us: list[float] = []
    async with app.router.lifespan_context(app):
        call_api, call_direct = _api_caller(app, token), _direct_caller(engine, owner)
        call_route = _route_caller(engine, owner)
        for r in range(rounds + (1 if yappi_top else 0)):
            def start(tag: str, r: int = r) -> list[int]:
                return [s.instance.id for s in engine.start_many(fx.process_id, [
                    NewProspect(f"{tag}{r}-p{i}", owner, {"market": "US"})
                    for i in range(instances)])]
            api_ids, direct_ids, route_ids = start("api"), start("direct"), start("route")
            profiling = r == rounds
            if profiling:
                import yappi
                yappi.set_clock_type("cpu")
                yappi.start()
            api_s = direct_s = route_s = 0.0
            if r == 0:
                _answer_cost(engine, direct_ids[0], fx.steps[0], owner)
            for step in fx.steps:
                api_s += await _pass(call_api, api_ids, step)
                if not profiling:
                    direct_s += await _pass(call_direct, direct_ids, step)
                    route_s += await _pass(call_route, route_ids, step)
            n = instances * len(fx.steps)
            if profiling:
                yappi.stop()
                _print_profile(yappi_top, n)
                break
            api_us.append(api_s / n * 1e6)
            direct_us.append(direct_s / n * 1e6)
            route_us.append(route_s / n * 1e6)
            print(f"round {r + 1}: API {api_us[-1]:.0f} µs CPU/step, Engine.complete "
                  f"{direct_us[-1]:.0f} µs (difference {api_us[-1] - direct_us[-1]:.0f} µs); "
                  f"the route's function in the threadpool {route_us[-1]:.0f} µs",
                  flush=True)
    engine.store.dispose()
    return {"api_us": [round(x) for x in api_us], "direct_us": [round(x) for x in direct_us],
            "route_us": [round(x) for x in route_us]}


def _answer_cost(engine: Engine, instance_id: int, step: str, owner: str) -> None:
    """CPU of turning a step's result into the route's JSON answer (`once` without a key)."""
    from service.idempotency import _encode, _to_dict

    instance = engine.get(instance_id)
    started, n = time.process_time(), 2000
    for _ in range(n):
        _encode(_to_dict(instance))
    text = _encode(_to_dict(instance))
    print(f"the answer: {len(text)} bytes, {(time.process_time() - started) / n * 1e6:.0f} µs "
          "CPU to encode", flush=True)


def _print_profile(top: int, steps: int) -> None:
    import yappi

    stats = yappi.get_func_stats()
    rows = sorted(stats, key=lambda s: s.tsub, reverse=True)[:top]
    print(f"yappi, CPU µs per step, own time (tsub) / with callees (ttot), {steps} steps:")
    for s in rows:
        print(f"  {s.tsub / steps * 1e6:8.1f} {s.ttot / steps * 1e6:8.1f}  "
              f"{Path(s.module).name}:{s.lineno} {s.name}")
    wanted = ("complete", "caller", "check", "solve_dependencies", "request_response",
              "run_in_threadpool", "_log_line", "__call__", "_owned", "once", "fingerprint",
              "model_dump", "authenticate", "remembered", "digest", "validate_python",
              "_person", "advance", "serialize_response", "app")
    for s in stats:
        if s.name in ("solve_dependencies", "app", "__call__", "request_response", "_match",
                      "run_endpoint_function", "serialize_response") and s.ttot / steps * 1e6 > 50:
            print(f"  children of {Path(s.module).name}:{s.lineno} {s.name} "
                  f"({s.ttot / steps * 1e6:.1f}):")
            for c in sorted(s.children, key=lambda c: c.ttot, reverse=True)[:8]:
                print(f"      {c.ttot / steps * 1e6:8.1f}  {Path(c.module).name}:{c.lineno} "
                      f"{c.name}")
    print("selected functions, with callees (ttot), µs per step:")
    for s in sorted(stats, key=lambda s: s.ttot, reverse=True):
        if s.name in wanted and s.ttot / steps * 1e6 > 5:
            print(f"  {s.ttot / steps * 1e6:8.1f}  {Path(s.module).name}:{s.lineno} {s.name}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--yappi", type=int, default=0, metavar="N")
    args = parser.parse_args(argv)
    if args.db == "postgres":
        problem = postgres_problem()
        if problem:
            raise SystemExit(f"PostgreSQL is needed: {problem}")
        with scratch_postgres() as url:
            asyncio.run(measure(url, args.instances, args.rounds, args.yappi))
    else:
        with tempfile.TemporaryDirectory() as scratch:
            url = f"sqlite:///{scratch}/profile.db"
            asyncio.run(measure(url, args.instances, args.rounds, args.yappi))


if __name__ == "__main__":
    main()
