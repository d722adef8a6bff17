"""Persisted steps per second on SQLite and PostgreSQL against SpiffWorkflow's own round trip.

    python -m bench.steps [--rounds 5] [--warmup 1] [--instances 200] [--json PATH]
                          [--no-postgres] [--no-info]

Baseline (measured in the same run, in memory, no database): what a plain SpiffWorkflow user
pays per step with the standard serializer: deserialize the full JSON document, run the READY
user task, do_engine_steps, serialize. A second, informational row does the same with
nextmove's state-only document (engine.runtime.state).

nextmove rows: `Engine.complete()` on a real database, one transaction per step (state, step
events, waiting index, optimistic version). K instances of bench/maps/linear10.bpmn are
started (untimed) and their ten steps are completed round-robin, so every step touches a
different instance. "hot" keeps instances deserialized between steps (the engine default);
"cold" (hot_instances=0) loads every step's state from the database. An informational row
(not a claim; --no-info leaves it out) runs PostgreSQL hot with synchronous_commit=off, which
shows how much of a PostgreSQL step is the commit's WAL flush.

Every row runs in every round, interleaved one step pass at a time (all rows move their
instances one step, then the next step), so a burst of machine noise hits all rows alike.
Figures are medians over rounds; "ratio" is a row's median over the Spiff full round trip's
median, "per round" the median of the ratios taken within each round. Target: the nextmove
hot rows at ratio >= 1.0.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from bench._common import (
    MAPS,
    RESULTS,
    Row,
    machine_info,
    postgres_problem,
    postgres_version,
    ratio,
    scratch_postgres,
    table,
    write_result,
)
from engine.definitions import build_spec, load_definitions
from engine.runtime.state import dump_state, load_state
from nextmove import open_engine

MAP = MAPS / "linear10.bpmn"
INFO_ASYNC = "(info) nextmove PG hot, synchronous_commit=off"
CONTEXT = {"market": "US", "source": "bench"}  # the same small start data for every row


class Fixture:
    """The parsed benchmark map: spec, subprocess specs and its user steps in order."""

    def __init__(self, path: Path = MAP) -> None:
        (definition,) = load_definitions([path])
        self.process_id = definition.process_id
        self.spec, self.subprocess_specs = build_spec(definition.process_id, definition.documents)
        self.steps = [s.id for s in definition.all_steps() if s.type == "userTask"]

    def new_workflow(self) -> BpmnWorkflow:
        workflow = BpmnWorkflow(self.spec, self.subprocess_specs)
        workflow.task_tree.data.update(CONTEXT)
        workflow.do_engine_steps()
        return workflow


class SpiffRun:
    """The in-memory baseline: documents in a list, one round trip per step, no database."""

    def __init__(self, fx: Fixture, dump: Callable[[BpmnWorkflow], str],
                 load: Callable[[str], BpmnWorkflow]) -> None:
        self.fx, self.dump, self.load = fx, dump, load
        self.docs: list[str] = []

    def prepare(self, instances: int) -> None:
        self.docs = [self.dump(self.fx.new_workflow()) for _ in range(instances)]

    def step_pass(self, step: str) -> tuple[float, float]:
        """Wall and CPU seconds to move every instance one step."""
        docs, dump, load = self.docs, self.dump, self.load
        start, cpu = time.perf_counter(), time.process_time()
        for i, doc in enumerate(docs):
            workflow = load(doc)
            task = workflow.get_next_task(state=TaskState.READY, manual=True)
            task.run()
            workflow.do_engine_steps()
            docs[i] = dump(workflow)
        return time.perf_counter() - start, time.process_time() - cpu

    def finish(self) -> None:
        if not all(self.load(doc).completed for doc in (self.docs[0], self.docs[-1])):
            raise RuntimeError("baseline workflow did not complete: the benchmark is broken")

    def close(self) -> None:
        pass


def spiff_full(fx: Fixture) -> SpiffRun:
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    return SpiffRun(fx, serializer.serialize_json, serializer.deserialize_json)


def spiff_state_only(fx: Fixture) -> SpiffRun:
    return SpiffRun(fx, dump_state, lambda text: load_state(text, fx.spec, fx.subprocess_specs))


class NextmoveRun:
    """One Engine on one database, reused across rounds (specs and connections stay warm)."""

    def __init__(self, fx: Fixture, url: str, hot: bool, label: str) -> None:
        self.fx = fx
        self.label = label
        self.engine = open_engine(url, recommend=False, hot_instances=None if hot else 0)
        self.engine.deploy([MAP])
        self.round_no = 0
        self.ids: list[int] = []

    def prepare(self, instances: int) -> None:
        self.round_no += 1
        self.ids = [self.engine.start(self.fx.process_id, f"{self.label}-{self.round_no}-{i}",
                                      "bench-dist", CONTEXT).id for i in range(instances)]

    def step_pass(self, step: str) -> tuple[float, float]:
        complete, ids = self.engine.complete, self.ids
        start, cpu = time.perf_counter(), time.process_time()
        for instance_id in ids:
            complete(instance_id, step)
        return time.perf_counter() - start, time.process_time() - cpu

    def finish(self) -> None:
        """Every instance went through every step, with its events logged."""
        steps = self.fx.steps
        for instance_id in (self.ids[0], self.ids[-1]):
            status = self.engine.get(instance_id).status
            done = [e.step_id for e in self.engine.history(instance_id)
                    if e.kind == "completed" and e.step_id in steps]
            if status != "completed" or done != steps:
                raise RuntimeError(f"{self.label}: instance {instance_id} is {status} after "
                                   f"completing {done}; the benchmark is broken")

    def close(self) -> None:
        self.engine.store.dispose()


Bench = SpiffRun | NextmoveRun


def run_round(
    fx: Fixture, benches: list[Bench], instances: int
) -> list[tuple[float, float]]:
    """Steps per second of each bench over one round; step passes are interleaved across
    benches so a burst of machine noise hits every row alike."""
    for bench in benches:
        bench.prepare(instances)
    gc.collect()
    elapsed = [0.0] * len(benches)
    cpu = [0.0] * len(benches)
    for step in fx.steps:
        for k, bench in enumerate(benches):
            wall, used = bench.step_pass(step)
            elapsed[k] += wall
            cpu[k] += used
    for bench in benches:
        bench.finish()
    steps = len(fx.steps) * instances
    return [(steps / e, c / steps) for e, c in zip(elapsed, cpu, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.steps", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded rounds first")
    parser.add_argument("--instances", type=int, default=200,
                        help="instances per round, stepped round-robin (default 200)")
    parser.add_argument("--json", type=Path, default=RESULTS / "steps.json",
                        help="where to write the results (default bench/results/steps.json)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite rows only")
    parser.add_argument("--no-info", action="store_true",
                        help="leave out the informational PostgreSQL synchronous_commit=off row")
    args = parser.parse_args(argv)

    fx = Fixture()
    baseline = Row("spiff full round trip (in memory)")
    state_only = Row("spiff state-only round trip", note="engine.runtime.state, informational")
    rows: list[Row] = [baseline, state_only]
    benches: list[Bench] = [spiff_full(fx), spiff_state_only(fx)]
    info = machine_info()

    with tempfile.TemporaryDirectory(prefix="nextmove-bench-") as tmp:
        sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        for hot in (True, False):
            kind = "hot" if hot else "cold"
            rows.append(Row(f"nextmove SQLite {kind}",
                            note="file in a temp dir, WAL, synchronous=NORMAL"))
            benches.append(NextmoveRun(fx, sqlite_url, hot, f"sqlite-{kind}"))

        pg_skip = "disabled with --no-postgres" if args.no_postgres else postgres_problem()
        with scratch_postgres() if pg_skip is None else nullcontext() as pg_url:
            if pg_url is not None:
                info["postgresql"] = postgres_version(pg_url)
                for hot in (True, False):
                    kind = "hot" if hot else "cold"
                    rows.append(Row(f"nextmove PostgreSQL {kind}", note="127.0.0.1, psycopg 3"))
                    benches.append(NextmoveRun(fx, pg_url, hot, f"pg-{kind}"))
                if not args.no_info:
                    # What the commit's WAL flush costs: the same engine, but commits return
                    # before the flush (a crash may lose the last steps, never half of one).
                    rows.append(Row(INFO_ASYNC, note="informational: not the default setting"))
                    benches.append(NextmoveRun(
                        fx, pg_url + "?options=-c%20synchronous_commit%3Doff", True, "pg-async"))
            else:
                print(f"PostgreSQL rows skipped: {pg_skip}", file=sys.stderr)
            try:
                total = args.warmup + args.rounds
                for r in range(total):
                    measured = r >= args.warmup
                    tag = f"round {r - args.warmup + 1}/{args.rounds}" if measured else "warm-up"
                    figures = run_round(fx, benches, args.instances)
                    if measured:
                        for row, (value, cpu_s) in zip(rows, figures, strict=True):
                            row.rounds.append(value)
                            row.cpu_rounds.append(cpu_s)
                    print(f"{tag}: " + "  ".join(f"{v:,.0f}" for v, _ in figures),
                          file=sys.stderr, flush=True)
            finally:
                for bench in benches:
                    bench.close()

    steps = len(fx.steps)
    print(f"\nnextmove steps per second, {args.instances} instances x {steps} steps round-robin, "
          f"median of {args.rounds} rounds; ratio = steps/s / spiff full round trip")
    print(table(rows, baseline))
    hot_rows = [r for r in rows if r.name.endswith(" hot")]  # the info row is not a claim
    verdict = "met" if all(ratio(r, baseline) >= 1.0 for r in hot_rows) else "NOT met"
    print(f"target (hot rows ratio >= 1.0): {verdict}")
    # Issue 23's tighter floor: SQLite hot against the state-only round trip, same rounds.
    sqlite_hot = next(r for r in rows if r.name == "nextmove SQLite hot")
    floor_ratio = ratio(sqlite_hot, state_only)
    floor_rounds = [a / b for a, b in zip(sqlite_hot.rounds, state_only.rounds, strict=True)]
    floor_cpu = state_only.cpu_us_per_step / sqlite_hot.cpu_us_per_step
    print(f"SQLite hot ÷ spiff state-only: {floor_ratio:.2f} (per round "
          f"{', '.join(f'{x:.2f}' for x in floor_rounds)}; on CPU {floor_cpu:.2f})"
          f" — target (>= 1.0): {'met' if floor_ratio >= 1.0 else 'NOT met'}")
    floor = {"ratio": round(floor_ratio, 3), "per_round": [round(x, 3) for x in floor_rounds],
             "cpu_ratio": round(floor_cpu, 3), "met": floor_ratio >= 1.0}
    if pg_skip is not None:
        print(f"PostgreSQL rows skipped: {pg_skip}")

    result: dict[str, Any] = {
        "benchmark": "bench.steps",
        "map": MAP.relative_to(MAPS.parent.parent).as_posix(),
        "params": {"rounds": args.rounds, "warmup": args.warmup, "instances": args.instances,
                   "steps_per_instance": steps},
        "baseline": baseline.name,
        "machine": info,
        "postgres_skipped": pg_skip,
        "target": {"hot_ratio_at_least": 1.0, "met": verdict == "met"},
        "sqlite_hot_vs_state_only": {**floor, "target_at_least": 1.0},
        "rows": [r.to_dict(baseline) for r in rows],
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
