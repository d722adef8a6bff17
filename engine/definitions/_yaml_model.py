"""The loaded form of a YAML process map: frozen dataclasses shared by the reader
(`yaml_maps`), its journey checks (`_yaml_checks`) and the compiler (`compile`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engine.definitions.data import DataDeclaration, fields_from, merge
from engine.definitions.outcomes import Measures
from engine.errors import Problem

END = "end"  # `next: end` finishes the journey (or the group) at that point
HOSTS = frozenset({"task", "auto", "call", "group"})  # kinds a stuck/expiry timer attaches to
Scalar = str | int | float | bool
# a declared field as written: allowed values, a type name or description, or a full mapping
FieldSpec = str | tuple[Scalar, ...] | dict[str, Any]


@dataclass(frozen=True)
class Trigger:
    """One way a `wait` step can end: a prospect event (`message`) or a delay (`after`)."""

    message: str | None
    after: str | None
    next: str | None  # as written; None means the step's own successor
    path: str
    line: int | None
    ttl: str | None = None  # how long an early `message` is held (docs/messages.md)


@dataclass(frozen=True)
class Choice:
    """One path out of a `decide` step; `when` is None for the `otherwise` (default) path."""

    when: str | None
    next: str
    path: str
    line: int | None


@dataclass(frozen=True)
class Step:
    """One step of a YAML map. `then` is where it goes by default: its `next`, else the step
    below it, else None (the end of its list: the journey's end, a group's end or a join)."""

    id: str
    kind: str  # task | auto | wait | decide | parallel | call | group | end
    name: str
    path: str
    line: int | None
    then: str | None = None
    next: str | None = None
    hook: str | None = None
    card: str | None = None
    control: str = "guidance"
    basis: str | None = None
    role: str = "distributor"
    ack: str | None = None
    follow_up: str | None = None
    stuck_after: str | None = None
    when_stuck: str | None = None
    expires_after: str | None = None
    when_expired: str | None = None
    outcome: str | None = None
    data: tuple[tuple[str, FieldSpec], ...] = ()
    extra: tuple[tuple[str, str], ...] = ()  # the free-form `properties:` mapping
    wait: tuple[Trigger, ...] = ()
    decide: tuple[Choice, ...] = ()
    branches: tuple[tuple[Step, ...], ...] = ()  # parallel
    steps: tuple[Step, ...] = ()  # group
    call: str | None = None
    stuck_step: Step | None = None  # `when_stuck` written as a step: runs once, then ends
    key_lines: tuple[tuple[str, int], ...] = ()  # the line of each key written on the step

    def key_line(self, key: str) -> int | None:
        """The line of `key` on this step, else the step's own line."""
        return next((n for k, n in self.key_lines if k == key), self.line)

    def children(self) -> Iterator[tuple[Step, ...]]:
        """The nested step lists: parallel branches, the group's steps, the inline stuck step."""
        yield from self.branches
        if self.steps:
            yield self.steps
        if self.stuck_step:
            yield (self.stuck_step,)


@dataclass(frozen=True)
class YamlMap:
    """A loaded, valid YAML map. `warnings` are problems that do not stop it from running."""

    process: str
    name: str
    description: str | None
    steps: tuple[Step, ...]
    file: str | None = None
    line: int | None = None
    data: tuple[tuple[str, FieldSpec], ...] = ()
    warnings: tuple[Problem, ...] = ()
    message_ttls: tuple[tuple[str, str], ...] = ()  # the `messages:` section: (name, ttl)
    measures: Measures | None = None  # the `outcomes:` and `indicators:` sections

    def all_steps(self) -> list[Step]:
        """Every step, nested ones included, in reading order."""
        out: list[Step] = []

        def walk(steps: tuple[Step, ...]) -> None:
            for step in steps:
                out.append(step)
                for child in step.children():
                    walk(child)

        walk(self.steps)
        return out

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.all_steps() if s.id == step_id), None)


def humanize(ident: str) -> str:
    """share_intro -> 'Share intro'."""
    words = ident.replace("_", " ").replace("-", " ").replace(".", " ").split()
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def data_mapping(data: tuple[tuple[str, FieldSpec], ...]) -> dict[str, Any]:
    """A `data:` mapping as written (lists for values), ready for JSON or `fields_from`."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data}


def declaration(m: YamlMap) -> tuple[DataDeclaration | None, list[str]]:
    """What the map declares: its `data:` plus every step's (None when nothing is), and the
    names declared twice differently."""
    if not m.data and not any(s.data for s in m.all_steps()):
        return None, []
    fields = fields_from(data_mapping(m.data))[0]
    issues: list[str] = []
    for s in m.all_steps():
        issues += merge(fields, fields_from(data_mapping(s.data))[0])
    return DataDeclaration(fields), issues
