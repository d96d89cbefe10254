"""``PostgresJournal``: the run journal in PostgreSQL, shared by orchestrators at several sites.

Needs ``vmfailover[postgres]`` (psycopg 3, imported when a journal is opened). The tables, their
schema version table and the rules for older and newer versions are the SQLite journal's
(:mod:`~vmfailover.engine.journal_schema`); the first journal to open an empty schema creates
them, under an advisory lock so that two orchestrators starting together do not race.

A commit is durable when PostgreSQL says so (``synchronous_commit``, on by default; with a
synchronous standby, also on the standby). Every wait is bounded by ``timeout``: the connect,
each statement, each lock wait, and (over TCP) unacknowledged data. A connection that fails is
dropped and made anew on the next call; a call that fails because the server went away raises
:class:`~vmfailover.engine.journal.JournalUnavailableError` (transient) and is tried once more
on a new connection only when it cannot have committed (a read, or a write whose transaction
failed before its commit was sent).

**Fencing.** ``PostgresJournal(dsn, lease=PostgresLease(dsn), token=grant.token)`` fences every
write with the holder's token: each insert and update carries
:data:`~vmfailover.engine.lease_postgres.FENCE_CONDITION` in its own ``WHERE``, so a write made
after a newer holder acquired the plan's lease (or after the lease expired) changes nothing and
raises :class:`~vmfailover.engine.lease.LeaseLostError`. The lease's table must be in the same
database and reachable from the journal's ``search_path`` (the same schema).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from vmfailover.engine.journal import (
    SCHEMA_VERSION,
    EntryKind,
    Journal,
    JournaledRun,
    JournalEntry,
    JournalUnavailableError,
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
    TABLES,
    journaled_run,
    migration_steps,
    summary_from_row,
    summary_update,
    version_row,
)
from vmfailover.engine.lease import FencingToken, LeaseLostError, checked_ttl
from vmfailover.engine.postgres_connection import (
    bounded_connection,
    describe_dsn,
    first_line,
    import_psycopg,
)
from vmfailover.engine.replication_results import JobResult
from vmfailover.errors import ConflictError, NotFoundError, ValidationError

if TYPE_CHECKING:
    import psycopg

    from vmfailover.engine.lease_postgres import PostgresLease

__all__ = ["PostgresJournal"]

_T = TypeVar("_T")
_SCHEMA_LOCK = 0x766D666A  # pg_advisory_xact_lock key while the tables are made ("vmfj")
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

_INSERT_ENTRIES = (
    "INSERT INTO vmfailover_entries (run_id, seq, kind, at, vm, operation, data) "
    "SELECT * FROM unnest(%(run_id)s::text[], %(seq)s::integer[], %(kind)s::text[], "
    "%(at)s::text[], %(vm)s::text[], %(operation)s::text[], %(data)s::text[])"
)
_INSERT_RUN = (
    "INSERT INTO vmfailover_runs (run_id, kind, plan, backend, owner, started_at, state, "
    "rto_target_seconds, record) SELECT %(run_id)s, %(kind)s, %(plan)s, %(backend)s, %(owner)s, "
    "%(started_at)s, %(state)s, %(rto_target_seconds)s, %(record)s"
)


def _pg(statement: str) -> str:
    """A statement of :mod:`journal_schema` with PostgreSQL's placeholders."""
    return statement.replace("?", "%s")


class PostgresJournal(Journal):
    """A journal in the PostgreSQL database named by ``dsn`` (a libpq connection string).

    ``schema`` names the PostgreSQL schema that holds the tables (created if missing); without
    it, the connection's ``search_path`` decides. ``timeout`` (seconds) bounds every wait on the
    server. ``lease`` and ``token`` (both or neither) fence every write with a holder's token
    (see the module). One connection per journal, shared by its threads under a lock. The
    connection string may hold a password: it is kept, never shown (``repr`` and errors name
    the host, database and schema only). ``create=False`` opens only a journal that exists: a
    schema without the journal's tables (or a ``schema`` that does not exist) raises
    :class:`~vmfailover.errors.NotFoundError` and nothing is made, as a reader wants.

    Opening a schema whose journal is newer than this vmfailover raises
    :class:`~vmfailover.errors.ConflictError` naming both versions; a schema holding journal
    tables without the version table raises :class:`~vmfailover.errors.ValidationError`.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        timeout: float = 10.0,
        lease: PostgresLease | None = None,
        token: FencingToken | None = None,
        create: bool = True,
    ) -> None:
        self._psycopg = import_psycopg("the PostgreSQL journal")
        where, options = describe_dsn(self._psycopg, dsn, "PostgresJournal dsn")
        if schema is not None:
            if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
                raise ValidationError.of(
                    "PostgresJournal schema",
                    f"must be a plain identifier (letters, digits, _), got {schema!r}",
                )
            options = f"{options} -c search_path={schema}".strip()
            where = f"{where} schema {schema}"
        self._where = where
        self._options = options
        self._schema = schema
        self._dsn = dsn
        self._timeout = checked_ttl(timeout, "PostgresJournal timeout")
        self._fence = _checked_fence(lease, token)
        self._lease = lease
        self._token = token
        self._lock = threading.RLock()
        self._closed = False
        self._connection: psycopg.Connection[Any] | None = None
        self._create = create
        try:
            self._run("open", self._prepare, repeatable=True)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        fenced = "" if self._token is None else f", fenced by token {self._token.number}"
        return f"PostgresJournal({self._where!r}{fenced})"

    @property
    def token(self) -> FencingToken | None:
        """The fencing token every write carries, or None."""
        return self._token

    # --- schema ----------------------------------------------------------------------------------

    def _prepare(self, connection: psycopg.Connection[Any]) -> None:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            if self._schema is not None and self._create:
                connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
            tables = {
                row[0]
                for row in connection.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
                    (list(TABLES),),
                )
            }
            if not tables:
                if not self._create:
                    raise NotFoundError(
                        f"no journal in {self._where!r}: it holds no vmfailover tables "
                        "(a run journals there first)"
                    )
                if connection.execute("SELECT current_schema()").fetchone() == (None,):
                    raise ValidationError.of(
                        f"journal {self._where!r}",
                        "its search_path names no schema that exists",
                        "create the schema, or give PostgresJournal(..., schema=NAME)",
                    )
                for statement in SCHEMA:
                    connection.execute(statement)
                connection.execute(*_pg_row(version_row(SCHEMA_VERSION)))
                return
            if "vmfailover_schema" not in tables:
                raise ValidationError.of(
                    f"journal {self._where!r}",
                    f"holds {', '.join(sorted(tables))} but no vmfailover_schema table: it is "
                    "not a vmfailover journal",
                    "give a new schema or one vmfailover wrote",
                )
            row = connection.execute(
                "SELECT version, written_by FROM vmfailover_schema ORDER BY version DESC LIMIT 1"
            ).fetchone()
            version, written_by = row if row is not None else (0, "unknown")
            steps = migration_steps(
                repr(self._where), version, written_by, SCHEMA_VERSION, MIGRATIONS
            )
            for reached, statements in steps:
                for statement in statements:
                    connection.execute(statement)
                connection.execute(*_pg_row(version_row(reached)))

    @property
    def schema_version(self) -> int:
        row: Any = self._run(
            "read",
            lambda db: db.execute("SELECT MAX(version) FROM vmfailover_schema").fetchone(),
            repeatable=True,
        )
        return int(row[0])

    # --- writing ---------------------------------------------------------------------------------

    def begin(self, summary: RunSummary, record: str) -> None:
        parameters = {
            "run_id": summary.run_id,
            "kind": summary.kind.value,
            "plan": summary.plan,
            "backend": summary.backend,
            "owner": summary.owner,
            "started_at": summary.started_at.isoformat(),
            "state": summary.state,
            "rto_target_seconds": summary.rto_target_seconds,
            "record": record,
        }

        def begin(connection: psycopg.Connection[Any]) -> None:
            exists = connection.execute(
                "SELECT 1 FROM vmfailover_runs WHERE run_id = %s", (summary.run_id,)
            ).fetchone()
            if exists:
                raise ConflictError(f"journal {self._where!r} holds run {summary.run_id} already")
            self._fenced_write(connection, _INSERT_RUN, parameters, expected=1)

        self._write("begin run", begin)

    def append(self, entries: Sequence[JournalEntry]) -> None:
        if not entries:
            return
        columns: dict[str, list[Any]] = {
            "run_id": [e.run_id for e in entries],
            "seq": [e.seq for e in entries],
            "kind": [e.kind.value for e in entries],
            "at": [e.at.isoformat() for e in entries],
            "vm": [e.vm for e in entries],
            "operation": [e.operation for e in entries],
            "data": [e.data for e in entries],
        }
        updates = [update for e in entries if (update := summary_update(e)) is not None]

        def append(connection: psycopg.Connection[Any]) -> None:
            self._fenced_write(connection, _INSERT_ENTRIES, columns, expected=len(entries))
            for statement, values in updates:
                parameters = {f"p{n}": value for n, value in enumerate(values)}
                named = statement
                for n in range(len(values)):
                    named = named.replace("?", f"%(p{n})s", 1)
                self._fenced_write(connection, named, parameters, expected=None)

        self._write("append to", append)

    def record_replication(self, result: JobResult) -> None:
        """Store a replication job's run (durable on return). Not fenced: replication jobs are
        not a plan's run, and any orchestrator may record what its jobs did."""
        statements = [
            (statement.replace("?", "%s"), tuple(values))
            for statement, values in replication_rows(result)
        ]

        def record(connection: psycopg.Connection[Any]) -> None:
            exists = connection.execute(
                "SELECT 1 FROM vmfailover_replication_runs WHERE run_id = %s", (result.run_id,)
            ).fetchone()
            if exists:
                raise ConflictError(
                    f"journal {self._where!r} holds replication run {result.run_id} already"
                )
            for statement, values in statements:
                connection.execute(statement, values)

        self._write("record a replication run in", record)

    def replication_runs(
        self, job: str | None = None, *, since: datetime | None = None
    ) -> tuple[JobResult, ...]:
        query, parameters = replication_query(job, since)
        rows = self._run(
            "read",
            lambda db: db.execute(query.replace("?", "%s"), tuple(parameters)).fetchall(),
            repeatable=True,
        )
        return tuple(result_from_row(row) for row in rows)

    def _fenced_write(
        self,
        connection: psycopg.Connection[Any],
        statement: str,
        parameters: dict[str, Any],
        *,
        expected: int | None,
    ) -> None:
        """``statement`` (an ``INSERT ... SELECT`` or an ``UPDATE ... WHERE``), with the fence's
        condition in its own ``WHERE`` when the journal is fenced. ``expected`` rows or
        LeaseLostError (an update's row count is not checked: the entries' insert before it in
        the same transaction was fenced and holds the lease row's lock)."""
        if self._fence is not None:
            condition, fence = self._fence
            joiner = " AND " if " WHERE " in statement else " WHERE "
            statement += joiner + condition
            parameters = {**parameters, **fence}
        cursor = connection.execute(statement, parameters)
        if expected is not None and cursor.rowcount != expected:
            assert self._fence is not None  # unfenced, an insert of n rows stores n rows
            raise _Fenced()

    def _write(self, what: str, work: Callable[[psycopg.Connection[Any]], None]) -> None:
        committing = False

        def transaction(connection: psycopg.Connection[Any]) -> None:
            nonlocal committing
            committing = False
            with connection.transaction():
                work(connection)
                committing = True  # from here on the transaction may commit unanswered

        try:
            self._run(what, transaction, repeatable=lambda: not committing)
        except _Fenced:
            self._refused()

    def _refused(self) -> None:
        """The write changed nothing because the token is not current: say why."""
        assert self._lease is not None
        assert self._token is not None
        token = self._token
        self._lease.check(token)  # raises LeaseLostError with the reason
        raise LeaseLostError(token, "a newer holder or an expiry refused the journal write")

    # --- reading ---------------------------------------------------------------------------------

    def runs(self) -> tuple[RunSummary, ...]:
        rows = self._run(
            "read",
            lambda db: db.execute(
                f"SELECT {SUMMARY_COLUMNS} FROM vmfailover_runs ORDER BY started_at, run_id"
            ).fetchall(),
            repeatable=True,
        )
        return tuple(summary_from_row(row) for row in rows)

    def load(self, run_id: str, kinds: Iterable[EntryKind] | None = None) -> JournaledRun:
        wanted = None if kinds is None else [EntryKind(kind).value for kind in kinds]

        def load(connection: psycopg.Connection[Any]) -> tuple[Any, list[Any]]:
            with connection.transaction():  # the run and its entries as of one moment
                row = connection.execute(
                    f"SELECT {SUMMARY_COLUMNS}, record FROM vmfailover_runs WHERE run_id = %s",
                    (run_id,),
                ).fetchone()
                if row is None:
                    return None, []
                query = (
                    "SELECT run_id, seq, kind, at, vm, operation, data FROM vmfailover_entries "
                    "WHERE run_id = %s"
                )
                parameters: list[Any] = [run_id]
                if wanted is not None:
                    query += " AND kind = ANY(%s)"
                    parameters.append(wanted)
                return row, connection.execute(query + " ORDER BY seq", parameters).fetchall()

        row, entries = self._run("read", load, repeatable=True)
        if row is None:
            raise NotFoundError(f"journal {self._where!r} holds no run {run_id!r}")
        return journaled_run(row, entries)

    def stored_report(self, run_id: str) -> str | None:
        row = self._run(
            "read",
            lambda db: db.execute(
                "SELECT report FROM vmfailover_runs WHERE run_id = %s", (run_id,)
            ).fetchone(),
            repeatable=True,
        )
        if row is None:
            raise NotFoundError(f"journal {self._where!r} holds no run {run_id!r}")
        return None if row[0] is None else str(row[0])

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop()

    # --- the connection --------------------------------------------------------------------------

    def _run(
        self,
        what: str,
        work: Callable[[psycopg.Connection[Any]], _T],
        *,
        repeatable: bool | Callable[[], bool],
    ) -> _T:
        """``work`` on the connection, under the lock; driver errors made ours.

        A connection made before that fails (the server restarted or failed over since) is
        replaced and ``work`` tried once more when ``repeatable`` (a read, or a write whose
        transaction failed before its COMMIT was sent, so the server rolled it back; a write
        whose COMMIT went unanswered may have committed and is not repeated).
        A statement that timed out is not tried again: every call stays within two timeouts.
        """
        psycopg = self._psycopg
        with self._lock:
            if self._closed:
                raise ConflictError(f"journal {self._where!r} is closed")
            for attempt in (1, 2):
                reused = self._connection is not None and not self._connection.closed
                try:
                    return work(self._connected())
                except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                    self._drop()
                    again = (
                        attempt == 1
                        and reused
                        and (repeatable() if callable(repeatable) else repeatable)
                        and not isinstance(
                            error, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable
                        )
                    )
                    if again:
                        continue
                    raise JournalUnavailableError(self._where, what, first_line(error)) from error
                except psycopg.errors.UniqueViolation as error:
                    raise ConflictError(
                        f"journal {self._where!r} refused to {what} it: an entry with that "
                        f"number is stored already ({first_line(error)})"
                    ) from error
                except psycopg.Error as error:
                    self._drop()
                    raise ConflictError(
                        f"journal {self._where!r} refused to {what} it: {first_line(error)}"
                    ) from error
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _connected(self) -> psycopg.Connection[Any]:
        if self._connection is not None and not self._connection.closed:
            return self._connection
        self._connection = bounded_connection(
            self._psycopg,
            self._dsn,
            self._timeout,
            application_name="vmfailover-journal",
            options=self._options,
        )
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None


class _Fenced(Exception):
    """A fenced write changed nothing (rolled back; the caller says why)."""


def _pg_row(row: tuple[str, tuple[Any, ...]]) -> tuple[str, tuple[Any, ...]]:
    return _pg(row[0]), row[1]


def _checked_fence(lease: object, token: object) -> tuple[str, dict[str, object]] | None:
    """``(condition, parameters)`` of the fence, or None; both or neither must be given."""
    if lease is None and token is None:
        return None
    from vmfailover.engine.lease_postgres import FENCE_CONDITION, PostgresLease

    if not isinstance(lease, PostgresLease):
        raise ValidationError.of(
            "PostgresJournal lease",
            f"fencing needs a PostgresLease on the same database, got {lease!r}",
        )
    if not isinstance(token, FencingToken):
        raise ValidationError.of(
            "PostgresJournal token", f"fencing needs the holder's FencingToken, got {token!r}"
        )
    return FENCE_CONDITION, PostgresLease.fence_parameters(token)
