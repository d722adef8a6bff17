"""A hot step serializes only the tasks that changed (`state.dump_state` with fragments): the
document it stores is, byte for byte, the one a full serialization of the same workflow
writes, on every map in processes/ and the corpora, step after step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from SpiffWorkflow.util.task import TaskState

from engine import ManualClock, NextmoveError
from engine.runtime.queries import INSTANCE
from engine.runtime.state import _AROUND as AROUND
from engine.runtime.state import _BY_LAST as BY_LAST
from engine.runtime.state import Fragments, dump_state
from nextmove import open_engine
from tests.engine.test_fast_starts import CONTEXTS, MAPS
from tests.engine.test_state import new_workflow

DATA = [{"answer": "yes", "n": 2}, {"nested": {"a": [1, "b"]}}, {}]


def stored_state(engine: Any, instance_id: int) -> str:
    with engine.store.read() as conn:
        return str(conn.execute(INSTANCE.select().where(INSTANCE.c.id == instance_id))
                   .mappings().one()["state"])


def test_stored_state_is_the_full_serialization_on_every_map(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    engine = open_engine(f"sqlite:///{tmp_path / 'f.db'}", clock=clock, recommend=False)
    compared = reused = 0
    try:
        for path in MAPS:
            try:
                deployed = engine.deploy([path])
            except NextmoveError:
                continue
            for definition in deployed:
                for k, context in enumerate(CONTEXTS):
                    try:
                        instance = engine.start(definition.process_id, f"{path.stem}-{k}",
                                                "d1", context, new=True)
                    except NextmoveError:
                        continue
                    for n in range(12):
                        before = engine.pipeline._hot.get(instance.id)
                        user = [w.step_id for w in instance.waiting if w.kind == "user"]
                        try:
                            if user:
                                instance = engine.complete(instance.id, user[0],
                                                           DATA[n % len(DATA)])
                            elif instance.active and instance.next_due_at is not None:
                                clock.advance(instance.next_due_at - clock.now()
                                              + timedelta(seconds=1))
                                engine.tick()
                                instance = engine.get(instance.id)
                            else:
                                break
                        except NextmoveError:
                            break
                        after = engine.pipeline._hot.get(instance.id)
                        if before is not None and (
                                (after is not None and after.workflow is before.workflow)
                                or (after is None and user
                                                    and instance.status == "completed")):
                            # the step ran on the kept workflow: it wrote from its fragments
                            assert stored_state(engine, instance.id) == dump_state(
                                before.workflow), (path, definition.process_id, n)
                            compared += 1
                            reused += len(before.fragments)
    finally:
        engine.store.dispose()
    assert compared > 100
    assert reused > compared  # fragments were kept and offered for reuse


def dumped_alike(workflow: Any, fragments: Fragments) -> bool:
    return dump_state(workflow, fragments) == dump_state(workflow)


def test_a_value_changed_in_place_is_serialized_again() -> None:
    workflow = new_workflow()
    fragments: Fragments = {}
    root = workflow.task_tree
    root.data["nested"] = {"a": 1}
    assert dumped_alike(workflow, fragments)
    root.data["nested"]["a"] = 2  # no state change: only the value tells
    assert dumped_alike(workflow, fragments)
    root.data["flat"] = "x"
    assert dumped_alike(workflow, fragments)
    root.data["flat"] = "y"  # same keys, same length
    assert dumped_alike(workflow, fragments)
    task = workflow.get_next_task(state=TaskState.READY, manual=True)
    task.internal_data["seen"] = True
    assert dumped_alike(workflow, fragments)
    task.run()
    workflow.do_engine_steps()
    assert dumped_alike(workflow, fragments)
    assert fragments  # flat tasks were kept


def test_fragments_of_tasks_that_are_gone_are_dropped() -> None:
    workflow = new_workflow()
    fragments: Fragments = {}
    dump_state(workflow, fragments)
    # and the text around the tasks, whole and cut where the last task's id goes
    assert fragments.keys() - workflow.tasks.keys() == {AROUND, BY_LAST}
    gone = next(iter(workflow.tasks))
    workflow.tasks = {k: v for k, v in workflow.tasks.items() if k != gone}
    dump_state(workflow, fragments)
    assert gone not in fragments


def test_a_step_that_moves_only_the_last_task_writes_only_its_id() -> None:
    """Step by step to the end, the text around the tasks comes from the cut copy whenever
    only the last task moved, and the document is always a full dump's."""
    workflow = new_workflow()
    fragments: Fragments = {}
    assert dumped_alike(workflow, fragments)
    spliced = 0
    while (task := workflow.get_next_task(state=TaskState.READY, manual=True)) is not None:
        cut = fragments[BY_LAST]
        task.run()
        workflow.do_engine_steps()
        before = dict(fragments)
        assert dumped_alike(workflow, fragments)
        if fragments[BY_LAST] is cut and before[AROUND] is not fragments[AROUND]:
            spliced += 1
    assert workflow.completed
    assert spliced >= 3
    workflow.data["flat"] = "changed"  # workflow data: everything is written again
    cut = fragments[BY_LAST]
    assert dumped_alike(workflow, fragments)
    assert fragments[BY_LAST] is not cut


def test_a_loaded_workflow_keeps_the_documents_task_texts_on_every_map() -> None:
    """`load_state(fragments=...)` fills the fragments from the document it reads: dumping the
    loaded workflow gives that document back, and after a step the same as a full dump."""
    from SpiffWorkflow.bpmn import BpmnWorkflow

    from engine import load_definitions
    from engine.definitions import build_spec
    from engine.runtime._scripting import ClockedScriptEngine
    from engine.runtime.state import load_state

    engine = ClockedScriptEngine(ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)))
    compared = kept = 0
    for path in MAPS:
        try:
            definitions = load_definitions([path])
        except NextmoveError:
            continue
        for definition in definitions:
            spec, subprocess_specs = build_spec(definition.process_id, definition.documents)
            for context in CONTEXTS:
                workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=engine)
                workflow.task_tree.data.update(context)
                try:
                    for n in range(8):
                        workflow.do_engine_steps()
                        text = dump_state(workflow)
                        fragments: Fragments = {}
                        loaded = load_state(text, spec, subprocess_specs, shared_ids=True,
                                            fragments=fragments)
                        loaded.script_engine = engine
                        kept += len(fragments)
                        assert dump_state(loaded, fragments) == text, (path, n)
                        ready = loaded.get_next_task(state=TaskState.READY, manual=True)
                        if ready is None:
                            break
                        ready.data.update(DATA[n % len(DATA)])
                        ready.run()
                        loaded.do_engine_steps()
                        assert dump_state(loaded, fragments) == dump_state(loaded), (path, n)
                        compared += 1
                        workflow = loaded
                except (AssertionError, KeyboardInterrupt):
                    raise
                except Exception:  # a map Spiff cannot run this way: nothing more to compare
                    continue
    assert compared > 80 and kept > 10 * compared, (compared, kept)


def test_an_older_document_fills_no_fragments() -> None:
    """A document of another Spiff version is not what this one writes: no text is kept."""
    import json

    from engine.runtime.state import load_state
    from tests.engine.test_state import LINEAR, specs

    spec, subprocess_specs = specs(LINEAR)
    doc = json.loads(dump_state(new_workflow()))
    fragments: Fragments = {}
    load_state(json.dumps(doc), spec, subprocess_specs, fragments=fragments)
    assert fragments
    doc["spiff"] = "0.0"
    fragments = {}
    try:
        load_state(json.dumps(doc), spec, subprocess_specs, fragments=fragments)
    except Exception:  # no migration from such a version: what matters is what was kept
        pass
    assert not fragments


def test_what_the_document_holds_around_its_tasks_is_written_again_when_it_changes() -> None:
    workflow = new_workflow()
    fragments: Fragments = {}
    assert dumped_alike(workflow, fragments)
    workflow.data["flat"] = "x"  # workflow data, not a task's
    assert dumped_alike(workflow, fragments)
    workflow.data["flat"] = "y"
    assert dumped_alike(workflow, fragments)
    workflow.data["nested"] = {"a": 1}
    assert dumped_alike(workflow, fragments)
    workflow.data["nested"]["a"] = 2  # in place: only the value tells
    assert dumped_alike(workflow, fragments)
    del workflow.data["nested"]
    workflow.correlations["c"] = {"k": 1}
    assert dumped_alike(workflow, fragments)
    workflow.correlations.clear()
    while (task := workflow.get_next_task(state=TaskState.READY, manual=True)) is not None:
        task.run()  # last_task, then completed and success change
        workflow.do_engine_steps()
        assert dumped_alike(workflow, fragments)
    assert workflow.completed
    assert dumped_alike(workflow, fragments)
