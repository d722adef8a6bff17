"""The README's Python example runs as written, from a checkout, and recommends content."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", markdown, re.M | re.S)


def test_the_readme_example_runs_and_recommends(tmp_path: Path) -> None:
    (example,) = python_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    shutil.copytree(REPO / "processes", tmp_path / "processes")  # "from the repository root"
    (tmp_path / "example.py").write_text(example, encoding="utf-8")
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert done.returncode == 0, done.stderr
    step, arrow, titles = done.stdout.strip().partition(" -> ")
    assert (step, arrow) == ("Add a prospect", " -> ")
    assert titles.startswith("[") and titles.count("'") >= 2  # at least one ranked title
    assert (tmp_path / "nextmove.db").exists()
