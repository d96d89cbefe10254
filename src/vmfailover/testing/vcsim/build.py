"""Build the simulator launcher from Debian's Go packages, offline, and cache the binary.

Debian ships govmomi's source (``golang-github-vmware-govmomi-dev``) but no ``vcsim`` command, so we
build our own small program (``launcher/main.go``) in GOPATH mode against Debian's Go source tree.
The few simulator fixes we need (``patches/*.patch``) are applied to a copy of the simulator
package in an overlay GOPATH whose other entries are symlinks into Debian's tree; the Debian tree
itself is never touched. The binary is cached under a key made of our sources, the patches and the
package versions, so a warm start costs nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vmfailover.errors import VMFailoverError

__all__ = [
    "DEBIAN_PACKAGES",
    "GOCODE",
    "VCSimBuildError",
    "build_launcher",
    "cache_dir",
    "missing_packages",
]

HERE = Path(__file__).resolve().parent
LAUNCHER_SOURCE = HERE / "launcher" / "main.go"
PATCHES = HERE / "patches"

GOCODE = Path("/usr/share/gocode")
"""Debian's Go source tree (GOPATH layout)."""

GOVMOMI = Path("src/github.com/vmware/govmomi")

DEBIAN_PACKAGES = (
    "golang-go",
    "golang-github-vmware-govmomi-dev",
    "golang-github-google-uuid-dev",
)
"""What the build needs, installed with ``apt-get install --no-install-recommends``."""

_BUILD_TIMEOUT = 600.0


class VCSimBuildError(VMFailoverError):
    """The simulator launcher could not be built (missing packages, a patch that does not apply)."""


def missing_packages() -> tuple[str, ...]:
    """The Debian packages of :data:`DEBIAN_PACKAGES` that are not installed."""
    missing = []
    if shutil.which("go") is None:
        missing.append("golang-go")
    if not (GOCODE / GOVMOMI / "simulator").is_dir():
        missing.append("golang-github-vmware-govmomi-dev")
    if not (GOCODE / "src/github.com/google/uuid").is_dir():
        missing.append("golang-github-google-uuid-dev")
    return tuple(missing)


def cache_dir() -> Path:
    """Where built launchers are kept.

    ``VMFAILOVER_VCSIM_CACHE`` if set; else ``build/vcsim`` of the source checkout this package
    runs from (an ignored folder); else ``~/.cache/vmfailover/vcsim``.
    """
    configured = os.environ.get("VMFAILOVER_VCSIM_CACHE")
    if configured:
        return Path(configured)
    for parent in HERE.parents:
        if (parent / "pyproject.toml").is_file() and (parent / ".git").exists():
            return parent / "build" / "vcsim"
    return Path.home() / ".cache" / "vmfailover" / "vcsim"


def _toolchain_fingerprint() -> str:
    parts = []
    for package in DEBIAN_PACKAGES:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package],
            capture_output=True,
            text=True,
            check=False,
        )
        parts.append(f"{package}={result.stdout.strip()}")
    go = shutil.which("go")
    parts.append(f"go={Path(go).resolve() if go else None}")
    return ";".join(parts)


def _source_key() -> str:
    digest = hashlib.sha256()
    digest.update(_toolchain_fingerprint().encode())
    for path in (LAUNCHER_SOURCE, *sorted(PATCHES.glob("*.patch"))):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One build at a time across processes (pytest-xdist workers share the cache)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_launcher(*, force: bool = False) -> Path:
    """The path of the launcher binary, built first if the cache has none for these sources.

    Raises :class:`VCSimBuildError` naming the Debian packages to install when they are missing,
    and with the compiler's or ``patch``'s output when the build fails.
    """
    missing = missing_packages()
    if missing:
        raise VCSimBuildError(
            "the vCenter simulator needs Debian packages that are not installed: "
            f"apt-get install -y --no-install-recommends {' '.join(missing)}"
        )
    root = cache_dir()
    key = _source_key()
    binary = root / f"vcsim-launcher-{key}"
    if binary.is_file() and not force:
        return binary
    with _locked(root):
        if binary.is_file() and not force:
            return binary
        with tempfile.TemporaryDirectory(dir=root, prefix="build-") as scratch:
            work = Path(scratch)
            overlay = work / "gopath"
            _make_overlay(overlay)
            package = overlay / "src" / "vmfailover-vcsim"
            package.mkdir(parents=True)
            shutil.copy2(LAUNCHER_SOURCE, package / "main.go")
            output = work / "vcsim-launcher"
            env = {
                **os.environ,
                "GO111MODULE": "off",
                "GOPATH": f"{overlay}{os.pathsep}{GOCODE}",
                "GOCACHE": str(root / "gocache"),
                "GOFLAGS": "",
                "CGO_ENABLED": "0",
            }
            _run(["go", "build", "-o", str(output), "."], cwd=package, env=env, what="go build")
            os.replace(output, binary)
        for stale in root.glob("vcsim-launcher-*"):
            if stale != binary:
                stale.unlink(missing_ok=True)
    return binary


def _make_overlay(overlay: Path) -> None:
    """An overlay GOPATH: govmomi as symlinks into Debian's tree, ``simulator/`` a patched copy.

    The first GOPATH entry shadows a whole import path, so the overlay must offer every package
    of govmomi, not only the patched one.
    """
    debian = GOCODE / GOVMOMI
    target = overlay / GOVMOMI
    target.mkdir(parents=True)
    for entry in debian.iterdir():
        if entry.name != "simulator":
            (target / entry.name).symlink_to(entry)
    shutil.copytree(debian / "simulator", target / "simulator", symlinks=True)
    for patch in sorted(PATCHES.glob("*.patch")):
        _run(
            ["patch", "--batch", "--forward", "-p1", "-i", str(patch)],
            cwd=target,
            env=dict(os.environ),
            what=f"applying {patch.name}",
        )


def _run(command: list[str], *, cwd: Path, env: dict[str, str], what: str) -> None:
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=_BUILD_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as error:
        raise VCSimBuildError(f"{what}: {error.filename} is not installed") from None
    except subprocess.TimeoutExpired:
        raise VCSimBuildError(f"{what}: still running after {_BUILD_TIMEOUT:g} s") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise VCSimBuildError(f"{what} failed (exit {result.returncode}):\n{output}")
