"""Declared data: the prospect data a map's conditions may read (docs/data.md).

A map declares fields, each with a type, optionally the values it may take and whether it is
required. YAML maps write them under `data:`; the compiled BPMN carries them as a `data`
extension property of the process (JSON of the same mapping). BPMN files may also declare them
as Camunda form fields, Camunda 8 embedded forms, `data` / `data.NAME` properties in any dialect,
or data objects. A BPMN file that declares nothing gets an *inferred* declaration: the names
its expressions read, all optional (a warning says so).

    field forms (YAML, or the JSON of a `data` property)
      interest: [customer, distributor, not_now]       enumeration; type from the values
      reminders: integer                              a type name: that type
      note: number of reminders sent                   any other text: a description, any type
      age: {type: integer, required: true, values: [18, 21], description: ...}
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from difflib import get_close_matches
from typing import Any

from engine.errors import ExpressionError, did_you_mean

__all__ = ["TYPES", "DataDeclaration", "DataField", "field_from", "fields_from"]

TYPES = ("string", "number", "integer", "boolean", "date", "any")
Scalar = str | int | float | bool


@dataclass(frozen=True)
class DataField:
    """One declared name. `values` is its enumeration (empty: any value of its type)."""

    name: str
    type: str = "any"
    values: tuple[Scalar, ...] = ()
    required: bool = False
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.values:
            out["values"] = list(self.values)
        out["required"] = self.required
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class DataDeclaration:
    """The fields a map declares; `inferred` when the file declared nothing and the names were
    taken from its expressions."""

    fields: Mapping[str, DataField] = field(default_factory=dict)
    inferred: bool = False

    @property
    def names(self) -> list[str]:
        return sorted(self.fields)

    def to_json(self) -> str:
        return json.dumps({n: f.to_dict() for n, f in sorted(self.fields.items())})

    def read(self, data: Mapping[str, Any], name: str) -> Any:
        """The value of `name` in `data`: None when declared, optional and absent; an
        ExpressionError when not declared or when a required value is missing."""
        declared = self.fields.get(name)
        if declared is None:
            hint = did_you_mean(name, self.fields)
            raise ExpressionError(
                f"{name!r} is not declared data (declared: {', '.join(self.names) or 'none'})"
                + (f"; did you mean {hint!r}?" if hint else ""))
        if name in data:
            return data[name]
        if declared.required:
            raise ExpressionError(f"required data {name!r} is missing")
        return None


    def problems_in(self, data: Mapping[str, Any], known: Collection[str] = (),
                    typos: bool = True) -> list[str]:
        """What is wrong with values a person records (a step's data), for a declaration
        the map wrote (not an inferred one): a declared name given a value of another type or
        outside its values, or an undeclared name a typo away from a declared one (unless
        `known`: the instance has it already, or it is the task's own, such as a
        multi-instance item; `typos=False`: not looked for). A value of None clears an
        optional name. Other undeclared names are free notes: no condition reads them."""
        if self.inferred:
            return []
        out = []
        for name, value in data.items():
            declared = self.fields.get(name)
            if declared is None and (name in known or not typos):
                continue
            if declared is None:
                # a typo apart only (interest_level is a note, not a typo of interest)
                close = get_close_matches(name, list(self.fields), n=1, cutoff=0.8)
                if close:
                    out.append(f"{name!r} is not declared data (did you mean {close[0]!r}?)")
                continue
            if value is None and not declared.required:
                continue
            if not _is_type(value, declared.type):
                out.append(f"{name!r} is declared {declared.type}, not "
                           f"{type(value).__name__} ({value!r})")
            elif declared.values and value not in declared.values:
                hint = did_you_mean(str(value), [str(v) for v in declared.values])
                out.append(f"{name!r} takes {', '.join(repr(v) for v in declared.values)}, "
                           f"not {value!r}" + (f" (did you mean {hint!r}?)" if hint else ""))
        return out


def _is_type(value: Any, kind: str) -> bool:
    if kind == "any":
        return True
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, int | float)
    if kind == "date":
        return isinstance(value, str) and _iso_time(value)
    return isinstance(value, str)


def _iso_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)  # a date alone too
    except ValueError:
        return False
    return True


def _type_of(values: Iterable[Any]) -> str:
    kinds = {type(v) for v in values}
    if kinds == {bool}:
        return "boolean"
    if kinds == {int}:
        return "integer"
    if kinds <= {int, float} and kinds:
        return "number"
    return "string" if kinds == {str} else "any"


def field_from(name: str, spec: Any) -> tuple[DataField | None, str | None]:
    """A field from its written form, or None and why it cannot be read."""
    if isinstance(spec, list):
        if not spec or not all(isinstance(v, (str, int, float, bool)) for v in spec):
            return None, f"the values of {name!r} must be a non-empty list of plain values"
        return DataField(name, _type_of(spec), tuple(spec)), None
    if isinstance(spec, str) or spec is None:
        text = (spec or "").strip()
        if text in TYPES:
            return DataField(name, text), None
        return DataField(name, description=text or None), None
    if not isinstance(spec, dict):
        return None, f"{name!r} must be a list of values, a type name or a mapping"
    unknown = set(spec) - {"type", "values", "required", "description"}
    if unknown:
        key = sorted(unknown)[0]
        hint = did_you_mean(key, ("type", "values", "required", "description"))
        return None, f"unknown key {key!r} in {name!r}" + (f" (did you mean {hint!r}?)"
                                                            if hint else "")
    values = spec.get("values") or []
    if not isinstance(values, list) or not all(
            isinstance(v, (str, int, float, bool)) for v in values):
        return None, f"the values of {name!r} must be a list of plain values"
    kind = spec.get("type") or (_type_of(values) if values else "any")
    if kind not in TYPES:
        return None, f"type of {name!r} must be one of {', '.join(TYPES)}, not {kind!r}"
    required = spec.get("required", False)
    if not isinstance(required, bool):
        return None, f"`required` of {name!r} must be true or false"
    description = spec.get("description")
    return DataField(name, kind, tuple(values), required,
                     description if isinstance(description, str) else None), None


def fields_from(mapping: Any) -> tuple[dict[str, DataField], list[str]]:
    """Fields from a `data:` mapping (YAML, or the parsed JSON of a `data` property)."""
    if not isinstance(mapping, dict):
        return {}, ["`data` must be a mapping of names to their declaration"]
    fields: dict[str, DataField] = {}
    problems: list[str] = []
    for name, spec in mapping.items():
        found, why = field_from(str(name), spec)
        if found is not None:
            fields[found.name] = found
        elif why:
            problems.append(why)
    return fields, problems


def merge(into: dict[str, DataField], more: Mapping[str, DataField]) -> list[str]:
    """Add `more` to `into`; a name declared twice with different types or values is reported
    (a description alone may differ)."""
    problems = []
    for name, new in more.items():
        old = into.get(name)
        if old is None:
            into[name] = new
        elif (old.type, set(old.values)) != (new.type, set(new.values)) and new.type != "any":
            if old.type == "any" and not old.values:
                into[name] = new
            else:
                problems.append(f"{name!r} is declared twice, differently: {old.type} "
                                f"{list(old.values) or ''} and {new.type} {list(new.values) or ''}")
        elif new.required and not old.required:
            into[name] = new
    return problems
