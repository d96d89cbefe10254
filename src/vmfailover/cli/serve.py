"""``vmfailover serve``: run an :class:`~vmfailover.engine.orchestrator.Orchestrator` until told
to stop.

The service shares its journal and lease store with the other orchestrators: ``--journal PATH``
(as for ``report`` and ``resume``) and ``--lease`` (an SQLite file for orchestrators on one
machine, or a ``postgresql://`` connection string for orchestrators at several sites).
``--backend MODULE:FACTORY`` names the function of yours that connects and returns the backend,
as for ``resume``. ``--submit PLAN`` starts a failover of that plan file as the service starts
(refused, and the service goes on, when another orchestrator holds the plan). SIGTERM or SIGINT
stop it cleanly: its runs are handed over (fenced off, their leases released), exit code 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from vmfailover.cli.backends import backend_from_factory
from vmfailover.cli.journal import journal_path
from vmfailover.cli.output import Output
from vmfailover.engine.lease import Lease
from vmfailover.engine.lease_postgres import PostgresLease
from vmfailover.engine.lease_sqlite import SQLiteLease
from vmfailover.engine.orchestrator import Orchestrator
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.errors import ConflictError, ValidationError
from vmfailover.plan import FailoverPlan

__all__ = ["open_lease", "serve_command"]

_POSTGRES = ("postgresql://", "postgres://")


def open_lease(spec: str) -> Lease:
    """The lease store ``spec`` names: a ``postgresql://`` connection string or an SQLite file."""
    if not isinstance(spec, str) or not spec:
        raise ValidationError.of("--lease", f"must name an SQLite file or a database, got {spec!r}")
    if spec.startswith(_POSTGRES):
        return PostgresLease(spec)
    return SQLiteLease(Path(spec))


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
    journal: Path | None,
    lease: str,
    backend_spec: str,
    name: str,
    lease_seconds: float,
    poll: float,
    submit: Path | None = None,
    kind: str = "regular",
) -> int:
    """Serve until SIGTERM or SIGINT; returns the exit code (0 after a clean stop)."""
    plan = FailoverPlan.load(submit) if submit is not None else None
    backend = backend_from_factory(backend_spec)
    store = open_lease(lease)
    stop = threading.Event()
    said = _Said(output)
    logger = logging.getLogger("vmfailover.orchestrator")
    logger.addHandler(said)
    logger.setLevel(logging.INFO)
    try:
        with SQLiteJournal(journal_path(journal)) as shared, _stopped_by_signals(stop):
            orchestrator = Orchestrator(
                shared,
                backend,
                store,
                name=name,
                lease_seconds=lease_seconds,
                poll=poll,
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
        store.close()
        close = getattr(backend, "close", None)
        if callable(close):
            close()
    return 0
