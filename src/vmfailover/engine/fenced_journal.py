"""``FencedJournal``: any journal, whose writes first prove the lease is still ours.

The journal's half of fencing (:class:`~vmfailover.engine.fenced.FencedBackend` is the backend's):
:meth:`~FencedJournal.begin` and :meth:`~FencedJournal.append` ask the fence first and write
nothing when it says the lease is lost. A run writes through the
:class:`~vmfailover.engine.journal_writer.JournalWriter`, which stops the run's journal for good
at the first refused write, and every change a run makes needs its intent durable first: so a
holder that woke after losing its lease writes nothing more and, through its journal too, acts on
nothing more. Reads pass through.

A store that cannot answer the fence (:class:`~vmfailover.engine.lease.LeaseUnavailableError`) is
asked again for at most ``patience`` seconds: a lease store restarting during a run is ridden
out, a lease store gone for longer stops the run's journal (a keeper's own deadline ends the wait
sooner: the lease is then lost).

Generic over :class:`~vmfailover.engine.journal.Journal`, so it has the same gap as a fenced
backend: a write that passed its check and was paused before it reached the store is stored when
the process wakes. A journal that fences in the store itself closes the gap (the write carries
the token in its own statement and changes nothing once a newer holder exists); wrapping such a
journal in this one still stops a stale holder before it asks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime

from vmfailover.engine.journal import EntryKind, Journal, JournaledRun, JournalEntry, RunSummary
from vmfailover.engine.lease import LeaseUnavailableError
from vmfailover.engine.lease_keeper import Fence
from vmfailover.engine.replication_results import JobResult
from vmfailover.errors import ValidationError
from vmfailover.model import is_finite_number

__all__ = ["FencedJournal"]

#: How long a write waits between asking an unanswering lease store again.
_RETRY_SECONDS = 0.25


class FencedJournal(Journal):
    """``journal`` with every write fenced by ``fence.check()``.

    ``close_inner`` closes ``journal`` too when this one is closed (for a journal opened for
    this holder alone); by default the wrapped journal stays open for its owner.
    """

    def __init__(
        self,
        journal: Journal,
        fence: Fence,
        *,
        patience: float = 30.0,
        close_inner: bool = False,
    ) -> None:
        if not isinstance(journal, Journal):
            raise ValidationError.of("fenced journal", f"needs a Journal, got {journal!r}")
        if not callable(getattr(fence, "check", None)):
            raise ValidationError.of("fenced journal", f"needs a fence with check(), got {fence!r}")
        if not is_finite_number(patience) or not 0 <= patience <= 3600:
            raise ValidationError.of(
                "fenced journal patience", f"must be seconds in [0, 3600], got {patience!r}"
            )
        self.inner = journal
        self.fence = fence
        self.patience = float(patience)
        self._close_inner = close_inner
        self._stopped = threading.Event()

    def __repr__(self) -> str:
        return f"FencedJournal({self.inner!r}, {self.fence!r})"

    def _check(self) -> None:
        """Return once the fence confirms the lease; raise what it raises when it denies it, or
        when it could not answer for ``patience`` seconds."""
        waited = 0.0
        while True:
            try:
                self.fence.check()
                return
            except LeaseUnavailableError:
                if waited >= self.patience or self._stopped.is_set():
                    raise
            pause = min(_RETRY_SECONDS, self.patience - waited)
            self._stopped.wait(pause)
            waited += pause

    # --- writes: fenced ------------------------------------------------------------------------

    def begin(self, summary: RunSummary, record: str) -> None:
        self._check()
        self.inner.begin(summary, record)

    def append(self, entries: Sequence[JournalEntry]) -> None:
        if not entries:
            return
        self._check()
        self.inner.append(entries)

    def record_replication(self, result: JobResult) -> None:
        self._check()
        self.inner.record_replication(result)

    # --- reads ---------------------------------------------------------------------------------

    def replication_runs(
        self, job: str | None = None, *, since: datetime | None = None
    ) -> tuple[JobResult, ...]:
        return self.inner.replication_runs(job, since=since)

    def runs(self) -> tuple[RunSummary, ...]:
        return self.inner.runs()

    def load(self, run_id: str, kinds: Iterable[EntryKind] | None = None) -> JournaledRun:
        return self.inner.load(run_id, kinds)

    def stored_report(self, run_id: str) -> str | None:
        return self.inner.stored_report(run_id)

    def close(self) -> None:
        self._stopped.set()
        if self._close_inner:
            self.inner.close()
