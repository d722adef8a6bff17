"""The static audit: load maps, run every rule, apply the justifications written in the maps.

A finding is acknowledged by a step property named `compliance.<RULE>` whose value is the
written justification, on the step the finding names (for a timer, the timer event works
too). The same property works everywhere a step has properties::

    <nextmove:property name="compliance.NM003" value="FTC: disclosure before enrollment"/>

    - id: enroll                      # YAML
      properties:
        compliance.NM003: FTC requires the disclosure before the enrollment link

Acknowledged findings stay in the report, marked, with their justification; they never fail
it. A justification needs at least four words; a too-short one, one for a rule that does not
fire there, or one naming no known rule becomes a note in the report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from compliance.catalogue import RULES_BY_ID, SEVERITIES
from compliance.rules import Hit, check_map
from engine.definitions import load
from engine.definitions.model import ProcessDefinition, ProcessMap, Step
from engine.errors import NextmoveError, Problem, did_you_mean

ACK_PREFIX = "compliance."
MIN_JUSTIFICATION_WORDS = 4
DEFAULT_FAIL_ON = "high"


class UnknownSeverity(NextmoveError, ValueError):
    """A severity threshold that is not one of info, low, medium, high."""

    def __init__(self, value: str) -> None:
        self.value = value
        hint = did_you_mean(value, SEVERITIES)
        super().__init__(f"unknown severity {value!r}; one of {', '.join(SEVERITIES)}"
                         + (f" (did you mean '{hint}'?)" if hint else ""))


def check_severity(value: str) -> str:
    """`value` if it names a severity, else `UnknownSeverity`."""
    if value not in SEVERITIES:
        raise UnknownSeverity(value)
    return value


@dataclass(frozen=True)
class SignOff:
    """A reviewer's acceptance of one finding on one map version (`compliance.signoff`)."""

    id: int
    finding: str
    rule: str
    process: str
    map_hash: str
    reviewer: str
    reason: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "finding": self.finding, "rule": self.rule,
                "process": self.process, "map_hash": self.map_hash,
                "reviewer": self.reviewer, "reason": self.reason,
                "at": self.at.isoformat()}


@dataclass(frozen=True)
class Finding:
    """One control indicator in one map. `line` is the YAML line for YAML maps; `map_hash`
    identifies the map version audited; `signoff` is a reviewer's acceptance of it."""

    rule: str
    name: str
    severity: str
    factor: str
    file: str
    line: int | None
    process: str
    step: str
    message: str
    fix: str
    element: str | None = None  # the exact element (a timer) when it is not the step
    acknowledged: bool = False
    justification: str | None = None
    map_hash: str | None = None
    signoff: SignOff | None = None

    @property
    def id(self) -> str:
        """What a reviewer names to sign it off: RULE:process/step[/element]."""
        return f"{self.rule}:{self.process}/{self.step}" + (
            f"/{self.element}" if self.element else "")

    @property
    def signed_off(self) -> bool:
        return self.signoff is not None

    def to_dict(self) -> dict[str, Any]:
        body = {"id": self.id, **asdict(self)}
        body["signoff"] = self.signoff.to_dict() if self.signoff else None
        return body


@dataclass(frozen=True)
class Note:
    """Something about the audit itself a reviewer should see (a stale justification, ...)."""

    code: str
    message: str
    file: str | None = None
    line: int | None = None
    step: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RequiredStep:
    """A step contractors cannot skip, with the reason the map gives."""

    process: str
    step: str
    name: str
    file: str
    line: int | None
    basis: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AuditedMap:
    process: str
    name: str
    file: str
    format: str  # bpmn | yaml
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class AuditReport:
    """What the audit found. `problems` are files that could not be audited at all."""

    findings: tuple[Finding, ...]
    maps: tuple[AuditedMap, ...]
    required: tuple[RequiredStep, ...] = ()
    problems: tuple[Problem, ...] = ()
    notes: tuple[Note, ...] = ()
    fail_on: str | None = None

    def unacknowledged(self, at_least: str = "info") -> list[Finding]:
        """Findings nobody has justified or signed off, at or above a severity."""
        floor = _rank(check_severity(at_least))
        return [f for f in self.findings
                if not f.acknowledged and not f.signed_off and _rank(f.severity) >= floor]

    def acknowledged(self) -> list[Finding]:
        """Findings justified in the map by its author."""
        return [f for f in self.findings if f.acknowledged]

    def signed_off(self) -> list[Finding]:
        """Findings a reviewer signed off for this version of their map."""
        return [f for f in self.findings if f.signed_off and not f.acknowledged]

    def failed(self, fail_on: str | None = None) -> bool:
        """True when a finding at or above `fail_on` (else the report's own threshold, else
        "high") is neither acknowledged nor signed off, or when some file could not be
        audited."""
        threshold = fail_on or self.fail_on or DEFAULT_FAIL_ON
        return bool(self.problems) or bool(self.unacknowledged(threshold))

    def counts(self) -> dict[str, dict[str, int]]:
        """{severity: {"open": n, "acknowledged": n, "signed_off": n}} for every severity,
        highest first."""
        out = {s: {"open": 0, "acknowledged": 0, "signed_off": 0} for s in reversed(SEVERITIES)}
        for f in self.findings:
            state = "acknowledged" if f.acknowledged else "signed_off" if f.signed_off \
                else "open"
            out[f.severity][state] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        threshold = self.fail_on or DEFAULT_FAIL_ON
        return {
            "fail_on": threshold,
            "failed": self.failed(threshold),
            "counts": self.counts(),
            "maps": [m.to_dict() for m in self.maps],
            "findings": [f.to_dict() for f in self.findings],
            "required_steps": [r.to_dict() for r in self.required],
            "problems": [{"file": p.file, "line": p.line, "element": p.element,
                          "message": p.message, "code": p.code} for p in self.problems],
            "notes": [n.to_dict() for n in self.notes],
        }


def audit(paths: Iterable[str | Path], *, fail_on: str | None = None,
          signoffs: Iterable[SignOff] = ()) -> AuditReport:
    """Audit every process map (BPMN or YAML) under `paths` against the rule catalogue;
    a finding with a sign-off for this version of its map (`signoffs`) is signed off."""
    if fail_on is not None:
        check_severity(fail_on)
    loaded = load(paths, build=False)
    definitions: list[ProcessDefinition] = []
    seen: set[tuple[str, str]] = set()
    for definition in loaded.definitions:
        key = (definition.source_file, definition.process_id)
        if key not in seen:
            seen.add(key)
            definitions.append(definition)
    called: dict[str, ProcessMap] = {}
    for definition in definitions:
        for pmap in (*definition.called_maps, definition.map):
            called[pmap.id] = pmap
    findings: list[Finding] = []
    notes: list[Note] = []
    required: list[RequiredStep] = []
    maps: list[AuditedMap] = []
    for definition in definitions:
        fmt, file = definition.source_format, definition.source_file
        pmap = definition.map
        maps.append(AuditedMap(pmap.id, pmap.name, file, fmt, len(pmap.all_steps())))
        hits = check_map(pmap, called)
        found, stale = _acknowledge(hits, pmap, fmt, file, definition.content_hash)
        findings += found
        notes += stale
        required += [RequiredStep(pmap.id, s.id, s.name, file, _line(s, fmt), s.basis)
                     for s in pmap.all_steps() if s.control == "required"]
    findings, voided = _signed(findings, list(signoffs))
    notes += voided
    findings.sort(key=lambda f: (f.file, f.line or 0, f.rule, f.step))
    notes.sort(key=lambda n: (n.file or "", n.line or 0, n.code))
    return AuditReport(tuple(findings), tuple(maps), tuple(required),
                       tuple(loaded.errors), tuple(notes), fail_on)


def _line(step: Step, fmt: str) -> int | None:
    """Where a person edits the step: its YAML line for a YAML map, else its BPMN line."""
    if fmt == "yaml":
        raw = step.properties.get("yaml_line")
        return int(raw) if raw and raw.isdigit() else None
    return step.line


def justifications(step: Step) -> dict[str, str]:
    """The `compliance.<RULE>` properties of a step: rule id (upper case) -> text."""
    return {name[len(ACK_PREFIX):].upper(): value.strip()
            for name, value in step.properties.items()
            if name.lower().startswith(ACK_PREFIX)}


def _signed(findings: list[Finding], signoffs: list[SignOff]
            ) -> tuple[list[Finding], list[Note]]:
    """Attach each finding's latest sign-off for its map version; note the sign-offs a
    changed map voided (the finding is open again)."""
    latest: dict[tuple[str, str], SignOff] = {}
    earlier: dict[str, SignOff] = {}
    for s in signoffs:
        latest[(s.finding, s.map_hash)] = s
        earlier[s.finding] = s
    out: list[Finding] = []
    notes: list[Note] = []
    for f in findings:
        match = latest.get((f.id, f.map_hash or ""))
        if match is not None:
            f = replace(f, signoff=match)
        elif f.id in earlier and not f.acknowledged:
            old = earlier[f.id]
            notes.append(Note("voided-signoff", f"{f.id} was signed off by {old.reviewer} on "
                              f"{old.at:%Y-%m-%d} for another version of the map "
                              f"({old.map_hash[:12]}…, now {(f.map_hash or '')[:12]}…): the "
                              "map changed, so the finding is open again", f.file, f.line,
                              f.step))
        out.append(f)
    return out, notes


def _acknowledge(
    hits: list[Hit], pmap: ProcessMap, fmt: str, file: str, map_hash: str
) -> tuple[list[Finding], list[Note]]:
    notes: list[Note] = []
    used: set[tuple[str, str]] = set()
    found: list[Finding] = []
    merged: dict[tuple[str, str, str | None], Hit] = {}
    for hit in hits:  # one finding per rule, step and element
        key = (hit.rule, hit.step.id, hit.element.id if hit.element else None)
        merged.setdefault(key, hit)
    for hit in merged.values():
        rule = RULES_BY_ID[hit.rule]
        text, owner = None, hit.step
        for candidate in (hit.element, hit.step):
            if candidate is not None and hit.rule in justifications(candidate):
                text, owner = justifications(candidate)[hit.rule], candidate
                used.add((candidate.id, hit.rule))
                break
        valid = text is not None and len(text.split()) >= MIN_JUSTIFICATION_WORDS
        if text is not None and not valid:
            notes.append(Note("short-justification", f"the justification of {hit.rule} on "
                              f"{owner.id!r} is too short to count ({text!r}): write at least "
                              f"{MIN_JUSTIFICATION_WORDS} words saying why", file,
                              _line(owner, fmt), owner.id))
        where = hit.element or hit.step
        element = where.id if where.id != hit.step.id else None
        found.append(Finding(
            rule.id, rule.name, rule.severity, rule.factor, file, _line(where, fmt), pmap.id,
            hit.step.id, hit.message, rule.fix, element, valid, text if valid else None,
            map_hash))
    notes += _stale(pmap.all_steps(), used, fmt, file)
    return found, notes


def _stale(steps: list[Step], used: set[tuple[str, str]], fmt: str, file: str) -> list[Note]:
    notes = []
    for step in steps:
        for rule_id in justifications(step):
            if (step.id, rule_id) in used:
                continue
            if rule_id not in RULES_BY_ID:
                hint = did_you_mean(rule_id, RULES_BY_ID)
                notes.append(Note("unknown-rule", f"{ACK_PREFIX}{rule_id} on {step.id!r} names "
                                  "no rule" + (f" (did you mean {hint}?)" if hint else ""),
                                  file, _line(step, fmt), step.id))
            else:
                notes.append(Note("stale-justification", f"{step.id!r} justifies {rule_id}, "
                                  "which does not fire there: remove the justification", file,
                                  _line(step, fmt), step.id))
    return notes

