"""Runner.cleanup_journaled: a test run cleaned up by a runner that did not start it (another
process, as the command line's ``cleanup RUN``), from the journal and the lab saved in between."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmfailover.backends.memory import MemoryBackend
from vmfailover.backends.memory.lab import LAB_NETWORK_MAP, LAB_TEST_NETWORK_MAP, lab
from vmfailover.engine.runner import Runner
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.errors import ConflictError, NotFoundError
from vmfailover.plan import FailoverPlan
from vmfailover.policy.netmap import NetworkMapping

PLAN = FailoverPlan(
    "two",
    ["dc01", "db01"],
    network=NetworkMapping(production=LAB_NETWORK_MAP, test=LAB_TEST_NETWORK_MAP),
)


def _run(tmp_path: Path, kind: str) -> str:
    """A run on the lab, journaled; the lab saved afterwards, as a command line process ends."""
    backend = lab()
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        runner = Runner(backend, journal=journal)
        try:
            report = runner.start(PLAN, kind=kind).wait(600)
        finally:
            runner.close()
    backend.save(tmp_path / "lab.json")
    return report.run_id


def _cleanup(tmp_path: Path, run_id: str) -> tuple[MemoryBackend, object]:
    backend = MemoryBackend.load(tmp_path / "lab.json")
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        runner = Runner(backend, journal=journal)
        try:
            return backend, runner.cleanup_journaled(run_id)
        finally:
            runner.close()


def test_a_later_runner_cleans_up_a_test_run_from_the_journal(tmp_path: Path) -> None:
    run_id = _run(tmp_path, "test")
    backend, report = _cleanup(tmp_path, run_id)
    cleanup = report.cleanup  # type: ignore[attr-defined]
    assert cleanup.restored, cleanup.summary()
    assert len(cleanup.removed) == 2
    assert not [vm for vm in backend.inventory().vms if "-test-" in vm.id]
    assert all(r.state.value == "ready" for r in backend.inventory().replicas)
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        history = journal.report(run_id)
    assert history.summary.state == "cleaned_up"
    assert history.report is not None and history.report.cleanup == cleanup
    with pytest.raises(ConflictError, match="is cleaned up"):  # once is enough
        _cleanup(tmp_path, run_id)


def test_only_an_ended_test_run_of_the_journal_is_cleaned_up(tmp_path: Path) -> None:
    run_id = _run(tmp_path, "planned")
    with pytest.raises(ConflictError):
        _cleanup(tmp_path, run_id)
    with pytest.raises(NotFoundError):
        _cleanup(tmp_path, "run-that-never-was")
    with pytest.raises(ConflictError, match="no journal"):
        Runner(lab(points=1)).cleanup_journaled(run_id)
