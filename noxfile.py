"""Sessions: tests, lint, typecheck, docs, bench. CI runs the first four (the README says how).

Sessions use the interpreter nox runs with (Python >= 3.11), each in a virtual environment of its
own, so a fresh machine needs nothing more than nox in a virtual environment (the README's command:
``python3 -m venv .venv && .venv/bin/pip install nox && .venv/bin/python -m nox ...``).
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = not os.environ.get("CI")
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, the backend contract suite and the examples included."""
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
    session.install("-e", ".[test,vsphere]", "mypy>=1.10")
    session.run("mypy", "--strict", "src")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site; warnings are errors."""
    session.install("-e", ".", "mkdocs>=1.6")
    session.run("mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"))


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark; each prints its ratios against a baseline run in the same process."""
    session.install("-e", ".[test]")
    names = session.posargs or sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))
    for name in names:
        session.run("python", str(ROOT / "benchmarks" / name))
