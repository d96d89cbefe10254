"""``vmfailover run``, ``cleanup`` and ``report``: a failover from the command line, across
processes.

``run PLAN --kind test|planned|regular`` fails the plan over on the chosen backend (the lab by
default, see :mod:`vmfailover.cli.backends`), shows its progress and report, prints the run id and
records the run; ``cleanup RUN`` removes a test run's copies in a later process and proves the
inventory is as it was before the test; ``report RUN`` shows the recorded report (``--json``).

Runs are recorded in a small run store, a JSON file (``$VMFAILOVER_RUNS``, else
``vmfailover-runs.json`` in the working directory): each run's report as text and as JSON, the
backend it ran on, its test copies and the inventory before it. Coming: the run journal
(``vmfailover-journal.db``) replaces this store, so ``report`` and ``resume`` read one history.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

from vmfailover.backends.base import Backend
from vmfailover.backends.memory.saved import inventory_document, inventory_from_document
from vmfailover.backends.memory.world_file import read_world, world_lock, write_world
from vmfailover.cli.backends import LAB_BACKEND, lab_path, opened_backend
from vmfailover.cli.commands import load_plan
from vmfailover.cli.output import Output
from vmfailover.cli.show import show_report
from vmfailover.clock import SystemClock
from vmfailover.engine.results import CleanupResult, RunReport, RunResult
from vmfailover.engine.runner import Runner, inventory_differences
from vmfailover.errors import ConflictError, NotFoundError, ValidationError, VMFailoverError
from vmfailover.model import FailoverKind, Inventory, as_enum

__all__ = [
    "DEFAULT_RUNS",
    "RUNS_ENVIRONMENT",
    "clean_up_copies",
    "cleanup_command",
    "run_command",
    "run_report_command",
    "runs_path",
]

DEFAULT_RUNS = "vmfailover-runs.json"
RUNS_ENVIRONMENT = "VMFAILOVER_RUNS"
_FORMAT = "vmfailover-runs"
_LOCK_TIMEOUT = 30.0

EXIT_CLEANUP_INCOMPLETE = 4


def runs_path() -> Path:
    """$VMFAILOVER_RUNS, else the default run store in the working directory."""
    return Path(os.environ.get(RUNS_ENVIRONMENT) or DEFAULT_RUNS)


def run_command(
    output: Output,
    plan_path: Path,
    *,
    kind: str,
    backend: str = LAB_BACKEND,
    lab_file: Path | None = None,
    max_parallel: int = 8,
    as_json: bool = False,
) -> RunResult:
    """Fail the plan over; show and record its report; returns the run's result."""
    failover_kind = as_enum(FailoverKind, kind, "--kind")
    plan = load_plan(plan_path)
    with opened_backend(backend, lab_file) as opened:
        runner = Runner(opened, max_parallel=max_parallel, poll_interval=2.0)
        if not as_json:
            runner.subscribe(output.run_progress())
        run = runner.start(plan, kind=failover_kind)
        report = run.wait()
        copies = run.test_copies
        before = run.inventory_before
    _record(
        report,
        backend=backend,
        lab=str(lab_path(lab_file).resolve()) if backend == LAB_BACKEND else None,
        test_copies=copies,
        inventory_before=before,
    )
    if as_json:
        output.say(report.to_json(indent=2))
        return report.result
    show_report(output, report)
    output.say()
    output.say(f"run id: {report.run_id}", style="bold")
    if failover_kind is FailoverKind.TEST:
        output.say(f"the test copies keep running: vmfailover cleanup {report.run_id}")
    return report.result


def cleanup_command(output: Output, run_id: str, *, as_json: bool = False) -> int:
    """Remove a recorded test run's copies and prove the inventory is restored. Exit 0 when it
    is; 4 when something is left (the differences and errors are shown: run it again)."""
    record = _load_record(run_id)
    if record["kind"] != FailoverKind.TEST.value:
        raise ConflictError(
            f"run {run_id} is a {record['kind']} failover: only a test failover is cleaned up"
        )
    before = inventory_from_document(record["inventory_before"], f"run {run_id} inventory")
    lab = Path(record["lab"]) if record.get("lab") else None
    with opened_backend(record["backend"], lab) as backend:
        result = clean_up_copies(backend, record["test_copies"], before)
    report = record["report"]
    report["cleanup"] = _cleanup_json(result)
    if result.restored:
        report["state"] = "cleaned_up"
    record["text"] += f"\nCleanup at {result.at:%Y-%m-%d %H:%M:%S}: {result.summary()}.\n"
    _store_record(run_id, record)
    if as_json:
        output.say(json.dumps(report["cleanup"], indent=2))
    else:
        output.say(
            f"run {run_id}: {result.summary()}",
            style="bold green" if result.restored else "bold red",
        )
    return 0 if result.restored else EXIT_CLEANUP_INCOMPLETE


def clean_up_copies(
    backend: Backend, copies: list[str] | tuple[str, ...], before: Inventory
) -> CleanupResult:
    """Remove ``copies`` (each at most once; one already gone counts as removed) and compare the
    inventory with ``before``, as :meth:`Runner.cleanup` does for a run of this process."""
    removed: list[str] = []
    errors: list[str] = []
    for copy in copies:
        try:
            backend.remove_test_copy(copy)
            removed.append(copy)
        except VMFailoverError as error:
            errors.append(f"test copy {copy!r}: {error}")
    differences = inventory_differences(before, backend.inventory())
    clock = getattr(backend, "clock", None)
    at = clock.now() if clock is not None else SystemClock().now()
    return CleanupResult(
        at=at,
        removed=tuple(removed),
        restored=not differences and not errors,
        differences=tuple(differences),
        errors=tuple(errors),
    )


def run_report_command(output: Output, run_id: str, *, as_json: bool = False) -> int:
    """Show the recorded report of ``run_id`` (with its cleanup, once cleaned up). Exit 0."""
    record = _load_record(run_id)
    if as_json:
        output.say(json.dumps(record["report"], indent=2))
    else:
        output.say(record["text"].rstrip("\n"))
    return 0


# --- the run store ------------------------------------------------------------------------------


def _record(
    report: RunReport,
    *,
    backend: str,
    lab: str | None,
    test_copies: tuple[str, ...],
    inventory_before: Inventory | None,
) -> None:
    text = io.StringIO()
    show_report(Output(text, plain=True), report)
    record = {
        "kind": report.kind.value,
        "plan": report.plan,
        "backend": backend,
        "lab": lab,
        "test_copies": list(test_copies),
        "inventory_before": None
        if inventory_before is None
        else inventory_document(inventory_before),
        "report": report.as_dict(),
        "text": text.getvalue(),
    }
    _store_record(report.run_id, record)


def _store_record(run_id: str, record: dict[str, Any]) -> None:
    path = runs_path()
    with world_lock(path, _LOCK_TIMEOUT):
        runs = _read_runs(path) if path.exists() else {}
        runs[run_id] = record
        write_world(path, {"format": _FORMAT, "version": 1, "runs": runs})


def _read_runs(path: Path) -> dict[str, Any]:
    document = read_world(path)
    if not (
        isinstance(document, dict)
        and document.get("format") == _FORMAT
        and document.get("version") == 1
        and isinstance(document.get("runs"), dict)
    ):
        raise ValidationError.of(str(path), "is not a vmfailover run store (version 1)")
    return document["runs"]  # type: ignore[no-any-return]


def _load_record(run_id: str) -> dict[str, Any]:
    path = runs_path()
    if not path.exists():
        raise NotFoundError(f"no runs recorded at {str(path)!r} (set ${RUNS_ENVIRONMENT})")
    with world_lock(path, _LOCK_TIMEOUT):
        runs = _read_runs(path)
    record = runs.get(run_id)
    if not isinstance(record, dict):
        known = ", ".join(sorted(runs)[-5:]) or "none"
        raise NotFoundError(f"no run {run_id!r} in {str(path)!r} (recorded: {known})")
    return record


def _cleanup_json(result: CleanupResult) -> dict[str, Any]:
    return {
        "at": result.at.isoformat(),
        "removed": list(result.removed),
        "restored": result.restored,
        "differences": list(result.differences),
        "errors": list(result.errors),
    }
