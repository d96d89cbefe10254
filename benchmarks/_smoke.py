"""Smoke mode for the benchmarks: the same code paths at the smallest sizes, no verdict on targets.

``VMFAILOVER_BENCH_SMOKE=1 python benchmarks/bench_x.py`` runs a benchmark with a few VMs and one
round, so that the test suite (``tests/test_benchmarks_smoke.py``) notices a benchmark that no
longer runs (an API it calls changed) without paying for a benchmark run. At such sizes ratios
say nothing, so they are printed as usual but no target is judged: the benchmark says so at its
start and its end and exits 0 unless it crashed or a check that does not depend on size failed
(a failover that did not succeed, two strategies that disagree, a VM that was not ready).

Without the variable (or with ``0``) every benchmark runs at its full sizes and judges its targets
exactly as it always did. Each benchmark imports this module from its own folder.
"""

from __future__ import annotations

import os
from typing import TypeVar

__all__ = ["ENVIRONMENT_VARIABLE", "SMOKE", "announce", "exit_code", "judged", "sized"]

ENVIRONMENT_VARIABLE = "VMFAILOVER_BENCH_SMOKE"

T = TypeVar("T")


def _smoke_requested() -> bool:
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if value in ("", "0"):
        return False
    if value == "1":
        return True
    raise SystemExit(f"{ENVIRONMENT_VARIABLE} must be 1 (smoke run) or 0 / unset, got {value!r}")


SMOKE = _smoke_requested()
"""Whether this process runs the benchmarks in smoke mode (read once, at import)."""


def sized(normal: T, smoke: T) -> T:
    """``normal`` in a benchmark run, ``smoke`` (the smallest size that runs the same code)."""
    return smoke if SMOKE else normal


def announce() -> None:
    """In smoke mode, say so before anything is measured; nothing in a benchmark run."""
    if SMOKE:
        print(
            f"SMOKE RUN ({ENVIRONMENT_VARIABLE}=1): tiny sizes, one round; the ratios below are "
            "printed but mean nothing, and no target is judged",
            flush=True,
        )


def judged(ok: bool, passed: str = "PASS", missed: str = "MISS") -> str:
    """A target's verdict as the benchmark prints it; in smoke mode, that it was not judged."""
    if SMOKE:
        return "not judged (smoke run)"
    return passed if ok else missed


def exit_code(targets_met: bool, *, checks_passed: bool = True) -> int:
    """The benchmark's exit status.

    A benchmark run: 0 when every target is met and every check passed, else 1 (as always). A
    smoke run ignores the targets, says so, and fails only when a size-independent check failed.
    """
    if not SMOKE:
        return 0 if targets_met and checks_passed else 1
    print(
        "SMOKE RUN: verdict skipped (targets not judged at tiny sizes); size-independent checks: "
        + ("passed" if checks_passed else "FAILED"),
        flush=True,
    )
    return 0 if checks_passed else 1
