"""``vmfailover serve``: run an :class:`~vmfailover.engine.orchestrator.Orchestrator` until told
to stop.

The service shares its journal and lease store with the other orchestrators. ``--journal`` is an
SQLite file (orchestrators on one machine; as for ``report`` and ``resume``) or a
``postgresql://`` connection string (orchestrators at several sites, sharing one database), read
as every command reads it (:func:`vmfailover.cli.journal.journal_spec`). With
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
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import attrs

from vmfailover.backends.base import Backend
from vmfailover.cli.backends import backend_from_spec
from vmfailover.cli.journal import is_database, journal_spec, open_journal, reached
from vmfailover.cli.output import Output
from vmfailover.engine.journal import Journal
from vmfailover.engine.lease import FencingToken, Lease
from vmfailover.engine.lease_postgres import PostgresLease
from vmfailover.engine.lease_sqlite import SQLiteLease
from vmfailover.engine.orchestrator import Orchestrator
from vmfailover.engine.postgres_journal import PostgresJournal
from vmfailover.errors import ConflictError, ValidationError
from vmfailover.plan import FailoverPlan

__all__ = ["Stores", "open_lease", "open_stores", "serve_command"]


def open_lease(spec: str) -> Lease:
    """The lease store ``spec`` names: a ``postgresql://`` connection string or an SQLite file."""
    if not isinstance(spec, str) or not spec:
        raise ValidationError.of("--lease", f"must name an SQLite file or a database, got {spec!r}")
    if is_database(spec):
        return reached("--lease", spec, lambda: PostgresLease(spec))
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
        shared = open_journal(journal, create=True)
        try:
            leases = reached("--journal", journal, lambda: PostgresLease(journal))
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
        return Stores(open_journal(journal, create=True), leases_store, None)
    except BaseException:
        leases_store.close()
        raise


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
        backend = backend_from_spec(backend_spec)
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
