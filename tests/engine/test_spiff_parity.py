"""Differential test: every public BPMN file shipped in tests/fixtures (the corpora and our own
maps; not the hostile `attacks/`) run through SpiffWorkflow directly and through nextmove, the
same way (tests/engine/_parity.py): completed steps, their order by call, and the end state.

Each process SpiffWorkflow can build is one case:
* refused: nextmove's validation refuses the file; every refusal must have a reason in
  REFUSED_BECAUSE (script and service tasks stay refused by default, by design);
* identical: same completed steps (multiset), same steps per call, same end state;
* order-only: same completed steps and end state, split differently between calls;
* different: anything else.
Every case that is not identical is listed in KNOWN with why; an entry that no longer happens
fails too, so the list stays true.

Figures on the files shipped (2026-12), 156 cases: 61 identical, 6 order-only, 11 different
(all in KNOWN), 78 refused (52 of them for service tasks, 14 for script tasks). Processes
SpiffWorkflow itself cannot build (diagrams, broken files) are no case.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from engine import Engine, ManualClock, load
from nextmove import open_engine
from tests.conftest import FIXTURES
from tests.engine._parity import run_nextmove, run_spiff, spiff_parser

FILES = sorted([*(FIXTURES / "corpora" / "bpmn").rglob("*.bpmn"),
                *(p for p in (FIXTURES / "bpmn").rglob("*.bpmn") if "attacks" not in p.parts)])

_PLAIN_TASK = ("a plain bpmn:task is automatic in nextmove (as in Camunda); Spiff waits for "
               "someone to complete it, so the same steps happen over one call more")
_ABSENT_DATA = ("a condition reads data the prospect has not given: nextmove reads a declared "
                "(or, in a file that declares nothing, inferred) optional field as None "
                "(docs/data.md); Spiff's Python evaluation raises NameError")
_ISO_TIMER = ("the timer is written as plain ISO 8601 (as modelers write it): nextmove reads "
              "it; Spiff evaluates timer text as a Python expression and fails")

KNOWN: dict[str, tuple[str, str]] = {
    "bpmn/data/undeclared_typo.bpmn#undeclared_typo": ("different", _ABSENT_DATA),
    "bpmn/dialects/bpmnio_attributes.bpmn#journey_attrs": ("different", _ABSENT_DATA),
    "bpmn/dialects/camunda_modeler.bpmn#journey_camunda": ("different", _ABSENT_DATA),
    "bpmn/dialects/nextmove.bpmn#journey_nextmove": ("different", _ABSENT_DATA),
    "bpmn/dialects/spiffarena.bpmn#journey_spiff": ("different", _ABSENT_DATA),
    "bpmn/gateway.bpmn#prospect_qualify": ("different", _ABSENT_DATA),
    "bpmn/stalls/maybe_join.bpmn#maybe_join": ("different", _ABSENT_DATA),
    "corpora/bpmn/bpmn-engine/test/resources/multiple-multiple-inbound.bpmn#Process_1": (
        "different", "Camunda JUEL conditions (${...}): nextmove evaluates them, absent names "
        "reading None, Spiff cannot; with no data this map's loop never exits and nextmove "
        "stops it after its pass limit (issue 16's bounded work turns that into an incident)"),
    "bpmn/signals/signal_or_deadline.bpmn#signal_or_deadline": ("different", _ISO_TIMER),
    "corpora/bpmn/bpmn-engine/test/resources/timer-event.bpmn#timerProcess": (
        "different", _ISO_TIMER),
    "corpora/bpmn/bpmn-engine/test/resources/timers.bpmn#Process_0cn5rdh": (
        "different", _ISO_TIMER),
    "corpora/bpmn/bpmn-engine/test/resources/issue-139.bpmn#Process_1": (
        "order-only", _PLAIN_TASK),
    "corpora/bpmn/camunda-modeler/client/src/app/tabs/__tests__/"
    "EngineProfile.namespace.cloud.bpmn#Process_0pu0ecp": ("order-only", _PLAIN_TASK),
    "corpora/bpmn/camunda-modeler/client/src/app/tabs/__tests__/"
    "EngineProfile.namespace.platform.bpmn#Process_0n57cbs": ("order-only", _PLAIN_TASK),
    "corpora/bpmn/miwg-AB/bpmn-io-camunda-modeler-18.6.1/A.4.0-export.bpmn#Process_0elb8rq": (
        "order-only", _PLAIN_TASK),
    "corpora/bpmn/miwg-AB/bpmn-io-camunda-modeler-18.6.1/A.4.1-export.bpmn#Process_0h42ymn": (
        "order-only", _PLAIN_TASK),
    "corpora/bpmn/miwg-AB/trisotech-12.6.3/A.1.0-export.bpmn"
    "#_f84fc97e-bd44-4222-8f8b-6a0a286d6705": ("order-only", _PLAIN_TASK),
}

# Why nextmove refuses a file SpiffWorkflow would run: each problem must match one of these.
REFUSED_BECAUSE: dict[str, str] = {
    r"service tasks call external code": "service tasks stay refused by default, by design",
    r"script tasks run designer code": "script tasks stay refused by default, by design",
    r"no default flow, and its conditions can all be false":
        "a gateway whose conditions the declared data does not prove exhaustive would fail "
        "at run time in Spiff too (a miss); nextmove refuses it before deploy",
    r"can wait forever": "a join that can stall is refused before deploy (Spiff would leave "
                         "the instance active with nothing waiting)",
    r"which no loaded file defines|marked not executable":
        "a call activity whose process is not in the file (Spiff resolves it only when run)",
    r"cannot be reached from the start|cannot reach an end":
        "a step no run can reach, or a loop with no way out",
    r"timer .* (cannot be scheduled|is neither ISO 8601 nor a safe expression)":
        "a timer nextmove cannot schedule (a cron expression, a duration given as a date)",
    r"unsupported conditional event": "conditional events are not supported",
    r"reads .*which the map does not declare": "a condition reads undeclared data",
    r"is not allowed": "an expression outside nextmove's safe subset (method calls, dunders)",
    r"has \d+ outgoing flows": "an implicit split out of a task; nextmove asks for a gateway",
    r"message event without a message": "a message catch that names no message",
    r"event subprocess started by a (message|signal)":
        "prospect events and signals reach only steps that wait; an event subprocess's start "
        "never waits, so nextmove would never start it (Spiff does)",
}


@dataclass(frozen=True)
class Case:
    key: str
    category: str  # identical | order-only | different | refused
    detail: str


def _cases(engine: Engine) -> Iterator[Case]:
    for path in FILES:
        try:
            parser = spiff_parser(path)
            process_ids = parser.get_process_ids()
        except Exception:  # Spiff cannot read the file: no case
            continue
        report = None
        for process_id in process_ids:
            try:
                parser.get_spec(process_id)
            except Exception:  # Spiff cannot build this process
                continue
            key = f"{path.relative_to(FIXTURES).as_posix()}#{process_id}"
            report = report or load([path])
            if report.errors or process_id not in {d.process_id for d in report.definitions}:
                yield Case(key, "refused", "\n".join(p.message for p in report.errors))
                continue
            spiff = run_spiff(parser, process_id)
            engine.deploy([path])
            ours = run_nextmove(engine, process_id, key)
            if spiff.end() != ours.end():
                yield Case(key, "different", f"Spiff {spiff}\nnextmove {ours}")
            elif spiff.per_call != ours.per_call:
                yield Case(key, "order-only", f"Spiff {spiff.per_call}\nnextmove {ours.per_call}")
            else:
                yield Case(key, "identical", "")


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    path = tmp_path_factory.mktemp("parity") / "parity.db"
    clock = ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
    engine = open_engine(f"sqlite:///{path}", clock=clock, recommend=False)
    try:
        return list(_cases(engine))
    finally:
        engine.store.dispose()


def test_every_case_runs_as_in_spiff_or_is_a_known_justified_difference(
    cases: list[Case]
) -> None:
    unexplained = [f"{c.category}: {c.key}\n{c.detail}" for c in cases
                   if c.category in ("different", "order-only")
                   and KNOWN.get(c.key, ("",))[0] != c.category]
    assert unexplained == [], "\n\n".join(unexplained)


def test_every_known_difference_still_happens(cases: list[Case]) -> None:
    seen = {c.key: c.category for c in cases}
    stale = {k: v[0] for k, v in KNOWN.items() if seen.get(k) != v[0]}
    assert stale == {}, f"no longer as listed (now: {[seen.get(k) for k in stale]})"


def test_every_refusal_has_a_justified_reason(cases: list[Case]) -> None:
    unjustified = [
        f"{c.key}: {problem}" for c in cases if c.category == "refused"
        for problem in c.detail.splitlines()
        if not any(re.search(pattern, problem) for pattern in REFUSED_BECAUSE)]
    assert unjustified == [], "\n".join(unjustified)


def test_the_figures(cases: list[Case]) -> None:
    figures = Counter(c.category for c in cases)
    # Most cases run the same; the multi-instance, signal and multi-message maps among them.
    assert figures["identical"] >= 60
    assert figures["different"] + figures["order-only"] == len(KNOWN)
    identical = {c.key for c in cases if c.category == "identical"}
    for ours in ("bpmn/multi_instance/parallel_cardinality.bpmn#mi_parallel_cardinality",
                 "bpmn/multi_instance/sequential_cardinality.bpmn#mi_sequential_cardinality",
                 "bpmn/signals/signal_catch.bpmn#price_watch",
                 "bpmn/signals/signal_throw_catch.bpmn#handoff",
                 "bpmn/signals/message_start_multiple.bpmn#two_doors",
                 "bpmn/signals/message_starts.bpmn#many_doors"):
        assert ours in identical, ours
