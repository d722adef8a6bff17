"""A small field force for the role tests: s1 sponsors d1, d1 sponsors d3, d2 stands alone."""

from __future__ import annotations

from dataclasses import dataclass

from tests.service._server import LIFEVANTAGE, Running

PROCESS = "prospect_journey"


@dataclass
class World:
    d1: int  # an instance of d1 (sponsor s1)
    d2: int  # an instance of d2 (nobody's downline here)
    d3: int  # an instance of d3 (sponsor d1, so s1's downline too)


def start(run: Running, prospect: str, distributor: str, sponsor: str | None = None) -> int:
    context = {"sponsor_id": sponsor} if sponsor else {}
    return run.engine.start(PROCESS, prospect, distributor, context, new=True).id


def world(run: Running) -> World:
    return World(start(run, "p-d1", "d1", "s1"), start(run, "p-d2", "d2"),
                 start(run, "p-d3", "d3", "d1"))


def map_files() -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (p.name, p.read_bytes(), "application/octet-stream"))
            for p in sorted(LIFEVANTAGE.iterdir()) if p.is_file()]
