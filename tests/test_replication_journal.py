"""Replication job runs in the journal: exactly the runs a schedule made, failures as failures,
read back after reopening, a version-1 journal migrated, and RPO compliance after a restart."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from journal_support import STORES, JournalStore, journal_folder, journal_store, scene, small_plan
from vmfailover import (
    ConflictError,
    JobOutcome,
    MemoryBackend,
    ReplicationJob,
    RetentionPolicy,
    Runner,
    Scheduler,
    SQLiteJournal,
    SyncOutcome,
    ValidationError,
    rpo_status,
)
from vmfailover.engine import sqlite_journal
from vmfailover.engine.journal import Journal
from vmfailover.engine.journal_replication import REPLICATION_SCHEMA
from vmfailover.engine.replication_results import JobResult
from vmfailover.engine.results import RunResult
from vmfailover.testing import lab
from vmfailover.testing.postgres import postgres_server

__all__ = ["postgres_server"]  # the fixture, for the PostgreSQL store

START = datetime(2024, 6, 3, tzinfo=UTC)  # a Monday
VMS = ["web01", "web02", "web03", "mon01"]  # the small disks of the lab: fast syncs


@pytest.fixture
def folder() -> Iterator[Path]:
    with journal_folder() as path:
        yield path


def _job(backend: MemoryBackend, **kwargs: object) -> ReplicationJob:
    options: dict[str, object] = {
        "schedule": {"every": "15m"},
        "retention": RetentionPolicy(last=4, hourly=6),
        "rpo": "20m",
        "backend": backend,
    }
    options.update(kwargs)
    return ReplicationJob("lab", VMS, "esx-b1", "ds-b1", **options)  # type: ignore[arg-type]


def _raw(path: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as raw:
        return raw.execute(query).fetchall()


def test_a_day_of_a_scheduled_job_records_exactly_its_runs(folder: Path) -> None:
    backend = lab(start=START)
    first = backend.clock.now()
    path = folder / "journal.db"
    with SQLiteJournal(path) as journal:
        job = _job(backend)
        with Scheduler([job], journal=journal) as scheduler:
            assert job.journal is journal
            scheduler.run_forever(until=first + timedelta(days=1))
        recorded = journal.replication_runs()
        # Exactly the runs the schedule implies, as the job returned them, oldest first.
        expected = [first, *job.schedule.slots(first, backend.clock.now())]
        assert len(expected) == 96 + 1
        assert [run.started_at for run in recorded] == expected
        assert recorded == job.history
        assert len({run.run_id for run in recorded}) == len(recorded)
        assert all(run.run_id.startswith("repl-2024060") for run in recorded)
        assert all(run.outcome is JobOutcome.SUCCEEDED for run in recorded)
        # Retention removed points along the way, and each removal is recorded with its reason.
        assert sum(run.points_removed for run in recorded) > 0
        assert all(p.reason for run in recorded for vm in run.vms for p in vm.removed)
        assert journal.replication_runs("another job") == ()
        noon = first + timedelta(hours=12)
        assert journal.replication_runs("lab", since=noon) == tuple(
            run for run in recorded if run.finished_at >= noon
        )
    # One row per VM per run, queryable without JSON: bytes and removals add up.
    rows = _raw(
        path,
        "SELECT COUNT(*), SUM(bytes_moved), SUM(points_removed) FROM vmfailover_replication_vms",
    )
    assert rows == [
        (
            len(recorded) * len(VMS),
            sum(run.bytes_moved for run in recorded),
            sum(run.points_removed for run in recorded),
        )
    ]


def test_a_failing_vm_is_recorded_as_failed_with_its_error(folder: Path) -> None:
    backend = lab(start=START)
    web02 = backend.inventory().replica_of("web02")
    backend.faults.fail("sync", target=web02.id, transient=False, times=10**6)
    path = folder / "journal.db"
    with SQLiteJournal(path) as journal:
        job = _job(backend, journal=journal)
        with Scheduler([job]) as scheduler:
            scheduler.run_forever(until=backend.clock.now() + timedelta(hours=1))
        recorded = journal.replication_runs("lab")
    assert len(recorded) == 4 + 1
    for run in recorded:
        assert run.outcome is JobOutcome.PARTIAL
        failed = run.vm("web02")
        assert failed.outcome is SyncOutcome.FAILED and failed.point_id is None
        assert "injected permanent failure" in (failed.reason or "")
        assert all(vm.outcome is SyncOutcome.SYNCED for vm in run.vms if vm.vm != "web02")
    rows = _raw(
        path,
        "SELECT r.outcome, v.vm, v.outcome, v.point_id, v.error FROM vmfailover_replication_vms v "
        "JOIN vmfailover_replication_runs r ON r.run_id = v.run_id WHERE v.outcome = 'failed'",
    )
    assert len(rows) == len(recorded)
    assert {row[:4] for row in rows} == {("partial", "web02", "failed", None)}
    assert all("injected permanent failure" in str(row[4]) for row in rows)
    assert _raw(path, "SELECT DISTINCT vms, vms_failed FROM vmfailover_replication_runs") == [
        (len(VMS), 1)
    ]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[JournalStore]:
    with journal_store(request.param, request) as opened:
        yield opened


def test_each_store_keeps_the_runs_a_job_records(store: JournalStore) -> None:
    """SQLite and PostgreSQL alike: the runs come back from another connection, filtered by job
    and time, and the same run twice is refused."""
    backend = lab(start=START)
    journal = store.open()
    job = _job(backend, journal=journal)
    made = [job.run(), job.run(backend.clock.now() + timedelta(minutes=15))]
    journal.close()
    with store.open() as reopened:
        assert reopened.replication_runs() == tuple(made)
        assert reopened.replication_runs("lab", since=made[1].finished_at) == (made[1],)
        assert reopened.replication_runs("other") == ()
        with pytest.raises(ConflictError, match=made[0].run_id):
            reopened.record_replication(made[0])


def test_a_reopened_journal_reads_the_runs_back(folder: Path) -> None:
    backend = lab(start=START)
    path = folder / "journal.db"
    journal = SQLiteJournal(path)
    job = _job(backend, journal=journal)
    made = [job.run(), job.run(backend.clock.now() + timedelta(minutes=15))]
    journal.close()
    with SQLiteJournal(path) as reopened:
        assert reopened.replication_runs() == tuple(made)
        assert reopened.replication_runs("lab")[0].vm("web01").bytes_moved > 0
        # The same run twice is refused, naming it.
        with pytest.raises(ConflictError, match=made[0].run_id):
            reopened.record_replication(made[0])


def test_a_version_1_journal_is_migrated_and_keeps_its_runs(folder: Path) -> None:
    path = folder / "journal.db"
    with SQLiteJournal(path) as journal:
        report = Runner(scene("regular"), journal=journal, poll_interval=15).failover(
            small_plan(), kind="regular"
        )
    assert report.result is RunResult.SUCCEEDED
    # Make it the file vmfailover wrote before schema 2: no replication tables, version 1.
    with sqlite3.connect(path) as raw:
        for table in ("vmfailover_replication_runs", "vmfailover_replication_vms"):
            raw.execute(f"DROP TABLE {table}")
        raw.execute("UPDATE vmfailover_schema SET version = 1")  # a new file starts at 2
    assert _raw(path, "SELECT MAX(version) FROM vmfailover_schema") == [(1,)]
    assert sqlite_journal.MIGRATIONS[1] == REPLICATION_SCHEMA

    with SQLiteJournal(path) as migrated:
        assert migrated.schema_version == 2
        assert migrated.report(report.run_id).summary.result is RunResult.SUCCEEDED
        assert migrated.replication_runs() == ()
        result = _job(lab(start=START), journal=migrated).run()
        assert migrated.replication_runs() == (result,)
    # The migrated file holds the same tables and indexes as a journal made new.
    SQLiteJournal(folder / "new.db").close()
    query = "SELECT type, name, sql FROM sqlite_master WHERE name LIKE 'vmfailover_%' ORDER BY name"
    assert _raw(path, query) == _raw(folder / "new.db", query)
    versions = _raw(path, "SELECT version FROM vmfailover_schema ORDER BY version")
    assert versions == [(1,), (2,)]


def test_rpo_compliance_after_a_restart_reads_the_journal(folder: Path) -> None:
    """A process that starts again measures the share of the day the RPO was met from the
    journal: the points retention deleted still count for the time they covered."""
    backend = lab(start=START)
    path = folder / "journal.db"
    keep_two = RetentionPolicy(last=2)
    with SQLiteJournal(path) as journal:
        job = _job(backend, retention=keep_two, journal=journal)
        with Scheduler([job], journal=journal) as scheduler:
            scheduler.run_forever(until=backend.clock.now() + timedelta(hours=12))
        backend.clock.advance(45 * 60)  # the process was down for 45 minutes
        before = rpo_status(backend, [job], window="12h")
    with SQLiteJournal(path) as reopened:
        again = _job(backend, retention=keep_two, journal=reopened)
        after = rpo_status(backend, [again], window="12h")
    forgetful = rpo_status(backend, [_job(backend, retention=keep_two)], window="12h")
    for vm in VMS:
        assert after.entry(vm).compliance == before.entry(vm).compliance
        # Met all along but for the end: the last point (15:15) covered until 15:35; now 16:05.
        assert after.entry(vm).compliance == pytest.approx(1 - 30 / 720, abs=1e-9)
        # Without the journal only the two points left count: most of the day looks missed.
        assert (forgetful.entry(vm).compliance or 0) < 0.2


def test_a_journal_that_cannot_store_the_run_does_not_undo_it(folder: Path) -> None:
    backend = lab(start=START)
    journal = SQLiteJournal(folder / "journal.db")
    job = _job(backend, journal=journal)
    journal.close()
    result = job.run()
    assert result.outcome is JobOutcome.SUCCEEDED
    assert any("not recorded in the journal" in note and "closed" in note for note in result.notes)
    assert job.history == (result,)


def test_bad_journals_and_bad_queries_get_our_errors(folder: Path) -> None:
    backend = lab(start=START)
    with pytest.raises(ValidationError, match=r"job 'lab': journal"):
        _job(backend, journal="journal.db")
    with pytest.raises(ValidationError, match="Scheduler journal"):
        Scheduler([_job(backend)], journal=42)  # type: ignore[arg-type]
    with SQLiteJournal(folder / "a.db") as first, SQLiteJournal(folder / "b.db") as second:
        with pytest.raises(ValidationError, match=r"job 'lab'.*records its runs in"):
            Scheduler([_job(backend, journal=first)], journal=second)
        with pytest.raises(ValidationError, match="replication_runs job"):
            first.replication_runs(3)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="naive"):
            first.replication_runs(since=datetime(2024, 6, 3))
        result = _job(backend).run()
        with pytest.raises(ValidationError, match="has no run_id"):
            first.record_replication(attrs.evolve(result, run_id=""))
        with pytest.raises(ValidationError, match="expected a JobResult"):
            first.record_replication({"job": "lab"})  # type: ignore[arg-type]
        assert first.replication_runs() == ()
    with pytest.raises(ValidationError, match="not a job result"):
        JobResult.from_dict({"job": "lab", "vms": "web01"})
    with pytest.raises(ValidationError, match="not a job result"):
        JobResult.from_dict([1, 2])


def test_every_journal_implements_the_replication_history() -> None:
    """The interface names the two methods, so a store without them cannot be built."""
    assert {"record_replication", "replication_runs"} <= Journal.__abstractmethods__
