"""Helpers shared by the benchmarks: machine facts, medians, scratch PostgreSQL, tables."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
MAPS = BENCH / "maps"
RESULTS = BENCH / "results"
PG_ADMIN_URL = os.environ.get(
    "NEXTMOVE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def write_result(path: Path, result: Any) -> None:
    """A benchmark's figures as JSON (folders made as needed), and where they went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "spiffworkflow": _version("SpiffWorkflow"),
        "sqlalchemy": _version("SQLAlchemy"),
        "psycopg": _version("psycopg"),
        "sqlite": sqlite3.sqlite_version,
    }


@dataclass
class Row:
    """One benchmark row: per-round throughput; figures are medians over rounds."""

    name: str
    rounds: list[float] = field(default_factory=list)  # steps per second, one per round
    cpu_rounds: list[float] = field(default_factory=list)  # this process's CPU s per step
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.rounds) if self.rounds else float("nan")

    @property
    def us_per_step(self) -> float:
        return 1e6 / self.median if self.rounds else float("nan")

    @property
    def cpu_us_per_step(self) -> float:
        """CPU time of this process (not a database server's), median over rounds."""
        return statistics.median(self.cpu_rounds) * 1e6 if self.cpu_rounds else float("nan")

    def to_dict(self, baseline: Row) -> dict[str, Any]:
        return {
            "name": self.name,
            "steps_per_s_median": round(self.median, 1),
            "us_per_step": round(self.us_per_step, 1),
            "ratio_vs_spiff_full": round(ratio(self, baseline), 3),
            "ratio_vs_spiff_full_per_round_median": round(round_ratio(self, baseline), 3),
            "cpu_us_per_step": round(self.cpu_us_per_step, 1),
            "cpu_ratio_vs_spiff_full": round(baseline.cpu_us_per_step / self.cpu_us_per_step, 3),
            "ratio_vs_spiff_full_per_round": [
                round(a / b, 3) for a, b in zip(self.rounds, baseline.rounds, strict=True)],
            "steps_per_s_rounds": [round(r, 1) for r in self.rounds],
            "note": self.note,
        }


def ratio(row: Row, baseline: Row) -> float:
    return row.median / baseline.median if row.rounds and baseline.rounds else float("nan")


def round_ratio(row: Row, baseline: Row) -> float:
    """Median of the ratios measured within each round (robust to slow rounds)."""
    pairs = [a / b for a, b in zip(row.rounds, baseline.rounds, strict=True)]
    return statistics.median(pairs) if pairs else float("nan")


def table(rows: Sequence[Row], baseline: Row) -> str:
    width = max(34, *(len(row.name) for row in rows))
    head = (f"{'':{width}} {'steps/s (median)':>17} {'µs/step':>9} {'ratio':>7} "
            f"{'per round':>10} {'CPU µs/step':>12} {'CPU ratio':>10}")
    lines = [head, "-" * len(head)]
    for row in rows:
        lines.append(f"{row.name:{width}} {row.median:17,.0f} {row.us_per_step:9.1f} "
                     f"{ratio(row, baseline):7.2f} {round_ratio(row, baseline):10.2f} "
                     f"{row.cpu_us_per_step:12.1f} "
                     f"{baseline.cpu_us_per_step / row.cpu_us_per_step:10.2f}")
    return "\n".join(lines)


def postgres_problem(admin_url: str = PG_ADMIN_URL) -> str | None:
    """None when PostgreSQL answers, else why not (one line)."""
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(admin_url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means "skip the PostgreSQL rows"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def postgres_version(url: str) -> str | None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("show server_version")).scalar())
    finally:
        engine.dispose()


@contextmanager
def scratch_postgres(admin_url: str = PG_ADMIN_URL, template: str | None = None
                     ) -> Iterator[str]:
    """A fresh PostgreSQL database for the run (a copy of database `template` if given),
    dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"nextmove_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    copy = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
