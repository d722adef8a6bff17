"""The HTTP API under load, on PostgreSQL, loopback only, bounded loops.

    python -m bench.api [--clients 16] [--instances 320] [--workers 2]
                        [--cards-instances 100000] [--distributors 1000] [--samples 200]
                        [--json PATH]

1. Steps through the API: a real `nextmove serve --workers W` process on a scratch
   PostgreSQL database; `--clients` clients, each with its own HTTP connection and its own
   distributor token, complete the ten steps of bench/maps/linear10.bpmn on their share of
   `--instances` instances (POST /instances/{id}/complete: token check, scope check, one
   durable step). Aggregate persisted steps/s is compared with SpiffWorkflow's full
   in-memory round trip on one thread (bench.steps' baseline: deserialize the whole JSON
   document, run the task, serialize), measured in the same run on as many steps. The
   clients are one asyncio loop writing HTTP/1.1 (bench/_http_load.py; `--client httpx`
   for one httpx client per thread instead), and the CPU each step cost the server, the
   load generator and the rest of the machine (PostgreSQL, the kernel) is printed too.
2. The card page at scale: `--cards-instances` LifeVantage instances over
   `--distributors` distributors; for `--samples` distributors (seeded) it times
   GET /me/cards (signed in, rendered HTML) and a direct `Engine.cards()` call in this
   process, interleaved, and reports p50/p99 and their ratio (API / direct).

Figures are wall-clock medians/percentiles of one run; nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

import service
from bench._common import (
    MAPS,
    RESULTS,
    machine_info,
    postgres_problem,
    scratch_postgres,
    write_result,
)
from bench._http_load import Client, machine_busy_seconds, tree_cpu_seconds
from bench._http_load import run as run_load
from bench.cards import p99
from bench.steps import Fixture, spiff_full
from engine.runtime import NewProspect
from nextmove import open_engine
from service.page import PAGE_SIZE

ROOT = MAPS.parent.parent
LIFEVANTAGE = ROOT / "processes" / "lifevantage"


# Set by --plain-parsers: a directory whose httptools.py and uvloop.py fail to import, put
# first on the server's path so uvicorn falls back to h11 and asyncio (an A/B of the parsers).
SHADOW: list[str] = []
# Set by --serve-from: another checkout (an older commit, say) whose cli.py serves.
SERVE_FROM: list[Path] = []


@contextmanager
def server(url: str, workers: int, port: int) -> Iterator[tuple[str, int]]:
    """`nextmove serve` on `url`, until the block ends (then SIGTERM): its base URL and pid."""
    root = SERVE_FROM[0] if SERVE_FROM else ROOT
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*SHADOW, str(root)]), "NEXTMOVE_DB": url}
    proc = subprocess.Popen([sys.executable, str(root / "cli.py"), "serve", "--port", str(port),
                             "--workers", str(workers)], env=env, text=True,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    # Every worker must listen before the clients connect, or the first one up takes them all.
    running = threading.Semaphore(0)

    def drain(stream: Any) -> None:  # reads the server's log to the end (a full pipe blocks it)
        for line in stream:
            if "Application startup complete" in line:
                running.release()

    threading.Thread(target=drain, args=(proc.stderr,), daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(workers):  # bounded: up to a minute each for the workers to come up
            if not running.acquire(timeout=60):
                raise RuntimeError("the server's workers did not all start")
        for _ in range(600):
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("the server did not become ready")
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def steps_through_api(url: str, clients: int, instances: int, workers: int,
                      client: str = "lean") -> dict[str, Any]:
    fx = Fixture()
    engine = open_engine(url, recommend=False)
    engine.deploy([MAPS / "linear10.bpmn"])
    service.prepare_tables(engine.store)
    per = max(1, instances // clients)
    owners = [f"bench-d{c}" for c in range(clients)]
    ids = {o: [s.instance.id for s in engine.start_many(fx.process_id, [
        NewProspect(f"{o}-p{i}", o, {"market": "US"}) for i in range(per)])] for o in owners}
    tokens = {o: service.create_token(engine.store, "distributor", o).token for o in owners}
    # each client completes every instance's first step, then every instance's second, ...
    work = {o: [("POST", f"/instances/{i}/complete", {"step": step})
                for step in fx.steps for i in ids[o]] for o in owners}
    total = per * clients * len(fx.steps)
    port = free_port()
    with server(url, workers, port) as (base, pid):
        cpu = (tree_cpu_seconds(pid), time.process_time(), machine_busy_seconds())
        if client == "lean":
            load = [Client(tokens[o], work[o]) for o in owners]
            api_seconds = run_load("127.0.0.1", port, load)
            errors = [e for c in load for e in c.errors]
        else:
            api_seconds, errors = _httpx_threads(base, tokens, work)
        cpu_after = (tree_cpu_seconds(pid), time.process_time(), machine_busy_seconds())
    if errors:
        raise RuntimeError(f"{len(errors)} failed steps; first: {errors[0]}")
    done = engine.list_instances(status="completed", limit=per * clients)
    if len(done) != per * clients:
        raise RuntimeError("not every instance completed: the benchmark is broken")
    engine.store.dispose()
    baseline = spiff_full(fx)
    baseline.prepare(per * clients)
    spiff_seconds = sum(baseline.step_pass(step)[0] for step in fx.steps)
    baseline.finish()
    api_rate, spiff_rate = total / api_seconds, total / spiff_seconds
    return {"clients": clients, "workers": workers, "steps": total, "client": client,
            "api_steps_per_s": round(api_rate, 1),
            "spiff_full_steps_per_s": round(spiff_rate, 1),
            "ratio": round(api_rate / spiff_rate, 3),
            "cpu_ms_per_step": _cpu_split(cpu, cpu_after, total)}


def _httpx_threads(base: str, tokens: dict[str, str],
                   work: dict[str, list[tuple[str, str, object]]]) -> tuple[float, list[str]]:
    """The same requests from one httpx client per thread (the first rounds' load)."""
    errors: list[str] = []
    barrier = threading.Barrier(len(work) + 1)

    def send(owner: str) -> None:
        with httpx.Client(base_url=base, timeout=60,
                          headers={"Authorization": f"Bearer {tokens[owner]}"}) as http:
            barrier.wait()
            for method, path, body in work[owner]:
                answer = http.request(method, path, json=body)
                if answer.status_code != 200:
                    errors.append(answer.text[:200])

    threads = [threading.Thread(target=send, args=(o,)) for o in work]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - started, errors


def _cpu_split(before: tuple[float | None, float, float | None],
               after: tuple[float | None, float, float | None], steps: int) -> dict[str, Any]:
    """Milliseconds of CPU per step: the server's processes, this process (the load), and
    the rest of the machine (PostgreSQL, the kernel, anything else running)."""
    server_s = None if before[0] is None or after[0] is None else after[0] - before[0]
    load_s = after[1] - before[1]
    busy_s = None if before[2] is None or after[2] is None else after[2] - before[2]
    rest_s = None if server_s is None or busy_s is None else busy_s - server_s - load_s

    def ms(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / steps * 1000, 3)

    return {"server": ms(server_s), "load": ms(load_s), "rest": ms(rest_s),
            "machine": ms(busy_s)}


def cards_latency(url: str, instances: int, distributors: int, samples: int,
                  workers: int) -> dict[str, Any]:
    engine = open_engine(url, rng=random.Random(0))
    engine.deploy([LIFEVANTAGE])
    service.prepare_tables(engine.store)
    rng = random.Random(1)
    names = [f"d{n}" for n in range(distributors)]
    built = time.perf_counter()
    batch: list[NewProspect] = []
    for i in range(instances):
        owner = names[i % distributors]
        batch.append(NewProspect(f"p{i}", owner, {"market": "US",
                                                  "sponsor_id": rng.choice(names)}))
        if len(batch) == 1000 or i == instances - 1:
            engine.start_many("prospect_journey", batch)
            batch = []
    build_seconds = time.perf_counter() - built
    print(f"started {instances} instances in {build_seconds:.0f} s (bulk start, 1000 a batch)")
    chosen = rng.sample(names, min(samples, distributors))
    tokens = {d: service.create_token(engine.store, "distributor", d).token for d in chosen}
    api_ms: list[float] = []
    direct_ms: list[float] = []
    page_ms: list[float] = []
    sizes: list[int] = []
    with server(url, workers, free_port()) as (base, _):
        browsers = {d: httpx.Client(base_url=base, timeout=60) for d in chosen}
        for d, browser in browsers.items():
            browser.post("/login", data={"token": tokens[d]})
        for d in chosen:
            started = time.perf_counter()
            answer = browsers[d].get("/me/cards")
            api_ms.append((time.perf_counter() - started) * 1000)
            sizes.append(len(answer.content))
            if answer.status_code != 200 or "<article" not in answer.text:
                raise RuntimeError(f"/me/cards for {d}: {answer.status_code}")
            started = time.perf_counter()
            engine.cards(d, limit=100)
            direct_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            engine.cards_page(d, size=PAGE_SIZE)  # what the first page reads
            page_ms.append((time.perf_counter() - started) * 1000)
        for browser in browsers.values():
            browser.close()
    engine.store.dispose()
    p50a, p50d = statistics.median(api_ms), statistics.median(direct_ms)
    return {"instances": instances, "distributors": distributors, "samples": len(chosen),
            "build_seconds": round(build_seconds, 1),
            "api_p50_ms": round(p50a, 2), "api_p99_ms": round(p99(api_ms), 2),
            "direct_p50_ms": round(p50d, 2), "direct_p99_ms": round(p99(direct_ms), 2),
            "p50_ratio": round(p50a / p50d, 2),
            "p99_ratio": round(p99(api_ms) / p99(direct_ms), 2),
            "direct_page_p50_ms": round(statistics.median(page_ms), 2),
            "direct_page_p99_ms": round(p99(page_ms), 2),
            "page_p50_ratio": round(p50a / statistics.median(page_ms), 2),
            "page_p99_ratio": round(p99(api_ms) / p99(page_ms), 2),
            "page_bytes_median": statistics.median(sizes)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--instances", type=int, default=320)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cards-instances", type=int, default=100_000)
    parser.add_argument("--distributors", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--only", choices=("steps", "cards"), default=None,
                        help="Run one part only.")
    parser.add_argument("--plain-parsers", action="store_true",
                        help="Serve without httptools and uvloop (uvicorn's pure-Python h11 "
                        "parser and asyncio loop), to compare.")
    parser.add_argument("--pg-options", default=None,
                        help="PostgreSQL settings for every connection of the run, e.g. "
                        "'-c commit_delay=200 -c commit_siblings=2' (needs a superuser; the "
                        "steps stay durable: synchronous_commit is not touched).")
    parser.add_argument("--serve-from", type=Path, default=None,
                        help="Serve from this checkout (e.g. `git archive` of an older commit) "
                        "instead of this one, to compare; the database is the same.")
    parser.add_argument("--client", choices=("lean", "httpx"), default="lean",
                        help="The load generator for the steps: one asyncio loop writing "
                        "HTTP/1.1 on one connection per client (lean, default), or one httpx "
                        "client per thread (costs ~0.8 ms of CPU a request on the same cores).")
    parser.add_argument("--json", default=str(RESULTS / "api.json"))
    args = parser.parse_args(argv)
    if args.serve_from is not None:
        SERVE_FROM.append(args.serve_from.resolve())
    if args.plain_parsers:
        shadow = Path(tempfile.mkdtemp(prefix="nextmove-plain-"))
        for name in ("httptools", "uvloop"):
            (shadow / f"{name}.py").write_text("raise ImportError('hidden by --plain-parsers')\n")
        SHADOW.append(str(shadow))
    problem = postgres_problem()
    if problem:
        sys.exit(f"PostgreSQL is needed: {problem}")
    steps: dict[str, Any] = {}
    cards: dict[str, Any] = {}
    if args.only in (None, "steps"):
        with scratch_postgres() as url:
            if args.pg_options:
                url += ("&" if "?" in url else "?") + "options=" + quote(args.pg_options)
            steps = steps_through_api(url, args.clients, args.instances, args.workers,
                                      args.client)
            steps["pg_options"] = args.pg_options
        print(f"steps through the API: {steps['clients']} clients, {steps['workers']} workers, "
              f"{steps['steps']} steps: {steps['api_steps_per_s']}/s; SpiffWorkflow full "
              f"round trip, one thread: {steps['spiff_full_steps_per_s']}/s; ratio "
              f"{steps['ratio']}")
        split = steps["cpu_ms_per_step"]
        print(f"  CPU ms per step ({steps['client']} load): server {split['server']}, load "
              f"{split['load']}, rest (PostgreSQL, kernel) {split['rest']}; machine "
              f"{split['machine']}")
    if args.only in (None, "cards"):
        with scratch_postgres() as url:
            cards = cards_latency(url, args.cards_instances, args.distributors, args.samples,
                                  args.workers)
        print_cards(cards)
    write_result(Path(args.json), {"machine": machine_info(), "steps": steps, "cards": cards,
                                   "parsers": "h11+asyncio" if args.plain_parsers
                                   else "auto (httptools+uvloop when installed)"})


def print_cards(cards: dict[str, Any]) -> None:
    print(f"GET /me/cards at {cards['instances']} instances ({cards['samples']} samples): "
          f"p50 {cards['api_p50_ms']} ms, p99 {cards['api_p99_ms']} ms; Engine.cards: "
          f"p50 {cards['direct_p50_ms']} ms, p99 {cards['direct_p99_ms']} ms; ratio p50 "
          f"{cards['p50_ratio']}, p99 {cards['p99_ratio']}; Engine.cards_page(size={PAGE_SIZE}), "
          f"what the first page reads: p50 {cards['direct_page_p50_ms']} ms, p99 "
          f"{cards['direct_page_p99_ms']} ms; ratio p50 {cards['page_p50_ratio']}, p99 "
          f"{cards['page_p99_ratio']}; page {cards['page_bytes_median']:.0f} bytes (median)")


if __name__ == "__main__":
    main()
