"""A lean HTTP/1.1 load generator for the API benchmark: one asyncio loop, one keep-alive
connection per simulated client, requests written as bytes and answers read by their
`Content-Length`.

Why not httpx in threads: on a 2-core machine the load generator shares the cores with the
server and PostgreSQL, and 16 httpx client threads cost about 0.8 ms of CPU per request
(measured), which the benchmark would then charge to the server. A load generator should
cost as little as possible (wrk is written in C for the same reason); this one costs a few
tens of microseconds per request. It still speaks real HTTP over real sockets, and every
answer's status is checked.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Client:
    """One simulated user: its bearer token and the requests it sends, in order."""
    token: str
    requests: Sequence[tuple[str, str, object]]  # (method, path, JSON body)
    errors: list[str] = field(default_factory=list)


def _request(host: str, token: str, method: str, path: str, body: object) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
    return head.encode("ascii") + payload


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one response (the server always sends Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "transfer-encoding":
            raise RuntimeError("chunked answers are not expected from these routes")
    if length is None:
        raise RuntimeError(f"an answer without Content-Length: {lines[0]}")
    return status, await reader.readexactly(length)


async def _run_client(host: str, port: int, client: Client,
                      connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    reader, writer = connection
    try:
        for method, path, body in client.requests:
            writer.write(_request(f"{host}:{port}", client.token, method, path, body))
            status, answer = await _answer(reader)
            if status != 200:
                client.errors.append(f"{status} {answer[:200]!r}")
    finally:
        writer.close()
        await writer.wait_closed()


async def _run(host: str, port: int, clients: Sequence[Client]) -> float:
    # every connection is open before the clock starts
    connections = [await asyncio.open_connection(host, port) for _ in clients]
    began = time.perf_counter()
    await asyncio.gather(*(_run_client(host, port, c, link)
                           for c, link in zip(clients, connections, strict=True)))
    return time.perf_counter() - began


def run(host: str, port: int, clients: Sequence[Client]) -> float:
    """Run every client at once, each on its own connection; wall seconds from the first
    request to the last answer."""
    return asyncio.run(_run(host, port, clients))


# CPU accounting on Linux, to say where a request's CPU goes (server, load generator, the rest:
# PostgreSQL and the kernel). Elsewhere the figures are absent, not wrong.
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def tree_cpu_seconds(root: int) -> float | None:
    """User + system CPU seconds of process `root` and its live descendants."""
    try:
        stats = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    text = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue  # the process ended meanwhile
                fields = text[text.rindex(")") + 2:].split()
                stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    except OSError:
        return None
    inside = {root}
    changed = True
    while changed:  # the descendants: parents before children is not guaranteed
        changed = False
        for pid, (parent, _) in stats.items():
            if parent in inside and pid not in inside:
                inside.add(pid)
                changed = True
    return sum(stats[p][1] for p in inside if p in stats) / _TICK


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores spent busy since boot (not idle, not waiting on I/O)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK
