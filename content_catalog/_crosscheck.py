"""Checking a catalog against the process maps that use it."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from content_catalog._model import Catalog
from engine.errors import Problem, did_you_mean


def cross_check(
    catalog: Catalog, hooks_used: Mapping[str, Sequence[tuple[str, str, int | None]]],
    map_steps: Mapping[str, Collection[str]] | None = None,
) -> list[Problem]:
    """Hooks the maps use that no item fills (errors), catalog hooks no map uses (warnings),
    and, given `map_steps` (per map file, its step and event ids), `learn_from` steps that no
    map using the hook has (errors).

    `hooks_used` maps a hook name to the places maps use it: (file, step id, line). There is one
    error per place, pointing at the step, with the nearest catalog hook as suggestion; and one
    warning per unused catalog hook, pointing at the first item that fills it.
    """
    problems: list[Problem] = []
    for hook in sorted(hooks_used):
        if hook in catalog.hooks:
            continue
        hint = did_you_mean(hook, catalog.hooks)
        message = f"hook {hook!r} is filled by no item of catalog {catalog.name!r}"
        places = sorted(hooks_used[hook], key=lambda p: (p[0], p[2] or 0, p[1]))
        if not places:
            problems.append(Problem(message, None, None, None, hint, code="unknown-hook"))
        for file, step, line in places:
            problems.append(Problem(message, file, line, step, hint, code="unknown-hook"))
    for hook in sorted(catalog.hooks - set(hooks_used)):
        index, item = next((i, it) for i, it in enumerate(catalog.items) if hook in it.hooks)
        element = f"items[{index}].hooks[{item.hooks.index(hook)}]"
        message = f"hook {hook!r} (filled by item {item.id!r}) is used by no process map"
        problems.append(Problem(message, catalog.file, item.line, element,
                                code="unused-hook", severity="warning"))
    for reward in catalog.learn_from if map_steps is not None else ():
        files = sorted({file for file, _, _ in hooks_used.get(reward.hook, ())})
        known = {s for f in files for s in map_steps.get(f, ())} if map_steps else set()
        if files and reward.step not in known:
            message = (f"learn_from: hook {reward.hook!r} learns from {reward.step!r}, a step "
                       f"no map using it has ({', '.join(files)})")
            problems.append(Problem(message, catalog.file, reward.line,
                                    f"learn_from.{reward.hook}", did_you_mean(reward.step, known),
                                    code="unknown-step"))
    return problems
