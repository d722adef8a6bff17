"""The rules every value from outside meets before the engine acts on it, on every backend.

The engine's public API (`Engine.start`, `complete`, `signal`, `outcome`, `tick`, ...) checks
its arguments here, so the CLI, bulk starts and an HTTP API refuse the same things with the
same sentence, and SQLite and PostgreSQL never disagree about what can be stored:

    ids            prospect, distributor, sponsor, message, actor, content option, event
                   name: 1 to 200 characters, not blank, no control characters (U+0000-U+001F,
                   U+007F-U+009F) and no lone surrogates
    texts          notes and reasons: at most 10,000 characters, no NUL, no lone surrogates
    documents      contexts and step/event data: JSON objects of at most 64 KiB (as JSON) and
                   20 levels of nesting; only JSON values (str, finite int/float, bool, None,
                   list, dict with str keys); strings without NUL or lone surrogates;
                   integers within 64 bits
    indexed keys   `sponsor_id` in a context is an id (or absent/null): the engine indexes it
    amounts        finite numbers within +-1e15
    times          between 1970-01-01 and 9000-01-01 (UTC)
    instance ids   1 to 2**63 - 1 (what a BIGINT column holds)
    counts         batch sizes and limits: at least 1, at most 1,000,000

Each check raises `InvalidInput` naming the field and the rule, or returns the value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from engine.errors import InvalidInput

MAX_ID = 200
MAX_TEXT = 10_000
MAX_DOCUMENT_BYTES = 64 * 1024
MAX_DEPTH = 20
MAX_AMOUNT = 1e15
MAX_INSTANCE_ID = 2**63 - 1
MAX_COUNT = 1_000_000
MAX_INT = 2**63 - 1
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
INDEXED_KEYS = ("sponsor_id",)  # context keys the engine copies into indexed columns

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def identifier(value: Any, field: str) -> str:
    """`value` if it is a usable id (see the module's rules)."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, not {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > MAX_ID:
        raise InvalidInput(field, f"is {len(value):,} characters long; at most {MAX_ID}")
    if (bad := _CONTROL.search(value)) is not None:
        raise InvalidInput(field, f"contains the control character U+{ord(bad.group()):04X} "
                                  f"at position {bad.start() + 1}")
    if _SURROGATE.search(value):
        raise InvalidInput(field, "contains a lone surrogate (not valid Unicode text)")
    return value


def optional_identifier(value: Any, field: str) -> str | None:
    return None if value is None else identifier(value, field)


def text(value: Any, field: str) -> str | None:
    """A free text (a note, a reason): None or a string within the rules."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, not {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise InvalidInput(field, f"is {len(value):,} characters long; at most {MAX_TEXT:,}")
    _plain_string(value, field)
    return value


def _plain_string(value: str, field: str) -> None:
    if "\x00" in value:
        raise InvalidInput(field, "contains a NUL character (U+0000)")
    if _SURROGATE.search(value):
        raise InvalidInput(field, "contains a lone surrogate (not valid Unicode text)")


def document(value: Mapping[str, Any] | None, field: str) -> dict[str, Any]:
    """A context or step data: a JSON object within the size and depth limits (checked
    without recursion, so a deeply nested value cannot exhaust the stack)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(field, f"must be a JSON object, not {type(value).__name__}")
    if not value:  # most steps carry no data
        return {}
    stack: list[tuple[Any, int, str]] = [(value, 1, field)]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            if depth > MAX_DEPTH:
                raise InvalidInput(field, f"is nested more than {MAX_DEPTH} levels deep "
                                          f"(at {where})")
            if isinstance(item, Mapping):
                for key, inner in item.items():
                    if not isinstance(key, str):
                        raise InvalidInput(field, f"has a key that is not text at {where}")
                    _plain_string(key, f"{where} key")
                    stack.append((inner, depth + 1, f"{where}.{key}"))
            else:
                stack.extend((inner, depth + 1, f"{where}[{n}]") for n, inner in enumerate(item))
        elif isinstance(item, str):
            _plain_string(item, where)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_INT:
                raise InvalidInput(where, "is an integer beyond 64 bits")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidInput(where, f"must be a finite number, not {item}")
        else:
            raise InvalidInput(where, f"must be a JSON value, not {type(item).__name__}")
    size = len(json.dumps(value))
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidInput(field, f"is {size:,} bytes as JSON; at most {MAX_DOCUMENT_BYTES:,}")
    return dict(value)


def context(value: Mapping[str, Any] | None, field: str = "context") -> dict[str, Any]:
    """A prospect's context: a document whose indexed keys hold ids."""
    found = document(value, field)
    for key in INDEXED_KEYS:
        if found.get(key) is not None:
            identifier(found[key], f"{field}.{key}")
    return found


def amount(value: Any, field: str = "amount") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(field, f"must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise InvalidInput(field, f"must be a finite number, not {value}")
    if value < 0:  # an order's or a sale's amount: a negative one is a slip, not a refund
        raise InvalidInput(field, f"must be zero or more, not {value}")
    if value > MAX_AMOUNT:
        raise InvalidInput(field, f"{value} is beyond {MAX_AMOUNT:.0e}")
    return float(value)


def instant(value: datetime, field: str = "time") -> datetime:
    """A time within 1970-01-01 .. 9000-01-01 (naive means UTC)."""
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not EARLIEST <= moment < LATEST:
        raise InvalidInput(field, f"{value.isoformat()} is outside 1970-01-01 .. 9000-01-01")
    return value


def instance_id(value: Any, field: str = "instance id") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be a whole number, not {type(value).__name__}")
    if not 1 <= value <= MAX_INSTANCE_ID:
        shown = str(value) if len(str(value)) <= 30 else str(value)[:30] + "..."
        raise InvalidInput(field, f"{shown} is not between 1 and {MAX_INSTANCE_ID}")
    return value


def count(value: Any, field: str) -> int:
    """A batch size or limit: 1 .. 1,000,000."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be a whole number, not {type(value).__name__}")
    if not 1 <= value <= MAX_COUNT:
        raise InvalidInput(field, f"{value} is not between 1 and {MAX_COUNT:,}")
    return value


def json_text(raw: str, field: str) -> dict[str, Any]:
    """A JSON object given as text (an option, a CSV cell), checked as a `document`.

    Too deep a nesting is refused before parsing, so the parser cannot exhaust the stack."""
    if len(raw) > MAX_DOCUMENT_BYTES * 2:
        raise InvalidInput(field, f"is {len(raw):,} characters; at most "
                                  f"{MAX_DOCUMENT_BYTES:,} bytes as JSON")
    depth = deepest = 0
    quoted = escaped = False
    for char in raw:  # a scan, not a parse: brackets inside strings do not count
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    if deepest > MAX_DEPTH:
        raise InvalidInput(field, f"is nested more than {MAX_DEPTH} levels deep")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(field, f"is not valid JSON: {exc.msg} at column {exc.colno}"
                           ) from exc
    except ValueError as exc:  # an integer of thousands of digits
        raise InvalidInput(field, f"is not usable JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInput(field, "must be a JSON object like '{\"key\": \"value\"}'")
    return document(value, field)


__all__ = [
    "EARLIEST", "INDEXED_KEYS", "LATEST", "MAX_AMOUNT", "MAX_COUNT", "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES", "MAX_ID", "MAX_INSTANCE_ID", "MAX_TEXT", "amount", "context",
    "count", "document", "identifier", "instance_id", "instant", "json_text",
    "optional_identifier", "text",
]
