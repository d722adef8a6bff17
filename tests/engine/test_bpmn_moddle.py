"""A map in each flavour survives a round trip through bpmn-moddle with its properties.

bpmn-moddle is the BPMN reader and writer of bpmn-js and Camunda Modeler: a file it reads
without warnings and writes back is what a designer gets after opening and saving it. With the
Camunda flavours, Camunda's own moddle extension is loaded (as Camunda Modeler does for that
platform), so the properties are read as typed `camunda:Property` / `zeebe:Property` elements,
which the properties panel and the element templates work on.

Needs node; the npm packages (tests/node/package-lock.json) are installed on first use with
`npm ci --prefix tests/node` (CI installs node and npm, see .ci/run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.definitions.compile import export_bpmn
from engine.definitions.flavours import FLAVOURS, with_flavour
from tests.engine.test_flavours import BPMN_MAP, YAML_MAP, Seen, _hooks, _seen

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCRIPT = NODE_DIR / "moddle_roundtrip.mjs"
TYPED = {"camunda7": "camunda:Property", "camunda8": "zeebe:Property"}


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        _unavailable("node is needed for the bpmn-moddle round trip (apt-get install nodejs npm)")
        raise AssertionError  # not reached
    if not (NODE_DIR / "node_modules" / "bpmn-moddle").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            _unavailable("npm is needed to install bpmn-moddle (apt-get install npm)")
            raise AssertionError
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)],
                              capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            _unavailable(f"npm ci --prefix tests/node failed: {done.stderr[-2000:]}")
    return found


def _round_trip(node: str, source: Path, target: Path, flavour: str) -> dict[str, Any]:
    done = subprocess.run([node, str(SCRIPT), str(source), str(target), flavour],
                          capture_output=True, text=True, timeout=120, check=False, cwd=NODE_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


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
        result = _round_trip(node, path, out, flavour)
        assert result["root"] == "bpmn:Definitions"
        assert result["warnings"] == []
        if flavour in TYPED:
            assert result["types"][TYPED[flavour]] >= 10, result["types"]
        saved.append(out)
    after = _seen(saved)
    assert after == originals
    assert len(_hooks(after)) >= 8
