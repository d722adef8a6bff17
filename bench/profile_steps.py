"""Where a persisted step's time goes: `Engine.complete()` split into stages, in µs per step.

    python -m bench.profile_steps [--db sqlite|postgres] [--cold] [--instances 200] [--rounds 3]

Runs the bench.steps workload (linear10, instances stepped round-robin) twice: plain, for the
real µs/step, then with timers wrapped around the functions a step goes through (Spiff's
task.run and do_engine_steps, nextmove's tokens/state/queries functions, SQLAlchemy's execute
and the store's transaction). Each stage shows its exclusive time (time in nested timed stages
is counted there), so the stages add up to the instrumented total; "engine glue" is what
`complete()` spends outside every timed stage. The timers cost ~1 µs per wrapped call.

Timers are attached by name in this process only; a function the engine no longer has is
skipped with a note. For a sampling view of the same run use py-spy:
`py-spy record -f raw -o out.txt -- python -m bench.profile_steps`.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import sys
import tempfile
import time
import types
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from bench._common import postgres_problem, scratch_postgres
from bench.steps import Fixture, NextmoveRun

_SHOWN_AS = {
    "pipeline commit": "pipeline finish: new header, hot cache, fired",
    "pipeline load": "cold: pipeline load glue",
}
_SQL_BY_CALLER = {
    "pipeline load": "SQL: SELECT instance + state",
}


class Timers:
    """Exclusive wall time per label, from wrappers kept on a stack."""

    def __init__(self) -> None:
        self.totals: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()
        self._stack: list[list[Any]] = []  # [label, start, time in children]
        self._undo: list[tuple[Any, str, Any]] = []
        self.missing: list[str] = []
        self.active = False

    def enter(self, label: str) -> None:
        self._stack.append([label, time.perf_counter(), 0.0])

    def leave(self) -> None:
        label, start, children = self._stack.pop()
        spent = time.perf_counter() - start
        self.totals[label] += spent - children
        self.calls[label] += 1
        if self._stack:
            self._stack[-1][2] += spent

    @property
    def caller(self) -> str | None:
        return self._stack[-1][0] if self._stack else None

    def wrap(self, owner: Any, name: str, label: str | Callable[[str | None], str]) -> None:
        original = getattr(owner, name, None)
        if original is None:
            self.missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
            return
        timers = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not timers.active:
                return original(*args, **kwargs)
            timers.enter(label if isinstance(label, str) else label(timers.caller))
            try:
                return original(*args, **kwargs)
            finally:
                timers.leave()

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    def wrap_context(self, owner: Any, name: str, enter: str, leave: str) -> None:
        """Time a @contextmanager's entry and exit as two stages."""
        original = getattr(owner, name)
        timers = self

        class Timed:
            def __init__(self, inner: Any) -> None:
                self.inner = inner

            def __enter__(self) -> Any:
                timers.enter(enter)
                try:
                    return self.inner.__enter__()
                finally:
                    timers.leave()

            def __exit__(self, *exc: Any) -> Any:
                timers.enter(leave)
                try:
                    return self.inner.__exit__(*exc)
                finally:
                    timers.leave()

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            inner = original(*args, **kwargs)
            return Timed(inner) if timers.active else inner

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    def swap(self, owner: Any, name: str, value: Any) -> None:
        """Replace `owner.name` with `value` until `undo`."""
        self._undo.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def undo(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)


def instrument(timers: Timers) -> None:
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.task import Task
    from sqlalchemy.engine import Connection

    from engine import _spiff_private
    from engine.runtime import _write, queries, state, tokens
    from engine.runtime import engine as engine_mod
    from engine.runtime import pipeline as pipeline_mod
    from engine.store.database import Store

    Engine = engine_mod.Engine  # noqa: N806 - the class
    Pipeline = pipeline_mod.StepPipeline  # noqa: N806 - the class
    timers.wrap(Engine, "complete", "engine glue (outside every timed stage)")
    timers.wrap(Engine, "resolve", "resolve instance ref")
    # The pipeline's stages, by the names the pipeline module looks them up under.
    timers.wrap(Pipeline, "finish", "pipeline commit")
    timers.wrap(Pipeline, "_load", "pipeline load")
    timers.wrap(Pipeline, "recommend", "recommend content")
    timers.wrap(pipeline_mod, "event_rows", "event rows (build + hash chain)")
    timers.wrap(pipeline_mod, "progress", "waiting column (Waiting.to_dict + json)")
    for name in ("find_ready", "snapshot", "moves", "waits"):
        timers.wrap(tokens, name, f"tokens.{name}")
    timers.wrap(queries, "waits_of", "parse stored waits (json.loads + from_dict)")
    timers.wrap(queries, "to_instance", "result Instance (to_instance)")
    timers.wrap(pipeline_mod, "dump_state", "dump_state: Spiff convert")
    timers.wrap(pipeline_mod, "load_state", "load_state (cold)")
    # dump_state's json.dumps, apart from Spiff's conversion to dicts
    proxy = types.SimpleNamespace(**{k: getattr(json, k) for k in ("dumps", "loads")})
    timers.wrap(proxy, "dumps", "dump_state: json.dumps")
    for module in (state, _spiff_private):
        timers.swap(module, "json", proxy)
    timers.wrap(_write.StepWriter, "_sqlite", "SQL: step write (BEGIN .. COMMIT, raw sqlite3)")
    timers.wrap(_write.StepWriter, "_postgres", "SQL: step write (one statement, autocommit)")
    timers.wrap(Task, "run", "spiff task.run")
    timers.wrap(BpmnWorkflow, "do_engine_steps", "spiff do_engine_steps")
    timers.wrap(Connection, "execute",
                lambda caller: _SQL_BY_CALLER.get(caller or "", f"SQL: other ({caller})"))
    timers.wrap_context(Store, "write", "SQL: connect + BEGIN", "SQL: COMMIT + release connection")
    timers.wrap_context(Store, "read", "SQL: read txn connect + BEGIN",
                        "SQL: read txn end + release")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_steps",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--cold", action="store_true", help="hot_instances=0")
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    if args.db == "postgres" and (problem := postgres_problem()) is not None:
        print(f"PostgreSQL not reachable: {problem}", file=sys.stderr)
        return 1
    fx = Fixture()
    timers = Timers()
    instrument(timers)
    with tempfile.TemporaryDirectory(prefix="nextmove-prof-") as tmp, (
            scratch_postgres() if args.db == "postgres" else nullcontext()) as pg_url:
        url = pg_url or f"sqlite:///{Path(tmp) / 'profile.db'}"
        run = NextmoveRun(fx, url, not args.cold, "profile")

        def one_round(timed: bool) -> float:
            run.prepare(args.instances)
            timers.active = timed
            try:
                elapsed = sum(run.step_pass(step)[0] for step in fx.steps)
            finally:
                timers.active = False
            run.finish()
            return elapsed / (args.instances * len(fx.steps))

        try:
            one_round(False)  # warm-up
            plain = sorted(one_round(False) for _ in range(args.rounds))[args.rounds // 2]
            timers.totals.clear()
            timed = [one_round(True) for _ in range(args.rounds)]
        finally:
            run.close()
            timers.undo()

    steps = args.rounds * args.instances * len(fx.steps)
    total = sum(timers.totals.values()) / steps * 1e6
    kind = "cold" if args.cold else "hot"
    print(f"nextmove {args.db} {kind}: {plain * 1e6:,.0f} µs/step plain "
          f"({1 / plain:,.0f} steps/s); instrumented {sum(timed) / len(timed) * 1e6:,.0f} "
          f"µs/step, of which the stages below add up to {total:,.0f}")
    print(f"{'stage (exclusive time)':48} {'µs/step':>8} {'share':>6} {'calls/step':>10}")
    for label, spent in timers.totals.most_common():
        per_step = spent / steps * 1e6
        print(f"{_SHOWN_AS.get(label, label):48} {per_step:8.0f} {100 * per_step / total:5.1f}% "
              f"{timers.calls[label] / steps:10.1f}")
    if timers.missing:
        print(f"not timed (not found): {', '.join(timers.missing)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
