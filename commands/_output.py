"""Where the commands write: stdout for results, stderr for errors and progress."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from engine import Instance, Problem

# Both consoles look up sys.stdout / sys.stderr when they print, so CliRunner captures them.
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_problems(problems: Iterable[Problem], console: Console = err) -> None:
    for problem in problems:
        colour = "red" if problem.severity == "error" else "yellow"
        console.print(f"[{colour}]{problem.severity}[/{colour}] {escape(str(problem))}")


def progress(label: str, total: int, as_json: bool) -> tuple[Progress, Callable[[int], None]]:
    """A bar on stderr (none with --json) and the callback that moves it to `done`."""
    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, disable=as_json)
    task = bar.add_task(label, total=total)
    return bar, lambda done: bar.update(task, completed=done)


def emit_instance(instance: Instance, as_json: bool) -> None:
    if as_json:
        print_json(instance.to_dict())
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
