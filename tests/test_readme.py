"""The README's Python example runs as written, from a checkout, and recommends content; its
day-to-day commands run through the CLI in the README's order."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def readme_commands() -> list[list[str]]:
    """The day-to-day commands of the README, as argument lists, in the README's order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"Day to day.*?```sh\n(.*?)^```$", text, re.M | re.S)
    assert block is not None
    joined = block.group(1).replace("\\\n", " ")
    return [shlex.split(line, comments=True)[1:] for line in joined.splitlines()
            if line.startswith("nextmove ")]


def test_the_readme_day_to_day_commands_run_in_their_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cli import app

    runner = CliRunner(env={"NEXTMOVE_DB": str(tmp_path / "readme.db")})
    monkeypatch.chdir(tmp_path)
    shutil.copytree(REPO / "processes", tmp_path / "processes")
    commands = readme_commands()
    names = [c[0] for c in commands]
    # the event comes before the step that waits for it (share_intro is still to do)
    assert names.index("signal") < names.index("show")
    for args in commands:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        if args[0] == "signal":
            assert result.stdout.startswith("held: nothing of prospect p-17 waits for "
                                            "'video_played' yet; evt-991 is held until ")

    shown = json.loads(runner.invoke(app, ["show", "--prospect", "p-17", "--json"]).stdout)
    assert [w["step_id"] for w in shown["waiting"] if w["kind"] == "user"] == ["share_intro"]
    assert [(e["message"], e["message_id"], e["status"]) for e in shown["held_events"]] == [
        ("video_played", "evt-991", "held")]

    done = runner.invoke(app, ["complete", "share_intro", "--prospect", "p-17", "--json"])
    assert done.exit_code == 0, done.output
    waits = json.loads(done.stdout)["waiting"]
    assert [w["step_id"] for w in waits if w["kind"] != "timer"] == ["conversation"]
    shown = json.loads(runner.invoke(app, ["show", "--prospect", "p-17", "--json"]).stdout)
    assert shown["held_events"] == []
    (message,) = [e for e in shown["history"] if e["kind"] == "message"]
    assert (message["step_id"], message["data"]["message_id"]) == (
        "Event_wait_for_video_video_played", "evt-991")
