"""docs/bpmn.md lists exactly the properties nextmove reads from a BPMN map.

The doc's table is compared with `ACCEPTED_PROPERTIES` (engine.definitions.extract), and the
source of every package is scanned for the property names it actually looks up in a step's or
element's property map (`props.get("hook")`, `step.properties["data"]`,
`read_properties(el).get("purpose")`, ...): each one must be in the doc, and each property in the
doc must be looked up somewhere.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from compliance._text import CARD_PREFIX
from compliance.audit import ACK_PREFIX
from engine.definitions import parse_xml
from engine.definitions._reminders import REMINDERS
from engine.definitions.extract import ACCEPTED_PROPERTIES, RECORDED_PROPERTIES, read_maps

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "bpmn.md"
PACKAGES = ("engine", "nextmove", "compliance", "content_catalog", "learner", "analytics",
            "simulator", "service", "commands")
RECEIVERS = {"props", "properties"}
# Look-ups whose key is not a name written in the code, and what stands for them.
DYNAMIC = {
    # read_properties copies every property (whatever its name) into the step's map
    ("engine/definitions/extract.py", "etree.QName(key).localname"): set(),
    ("engine/definitions/extract.py", "prop.get('name', '')"): set(),
    ("engine/definitions/_reminders.py", "key"): set(REMINDERS),
}
PATTERNS = {"data.NAME": "data.", "compliance.RULE": ACK_PREFIX, "card.LOCALE": CARD_PREFIX}


def documented() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("<!-- properties:start")[1].split("<!-- properties:end -->")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return [re.match(r"\| `([^`]+)`", row).group(1) for row in rows]  # type: ignore[union-attr]


def _is_property_map(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in RECEIVERS
    if isinstance(node, ast.Attribute):
        return node.attr in RECEIVERS
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id == "read_properties"
        # info.get("properties", {})
        return (isinstance(func, ast.Attribute) and func.attr == "get" and bool(node.args)
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == "properties")
    return False


@cache
def looked_up() -> dict[str, set[str]]:
    """Property name -> the files that look it up."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"))
            constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                         and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                         for t in n.targets if isinstance(t, ast.Name)}
            for node in ast.walk(tree):
                key: ast.expr | None = None
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "get" and node.args
                        and _is_property_map(node.func.value)):
                    key = node.args[0]
                elif isinstance(node, ast.Subscript) and _is_property_map(node.value):
                    key = node.slice
                if key is None:
                    continue
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    names = {key.value}
                elif isinstance(key, ast.Name) and key.id in constants:
                    names = {constants[key.id]}
                else:
                    where = (rel, ast.unparse(key))
                    assert where in DYNAMIC, f"{rel}:{node.lineno}: a look-up by {where[1]}"
                    names = DYNAMIC[where]
                for name in names:
                    found.setdefault(name, set()).add(rel)
    return found


def test_the_doc_lists_the_accepted_properties_once_each() -> None:
    names = documented()
    assert len(names) == len(set(names))
    assert set(names) == set(ACCEPTED_PROPERTIES)


def test_every_property_looked_up_is_documented() -> None:
    read = looked_up()
    undocumented = set(read) - set(ACCEPTED_PROPERTIES)
    assert not undocumented, {name: read[name] for name in undocumented}
    assert not set(read) & set(RECORDED_PROPERTIES)


def test_every_documented_property_is_looked_up() -> None:
    read = looked_up()
    plain = [name for name in ACCEPTED_PROPERTIES if name not in PATTERNS]
    assert [name for name in plain if name not in read] == []
    # the two families are read by prefix
    assert ACK_PREFIX == "compliance."
    bpmn_data = (ROOT / "engine/definitions/_bpmn_data.py").read_text(encoding="utf-8")
    assert 'key.startswith("data.")' in bpmn_data
    audit = (ROOT / "compliance/audit.py").read_text(encoding="utf-8")
    assert "startswith(ACK_PREFIX)" in audit
    assert CARD_PREFIX == "card."
    text = (ROOT / "compliance/_text.py").read_text(encoding="utf-8")
    assert "startswith(CARD_PREFIX)" in text
    assert set(PATTERNS) <= set(ACCEPTED_PROPERTIES)


def test_the_scan_finds_what_it_should() -> None:
    """The scanner is not blind: the look-ups everyone knows are there are found."""
    read = looked_up()
    assert "engine/runtime/cards.py" in read["card"]
    assert "engine/definitions/timers.py" in read["catch_up"]
    assert "engine/definitions/_reminders.py" in read["purpose"]
    assert "engine/definitions/extract.py" in read["message_ttl"]


def test_the_doc_has_an_example_per_flavour() -> None:
    text = DOC.read_text(encoding="utf-8")
    for prefix in ("nextmove", "camunda", "zeebe", "spiffworkflow"):
        assert f'<{prefix}:property name="hook"' in text, prefix


def test_the_examples_say_the_same_in_every_flavour() -> None:
    """The doc's four XML examples read as the same step and catch."""
    blocks = re.findall(r"```xml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 4
    seen = []
    for block in blocks:
        (pmap,) = read_maps(parse_xml(block.encode()), "docs/bpmn.md")
        step, catch = pmap.step("share_intro"), pmap.step("video_played")
        assert step is not None and catch is not None
        seen.append((dict(step.properties), catch.message, catch.message_ttl))
    assert all(each == seen[0] for each in seen)
    assert seen[0] == ({"hook": "intro_video", "card": "Send the video with a personal note.",
                        "control": "required", "basis": "FTC income disclosure",
                        "follow_up": "P2D"}, "video_played", "P3D")
