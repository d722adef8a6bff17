"""Format parity: every YAML map and the BPMN `nextmove export` makes of it are one journey.

For each map in the repository the YAML is deployed into one engine and its exported BPMN into
another (two SQLite files, one fixed start time). A deterministic driver then plays the same
inputs on both: it completes the first waiting person's step (feeding the map's declared `data`
choices, one choice per run so every decision branch is taken), delivers the prospect events
waited for, and moves the clock to the next due timer. Both engines must produce the same step
events, waits, cards and final status at every point.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine import Engine, Instance, ManualClock, ProspectRef, load
from engine.definitions.compile import export_bpmn
from engine.definitions.model import ProcessMap
from engine.definitions.yaml_maps import YamlMap, load_yaml_map
from engine.errors import DefinitionError
from nextmove import open_store

REPO = Path(__file__).resolve().parents[2]
FIXTURE_YAML = REPO / "tests" / "fixtures" / "yaml"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PROSPECT, DISTRIBUTOR, SPONSOR = "p1", "d1", "s1"
MAX_ACTIONS = 60
SECOND = timedelta(seconds=1)


def _is_catalog(path: Path) -> bool:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return isinstance(data, dict) and "catalog" in data


def _loads(path: Path) -> bool:
    try:
        load_yaml_map(path)
    except DefinitionError:
        return False
    return True


# Maps under processes/ are collected whether or not they load (a broken one must fail here);
# test fixtures only when they load: some are broken on purpose.
PROCESS_MAPS = sorted(
    p for p in (REPO / "processes").rglob("*")
    if p.suffix in (".yaml", ".yml") and not _is_catalog(p))
FIXTURE_MAPS = sorted(p for p in FIXTURE_YAML.glob("*.yaml") if _loads(p))
MAPS = PROCESS_MAPS + FIXTURE_MAPS


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


@functools.cache
def _map(path: Path) -> YamlMap | None:
    try:
        return load_yaml_map(path)
    except DefinitionError:
        return None


def _choices(m: YamlMap | None) -> dict[str, tuple[Any, ...]]:
    """Data keys with declared values (`interest: [customer, ...]`), map and step level."""
    found: dict[str, tuple[Any, ...]] = {}
    if m is None:
        return found
    for key, values in [*m.data, *(d for s in m.all_steps() for d in s.data)]:
        if isinstance(values, tuple):
            found.setdefault(key, values)
    return found


def _counted(m: YamlMap | None) -> tuple[str, ...]:
    """Data keys declared with a description only (`reminders: number of ...`): the driver
    feeds them how many person's steps it has completed so far."""
    if m is None:
        return ()
    keys = [k for k, v in [*m.data, *(d for s in m.all_steps() for d in s.data)]
            if not isinstance(v, tuple)]
    return tuple(dict.fromkeys(keys))


def _runs(path: Path) -> list[dict[str, Any]]:
    choices = _choices(_map(path))
    keys = sorted(choices)
    return [dict(zip(keys, combo, strict=True))
            for combo in itertools.product(*(choices[k] for k in keys))]


def _strategies(path: Path) -> tuple[str, ...]:
    """Waiting for timers first only changes anything in a map that has timers."""
    m = _map(path)
    timed = m is None or any(s.stuck_after or s.expires_after or any(t.after for t in s.wait)
                             for s in m.all_steps())
    return ("eager", "patient") if timed else ("eager",)


CASES = [
    pytest.param(path, choice, strategy,
                 id=f"{_rel(path)}-{'-'.join(map(str, choice.values())) or 'no-data'}-{strategy}")
    for path in MAPS for choice in _runs(path) for strategy in _strategies(path)
]


def _dependencies(path: Path) -> list[Path]:
    """The map and the maps it calls (found among all maps by process id), recursively."""
    by_process = {m.process: p for p in MAPS if (m := _map(p)) is not None}
    out, todo = [path], [path]
    while todo:
        m = _map(todo.pop())
        for step in m.all_steps() if m else ():
            if step.call is None:
                continue
            assert step.call in by_process, f"{path} calls unknown process {step.call!r}"
            if by_process[step.call] not in out:
                out.append(by_process[step.call])
                todo.append(by_process[step.call])
    return out


def _export(paths: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(exist_ok=True)
    out = []
    for path in paths:
        target = folder / f"{path.stem}.bpmn"
        compiled = export_bpmn(path, target)
        assert target.read_bytes() == compiled.xml
        assert target.read_bytes().lstrip().startswith(b"<?xml")
        out.append(target)
    return out


@dataclass(frozen=True)
class Point:
    """What an engine showed after one input: the input, the step events it produced, where
    the instance waits (offsets from the start time), the cards it put up, its status."""

    action: tuple[Any, ...]
    events: tuple[tuple[str, str], ...]
    waits: tuple[tuple[Any, ...], ...]
    cards: tuple[tuple[Any, ...], ...]
    status: str


def _offset(moment: datetime | None) -> timedelta | None:
    return moment - T0 if moment is not None else None


def _snapshot(
    engine: Engine, action: tuple[Any, ...], seen: int
) -> tuple[Point, int, Instance]:
    instance = engine.get(ProspectRef(PROSPECT))
    history = engine.history(instance.id)
    waits = sorted(
        (w.step_id, w.kind, w.name, w.hook, w.role, w.control, w.message, _offset(w.due_at),
         _offset(w.since), w.attached_to)
        for w in instance.waiting)
    cards = sorted(
        (owner, c.step_id, c.role, c.control, c.guidance, c.basis, c.hook, repr(c.asks),
         c.waiting_for, _offset(c.follow_up_at))
        for owner in (DISTRIBUTOR, SPONSOR) for c in engine.cards(owner))
    point = Point(action, tuple((e.step_id, e.kind) for e in history[seen:]), tuple(waits),
                  tuple(cards), instance.status)
    return point, len(history), instance


def drive(
    paths: list[Path], process: str, db: Path, choice: Mapping[str, Any], strategy: str,
    counted: tuple[str, ...],
) -> list[Point]:
    """Run one instance of `process` to its end with scripted inputs; return what it showed.

    eager: a person's step first (sorted by id), else a prospect event, else the next timer.
    patient: the next timer first, so stuck, expiry and follow-up timers fire too.
    """
    clock = ManualClock(T0)
    engine = Engine(open_store(f"sqlite:///{db}"), clock=clock)
    try:
        engine.deploy(paths)
        engine.start(process, PROSPECT, DISTRIBUTOR, {"sponsor_id": SPONSOR})
        point, seen, instance = _snapshot(engine, ("start",), 0)
        trace = [point]
        done = 0
        for n in range(MAX_ACTIONS):
            if point.status != "active":
                return trace
            users = sorted(w.step_id for w in instance.waiting if w.kind == "user")
            messages = sorted(w.message for w in instance.waiting
                              if w.kind == "message" and w.message)
            dues = sorted(w.due_at for w in instance.waiting if w.due_at is not None)
            if dues and (strategy == "patient" or not (users or messages)):
                if dues[0] - SECOND >= clock.now():
                    clock.set(dues[0] - SECOND)
                    assert engine.tick() == [], f"a timer fired before {dues[0]}"
                clock.set(dues[0])
                fired = engine.tick()
                assert fired, f"nothing fired at {dues[0]} although a timer was due then"
                action: tuple[Any, ...] = (
                    "tick", dues[0] - T0, tuple(sorted((f.step_id, f.kind) for f in fired)))
            elif users:
                done += 1
                data = {**choice, **dict.fromkeys(counted, done)}
                engine.complete(ProspectRef(PROSPECT), users[0], data, actor=DISTRIBUTOR)
                action = ("complete", users[0], tuple(sorted(data.items())))
            elif messages:
                result = engine.signal(messages[0], PROSPECT, message_id=f"msg-{n}")
                assert len(result.delivered) == 1, result
                action = ("signal", messages[0],
                          tuple((f.step_id, f.kind) for f in result.fired))
            else:
                pytest.fail(f"{process} is active but waits on nothing: {point}")
            point, seen, instance = _snapshot(engine, action, seen)
            trace.append(point)
        pytest.fail(f"{process} did not finish within {MAX_ACTIONS} inputs")
    finally:
        engine.store.dispose()


# The YAML side of each parity run, kept so the branch test need not replay it (it replays
# whatever is missing, so it passes or fails the same when run alone).
_YAML_TRACES: dict[tuple[Path, str, str], list[Point]] = {}


def yaml_trace(path: Path, choice: Mapping[str, Any], strategy: str, db: Path) -> list[Point]:
    key = (path, repr(sorted(choice.items())), strategy)
    if key not in _YAML_TRACES:
        m = load_yaml_map(path)
        _YAML_TRACES[key] = drive(_dependencies(path), m.process, db, choice, strategy,
                                  _counted(m))
    return _YAML_TRACES[key]


def test_every_map_in_the_repository_is_covered() -> None:
    names = {_rel(p) for p in MAPS}
    assert "processes/lifevantage/prospect_journey.yaml" in names
    assert {"all_kinds.yaml", "loop.yaml", "linear.yaml", "helper_process.yaml",
            "distributor_onboarding.yaml"} <= {p.name for p in FIXTURE_MAPS}
    # catalogs and maps broken on purpose are not journeys to run
    assert "processes/lifevantage/catalog.yaml" not in names
    assert "tests/fixtures/yaml/many_problems.yaml" not in names
    # every decision branch is a run of its own
    assert [c["interest"] for c in _runs(REPO / "processes/lifevantage/prospect_journey.yaml")] \
        == ["customer", "distributor", "not_now"]


@pytest.mark.parametrize(("path", "choice", "strategy"), CASES)
def test_yaml_and_exported_bpmn_run_the_same_journey(
    path: Path, choice: dict[str, Any], strategy: str, tmp_path: Path
) -> None:
    m = load_yaml_map(path)
    sources = _dependencies(path)
    exported = _export(sources, tmp_path / "bpmn")
    counted = _counted(m)

    from_yaml = yaml_trace(path, choice, strategy, tmp_path / "yaml.db")
    from_bpmn = drive(exported, m.process, tmp_path / "bpmn.db", choice, strategy, counted)

    for n, (a, b) in enumerate(zip(from_yaml, from_bpmn, strict=False)):
        assert a.action == b.action, f"input {n}"
        assert a.events == b.events, f"step events after input {n}: {a.action}"
        assert a.waits == b.waits, f"waits after input {n}: {a.action}"
        assert a.cards == b.cards, f"cards after input {n}: {a.action}"
        assert a.status == b.status, f"status after input {n}: {a.action}"
    assert len(from_yaml) == len(from_bpmn)
    assert from_yaml[-1].status == from_bpmn[-1].status == "completed"
    assert from_yaml[-1].waits == from_yaml[-1].cards == ()
    assert any(p.action[0] == "complete" for p in from_yaml)  # a person's step was played


def _definition_map(paths: list[Path], process: str, fmt: str) -> ProcessMap:
    report = load(paths)
    assert report.ok, report.errors
    (definition,) = [d for d in report.definitions if d.process_id == process]
    assert definition.source_format == fmt
    return definition.map


@pytest.mark.parametrize("path", MAPS, ids=_rel)
def test_yaml_and_exported_bpmn_load_to_the_same_steps(path: Path, tmp_path: Path) -> None:
    m = load_yaml_map(path)
    sources = _dependencies(path)
    exported = _export(sources, tmp_path / "bpmn")

    from_yaml = _definition_map(sources, m.process, "yaml")
    from_bpmn = _definition_map(exported, m.process, "bpmn")

    def steps(pmap: ProcessMap) -> dict[str, dict[str, object]]:
        return {s.id: {**s.to_dict(), "hook": s.hook, "card": s.card, "control": s.control,
                       "basis": s.basis, "role": s.role, "process": s.process}
                for s in pmap.all_steps()}

    def flows(pmap: ProcessMap) -> set[tuple[Any, ...]]:
        return {(f.id, f.source, f.target, f.condition, f.name)
                for sub in _all_maps(pmap) for f in sub.flows}

    assert steps(from_bpmn) == steps(from_yaml)
    assert flows(from_bpmn) == flows(from_yaml)
    # and both say what the YAML says, step by step
    bpmn_steps = {s.id: s for s in from_bpmn.all_steps()}
    for step in m.all_steps():
        assert step.id in bpmn_steps, f"{step.id} is missing from the exported BPMN"
        found = bpmn_steps[step.id]
        assert (found.hook, found.card, found.basis) == (step.hook, step.card, step.basis), step.id
        if step.kind == "task":
            assert (found.type, found.control, found.role) == ("userTask", step.control,
                                                               step.role), step.id


def _all_maps(pmap: ProcessMap) -> list[ProcessMap]:
    return [pmap, *(m for sub in pmap.subprocesses for m in _all_maps(sub))]


def _entered(trace: list[Point]) -> frozenset[str]:
    return frozenset(step for p in trace for step, kind in p.events if kind == "entered")


@pytest.mark.parametrize("path", [p for p in MAPS if len(_runs(p)) > 1], ids=_rel)
def test_each_data_choice_takes_a_branch_of_its_own(path: Path, tmp_path: Path) -> None:
    visited: dict[str, frozenset[str]] = {}
    for n, choice in enumerate(_runs(path)):
        trace = yaml_trace(path, choice, "eager", tmp_path / f"run{n}.db")
        assert trace[-1].status == "completed"
        visited[repr(choice)] = _entered(trace)
    assert len(set(visited.values())) == len(visited), visited
