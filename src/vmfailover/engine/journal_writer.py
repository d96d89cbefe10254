"""Group commit: the entries of concurrent steps share one durable write.

Every intent must be durable before its call acts, and a durable commit costs a disk sync (a few
milliseconds). Workers therefore hand their entries to one writer thread: while it syncs one
batch, the entries that arrive queue up and go together in the next. A worker that needs
durability waits only until the batch holding its entry is committed; entries that need no wait
(outcomes, a VM's end) ride along with the next commit. Overhead per VM thus shrinks as more VMs
act at once, and a lone VM pays one sync per intent, no more.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from vmfailover.engine.journal import Journal, JournalEntry
from vmfailover.errors import ConflictError

__all__ = ["JournalUnavailable", "JournalWriter"]

#: Real seconds a durable write waits for its commit before the run gives up on the journal.
COMMIT_TIMEOUT = 120.0


class JournalUnavailable(ConflictError):
    """The journal could not store what a run must store before acting; nothing was done."""


class JournalWriter:
    """One writer thread per journal; :meth:`write` queues entries, optionally until durable."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._cond = threading.Condition()
        self._pending: list[JournalEntry] = []
        self._queued = 0  # batches numbered by how many entries were queued before them
        self._committed = 0
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self.commits = 0

    def write(self, entries: Sequence[JournalEntry], *, durable: bool) -> None:
        """Queue ``entries``; with ``durable``, return only once they are committed.

        Raises :class:`JournalUnavailable` if the journal failed (then nothing more is written).
        """
        with self._cond:
            if self._error is not None:
                raise JournalUnavailable(f"the journal failed: {self._error}") from self._error
            if self._closing:
                raise JournalUnavailable("the journal writer is closed")
            self._pending.extend(entries)
            self._queued += len(entries)
            mark = self._queued
            self._start()
            self._cond.notify_all()
            if not durable:
                return
            if not self._cond.wait_for(
                lambda: self._committed >= mark or self._error is not None, COMMIT_TIMEOUT
            ):
                raise JournalUnavailable(f"the journal did not commit within {COMMIT_TIMEOUT} s")
            if self._committed < mark:
                raise JournalUnavailable(f"the journal failed: {self._error}") from self._error

    def flush(self) -> None:
        """Return once everything queued so far is committed."""
        self.write((), durable=True)

    def close(self) -> None:
        """Commit what is queued and stop the writer thread (the journal stays open)."""
        with self._cond:
            if self._thread is None:
                self._closing = True
                return
        try:
            self.flush()
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(COMMIT_TIMEOUT)

    def abandon(self) -> None:
        """Stop as a crashed process stops: what is queued and not committed is lost, and
        nothing more is written (for tests that crash the orchestrator in-process)."""
        with self._cond:
            self._pending.clear()
            self._closing = True
            if self._error is None:
                self._error = JournalUnavailable("the process running the journal crashed")
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(COMMIT_TIMEOUT)  # a commit under way when the process died completes

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="vmfailover-journal", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending) or self._closing)
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
                mark = self._queued
            try:
                self.journal.append(batch)
            except BaseException as error:  # every waiter hears of it; nothing more is written
                with self._cond:
                    self._error = error
                    self._cond.notify_all()
                return
            with self._cond:
                self._committed = mark
                self.commits += 1
                self._cond.notify_all()
