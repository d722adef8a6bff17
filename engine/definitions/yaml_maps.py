"""YAML process maps: the designers' plain-text form of a journey, loaded into frozen dataclasses.

    process: prospect_journey        # required: the BPMN process id     name:, description:
    data: {interest: [customer, not_now]}   # optional: the prospect data decisions read
    outcomes: {customer_order: {converts: true}, sale: {}}  # optional: what converts, and
    indicators: {first_sale_within_14_days: {first: sale, within: P14D}}  # (`outcomes`)
    steps:                           # run in order unless a step says `next: ID` or `next: end`
      - id: share_intro              # required; every other key is optional
        hook: intro_video            # also: name, card, control (guidance | required), basis,
        stuck_after: P5D             #   role (distributor | sponsor), ack, follow_up, outcome,
        when_stuck: sponsor_nudge    #   data, properties (free-form), expires_after/when_expired
      - id: wait_for_video           # when_stuck: an id, or a step written in place
        wait: [{message: video_played, next: talk}, {after: P2D, next: follow_up}]
      - id: qualify
        decide: [{when: "interest == 'customer'", next: order}, {otherwise: nurture}]
      - {id: both, parallel: [{id: a}, [{id: b}, {id: c}]]}   # branches rejoin
      - {id: onboard, call: distributor_onboarding}           # or `steps: [...]`: a group
      - {id: log, auto: true}        # nobody waits on it
      - {id: done, end: true}

A step's kind is the one key among `wait`, `decide`, `parallel`, `call`, `steps`, `auto`, `end`
it carries; with none it waits on a person. `schema/process-map.schema.json` enforces the keys.

Loading is schema validation first (every key, type and pattern), then checks of the journey
itself (`_yaml_checks`): unknown or out-of-scope `next` targets, duplicate ids, decide without
`otherwise`, empty waits, unreachable steps, steps that can never finish, stuck paths that rejoin
the journey. Every problem is collected and raised together as `DefinitionErrors`, each with
file, line, YAML path (`steps[3].wait[1].next`) and, where one is close, the name that was
probably meant.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.definitions._yaml_checks import check
from engine.definitions._yaml_model import (
    END,
    HOSTS,
    Choice,
    FieldSpec,
    Step,
    Trigger,
    YamlMap,
    data_mapping,
    declaration,
    humanize,
)
from engine.definitions.data import fields_from
from engine.definitions.outcomes import measures_from
from engine.errors import DefinitionErrors, Problem
from engine.yamlsafe import YamlPath, format_path, line_of, load_yaml, read_schema, schema_problems

__all__ = [
    "END",
    "HOSTS",
    "Choice",
    "Step",
    "Trigger",
    "YamlMap",
    "humanize",
    "load_yaml_map",
    "load_yaml_map_text",
]

KIND_KEYS = ("wait", "decide", "parallel", "call", "steps", "auto", "end")
_KIND_NAMES = {"steps": "group"}


def load_yaml_map(path: str | Path) -> YamlMap:
    """Load and validate the YAML map in `path`; raise `DefinitionErrors` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionErrors([Problem(f"cannot read file: {exc}", str(path), code="io")]) from exc
    return load_yaml_map_text(text, str(path))


def load_yaml_map_text(text: str, file: str | None = None) -> YamlMap:
    """Load and validate a YAML map from text; `file` is only used in problem reports."""
    loaded = load_yaml(text, file)
    schema = read_schema("engine.definitions.schema", "process-map.schema.json")
    problems = schema_problems(loaded.data, schema, loaded.lines, file)
    if not isinstance(loaded.data, dict) or not isinstance(loaded.data.get("process"), str):
        raise DefinitionErrors(problems or [Problem("empty YAML map", file, code="empty")])
    reader = _Reader(loaded.lines, file)
    result = reader.read(loaded.data)
    flagged = {p.element for p in problems}
    problems += [p for p in reader.problems if p.element not in flagged]
    problems.sort(key=lambda p: (p.line or 0, p.element or ""))
    if any(p.severity == "error" for p in problems):
        raise DefinitionErrors(problems)
    return replace(result, warnings=tuple(problems))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _text(value: Any) -> str | None:
    """Prose as written, without the trailing newline a folded `>` block keeps."""
    return value.strip() or None if isinstance(value, str) else None


def _prop(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _ttls(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        return ()
    return tuple((str(k), v["ttl"]) for k, v in value.items()
                 if isinstance(v, dict) and isinstance(v.get("ttl"), str))


def _data(value: Any) -> tuple[tuple[str, FieldSpec], ...]:
    if not isinstance(value, dict):
        return ()
    return tuple(
        (str(k), tuple(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else str(v))
        for k, v in value.items()
    )


def data_json(data: tuple[tuple[str, FieldSpec], ...]) -> str:
    """The `data:` hint as compact JSON, the form it takes in a BPMN property."""
    return json.dumps(data_mapping(data))


class _Reader:
    """Builds the dataclasses from schema-checked data (tolerating what the schema already
    reported) and runs the journey checks, collecting problems."""

    def __init__(self, lines: dict[YamlPath, int], file: str | None) -> None:
        self.lines = lines
        self.file = file
        self.problems: list[Problem] = []

        self.by_text = {format_path(p): n for p, n in lines.items()}

    def line(self, path: YamlPath) -> int | None:
        return line_of(self.lines, path)

    def problem(
        self, message: str, path: YamlPath | str, code: str, hint: str | None = None,
        severity: str = "error",
    ) -> None:
        """Report at `path`: a tuple while reading, a text path like steps[2].next when checking."""
        text = path if isinstance(path, str) else format_path(path)
        line, probe = None, text
        while line is None and probe:
            line = self.by_text.get(probe)
            probe = probe[: max(probe.rfind("."), probe.rfind("["), 0)]
        self.problems.append(Problem(message, self.file, line, text or None, hint, code, severity))

    def read(self, doc: dict[str, Any]) -> YamlMap:
        raw = doc.get("steps")
        steps = self.steps(raw if isinstance(raw, list) else [], ("steps",))
        process = str(doc["process"])
        measures, problems = measures_from(doc.get("outcomes"), doc.get("indicators"))
        for message in problems:
            self.problem(message, "indicators" if message.startswith("indicator")
                         else "outcomes", "bad-outcomes")
        m = YamlMap(process, _text(doc.get("name")) or humanize(process),
                    _text(doc.get("description")), steps, self.file, self.line(()),
                    _data(doc.get("data")), message_ttls=_ttls(doc.get("messages")),
                    measures=measures)
        for at, written in (("data", data_mapping(m.data)),
                            *((f"{s.path}.data", data_mapping(s.data)) for s in m.all_steps())):
            for message in fields_from(written)[1]:
                self.problem(message, at, "bad-data")
        for message in dict.fromkeys(declaration(m)[1]):
            self.problem(message, "data", "data-conflict")
        check(m, self.problem)
        return m

    def steps(self, items: list[Any], path: YamlPath) -> tuple[Step, ...]:
        valid = [(i, s) for i, s in enumerate(items) if isinstance(s, dict) and _str(s.get("id"))]
        out = []
        for pos, (index, item) in enumerate(valid):
            following = valid[pos + 1][1]["id"] if pos + 1 < len(valid) else None
            out.append(self.step(item, (*path, index), following))
        return tuple(out)

    def step(self, raw: dict[str, Any], path: YamlPath, following: str | None) -> Step:
        kinds = [k for k in KIND_KEYS if k in raw]
        if len(kinds) > 1:
            self.problem(f"a step is one kind of thing; it has {' and '.join(kinds)}: "
                         "split it into several steps", (*path, kinds[1]), "several-kinds")
        kind = _KIND_NAMES.get(kinds[0], kinds[0]) if kinds else "task"
        nxt = _str(raw.get("next"))
        extra = raw.get("properties")
        stuck = raw.get("when_stuck")
        stuck_step = None
        if isinstance(stuck, dict) and _str(stuck.get("id")):
            stuck_step = self.step(stuck, (*path, "when_stuck"), None)
        return Step(
            id=raw["id"], kind=kind, name=_text(raw.get("name")) or humanize(raw["id"]),
            path=format_path(path), line=self.line(path), then=nxt or following, next=nxt,
            hook=_str(raw.get("hook")), card=_text(raw.get("card")),
            control=_str(raw.get("control")) or "guidance", basis=_text(raw.get("basis")),
            role=_str(raw.get("role")) or "distributor", ack=_text(raw.get("ack")),
            follow_up=_str(raw.get("follow_up")), stuck_after=_str(raw.get("stuck_after")),
            when_stuck=stuck_step.id if stuck_step else _str(stuck),
            stuck_step=stuck_step,
            key_lines=tuple((k, n) for k in raw if (n := self.lines.get((*path, k))) is not None),
            expires_after=_str(raw.get("expires_after")),
            when_expired=_str(raw.get("when_expired")), outcome=_str(raw.get("outcome")),
            data=_data(raw.get("data")),
            extra=tuple((str(k), _prop(v)) for k, v in extra.items())
            if isinstance(extra, dict) else (),
            wait=self.triggers(raw.get("wait"), (*path, "wait")) if kind == "wait" else (),
            decide=self.choices(raw.get("decide"), (*path, "decide")) if kind == "decide" else (),
            branches=self.branches(raw.get("parallel"), (*path, "parallel"))
            if kind == "parallel" else (),
            steps=self.steps(raw["steps"], (*path, "steps"))
            if kind == "group" and isinstance(raw["steps"], list) else (),
            call=_str(raw.get("call")),
        )

    def triggers(self, raw: Any, path: YamlPath) -> tuple[Trigger, ...]:
        items = [(path, raw)] if isinstance(raw, dict) else [
            ((*path, i), t) for i, t in enumerate(raw if isinstance(raw, list) else [])
        ]
        out = []
        for at, t in items:
            if not isinstance(t, dict):
                continue
            message, after = _str(t.get("message")), _str(t.get("after"))
            if message is None and after is None and not set(t) - {"message", "after", "next"}:
                self.problem("a trigger needs `message:` (a prospect event) or `after:` (a "
                             "delay such as P2D)", at, "empty-trigger")
            elif message is None and "ttl" in t:
                self.problem("`ttl:` is how long an early prospect event is held: it goes on a "
                             "`message:` trigger", (*at, "ttl"), "ttl-without-message")
            elif message is not None and after is not None:
                self.problem("one trigger per item: put `message:` and `after:` in two items "
                             "(the first to happen wins)", (*at, "after"), "two-triggers")
            out.append(Trigger(message, after, _str(t.get("next")), format_path(at),
                               self.line(at), _str(t.get("ttl"))))
        if not items:
            self.problem("`wait` needs at least one trigger", path, "empty-wait")
        return tuple(out)

    def choices(self, raw: Any, path: YamlPath) -> tuple[Choice, ...]:
        out = []
        for i, c in enumerate(raw if isinstance(raw, list) else []):
            at: YamlPath = (*path, i)
            if not isinstance(c, dict):
                continue
            if "otherwise" in c and _str(c["otherwise"]):
                out.append(Choice(None, c["otherwise"], format_path(at), self.line(at)))
            elif _str(c.get("when")) and _str(c.get("next")):
                out.append(Choice(c["when"], c["next"], format_path(at), self.line(at)))
        return tuple(out)

    def branches(self, raw: Any, path: YamlPath) -> tuple[tuple[Step, ...], ...]:
        out = []
        for i, b in enumerate(raw if isinstance(raw, list) else []):
            if isinstance(b, list):
                out.append(self.steps(b, (*path, i)))
            elif isinstance(b, dict) and _str(b.get("id")):
                out.append((self.step(b, (*path, i), None),))
        return tuple(out)

