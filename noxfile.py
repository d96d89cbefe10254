"""Sessions: tests, lint, typecheck, docs, bench. CI runs the first four (the README says how).

Sessions use the interpreter nox runs with (Python >= 3.11), each in a virtual environment of its
own, so a fresh machine needs nothing more than nox in a virtual environment (the README's command:
``python3 -m venv .venv && .venv/bin/pip install nox && .venv/bin/python -m nox ...``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = not os.environ.get("CI")
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent

# What the vCenter simulator is built from (vmfailover.testing.vcsim), installed when missing.
VCSIM_PACKAGES = (
    "golang-go",
    "golang-github-vmware-govmomi-dev",
    "golang-github-google-uuid-dev",
    "patch",
)
# The real PostgreSQL the lease and journal tests run against (vmfailover.testing.postgres starts
# a throwaway server from its binaries), installed when missing.
POSTGRES_PACKAGES = ("postgresql",)
TEST_PEER_PACKAGES = VCSIM_PACKAGES + POSTGRES_PACKAGES


def _missing_debian_packages() -> list[str]:
    missing = []
    for package in TEST_PEER_PACKAGES:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Status}", package],
            capture_output=True,
            text=True,
            check=False,
        )
        if "install ok installed" not in result.stdout:
            missing.append(package)
    return missing


def _install_debian_packages(session: nox.Session) -> None:
    """Install the test peers' packages when missing (CI runs as root); else do nothing.

    The vSphere simulator's build packages and PostgreSQL's server.
    """
    if shutil.which("dpkg-query") is None:
        session.warn(
            "not a Debian system: the vSphere simulator tests need Go and govmomi, the lease "
            "tests PostgreSQL's server binaries (VMFAILOVER_PG_BIN names their folder)"
        )
        return
    missing = _missing_debian_packages()
    if not missing:
        return
    apt = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if os.geteuid() != 0:
        session.error(f"missing Debian packages; run as root: {' '.join(apt)}")
    install = subprocess.run(apt, check=False)
    if install.returncode != 0:
        session.run("apt-get", "update", external=True)
        session.run(*apt, external=True)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, the backend contract suites and the examples included."""
    _install_debian_packages(session)
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "-n",
        "auto",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": "ci"},
    )


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "examples", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test,vsphere]", "mypy>=1.10", "types-PyYAML")
    session.run("mypy", "--strict", "src")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site; warnings are errors. The API reference is generated from
    the docstrings by mkdocstrings, which reads the source statically (griffe): no network."""
    session.install("-e", ".", "mkdocs>=1.6", "mkdocstrings[python]>=0.26")
    session.run("mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"))


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark; each prints its ratios against a baseline run in the same process."""
    # bench_vsphere builds the simulator; bench_lease starts PostgreSQL.
    _install_debian_packages(session)
    session.install("-e", ".[test]")
    names = session.posargs or sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))
    for name in names:
        session.run("python", str(ROOT / "benchmarks" / name))
