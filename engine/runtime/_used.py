"""The content a person says they used must be content their step offers."""

from __future__ import annotations

from collections.abc import Sequence

from engine.errors import UnknownContent
from engine.recommend import Recommender
from engine.runtime.waiting import Waiting


def check_used(step: str, used: str, waits: Sequence[Waiting],
               recommender: Recommender | None) -> None:
    """Refuse `used` unless it names an option of the step's hook: one the card ranked, or any
    the served catalog has for the hook (the person may pick another than the card's). Checked
    before the step runs, so nothing is written. With no recommender there is nothing to judge
    by; a step that does not wait here is left to the step itself to refuse."""
    if recommender is None:
        return
    wait = next((w for w in waits if w.step_id == step and w.kind == "user"), None)
    if wait is None:
        return
    if wait.hook is None:
        raise UnknownContent(step, used, None)
    offered = [r["option_id"] for r in (wait.recommendation or {}).get("ranked", ())]
    catalog = getattr(recommender, "catalog", None)
    if catalog is not None:
        offered += [option.id for option in catalog.options_for(wait.hook)]
    if used not in offered:
        raise UnknownContent(step, used, wait.hook, offered)
