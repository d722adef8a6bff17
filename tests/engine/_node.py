"""node with the npm packages of tests/node (installed from its lock file on first use).

Outside CI a machine without node or npm skips the tests that need them; in CI (`CI=true`,
where .ci/run installs node and npm) they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def node_with_packages() -> str:
    """The path of node, once tests/node/node_modules is installed (else skip or fail)."""
    found = shutil.which("node")
    if found is None:
        _unavailable("node is needed (apt-get install nodejs npm)")
        raise AssertionError  # not reached
    wanted = json.loads((NODE_DIR / "package.json").read_text(encoding="utf-8"))["dependencies"]
    if not all((NODE_DIR / "node_modules" / name).is_dir() for name in wanted):
        npm = shutil.which("npm")
        if npm is None:
            _unavailable("npm is needed to install tests/node's packages (apt-get install npm)")
            raise AssertionError
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)],
                              capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            _unavailable(f"npm ci --prefix tests/node failed: {done.stderr[-2000:]}")
    return found


def run_script(node: str, script: str, *args: str) -> dict[str, Any]:
    """Run tests/node/`script` with `args`; its JSON output."""
    done = subprocess.run([node, str(NODE_DIR / script), *args], capture_output=True, text=True,
                          timeout=120, check=False, cwd=NODE_DIR)
    assert done.stdout.strip(), done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result
