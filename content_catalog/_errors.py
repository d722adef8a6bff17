"""The errors of policies and stored catalogs.

    NextmoveError                      (engine.errors)
    ├── PolicyError                    a policy document or operation is wrong (hook, field)
    │   └── PolicyNotFound             no such hook or version; nothing to roll back to
    └── CatalogNotFound                no catalog stored (under that name)

Each builds its message from its fields, with a "did you mean" when a name is close.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.errors import ErrorCode, NextmoveError, did_you_mean


class PolicyError(NextmoveError):
    """A policy document or a policy operation is wrong; names the hook and field."""

    def __init__(self, message: str, *, hook: str | None = None, field: str | None = None,
                 suggestion: str | None = None) -> None:
        self.message, self.hook, self.field, self.suggestion = message, hook, field, suggestion
        text = f"policy for hook {hook!r}: " if hook else "policy: "
        text += f"{field}: " if field else ""
        text += message + (f" (did you mean '{suggestion}'?)" if suggestion else "")
        super().__init__(text)

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "hook": self.hook, "field": self.field,
                "suggestion": self.suggestion}


class PolicyNotFound(PolicyError):
    """No policy for the hook, no such version of it, or no earlier version to roll back to."""

    code = ErrorCode.NOT_FOUND

    def __init__(self, hook: str, version: int | None = None, *,
                 known: Iterable[object] = (), message: str | None = None) -> None:
        self.version = version
        names = [str(k) for k in known]
        suggestion = None
        if message is None and version is None:
            message = "no policy is stored for this hook"
            suggestion = did_you_mean(hook, names)
        elif message is None:
            listed = ", ".join(names) or "none"
            message = f"no version {version} (stored versions: {listed})"
        super().__init__(message, hook=hook, suggestion=suggestion)


class CatalogNotFound(NextmoveError):
    """No catalog is stored, or none under the name asked for."""

    def __init__(self, name: str | None, known: Iterable[str] = ()) -> None:
        self.name = name
        self.suggestion = None if name is None else did_you_mean(name, list(known))
        if name is None:
            text = "no catalog is stored yet: store one first"
        else:
            text = f"no catalog named {name!r} is stored"
        super().__init__(text + (f" (did you mean '{self.suggestion}'?)"
                                 if self.suggestion else ""))

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "name": self.name, "suggestion": self.suggestion}
