"""The errors nextmove raises, in two families.

    NextmoveError                  (code: what kind of failure, see `ErrorCode`)
    ├── InvalidInput               an id, context, amount, time or count breaks `engine.inputs`
    ├── DefinitionError            a map or catalog is wrong (file, line, element/path, hint)
    │   └── DefinitionErrors       several of them at once: validation reports every problem
    ├── EngineRuntimeError         something about a running instance
    │   ├── InstanceNotFound
    │   ├── AmbiguousInstance      a prospect has several active instances: name the process
    │   ├── StepNotWaiting         the step is not waiting for the contractor
    │   ├── StepRequired           a required step cannot be skipped
    │   ├── VersionConflict        another worker changed the instance first
    │   ├── AlreadyRecorded        the row to write along with a step is already stored
    │   ├── DefinitionNotFound
    │   ├── ExecutionError         the map failed while running (a condition raised, ...)
    │   │   └── InstanceIncident   ... and the instance is now in `incident` (see `retry`)
    │   └── MigrationRefused       an instance cannot move to another definition version
    └── ExpressionError            a condition is not allowed or failed to evaluate

Each error builds its own message from its fields, so callers (the CLI, JSON output) can show
either the sentence or the structured fields. Each carries a stable `code` (an `ErrorCode`):
the CLI turns it into an exit code, an HTTP API would turn it into a status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from difflib import get_close_matches
from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    """What kind of failure an error is: stable strings for scripts (`--json` prints them)."""

    REFUSED = "refused"  # valid, but the instance's state does not allow it (not waiting, ...)
    USAGE = "usage"  # the command line itself is wrong (the CLI's parser)
    INVALID_INPUT = "invalid-input"  # a map, context, id, log or option value is wrong
    NOT_FOUND = "not-found"  # no such instance, process, file
    CONFLICT = "conflict"  # another worker got there first; nothing applied; retry is safe
    DATABASE = "database"  # not nextmove's database, a newer schema, an unsupported kind
    STORAGE = "storage"  # the database cannot be reached or written: down, full, read-only
    INTERNAL = "internal"  # a bug in nextmove


class NextmoveError(Exception):
    """Base class of every error nextmove raises on purpose."""

    code: ClassVar[ErrorCode] = ErrorCode.INVALID_INPUT

    def to_dict(self) -> dict[str, object]:
        return {"error": type(self).__name__, "code": str(self.code), "message": str(self)}


class InvalidInput(NextmoveError):
    """A value given to the engine breaks a rule of `engine.inputs` (`field` names it)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "field": self.field}


class BeforeLastStep(NextmoveError):
    """A step timed before the instance's last one (`--now` in the past, most likely). The
    log is each case's timeline in time order, so nothing is back-dated into it; history is
    loaded with `import-log`."""

    def __init__(self, instance_id: int, at: datetime, last: datetime) -> None:
        self.instance_id, self.at, self.last = instance_id, at, last
        super().__init__(
            f"instance {instance_id}'s last step was at {last:%Y-%m-%d %H:%M:%S} UTC; a step "
            f"at {at:%Y-%m-%d %H:%M:%S} UTC would come before it, and steps are recorded in "
            "time order: nothing was applied (check --now)")


class UnknownMessage(NextmoveError):
    """A prospect event that no deployed map (of any version) has a catch for: held, it would
    wait for a step that can never come (a mistyped name, most likely)."""

    def __init__(self, message: str, known: Iterable[str] = ()) -> None:
        self.message, self.known = message, sorted(set(known))
        hint = did_you_mean(message, self.known)
        self.suggestion = hint
        super().__init__(
            f"no deployed map catches the prospect event {message!r}"
            + meant(hint)
            + ": nothing could ever take it, so nothing was stored")


class NotInData(NextmoveError):
    """A view's filter value (a distributor, a sponsor, a market) that no instance has: a
    mistyped one would read as a person or a market with no data."""

    code = ErrorCode.NOT_FOUND

    def __init__(self, what: str, value: str, known: Iterable[str] = (),
                 list_known: bool = False) -> None:
        self.what, self.value, self.known = what, value, sorted(set(known))
        hint = did_you_mean(value, self.known)
        listed = f"; {what}s with instances: {', '.join(self.known)}" if (
            list_known and self.known) else ""
        super().__init__(f"no instance has {what} {value!r}"
                         + meant(hint) + listed)


class ProcessRetired(NextmoveError):
    """A new instance of a retired process was asked for."""

    code = ErrorCode.REFUSED

    def __init__(self, process_id: str, row: Mapping[str, Any]) -> None:
        # row: the retirement's (`engine.runtime.retirement`): actor, reason, at (naive UTC)
        self.process_id = process_id
        who = f" by {row['actor']}" if row["actor"] else ""
        super().__init__(
            f"process {process_id!r} was retired on {row['at']:%Y-%m-%d %H:%M} UTC"
            f"{who} ({row['reason']}): no new instance starts and nothing was written. "
            "Deploy it again to reinstate it")


class UnknownHook(NextmoveError):
    """A content hook named (`--hook`, `--reward HOOK=STEP`) that the catalog (or, for views
    of a log, the log) does not have: a mistyped one would be read as a hook with nothing to
    learn, show or judge."""

    code = ErrorCode.NOT_FOUND

    def __init__(self, hook: str, known: Iterable[str] = (), where: str = "") -> None:
        self.hook, self.known = hook, sorted(set(known))
        hint = did_you_mean(hook, self.known)
        self.suggestion = hint
        super().__init__(f"no content hook {hook!r}{where}"
                         + meant(hint)
                         + (f"; hooks: {', '.join(self.known)}" if self.known else ""))


class UnknownStep(NextmoveError):
    """A step id that no deployed map (of any version) has."""

    code = ErrorCode.NOT_FOUND

    def __init__(self, step: str, known: Iterable[str] = ()) -> None:
        self.step, self.known = step, sorted(set(known))
        hint = did_you_mean(step, self.known)
        self.suggestion = hint
        super().__init__(f"no deployed map has a step {step!r}"
                         + meant(hint))


class UnknownSignal(NextmoveError):
    """A broadcast of a BPMN signal that no deployed map (of any version) catches: it could
    never reach anything (a mistyped name, most likely)."""

    def __init__(self, signal: str, known: Iterable[str] = ()) -> None:
        self.signal, self.known = signal, sorted(set(known))
        hint = did_you_mean(signal, self.known)
        self.suggestion = hint
        caught = f"; maps catch {', '.join(self.known)}" if self.known else (
            "; no deployed map catches any signal")
        super().__init__(
            f"no deployed map catches the signal {signal!r}"
            + meant(hint) + caught
            + ": nothing was delivered or recorded")


class UnknownContent(NextmoveError):
    """`used` names no content the step offers: logged, a mistyped id would read as content
    the person chose over the card's (a deviation in the audit trail, a decision the learner
    learns from)."""

    def __init__(self, step: str, used: str, hook: str | None,
                 offered: Iterable[str] = ()) -> None:
        self.step, self.used, self.hook = step, used, hook
        self.offered = list(dict.fromkeys(offered))
        hint = did_you_mean(used, self.offered)
        if hook is None:
            why = f"step {step!r} has no content hook, so it offers no content to name"
        elif not self.offered:
            why = f"nothing in the catalog fills step {step!r}'s hook {hook!r}"
        else:
            why = (f"step {step!r}'s hook {hook!r} offers no content {used!r}"
                   + meant(hint)
                   + f"; it offers {', '.join(self.offered)}")
        super().__init__(f"{why}: nothing was recorded. Name content the step offers, or "
                         "leave `used` out")


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The nearest candidate to `word`, if one is close enough to be a likely typo."""
    matches = get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def meant(hint: str | None) -> str:
    """` (did you mean 'x'?)` for a hint of `did_you_mean`, else nothing."""
    return f" (did you mean '{hint}'?)" if hint else ""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition file. `severity` is "error" or "warning"."""

    message: str
    file: str | None = None
    line: int | None = None
    element: str | None = None  # BPMN element id, or YAML path like steps[2].hook
    suggestion: str | None = None
    code: str = "invalid"
    severity: str = "error"

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line) if p not in (None, ""))
        text = f"{where}: " if where else ""
        if self.element:
            text += f"{self.element}: "
        text += self.message
        if self.suggestion:
            text += f" (did you mean '{self.suggestion}'?)"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "element": self.element,
            "suggestion": self.suggestion,
        }


class DefinitionError(NextmoveError):
    """A process map, YAML map or catalog cannot be used as written."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        element: str | None = None,
        suggestion: str | None = None,
        code: str = "invalid",
    ) -> None:
        self.problem = Problem(message, file, line, element, suggestion, code)
        super().__init__(str(self.problem))

    @property
    def problems(self) -> list[Problem]:
        return [self.problem]

    def to_dict(self) -> dict[str, object]:
        return {"error": type(self).__name__, "code": str(self.code), "message": str(self),
                "problems": [p.to_dict() for p in self.problems]}


class DefinitionErrors(DefinitionError):
    """Every problem found in one or more files, reported together."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self._problems = list(problems)
        errors = [p for p in self._problems if p.severity == "error"]
        first = errors[0] if errors else self._problems[0]
        NextmoveError.__init__(
            self, f"{len(errors)} problem(s); first: {first}" if len(errors) > 1 else str(first)
        )
        self.problem = first

    @property
    def problems(self) -> list[Problem]:
        return list(self._problems)


class ExpressionError(NextmoveError):
    """An expression uses something the safe evaluator does not allow, or failed to evaluate."""


class EngineRuntimeError(NextmoveError):
    """Something about a running instance prevents the request."""


class InstanceNotFound(EngineRuntimeError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"no instance found for {ref}")


class AmbiguousInstance(EngineRuntimeError):
    def __init__(self, prospect_id: str, processes: Sequence[str]) -> None:
        self.prospect_id = prospect_id
        self.processes = list(processes)
        super().__init__(
            f"prospect {prospect_id!r} has active instances of several processes "
            f"({', '.join(self.processes)}); say which with --process"
        )


class DefinitionNotFound(EngineRuntimeError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, process: str, known: Iterable[str] = ()) -> None:
        self.process = process
        hint = did_you_mean(process, known)
        self.suggestion = hint
        text = f"no deployed process named {process!r}"
        super().__init__(text + meant(hint))


class StepNotWaiting(EngineRuntimeError):
    code = ErrorCode.REFUSED

    def __init__(self, instance_id: int, step: str, waiting: Sequence[str]) -> None:
        self.instance_id = instance_id
        self.step = step
        self.waiting = list(waiting)
        if step in self.waiting:  # as stored: a timer due by now took it (a deadline passed)
            super().__init__(
                f"instance {instance_id}: step {step!r} no longer waits: a timer due by now "
                "(its deadline, or a wait that ended) moved the journey on before it; nothing "
                "was applied. The worker records the move (or run `nextmove tick`)")
            return
        hint = did_you_mean(step, waiting)
        now = ", ".join(self.waiting) if self.waiting else "nothing"
        text = f"instance {instance_id}: step {step!r} is not waiting (waiting: {now})"
        super().__init__(text + (f"; did you mean '{hint}'?" if hint else ""))


class StepRequired(EngineRuntimeError):
    code = ErrorCode.REFUSED

    def __init__(self, instance_id: int, step: str, basis: str | None) -> None:
        self.instance_id = instance_id
        self.step = step
        self.basis = basis
        super().__init__(
            f"instance {instance_id}: step {step!r} is required ({basis or 'no basis given'}) "
            "and cannot be skipped"
        )


class VersionConflict(EngineRuntimeError):
    code = ErrorCode.CONFLICT

    def __init__(self, instance_id: int, expected_version: int) -> None:
        self.instance_id = instance_id
        self.expected_version = expected_version
        super().__init__(
            f"instance {instance_id} was changed by another worker (expected version "
            f"{expected_version}); nothing was applied — reload and retry"
        )


class AlreadyRecorded(EngineRuntimeError):
    """The row asked to be written along with a step (`engine.runtime.Along`) is already
    stored: nothing of the step was written. The caller reads what it stored before."""

    code = ErrorCode.CONFLICT

    def __init__(self, table: str) -> None:
        self.table = table
        super().__init__(f"the row to write with the step is already in {table}; nothing "
                         "was applied")


class ExecutionError(EngineRuntimeError):
    """The process failed while running; the instance is left as it was before the step."""

    code = ErrorCode.REFUSED

    def __init__(self, instance_id: int | None, step: str | None, detail: str) -> None:
        self.instance_id = instance_id
        self.step = step
        self.detail = detail
        where = f"instance {instance_id}" if instance_id is not None else "new instance"
        super().__init__(f"{where}, step {step!r}: {detail}" if step else f"{where}: {detail}")


class InstanceIncident(ExecutionError):
    """A step failed at run time: the instance is now in `incident`, with the error and the
    step recorded in its trail; nothing of the step was applied. `cause` is the failure."""

    def __init__(self, instance_id: int, step: str | None, cause: ExecutionError,
                 limit: str | None = None) -> None:
        self.cause = cause
        self.limit: str | None = limit or getattr(cause, "limit", None)
        super().__init__(instance_id, step, f"incident: {cause.detail} (the step was not applied; "
                                            f"fix the map, then `nextmove retry {instance_id}`)")

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "instance": self.instance_id, "step": self.step,
                "incident": True, "limit": self.limit}


class InstanceInIncident(EngineRuntimeError):
    """A person's step on an instance parked in incident: an operator retries it first."""

    code = ErrorCode.REFUSED


class MigrationRefused(EngineRuntimeError):
    """An instance cannot move to the definition version asked for."""

    code = ErrorCode.REFUSED
