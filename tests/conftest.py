import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The ci profile has no deadlines, so a slow or loaded machine cannot make a property test flaky.
settings.register_profile(
    "ci", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


# --- nothing a test does may leave files in the checkout --------------------------------------
# Drawn text once became file names (journals opened by the bad-input harness) in the working
# folder, and from there reached a commit. The controller process compares the checkout's
# untracked, not ignored files before and after the session and fails the session when
# something new appeared (build folders and caches are ignored by .gitignore).

_ROOT = Path(__file__).resolve().parents[1]
_UNTRACKED_BEFORE: list[set[str]] = []


def _untracked() -> set[str] | None:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--others", "--exclude-standard", "-z"],
            cwd=_ROOT,
            capture_output=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # not a git checkout (an unpacked sdist): nothing to compare
    return set(listed.stdout.decode("utf-8", "surrogateescape").split("\0")) - {""}


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        before = _untracked()
        if before is not None:
            _UNTRACKED_BEFORE.append(before)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput") or not _UNTRACKED_BEFORE:
        return
    after = _untracked()
    left = sorted((after or set()) - _UNTRACKED_BEFORE[0])
    if left:
        shown = ", ".join(repr(name) for name in left[:10])
        print(f"\ntests left {len(left)} new file(s) in the checkout: {shown}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
