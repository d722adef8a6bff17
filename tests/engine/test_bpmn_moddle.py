"""A map in each flavour survives a round trip through bpmn-moddle with its properties.

bpmn-moddle is the BPMN reader and writer of bpmn-js and Camunda Modeler: a file it reads
without warnings and writes back is what a designer gets after opening and saving it. With the
Camunda flavours, Camunda's own moddle extension is loaded (as Camunda Modeler does for that
platform), so the properties are read as typed `camunda:Property` / `zeebe:Property` elements,
which the properties panel and the element templates work on.

Needs node; the npm packages (tests/node/package-lock.json) are installed on first use with
`npm ci --prefix tests/node` (tests/engine/_node.py; CI installs node and npm, see .ci/run).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.definitions.compile import export_bpmn
from engine.definitions.flavours import FLAVOURS, with_flavour
from tests.engine._node import node_with_packages, run_script
from tests.engine.test_flavours import BPMN_MAP, YAML_MAP, Seen, _hooks, _seen

TYPED = {"camunda7": "camunda:Property", "camunda8": "zeebe:Property"}


@pytest.fixture(scope="module")
def node() -> str:
    return node_with_packages()


@pytest.fixture(scope="module")
def originals() -> Seen:
    return _seen([YAML_MAP, BPMN_MAP])


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_bpmn_moddle_keeps_every_property(node: str, flavour: str, tmp_path: Path,
                                          originals: Seen) -> None:
    journey = tmp_path / "journey.bpmn"
    export_bpmn(YAML_MAP, journey, flavour)
    onboarding = tmp_path / "onboarding.bpmn"
    onboarding.write_bytes(with_flavour(BPMN_MAP.read_bytes(), flavour))
    saved = []
    for path in (journey, onboarding):
        out = tmp_path / f"saved_{path.name}"
        result = run_script(node, "moddle_roundtrip.mjs", str(path), str(out), flavour)
        assert result["root"] == "bpmn:Definitions"
        assert result["warnings"] == []
        if flavour in TYPED:
            assert result["types"][TYPED[flavour]] >= 10, result["types"]
        saved.append(out)
    after = _seen(saved)
    assert after == originals
    assert len(_hooks(after)) >= 8
