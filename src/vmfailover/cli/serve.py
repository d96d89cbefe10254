"""``vmfailover serve``: run an :class:`~vmfailover.engine.orchestrator.Orchestrator` until told
to stop.

The service shares its journal and lease store with the other orchestrators. ``--journal`` is an
SQLite file (orchestrators on one machine; as for ``report`` and ``resume``) or a
``postgresql://`` connection string (orchestrators at several sites, sharing one database). With
a PostgreSQL journal the leases live in the same database (``--lease`` may be left out) and each
run writes through a journal of its own that carries the run's fencing token in every write's
own statement, so a holder that lost its lease cannot write even a row it had already checked.
With an SQLite journal, ``--lease`` names the lease store: an SQLite file, or a
``postgresql://`` connection string. Connection strings may hold a password; it is never shown.

``--backend MODULE:FACTORY`` names the function of yours that connects and returns the backend,
as for ``resume``. ``--submit PLAN`` starts a failover of that plan file as the service starts
(refused, and the service goes on, when another orchestrator holds the plan). SIGTERM or SIGINT
stop it cleanly: its runs are handed over (fenced off, their leases released), exit code 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TypeVar

import attrs

from vmfailover.backends.base import Backend
from vmfailover.cli.backends import backend_from_factory
from vmfailover.cli.journal import DEFAULT_JOURNAL, ENVIRONMENT
from vmfailover.cli.output import Output
from vmfailover.engine.journal import Journal, JournalUnavailableError
from vmfailover.engine.lease import FencingToken, Lease, LeaseUnavailableError
from vmfailover.engine.lease_postgres import PostgresLease
from vmfailover.engine.lease_sqlite import SQLiteLease
from vmfailover.engine.orchestrator import Orchestrator
from vmfailover.engine.postgres_connection import describe_dsn, first_line, import_psycopg
from vmfailover.engine.postgres_journal import PostgresJournal
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.errors import ConflictError, ValidationError
from vmfailover.plan import FailoverPlan

__all__ = ["Stores", "is_database", "journal_spec", "open_lease", "open_stores", "serve_command"]

_POSTGRES = ("postgresql://", "postgres://")
_T = TypeVar("_T")


def is_database(spec: str) -> bool:
    """Whether a store given on the command line is a PostgreSQL connection string (a URI)."""
    return spec.startswith(_POSTGRES)


def journal_spec(given: str | None) -> str:
    """--journal, else $VMFAILOVER_JOURNAL, else the default file in the working directory."""
    spec = given if given is not None else os.environ.get(ENVIRONMENT) or DEFAULT_JOURNAL
    if not spec.strip():
        raise ValidationError.of(
            "--journal", "must name an SQLite file or a postgresql:// database, got ''"
        )
    return spec


def open_lease(spec: str) -> Lease:
    """The lease store ``spec`` names: a ``postgresql://`` connection string or an SQLite file."""
    if not isinstance(spec, str) or not spec:
        raise ValidationError.of("--lease", f"must name an SQLite file or a database, got {spec!r}")
    if is_database(spec):
        return _reached("--lease", spec, lambda: PostgresLease(spec))
    return SQLiteLease(Path(spec))


@attrs.frozen
class Stores:
    """What an orchestrator shares with the others: its journal and lease store, and (for a
    journal that fences its writes in the store) how to open a run's own journal."""

    journal: Journal
    lease: Lease
    journal_for: Callable[[FencingToken], Journal] | None

    def close(self) -> None:
        try:
            self.journal.close()
        finally:
            self.lease.close()


def open_stores(journal: str, lease: str | None) -> Stores:
    """The journal and lease store ``--journal`` and ``--lease`` name, opened (and reached).

    A PostgreSQL journal keeps its leases in its own database: ``lease`` must be None or the
    same connection string. An SQLite journal needs ``lease``. A database that does not answer
    at start is refused naming the option (the service needs its stores to begin).
    """
    if is_database(journal):
        if lease is not None and lease != journal:
            raise ValidationError.of(
                "--lease",
                "with a PostgreSQL journal the leases are kept in the journal's own database "
                "(every journal write is fenced against them in its own statement)",
                "leave --lease out, or give the journal's connection string",
            )
        shared = _reached("--journal", journal, lambda: PostgresJournal(journal))
        try:
            leases = _reached("--journal", journal, lambda: PostgresLease(journal))
        except BaseException:
            shared.close()
            raise

        def journal_for(token: FencingToken) -> Journal:
            return PostgresJournal(journal, lease=leases, token=token)

        return Stores(shared, leases, journal_for)
    if lease is None:
        raise ValidationError.of(
            "--lease",
            "is needed with an SQLite journal",
            "give the lease store the orchestrators share: an SQLite file, or postgresql://...",
        )
    leases_store = open_lease(lease)
    try:
        return Stores(SQLiteJournal(Path(journal)), leases_store, None)
    except BaseException:
        leases_store.close()
        raise


def _reached(option: str, spec: str, open_store: Callable[[], _T]) -> _T:
    """``open_store()`` on the database ``spec`` names; a string that is not a connection string,
    or a database that does not answer, is refused naming ``option`` and the host and database
    (never the password)."""
    where, _ = describe_dsn(import_psycopg(option), spec, option)
    try:
        return open_store()
    except (LeaseUnavailableError, JournalUnavailableError) as error:
        cause = error.__cause__ if error.__cause__ is not None else error
        raise ValidationError.of(
            option,
            f"cannot reach the database {where!r}: {first_line(cause)}",
            "is the database up, and the connection string right?",
        ) from error


@contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` while inside; the previous handlers come back after."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {
        number: signal.signal(number, handler) for number in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


class _Said(logging.Handler):
    """The service's log lines, on the command's output."""

    def __init__(self, output: Output) -> None:
        super().__init__(logging.INFO)
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        self.output.say(self.format(record))


def serve_command(
    output: Output,
    *,
    journal: str | None,
    lease: str | None,
    backend_spec: str,
    name: str,
    lease_seconds: float,
    poll: float,
    submit: Path | None = None,
    kind: str = "regular",
) -> int:
    """Serve until SIGTERM or SIGINT; returns the exit code (0 after a clean stop)."""
    plan = FailoverPlan.load(submit) if submit is not None else None
    stores = open_stores(journal_spec(journal), lease)
    backend: Backend | None = None
    stop = threading.Event()
    said = _Said(output)
    logger = logging.getLogger("vmfailover.orchestrator")
    logger.addHandler(said)
    logger.setLevel(logging.INFO)
    try:
        backend = backend_from_factory(backend_spec)
        with _stopped_by_signals(stop):
            orchestrator = Orchestrator(
                stores.journal,
                backend,
                stores.lease,
                name=name,
                lease_seconds=lease_seconds,
                poll=poll,
                journal_for=stores.journal_for,
            )
            if plan is not None:
                try:
                    run = orchestrator.submit(plan, kind)
                    output.say(f"submitted run {run.id} of plan {plan.name!r}")
                except ConflictError as error:
                    output.say(f"refused plan {plan.name!r}: {error}")
            orchestrator.serve(stop)
            output.say(f"{name}: stopped")
    finally:
        logger.removeHandler(said)
        stores.close()
        close = getattr(backend, "close", None)
        if callable(close):
            close()
    return 0
