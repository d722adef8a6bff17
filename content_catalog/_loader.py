"""Reading a catalog file: safe YAML, the JSON Schema, then the checks a schema cannot express.

Every problem of a stage is reported together: YAML problems first (a file that is not valid
YAML cannot be checked further), then schema and semantic problems in one list, by line.
Semantic checks run on schema-invalid data too, skipping whatever has the wrong shape.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import string
from typing import Any

from content_catalog._model import PLACEHOLDER_RE, Catalog, ContentItem, NearerReward, Variant
from engine.errors import DefinitionError, DefinitionErrors, Problem
from engine.yamlsafe import LoadedYaml, YamlPath, format_path, load_yaml, read_schema
from engine.yamlsafe import schema_problems as _schema_problems

HOOK_RE = re.compile(r"[a-z][a-z0-9_]*")


def catalog_schema() -> dict[str, Any]:
    """The catalog's JSON Schema (Draft 2020-12), shipped in this package."""
    return read_schema("content_catalog", "schema/catalog.schema.json")


def load_catalog(path: str | os.PathLike[str]) -> Catalog:
    """Load and check a catalog file; raise `DefinitionErrors` listing every problem."""
    file = os.fspath(path)
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        message = f"cannot read the catalog: {exc.strerror or exc}"
        raise DefinitionError(message, file=file, code="io") from exc
    except UnicodeDecodeError as exc:
        message = f"the catalog is not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise DefinitionError(message, file=file, code="encoding") from exc
    return load_catalog_text(text, file=file)


def load_catalog_text(text: str, *, file: str | None = None) -> Catalog:
    """Load and check a catalog from YAML text; `file` is only used in problem reports."""
    loaded = load_yaml(text, file)
    problems = _schema_problems(loaded.data, catalog_schema(), loaded.lines, file)
    problems += _Checker(loaded).run()
    if any(p.severity == "error" for p in problems):
        raise DefinitionErrors(sorted(problems, key=lambda p: (p.line or 0, p.element or "")))
    return _build(loaded)


def read_stored_catalog_text(text: str, *, file: str | None = None) -> Catalog:
    """A catalog the store holds: `store_catalog` checked its text before storing it, so it
    is parsed (by libyaml when available) and built without the JSON Schema and semantic
    checks again: reading one needs no jsonschema. Text that does not build gets the full
    check and its problems."""
    try:
        return _build(load_yaml(text, file, accepted_before=True))
    except (KeyError, TypeError, ValueError, AttributeError):
        return load_catalog_text(text, file=file)  # raises DefinitionErrors naming them


def _snake(text: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text.strip())
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


class _Checker:
    """Duplicate ids, hook name format, finite weights, well-formed placeholders."""

    def __init__(self, loaded: LoadedYaml) -> None:
        self.loaded = loaded
        self.problems: list[Problem] = []
        self.ids: dict[str, YamlPath] = {}

    def add(self, message: str, path: YamlPath, code: str, hint: str | None = None) -> None:
        line = self.loaded.line_of(path)
        element = format_path(path) or None
        self.problems.append(Problem(message, self.loaded.file, line, element, hint, code))

    def run(self) -> list[Problem]:
        data = self.loaded.data
        items = data.get("items") if isinstance(data, dict) else None
        for i, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict):
                continue
            self.entry(item, ("items", i))
            hooks = item.get("hooks")
            for j, hook in enumerate(hooks if isinstance(hooks, list) else []):
                if isinstance(hook, str) and not HOOK_RE.fullmatch(hook):
                    fixed = _snake(hook)
                    hint = fixed if HOOK_RE.fullmatch(fixed) else None
                    message = f"{hook!r} is not a hook name: hooks are snake_case like intro_video"
                    self.add(message, ("items", i, "hooks", j), "hook-format", hint)
            variants = item.get("variants")
            for k, variant in enumerate(variants if isinstance(variants, list) else []):
                if isinstance(variant, dict):
                    self.entry(variant, ("items", i, "variants", k))
        self.learn_from(data if isinstance(data, dict) else {},
                        items if isinstance(items, list) else [])
        return self.problems

    def learn_from(self, data: dict[str, Any], items: list[Any]) -> None:
        """Each hook `learn_from` names is one some item fills (else it is a typo)."""
        nearer = data.get("learn_from")
        if not isinstance(nearer, dict):
            return
        hooks: set[str] = set()
        for item in items:
            named = item.get("hooks") if isinstance(item, dict) else None
            if isinstance(named, list):
                hooks.update(h for h in named if isinstance(h, str))
        for hook in nearer:
            if isinstance(hook, str) and HOOK_RE.fullmatch(hook) and hook not in hooks:
                close = difflib.get_close_matches(hook, sorted(hooks), n=1)
                self.add(f"learn_from names {hook!r}, a hook no item fills",
                         ("learn_from", hook), "unknown-hook", close[0] if close else None)

    def entry(self, entry: dict[str, Any], path: YamlPath) -> None:
        """Checks shared by items and variants."""
        content_id = entry.get("id")
        if isinstance(content_id, str):
            first = self.ids.setdefault(content_id, (*path, "id"))
            if first != (*path, "id"):
                where = f"{format_path(first[:-1])} (line {self.loaded.line_of(first)})"
                message = f"duplicate id {content_id!r}: already used by {where}"
                self.add(message, (*path, "id"), "duplicate-id")
        weight = entry.get("weight")
        if isinstance(weight, float) and not math.isfinite(weight):
            self.add("weight must be a finite number greater than 0", (*path, "weight"), "weight")
        body = entry.get("body")
        if isinstance(body, str):
            self.body(body, (*path, "body"))

    def body(self, body: str, path: YamlPath) -> None:
        try:
            fields = list(string.Formatter().parse(body))
        except ValueError as exc:
            message = f"{exc}; write {{{{ or }}}} for a literal brace"
            self.add(message, path, "placeholder")
            return
        for _, name, spec, conversion in fields:
            if name is None:
                continue
            if PLACEHOLDER_RE.fullmatch(name) and not spec and not conversion:
                continue
            shown = "{" + name + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            fixed = _snake(name)  # no hint for attribute or index access: that is no typo
            plain = PLACEHOLDER_RE.fullmatch(fixed) and not any(c in name for c in ".[")
            hint = "{" + fixed + "}" if plain else None
            message = f"placeholder {shown} must be a plain snake_case name like " + (
                "{prospect_first_name}; write {{ or }} for a literal brace"
            )
            self.add(message, path, "placeholder", hint)


def _build(loaded: LoadedYaml) -> Catalog:
    data: dict[str, Any] = loaded.data
    locale, markets = data.get("locale"), tuple(data.get("markets", ()))
    items = []
    for i, raw in enumerate(data["items"]):
        variants = tuple(
            Variant(
                id=v["id"],
                title=v.get("title"),
                url=v.get("url"),
                body=_body(v.get("body")),
                weight=float(v["weight"]) if "weight" in v else None,
                description=v.get("description"),
                line=loaded.line_of(("items", i, "variants", k)),
            )
            for k, v in enumerate(raw.get("variants", ()))
        )
        items.append(
            ContentItem(
                id=raw["id"],
                kind=raw["kind"],
                title=raw["title"],
                hooks=tuple(raw["hooks"]),
                url=raw.get("url"),
                body=_body(raw.get("body")),
                locale=raw.get("locale", locale),
                markets=tuple(raw.get("markets", markets)),
                tags=tuple(raw.get("tags", ())),
                weight=float(raw.get("weight", 1.0)),
                variants=variants,
                description=raw.get("description"),
                line=loaded.line_of(("items", i)),
            )
        )
    version = data.get("version")
    return Catalog(
        name=data["catalog"],
        brand=data["brand"],
        items=tuple(items),
        version=None if version is None else str(version),
        description=data.get("description"),
        file=loaded.file,
        learning=data.get("learning", "continuous"),
        segments=tuple(data.get("segments", ())),
        learn_from=tuple(NearerReward(hook, step, loaded.line_of(("learn_from", hook)))
                         for hook, step in sorted((data.get("learn_from") or {}).items())),
    )


def _body(body: str | None) -> str | None:
    # A `|` block keeps its final newline; a message should not end in one.
    return body.rstrip() if body is not None else None
