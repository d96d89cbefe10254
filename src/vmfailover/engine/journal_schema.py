"""The journal's tables and the rules for their versions, shared by every SQL journal.

The statements are portable SQL (standard types, no ``AUTOINCREMENT`` or ``INSERT OR REPLACE``,
sequence numbers given by the runner, timestamps as ISO 8601 text, ``?`` placeholders that a
PostgreSQL journal turns into ``%s``), so :class:`~vmfailover.engine.sqlite_journal.SQLiteJournal`
and :class:`~vmfailover.engine.postgres_journal.PostgresJournal` hold the same tables, migrate
them with the same steps and refuse the same versions with the same messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from vmfailover.engine.journal import EntryKind, JournaledRun, JournalEntry, RunSummary
from vmfailover.engine.journal_replication import REPLICATION_SCHEMA
from vmfailover.errors import ConflictError

__all__ = [
    "MIGRATIONS",
    "SCHEMA",
    "SUMMARY_COLUMNS",
    "TABLES",
    "journaled_run",
    "library_version",
    "migration_steps",
    "summary_from_row",
    "summary_update",
    "version_row",
]

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE vmfailover_schema (
        version INTEGER NOT NULL,
        written_by TEXT NOT NULL,
        applied_at TEXT NOT NULL
    )""",
    """CREATE TABLE vmfailover_runs (
        run_id TEXT NOT NULL PRIMARY KEY,
        kind TEXT NOT NULL,
        plan TEXT NOT NULL,
        backend TEXT NOT NULL,
        owner TEXT NOT NULL,
        started_at TEXT NOT NULL,
        state TEXT NOT NULL,
        ended_at TEXT,
        result TEXT,
        rto_seconds DOUBLE PRECISION,
        rto_target_seconds DOUBLE PRECISION,
        record TEXT NOT NULL,
        report TEXT
    )""",
    """CREATE TABLE vmfailover_entries (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        vm TEXT,
        operation TEXT,
        data TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    )""",
    "CREATE INDEX vmfailover_runs_started ON vmfailover_runs (started_at)",
    *REPLICATION_SCHEMA,
)
"""The statements that create the current schema (version :data:`SCHEMA_VERSION`)."""

TABLES = (
    "vmfailover_schema",
    "vmfailover_runs",
    "vmfailover_entries",
    "vmfailover_replication_runs",
    "vmfailover_replication_vms",
)
"""The journal's tables."""

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: REPLICATION_SCHEMA,  # 2 adds the replication job runs
}
"""version -> the statements that bring a journal of that version to the next one."""

SUMMARY_COLUMNS = (
    "run_id, kind, plan, backend, owner, started_at, state, ended_at, result, rto_seconds, "
    "rto_target_seconds"
)


def library_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vmfailover")
    except PackageNotFoundError:  # running from a source tree
        return "unknown"


def version_row(version: int) -> tuple[str, tuple[Any, ...]]:
    """The statement that records that the journal now has schema ``version``."""
    return (
        "INSERT INTO vmfailover_schema (version, written_by, applied_at) VALUES (?, ?, ?)",
        (version, library_version(), datetime.now(UTC).isoformat()),
    )


def migration_steps(
    where: str,
    found: int,
    written_by: str,
    current: int,
    migrations: Mapping[int, Sequence[str]],
) -> list[tuple[int, Sequence[str]]]:
    """The migrations, in order, that bring a journal of schema ``found`` to ``current``: each
    the version it reaches and its statements. ConflictError naming both versions (and who wrote
    the journal) when the journal is newer than this vmfailover or a step is missing."""
    if found > current:
        raise ConflictError(
            f"journal {where} has schema version {found} (written by vmfailover {written_by}); "
            f"this vmfailover ({library_version()}) reads schema versions up to {current}: "
            "open it with a newer vmfailover"
        )
    steps: list[tuple[int, Sequence[str]]] = []
    for version in range(found, current):
        statements = migrations.get(version)
        if statements is None:
            raise ConflictError(
                f"journal {where} has schema version {found} (written by vmfailover "
                f"{written_by}), which this vmfailover ({library_version()}, schema {current}) "
                "cannot migrate"
            )
        steps.append((version + 1, statements))
    return steps


def summary_from_row(row: Sequence[Any]) -> RunSummary:
    """A run's summary from the :data:`SUMMARY_COLUMNS` of its row."""
    (run_id, kind, plan, backend, owner, started, state, ended, result, rto, target) = row
    return RunSummary(
        run_id=run_id,
        kind=kind,
        plan=plan,
        backend=backend,
        owner=owner,
        started_at=datetime.fromisoformat(started),
        state=state,
        ended_at=None if ended is None else datetime.fromisoformat(ended),
        result=result,
        rto_seconds=rto,
        rto_target_seconds=target,
    )


def journaled_run(row: Sequence[Any], entries: Sequence[Sequence[Any]]) -> JournaledRun:
    """A run from its row (:data:`SUMMARY_COLUMNS`, then ``record``) and its entries' rows
    (``run_id, seq, kind, at, vm, operation, data``)."""
    return JournaledRun(
        summary=summary_from_row(row[:-1]),
        record=row[-1],
        entries=tuple(
            JournalEntry(
                r[0], r[1], EntryKind(r[2]), datetime.fromisoformat(r[3]), r[4], r[5], r[6]
            )
            for r in entries
        ),
    )


def summary_update(entry: JournalEntry) -> tuple[str, tuple[Any, ...]] | None:
    """The change an entry makes to its run's row, if any (``?`` placeholders; the run id is
    the last parameter, after ``WHERE run_id = ?``, so a store may add conditions)."""
    if entry.kind is EntryKind.STATE:
        return (
            "UPDATE vmfailover_runs SET state = ? WHERE run_id = ?",
            (json.loads(entry.data)["to"], entry.run_id),
        )
    if entry.kind is EntryKind.END:
        payload = json.loads(entry.data)
        return (
            "UPDATE vmfailover_runs SET ended_at = ?, result = ?, rto_seconds = ?, report = ? "
            "WHERE run_id = ?",
            (
                entry.at.isoformat(),
                payload["result"],
                payload["rto_seconds"],
                payload["report"],
                entry.run_id,
            ),
        )
    if entry.kind is EntryKind.RESUMED:
        return (
            "UPDATE vmfailover_runs SET owner = ? WHERE run_id = ?",
            (json.loads(entry.data)["owner"], entry.run_id),
        )
    if entry.kind is EntryKind.CLEANUP:
        payload = json.loads(entry.data)
        return (
            "UPDATE vmfailover_runs SET report = ? WHERE run_id = ?",
            (payload["report"], entry.run_id),
        )
    if entry.kind is EntryKind.AFTERCARE:
        payload = json.loads(entry.data)
        if "report" not in payload:
            return None  # a failback's link: the run's row does not change
        return (
            "UPDATE vmfailover_runs SET report = ?, state = ? WHERE run_id = ?",
            (payload["report"], payload["state"], entry.run_id),
        )
    return None
