"""Stream an XES file (plain or gzipped) trace by trace, safely.

Logs come from other systems, so the parser is hardened like the process-map parser
(`engine.definitions._xml`): a DOCTYPE or ENTITY declaration anywhere in the bytes is refused
before lxml sees it (billion laughs, XXE), and lxml itself resolves no entities, loads no DTD and
touches no network. Elements are cleared as soon as they are read, so memory stays at one trace
whatever the file's size. Only the direct attribute children of `<trace>` and `<event>` count;
nested (meta) attributes and log-level globals are ignored, as pm4py does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from lxml import etree

from learner._records import LogImportError

_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_TYPED = {"string", "date", "int", "float", "boolean", "id"}


@dataclass(frozen=True)
class XesEvent:
    index: int  # 1-based within its trace
    line: int | None
    attributes: dict[str, Any]


@dataclass(frozen=True)
class XesTrace:
    index: int  # 1-based within the log
    line: int | None
    attributes: dict[str, Any]
    events: list[XesEvent]


class _Guarded:
    """A binary reader that refuses DTD/entity declarations in the bytes it hands on."""

    def __init__(self, raw: IO[bytes], file: str) -> None:
        self._raw = raw
        self._file = file
        self._tail = b""
        self._lines = 1

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        if self._lines == 1 and not self._tail and chunk[:2] in (b"\xff\xfe", b"\xfe\xff"):
            # the byte scan below reads UTF-8 (as XES tools write it); refuse what it cannot
            raise LogImportError("XES logs must be UTF-8 (this one is UTF-16 or UTF-32)",
                                 file=self._file, line=1, reason="unsafe-xml")
        window = self._tail + chunk
        found = _DECLARATION.search(window)
        if found:
            line = self._lines + window.count(b"\n", 0, found.start()) - self._tail.count(b"\n")
            raise LogImportError(
                "DOCTYPE and ENTITY declarations are not allowed in XES logs (they enable "
                "entity-expansion and external-entity attacks)",
                file=self._file, line=line, reason="unsafe-xml")
        self._lines += chunk.count(b"\n")
        self._tail = chunk[-16:]
        return chunk


_LOCAL: dict[Any, str] = {}


def _local(tag: Any) -> str:
    found = _LOCAL.get(tag)
    if found is None:
        # comments and processing instructions have non-text tags
        found = _LOCAL[tag] = tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
    return found


def _value(kind: str, text: str | None) -> Any:
    if text is None:
        return None
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "boolean":
        return text.strip().lower() == "true"
    if kind == "date":
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return text


def _attributes(element: Any) -> dict[str, Any]:
    """Direct typed children as key → value; a value that does not parse stays text (the
    importer then reports it if it matters, e.g. a bad timestamp)."""
    out: dict[str, Any] = {}
    for child in element:
        kind = _local(child.tag)
        if kind not in _TYPED:
            continue
        key = child.get("key")
        if key is None:
            continue
        text = child.get("value")
        try:
            out[key] = _value(kind, text)
        except ValueError:
            out[key] = text
    return out


def read_xes(
    raw: IO[bytes], file: str, on_chunk: Callable[[], None] | None = None,
) -> Iterator[XesTrace]:
    """Each trace with its events, in file order."""
    context = etree.iterparse(
        _Guarded(raw, file), events=("end",), resolve_entities=False, no_network=True,
        load_dtd=False, dtd_validation=False, huge_tree=False, remove_comments=True,
        remove_pis=True,
    )
    traces = 0
    events: list[XesEvent] = []
    try:
        for _action, element in context:
            local = _local(element.tag)
            if local == "event":
                events.append(XesEvent(len(events) + 1, element.sourceline, _attributes(element)))
                element.clear()
            elif local == "trace":
                traces += 1
                yield XesTrace(traces, element.sourceline, _attributes(element), events)
                events = []
                element.clear()
                parent = element.getparent()
                while parent is not None and element.getprevious() is not None:
                    del parent[0]
                if on_chunk is not None and traces % 100 == 0:
                    on_chunk()
    except etree.XMLSyntaxError as exc:
        raise LogImportError(f"not well-formed XML: {exc.msg or exc}", file=file,
                             line=exc.lineno or None, reason="xml") from exc
    if traces == 0 and not events:
        raise LogImportError("no <trace> elements found: is this an XES log?", file=file,
                             reason="format")
