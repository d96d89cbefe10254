"""Replication job runs in an SQL journal: the tables, the statements and the rows.

One row per job run (``vmfailover_replication_runs``: the job, start, end, outcome, totals and
the whole :class:`~vmfailover.engine.replication_results.JobResult` as JSON, which is what is
read back) and one row per VM of each run (``vmfailover_replication_vms``: outcome, point made,
bytes moved, points removed, error), so a compliance query in plain SQL needs no JSON.

The SQL is portable like the rest of the journal's (standard types, ``?`` placeholders a
PostgreSQL journal turns into ``%s``, timestamps as ISO 8601 text in UTC with microseconds, so
text order is time order), and every SQL journal can use these statements as they are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from vmfailover.engine.replication_results import JobResult, SyncOutcome
from vmfailover.errors import ValidationError
from vmfailover.model import aware_utc

__all__ = [
    "REPLICATION_SCHEMA",
    "replication_query",
    "replication_rows",
    "result_from_row",
    "stored_time",
]

REPLICATION_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE vmfailover_replication_runs (
        run_id TEXT NOT NULL PRIMARY KEY,
        job TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        outcome TEXT NOT NULL,
        vms INTEGER NOT NULL,
        vms_failed INTEGER NOT NULL,
        bytes_moved BIGINT NOT NULL,
        points_created INTEGER NOT NULL,
        points_removed INTEGER NOT NULL,
        result TEXT NOT NULL
    )""",
    """CREATE TABLE vmfailover_replication_vms (
        run_id TEXT NOT NULL,
        vm TEXT NOT NULL,
        outcome TEXT NOT NULL,
        point_id TEXT,
        point_time TEXT,
        bytes_moved BIGINT NOT NULL,
        points_removed INTEGER NOT NULL,
        error TEXT,
        PRIMARY KEY (run_id, vm)
    )""",
    "CREATE INDEX vmfailover_replication_runs_job ON vmfailover_replication_runs "
    "(job, finished_at)",
    "CREATE INDEX vmfailover_replication_runs_finished ON vmfailover_replication_runs "
    "(finished_at)",
)
"""The statements that create the replication tables (schema version 2 added them)."""

_RUN_INSERT = (
    "INSERT INTO vmfailover_replication_runs (run_id, job, started_at, finished_at, outcome, "
    "vms, vms_failed, bytes_moved, points_created, points_removed, result) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_VM_INSERT = (
    "INSERT INTO vmfailover_replication_vms (run_id, vm, outcome, point_id, point_time, "
    "bytes_moved, points_removed, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def stored_time(moment: datetime) -> str:
    """A time as the replication tables store it: UTC, ISO 8601, always with microseconds."""
    return aware_utc(moment).isoformat(timespec="microseconds")


def replication_rows(result: JobResult) -> list[tuple[str, Sequence[Any]]]:
    """The statements (with parameters) that store ``result``, to run in one transaction.

    ValidationError if ``result`` is not a JobResult or has no ``run_id``.
    """
    given: object = result
    if not isinstance(given, JobResult):
        raise ValidationError.of("replication run", f"expected a JobResult, got {result!r:.80}")
    if not result.run_id:
        raise ValidationError.of(
            f"replication run of job {result.job!r} at {result.started_at}",
            "has no run_id",
            "record results ReplicationJob.run returns",
        )
    failed = sum(1 for vm in result.vms if vm.outcome is SyncOutcome.FAILED)
    statements: list[tuple[str, Sequence[Any]]] = [
        (
            _RUN_INSERT,
            (
                result.run_id,
                result.job,
                stored_time(result.started_at),
                stored_time(result.finished_at),
                result.outcome.value,
                len(result.vms),
                failed,
                result.bytes_moved,
                result.points_created,
                result.points_removed,
                result.to_json(),
            ),
        )
    ]
    statements.extend(
        (
            _VM_INSERT,
            (
                result.run_id,
                vm.vm,
                vm.outcome.value,
                vm.point_id,
                None if vm.point_time is None else stored_time(vm.point_time),
                vm.bytes_moved,
                len(vm.removed),
                vm.reason,
            ),
        )
        for vm in result.vms
    )
    return statements


def replication_query(job: str | None, since: datetime | None) -> tuple[str, list[Any]]:
    """The query (and its parameters) for :meth:`~vmfailover.engine.journal.Journal.
    replication_runs`: the stored results, oldest first. Bad arguments are our ValidationError."""
    given_job: object = job
    if given_job is not None and not isinstance(given_job, str):
        raise ValidationError.of("replication_runs job", f"must be a job name, got {job!r:.80}")
    conditions: list[str] = []
    parameters: list[Any] = []
    if job is not None:
        conditions.append("job = ?")
        parameters.append(job)
    if since is not None:
        conditions.append("finished_at >= ?")
        parameters.append(stored_time(aware_utc(since, "replication_runs since")))
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    query = (
        f"SELECT run_id, result FROM vmfailover_replication_runs{where} ORDER BY started_at, run_id"
    )
    return query, parameters


def result_from_row(row: Sequence[Any]) -> JobResult:
    """The JobResult a ``(run_id, result)`` row of :func:`replication_query` holds."""
    run_id, text = row
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        raise ValidationError.of(
            f"replication run {run_id!r}", "its stored result is not JSON"
        ) from None
    return JobResult.from_dict(data)
