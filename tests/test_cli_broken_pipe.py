"""``vmfailover ... | head -1``: when the reader of the output goes away, the command ends quietly
with 141 (128 + SIGPIPE), as Unix tools do, and prints no BrokenPipeError traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vmfailover.cli import EXIT_BROKEN_PIPE
from vmfailover.engine.journal import RunSummary
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.model import FailoverKind

ROOT = Path(__file__).resolve().parents[1]


def _environment() -> dict[str, str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("VMFAILOVER_")
    }
    environment["PYTHONPATH"] = str(ROOT / "src")
    return environment


def with_reader_gone(*args: str) -> subprocess.CompletedProcess[bytes]:
    """``vmfailover ARGS`` writing into a pipe whose reader has closed it already (as ``head``
    does after its first line), with standard error kept."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "vmfailover", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=_environment(),
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        pytest.param(("validate", str(ROOT / "examples" / "lab-plan.toml")), 141, id="validate"),
        # argparse drops its own failed write of the help (it ignores OSError) and exits 0;
        # what matters is that nothing else complains at exit
        pytest.param(("simulate", "--help"), 0, id="help"),
    ],
)
def test_a_closed_pipe_ends_the_command_quietly(args: tuple[str, ...], code: int) -> None:
    done = with_reader_gone(*args)
    assert done.stderr.decode() == ""
    assert done.returncode == code
    assert EXIT_BROKEN_PIPE == 141


def test_a_reader_that_takes_one_line_of_a_long_output_sees_no_traceback(
    tmp_path: Path,
) -> None:
    """Through a real ``head -1``: the report of a journal with many runs is longer than a
    pipe holds, so the command meets the closed pipe however the two processes are scheduled."""
    journal = tmp_path / "journal.db"
    with SQLiteJournal(journal) as writing:
        for number in range(3000):
            summary = RunSummary(
                f"run-{number:05d}", FailoverKind.TEST, "crm", datetime.now(UTC), "running"
            )
            writing.begin(summary, "{}")
    environment = _environment()
    # unbuffered, a write the closed pipe cuts short returns its count and Python drops the rest
    # without an error; a user's shell buffers standard output
    environment.pop("PYTHONUNBUFFERED", None)
    done = subprocess.run(
        f'"{sys.executable}" -m vmfailover report --journal "{journal}" | head -1; '
        'echo "status ${PIPESTATUS[0]}" >&2',
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert done.stdout.count("\n") == 1, done.stdout
    assert done.stderr == "status 141\n", done.stderr
