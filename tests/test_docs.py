"""The quickstart does what it says: its Python runs, and its commands exit as it claims."""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

import pytest

from vmfailover.cli import main

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")


# The section that runs a failover needs a folder of its own and the commands' order, across
# processes: tests/test_cli_new_user.py plays it.
RUN_SECTION = "## Run a test failover from the command line"


def blocks(language: str, text: str = QUICKSTART) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)\n```", text, flags=re.DOTALL)


def test_the_quickstart_python_runs(capsys: pytest.CaptureFixture[str]) -> None:
    (code,) = blocks("python")
    exec(compile(code, "docs/quickstart.md", "exec"), {})
    out = capsys.readouterr().out
    assert "No findings" in out
    assert "Monte Carlo over 500 runs" in out
    assert "test failover of plan 'three-tier'" in out and "succeeded, 12/12 VMs ready" in out


COMMANDS = [
    line
    for block in blocks("sh", QUICKSTART.split(RUN_SECTION)[0])
    for line in block.splitlines()
    if line.startswith("vmfailover ")
]


@pytest.mark.parametrize("line", COMMANDS)
def test_the_quickstart_commands_exit_as_it_says(
    line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    command, _, comment = line.partition("#")
    expected = 3 if "exit 3" in comment else 0
    assert main(shlex.split(command)[1:], out=io.StringIO()) == expected


def test_the_quickstart_shows_commands() -> None:
    assert len(COMMANDS) == 5
