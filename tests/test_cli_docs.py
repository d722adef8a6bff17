"""docs/cli.md is the command reference: it must match the CLI as built."""

import subprocess
import sys
from pathlib import Path

from typer.main import get_command

from cli import app

REPO = Path(__file__).resolve().parent.parent


def test_every_command_has_help_and_is_documented() -> None:
    docs = (REPO / "docs" / "cli.md").read_text()
    commands = get_command(app).commands  # type: ignore[attr-defined]
    assert {"validate", "deploy", "start", "complete", "skip", "show", "list"} <= set(commands)
    for name, command in commands.items():
        assert command.help, f"{name} has no help text"
        assert f"## `nextmove {name}`" in docs, f"{name} is missing from docs/cli.md"


def test_docs_are_generated_from_the_current_cli(tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    typer = Path(sys.executable).parent / "typer"
    subprocess.run([str(typer), "cli.py", "utils", "docs", "--name", "nextmove",
                    "--output", str(out)], cwd=REPO, check=True, capture_output=True)
    assert out.read_text() == (REPO / "docs" / "cli.md").read_text(), (
        "docs/cli.md is stale: run `make docs`")
