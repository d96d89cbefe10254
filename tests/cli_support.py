"""The command line as a user starts it: ``python -m vmfailover ARGS`` in a folder of its own.

The child sees this checkout's ``src`` (and ``tests``, for test-only backends), and none of the
``VMFAILOVER_*`` settings of the process running the tests, so what it does depends only on its
arguments and its folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def vmfailover(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line in ``folder``; its exit code and output (bounded to five minutes)."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("VMFAILOVER_")
    }
    environment["PYTHONPATH"] = os.pathsep.join((str(ROOT / "src"), str(ROOT / "tests")))
    return subprocess.run(
        [sys.executable, "-m", "vmfailover", *args],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
