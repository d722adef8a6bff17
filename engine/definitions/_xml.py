"""Parse untrusted XML: no DTDs, no entities, no network, bounded size.

Process maps come from designers and modelers we do not control, so a file with a DOCTYPE is
refused outright (BPMN never needs one), which rules out billion-laughs bombs and external
entities (XXE) before lxml sees them; the parser is hardened as well, as a second wall.
"""

from __future__ import annotations

import re

from lxml import etree

from engine.errors import DefinitionError

MAX_XML_BYTES = 10 * 1024 * 1024

_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def parse_xml(data: bytes, file: str | None = None) -> etree._ElementTree:
    """Parse `data` safely; any refusal or syntax error is a DefinitionError with a line."""
    if len(data) > MAX_XML_BYTES:
        raise DefinitionError(
            f"file is {len(data)} bytes; process maps are limited to {MAX_XML_BYTES} bytes",
            file=file,
            code="too-large",
        )
    # UTF-16/32 files hide the marker from a byte scan; decode those before looking.
    text: bytes = data
    utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
    if utf16 or data[:4] in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00"):
        try:
            text = data.decode("utf-16" if utf16 else "utf-32").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise DefinitionError(f"cannot decode file: {exc}", file=file, code="xml") from exc
    found = _DOCTYPE.search(text)
    if found:
        raise DefinitionError(
            "DOCTYPE and ENTITY declarations are not allowed in process maps "
            "(they enable entity-expansion and external-entity attacks)",
            file=file,
            line=text.count(b"\n", 0, found.start()) + 1,
            code="xml-doctype",
        )
    try:
        tree = etree.ElementTree(etree.fromstring(data, _parser()))
    except etree.XMLSyntaxError as exc:
        msg = exc.msg if getattr(exc, "msg", None) else str(exc)
        raise DefinitionError(
            f"not well-formed XML: {msg}", file=file, line=exc.lineno or None, code="xml"
        ) from exc
    if tree.docinfo.doctype:
        raise DefinitionError(
            "DOCTYPE declarations are not allowed in process maps",
            file=file, line=1, code="xml-doctype",
        )
    return tree
