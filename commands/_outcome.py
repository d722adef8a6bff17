"""What counts as success for the learner's commands: --outcome, else the map's own
definition (its converting outcomes, `analytics.measures`), so the demo, the report and the
learner read one number."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import NextmoveError

if TYPE_CHECKING:
    from engine import Store


def resolve_outcome(store: Store, process: str, outcome: str | None) -> str:
    """--outcome, else the outcomes `process`'s map declares as converting, "+"-joined (what
    the demo, funnel and report count). A process never deployed or imported is refused by
    name (with the nearest one), not as a map that declares nothing; a given outcome is
    checked, with its process, by the learner's readers (`check_outcome`)."""
    if outcome:
        return outcome
    import analytics
    from engine.store.steplog import check_process

    check_process(store, process)

    declared = analytics.measures(store, process)
    if declared.declared and declared.converting:
        return "+".join(declared.converting)
    raise NextmoveError(f"the map of {process!r} declares no converting outcomes: give "
                        "--outcome (e.g. sale or customer_order)")
