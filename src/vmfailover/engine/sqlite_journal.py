"""The embedded journal: one SQLite file (standard library ``sqlite3``), durable at every commit.

WAL mode with ``synchronous=FULL``: a commit returns only once the write-ahead log is synced to
disk, so an intent :meth:`~SQLiteJournal.append` stored survives a crash of the process and of
the machine. The runner groups the entries of concurrent steps into one commit, so the cost of a
sync is shared.

The tables and their portable SQL live in :mod:`~vmfailover.engine.journal_schema`, shared with
:class:`~vmfailover.engine.postgres_journal.PostgresJournal`. A schema version table says which
version of the schema a file holds: an older one is migrated on open, a newer one (or a file
that is not a journal) is refused with an error naming the versions.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from vmfailover.engine.journal import (
    SCHEMA_VERSION,
    EntryKind,
    Journal,
    JournaledRun,
    JournalEntry,
    RunSummary,
)
from vmfailover.engine.journal_replication import (
    replication_query,
    replication_rows,
    result_from_row,
)
from vmfailover.engine.journal_schema import (
    MIGRATIONS,
    SCHEMA,
    SUMMARY_COLUMNS,
    journaled_run,
    migration_steps,
    summary_from_row,
    summary_update,
    version_row,
)
from vmfailover.engine.replication_results import JobResult
from vmfailover.errors import ConflictError, NotFoundError, ValidationError

__all__ = ["MIGRATIONS", "SCHEMA", "SQLiteJournal"]

_SUMMARY = SUMMARY_COLUMNS


class SQLiteJournal(Journal):
    """A journal in the SQLite file ``path`` (created if missing; its folder must exist).

    Opening a file whose schema is newer than this version of vmfailover reads raises
    :class:`~vmfailover.errors.ConflictError` naming both versions; a file that is not a
    vmfailover journal raises :class:`~vmfailover.errors.ValidationError` naming it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike):
            raise ValidationError.of("SQLiteJournal path", f"must be a file path, got {path!r}")
        self.path = Path(path)
        try:
            folder_exists, is_folder = self.path.parent.is_dir(), self.path.is_dir()
        except (OSError, ValueError) as error:  # a name too long, a NUL byte
            raise ValidationError.of(
                f"journal {str(self.path)[:200]!r}", f"is not a usable path: {error}"
            ) from None
        if not folder_exists:
            raise ValidationError.of(
                f"journal {str(self.path)!r}", "its folder does not exist", "create it first"
            )
        if is_folder:
            raise ValidationError.of(f"journal {str(self.path)!r}", "is a folder, not a file")
        self._lock = threading.RLock()
        self._closed = False
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except (sqlite3.Error, ValueError) as error:  # ValueError: a NUL in the name
            raise ValidationError.of(
                f"journal {str(self.path)!r}", f"cannot be opened: {error}"
            ) from None
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ValidationError.of(
                    f"journal {str(self.path)!r}", f"cannot use write-ahead logging ({mode})"
                )
            self._db.execute("PRAGMA synchronous=FULL")
            self._prepare()
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise ValidationError.of(
                f"journal {str(self.path)!r}",
                f"is not a vmfailover journal (not an SQLite database: {error})",
            ) from None
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteJournal({str(self.path)!r})"

    # --- schema ----------------------------------------------------------------------------------

    def _prepare(self) -> None:
        tables = {
            row[0]
            for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if not tables:
            self._transaction(
                [(statement, ()) for statement in SCHEMA] + [version_row(SCHEMA_VERSION)]
            )
            return
        if "vmfailover_schema" not in tables:
            raise ValidationError.of(
                f"journal {str(self.path)!r}",
                f"is an SQLite database but not a vmfailover journal (tables: "
                f"{', '.join(sorted(tables))})",
                "give a new file or one vmfailover wrote",
            )
        version, written_by = self._db.execute(
            "SELECT version, written_by FROM vmfailover_schema ORDER BY version DESC LIMIT 1"
        ).fetchone() or (0, "unknown")
        where = repr(str(self.path))
        for reached, steps in migration_steps(
            where, version, written_by, SCHEMA_VERSION, MIGRATIONS
        ):
            self._transaction([(s, ()) for s in steps] + [version_row(reached)])

    @property
    def schema_version(self) -> int:
        with self._lock:
            self._check_open()
            row = self._db.execute("SELECT MAX(version) FROM vmfailover_schema").fetchone()
        return int(row[0])

    # --- writing ---------------------------------------------------------------------------------

    def _transaction(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        with self._lock:
            self._check_open()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement, parameters in statements:
                    self._db.execute(statement, parameters)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def begin(self, summary: RunSummary, record: str) -> None:
        with self._lock:
            self._check_open()
            exists = self._db.execute(
                "SELECT 1 FROM vmfailover_runs WHERE run_id = ?", (summary.run_id,)
            ).fetchone()
            if exists:
                raise ConflictError(
                    f"journal {str(self.path)!r} holds run {summary.run_id} already"
                )
            self._transaction(
                [
                    (
                        "INSERT INTO vmfailover_runs (run_id, kind, plan, backend, owner, "
                        "started_at, state, rto_target_seconds, record) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            summary.run_id,
                            summary.kind.value,
                            summary.plan,
                            summary.backend,
                            summary.owner,
                            summary.started_at.isoformat(),
                            summary.state,
                            summary.rto_target_seconds,
                            record,
                        ),
                    )
                ]
            )

    def append(self, entries: Sequence[JournalEntry]) -> None:
        if not entries:
            return
        rows = [
            (e.run_id, e.seq, e.kind.value, e.at.isoformat(), e.vm, e.operation, e.data)
            for e in entries
        ]
        updates = [update for e in entries if (update := summary_update(e)) is not None]
        with self._lock:
            self._check_open()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO vmfailover_entries (run_id, seq, kind, at, vm, operation, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                for statement, parameters in updates:
                    self._db.execute(statement, parameters)
            except sqlite3.IntegrityError as error:  # another process wrote that number first
                self._db.execute("ROLLBACK")
                raise ConflictError(
                    f"journal {str(self.path)!r} refused to append entries of run "
                    f"{entries[0].run_id}: an entry with that number is stored already ({error})"
                ) from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def record_replication(self, result: JobResult) -> None:
        statements = replication_rows(result)
        with self._lock:
            self._check_open()
            exists = self._db.execute(
                "SELECT 1 FROM vmfailover_replication_runs WHERE run_id = ?", (result.run_id,)
            ).fetchone()
            if exists:
                raise ConflictError(
                    f"journal {str(self.path)!r} holds replication run {result.run_id} already"
                )
            self._transaction(statements)

    # --- reading ---------------------------------------------------------------------------------

    def replication_runs(
        self, job: str | None = None, *, since: datetime | None = None
    ) -> tuple[JobResult, ...]:
        query, parameters = replication_query(job, since)
        with self._lock:
            self._check_open()
            rows = self._db.execute(query, parameters).fetchall()
        return tuple(result_from_row(row) for row in rows)

    def runs(self) -> tuple[RunSummary, ...]:
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                f"SELECT {_SUMMARY} FROM vmfailover_runs ORDER BY started_at, run_id"
            ).fetchall()
        return tuple(summary_from_row(row) for row in rows)

    def load(self, run_id: str, kinds: Iterable[EntryKind] | None = None) -> JournaledRun:
        with self._lock:
            self._check_open()
            row = self._db.execute(
                f"SELECT {_SUMMARY}, record FROM vmfailover_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"journal {str(self.path)!r} holds no run {run_id!r}")
            query = (
                "SELECT run_id, seq, kind, at, vm, operation, data FROM vmfailover_entries "
                "WHERE run_id = ?"
            )
            parameters: list[Any] = [run_id]
            if kinds is not None:
                wanted = [EntryKind(kind).value for kind in kinds]
                query += f" AND kind IN ({', '.join('?' for _ in wanted)})"
                parameters += wanted
            entries = self._db.execute(query + " ORDER BY seq", parameters).fetchall()
        return journaled_run(row, entries)

    def stored_report(self, run_id: str) -> str | None:
        with self._lock:
            self._check_open()
            row = self._db.execute(
                "SELECT report FROM vmfailover_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"journal {str(self.path)!r} holds no run {run_id!r}")
        return None if row[0] is None else str(row[0])

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ConflictError(f"journal {str(self.path)!r} is closed")
