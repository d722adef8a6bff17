"""Where the commands write: stdout for results, stderr for errors and progress.

`print_json` is the --json contract (docs/json.md): one object, `schema_version` first, and
ids always named `<thing>_id` (`prospect_id`, `instance_id`, `distributor_id`, ...), whatever
name the layer below gives them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from rich.progress import Progress

    from engine import Instance, Problem

# Both consoles look up sys.stdout / sys.stderr when they print, so CliRunner captures them.
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


SCHEMA_VERSION = 1
"""The version of every --json output's shape; raised when a key is renamed or removed."""

# Bare names some layers use for an id; the contract says `<thing>_id`.
_BARE_IDS = {"process": "process_id", "prospect": "prospect_id",
             "distributor": "distributor_id", "instance": "instance_id", "step": "step_id",
             "rule": "rule_id", "finding": "finding_id"}
# Objects whose keys are data (a prospect's context, step data, per-step figures), not ours.
_FREE_FORM = frozenset({"context", "data", "heat", "limits_hours", "per_week", "counts",
                        "outcomes", "contributions", "properties"})


def contract(value: Any) -> Any:
    """`value` with every bare id key (`prospect`, ...) named `<thing>_id`, at any depth
    except inside free-form objects."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _FREE_FORM:
                out[key] = item
                continue
            name = _BARE_IDS[key] if key in _BARE_IDS else str(key)
            if isinstance(item, Mapping | list | tuple) or name in value:
                name = key
            out[name] = contract(item)
        return out
    if isinstance(value, list | tuple):
        return [contract(item) for item in value]
    return value


def own_id(record: Mapping[str, Any], name: str) -> dict[str, Any]:
    """`record` with its own `id` named `name` (an instance's `id` is `instance_id`)."""
    return {(name if key == "id" else key): value for key, value in record.items()}


def json_text(data: Mapping[str, Any]) -> str:
    """One --json result: an object with `schema_version` first (lists go under a named key:
    `{"cards": [...]}`), ids named by `contract`; indented, with a final newline."""
    body = {"schema_version": SCHEMA_VERSION, **contract(data)}
    return json.dumps(body, indent=2, default=str, ensure_ascii=False) + "\n"


def print_json(data: Mapping[str, Any]) -> None:
    sys.stdout.write(json_text(data))


def print_json_line(data: Mapping[str, Any]) -> None:
    """One object of a stream (`worker --json`): compact, on one line, flushed."""
    body = {"schema_version": SCHEMA_VERSION, **contract(data)}
    sys.stdout.write(json.dumps(body, default=str) + "\n")
    sys.stdout.flush()


def instance_json(instance: Instance) -> dict[str, Any]:
    return own_id(instance.to_dict(), "instance_id")


def print_problems(problems: Iterable[Problem], console: Console = err) -> None:
    for problem in problems:
        colour = "red" if problem.severity == "error" else "yellow"
        console.print(f"[{colour}]{problem.severity}[/{colour}] {escape(str(problem))}")


def progress(label: str, total: int, as_json: bool) -> tuple[Progress, Callable[[int], None]]:
    """A bar on stderr (none with --json) and the callback that moves it to `done`."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, disable=as_json)
    task = bar.add_task(label, total=total)
    return bar, lambda done: bar.update(task, completed=done)


def emit_instance(instance: Instance, as_json: bool) -> None:
    if as_json:
        print_json(instance_json(instance))
    else:
        print_instance(instance)


def print_instance(instance: Instance) -> None:
    out.print(f"instance {instance.id}  {instance.process_id} v{instance.definition_version}  "
              f"prospect {instance.prospect_id}  distributor {instance.distributor_id}  "
              f"[{instance.status}]", markup=False)
    for wait in instance.waiting:
        extra = ""
        if wait.hook:
            extra += f"  hook={wait.hook}"
        if wait.due_at:
            extra += f"  due {wait.due_at:%Y-%m-%d %H:%M}"
        if wait.message:
            extra += f"  message={wait.message}"
        if wait.signal:
            extra += f"  signal={wait.signal}"
        out.print(f"  waiting: {wait.step_id} ({wait.name}) [{wait.kind}]{extra}", markup=False)
