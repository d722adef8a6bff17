"""Fuzz the loaders for N minutes: BPMN maps, YAML maps, content catalogs, bulk-start CSVs and
event logs (CSV, XES). Inputs are real files (processes/, tests/fixtures/) mutated byte by
byte, spliced and truncated. Every input must end as a result or a `NextmoveError` — never
another exception (a traceback), never a hang (each input is timed), and memory stays bounded
(the peak RSS is reported).

    PYTHONPATH=. python bench/fuzz_loaders.py --minutes 5 [--seed 1]

The suite runs the same targets with a bounded number of hypothesis examples
(tests/test_fuzz_loaders.py).
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from engine import NextmoveError, Store  # noqa: E402
from engine.runtime.bulk import read_prospects  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures"
SEEDS: dict[str, list[Path]] = {
    "bpmn": sorted((FIXTURES / "bpmn").glob("*.bpmn"))[:12]
    + [REPO / "processes" / "lifevantage" / "distributor_onboarding.bpmn"],
    "yaml": sorted((FIXTURES / "yaml").glob("*.yaml"))[:12]
    + [REPO / "processes" / "lifevantage" / "prospect_journey.yaml"],
    "catalog": [REPO / "processes" / "lifevantage" / "catalog.yaml"],
    "csv": [FIXTURES / "logs" / "bad_rows.csv"],
    "xes": sorted((FIXTURES / "logs").glob("*.xes")),
}
SUFFIX = {"bpmn": ".bpmn", "yaml": ".yaml", "catalog": ".yaml", "csv": ".csv", "xes": ".xes",
          "bulk": ".csv"}
BULK_SEED = b"prospect_id,distributor_id,sponsor_id,market\nann,d1,s1,US\nbob,d2,,MX\n"


def seed_bytes(kind: str) -> list[bytes]:
    if kind == "bulk":
        return [BULK_SEED]
    return [p.read_bytes() for p in SEEDS[kind] if p.is_file()]


@dataclass
class Fuzzer:
    """Runs one input through one loader in a scratch folder; a stored SQLite for imports."""

    workdir: Path
    store: Store | None = None
    imported: int = 0
    findings: list[str] = field(default_factory=list)

    def run(self, kind: str, data: bytes) -> None:
        """Raise anything that is not a NextmoveError (the test lets it fail)."""
        folder = self.workdir / f"in{self.imported}"
        folder.mkdir()
        path = folder / f"input{SUFFIX[kind]}"
        path.write_bytes(data)
        try:
            TARGETS[kind](self, path)
        except NextmoveError:
            pass
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            self.imported += 1

    def import_log(self, path: Path) -> None:
        import learner

        if self.store is None:
            self.store = Store(str(self.workdir / "fuzz.db"), durable=False)
            self.store.prepare()
        learner.import_log(self.store, path, f"fuzz{self.imported}")


def _maps(fuzzer: Fuzzer, path: Path) -> None:
    import nextmove

    nextmove.load([path])


def _bulk(fuzzer: Fuzzer, path: Path) -> None:
    for _ in read_prospects(path):
        pass


TARGETS: dict[str, Callable[[Fuzzer, Path], None]] = {
    "bpmn": _maps, "yaml": _maps, "catalog": _maps, "bulk": _bulk,
    "csv": Fuzzer.import_log, "xes": Fuzzer.import_log,
}


def mutate(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    """A few random edits: flip, insert, delete, duplicate a slice, splice another seed."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        choice = rng.random()
        at = rng.randrange(len(buf) + 1)
        if choice < 0.25 and buf:
            buf[min(at, len(buf) - 1)] = rng.randrange(256)
        elif choice < 0.45:
            buf[at:at] = rng.choice([b"<", b">", b"\"", b"'", b"\n", b"\x00", b"{", b"[", b":",
                                     b"&", b"-", b"*", b",", b"\xff", b"\xc3", b"&a;", b"!!"])
        elif choice < 0.65 and buf:
            del buf[at:at + rng.randint(1, 64)]
        elif choice < 0.8 and buf:
            piece = bytes(buf[at:at + rng.randint(1, 256)])
            buf[at:at] = piece * rng.randint(1, 20)
        elif choice < 0.9 and others:
            other = rng.choice(others)
            cut = rng.randrange(len(other) + 1)
            buf[at:] = other[cut:]
        else:
            del buf[at:]
    return bytes(buf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slow", type=float, default=5.0, help="seconds that count as a hang")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    seeds = {kind: seed_bytes(kind) for kind in TARGETS}
    counts = dict.fromkeys(TARGETS, 0)
    slowest = dict.fromkeys(TARGETS, 0.0)
    findings: list[str] = []
    end = time.monotonic() + args.minutes * 60
    with tempfile.TemporaryDirectory() as scratch:
        fuzzer = Fuzzer(Path(scratch))
        while time.monotonic() < end:
            kind = rng.choice(list(TARGETS))
            data = mutate(rng, rng.choice(seeds[kind]), seeds[kind])
            started = time.monotonic()
            try:
                fuzzer.run(kind, data)
            except Exception as exc:  # a finding: keep the input
                keep = REPO / "bench" / "findings"
                keep.mkdir(exist_ok=True)
                sample = keep / f"{kind}-{len(findings)}{SUFFIX[kind]}"
                sample.write_bytes(data)
                findings.append(f"{kind}: {type(exc).__name__}: {exc} ({sample})")
                traceback.print_exc(limit=3)
            took = time.monotonic() - started
            slowest[kind] = max(slowest[kind], took)
            counts[kind] += 1
            if took > args.slow:
                findings.append(f"{kind}: {took:.1f} s on one input (a hang?)")
        if fuzzer.store is not None:
            fuzzer.store.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fuzzed {sum(counts.values())} inputs in {args.minutes:g} min; peak RSS {peak:.0f} MB")
    for kind in TARGETS:
        print(f"  {kind:8} {counts[kind]:7} inputs, slowest {slowest[kind] * 1000:7.1f} ms")
    print(f"{len(findings)} finding(s)")
    for line in findings:
        print(f"  {line}")
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
