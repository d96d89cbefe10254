"""Group commit: the entries of concurrent steps share one durable write.

Every intent must be durable before its call acts, and a durable commit costs a disk sync (a few
milliseconds). So entries queue, and a worker that needs its entries durable commits *everything
queued so far* in one transaction; the workers that queue while it syncs are committed together
by the next one (the first of them to need durability leads that commit, in its own thread, so no
hand-off to another thread delays it). Entries that need no wait (outcomes, a VM's end) ride
along with the next commit, or with the background flush that commits what is queued every
:data:`FLUSH_INTERVAL` seconds. Overhead per VM thus shrinks as more VMs act at once, and a lone
VM pays one sync per durable write, no more.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from vmfailover.engine.journal import Journal, JournalEntry
from vmfailover.errors import ConflictError

__all__ = ["COMMIT_TIMEOUT", "FLUSH_INTERVAL", "JournalUnavailable", "JournalWriter"]

#: Real seconds a durable write waits for another thread's commit before giving up.
COMMIT_TIMEOUT = 120.0

#: Real seconds between background commits of entries that need no wait.
FLUSH_INTERVAL = 0.5


class JournalUnavailable(ConflictError):
    """The journal could not store what a run must store before acting; nothing was done."""


class JournalWriter:
    """Queues a journal's entries and commits them in groups; thread-safe."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._cond = threading.Condition()
        self._pending: list[JournalEntry] = []
        self._queued = 0  # entries queued so far; a commit covers all queued before it
        self._committed = 0
        self._committing = False
        self._error: BaseException | None = None
        self._closing = False
        self._flusher: threading.Thread | None = None
        self._stopped = threading.Event()
        self.commits = 0

    def write(self, entries: Sequence[JournalEntry], *, durable: bool) -> None:
        """Queue ``entries``; with ``durable``, return only once they are committed.

        A durable write raises :class:`JournalUnavailable` if the journal failed (then nothing
        more is written, so nothing more acts); entries that need no wait are then dropped.
        """
        with self._cond:
            if not durable and self._error is not None:
                return
            self._check()
            self._pending.extend(entries)
            self._queued += len(entries)
            mark = self._queued
            if not durable:
                self._start_flusher()
                return
            self._commit_until(mark)

    def flush(self) -> None:
        """Return once everything queued so far is committed."""
        self.write((), durable=True)

    def close(self) -> None:
        """Commit what is queued and stop the background flush (the journal stays open)."""
        try:
            with self._cond:
                if self._error is None and not self._closing:
                    self._commit_until(self._queued)
        finally:
            self._stop()

    def abandon(self) -> None:
        """Stop as a crashed process stops: what is queued and not committed is lost, and
        nothing more is written (for tests that crash the orchestrator in-process)."""
        with self._cond:
            self._pending.clear()
            if self._error is None:
                self._error = JournalUnavailable("the process running the journal crashed")
            # a commit under way when the process died completes
            self._cond.wait_for(lambda: not self._committing, COMMIT_TIMEOUT)
        self._stop()

    # --- committing -----------------------------------------------------------------------------

    def _check(self) -> None:
        if self._error is not None:
            raise JournalUnavailable(f"the journal failed: {self._error}") from self._error
        if self._closing:
            raise JournalUnavailable("the journal writer is closed")

    def _commit_until(self, mark: int) -> None:
        """With the lock held: return once entries up to ``mark`` are committed, leading a
        commit when none is under way."""
        while self._committed < mark:
            if self._error is not None:
                raise JournalUnavailable(f"the journal failed: {self._error}") from self._error
            if self._committing:
                if not self._cond.wait(COMMIT_TIMEOUT) and self._committing:
                    raise JournalUnavailable(
                        f"the journal did not commit within {COMMIT_TIMEOUT:g} s"
                    )
                continue
            self._lead()

    def _lead(self) -> None:
        """With the lock held: commit everything queued (the lock is released meanwhile)."""
        batch, self._pending = self._pending, []
        covers = self._queued
        self._committing = True
        self._cond.release()
        failure: BaseException | None = None
        try:
            self.journal.append(batch)
        except BaseException as error:  # every waiter hears of it; nothing more is written
            failure = error
        finally:
            self._cond.acquire()
            self._committing = False
            if failure is None:
                self._committed = covers
                self.commits += 1
            elif self._error is None:
                self._error = failure
            self._cond.notify_all()
        if failure is not None:
            raise JournalUnavailable(f"the journal failed: {failure}") from failure

    # --- the background flush -------------------------------------------------------------------

    def _start_flusher(self) -> None:
        if self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_loop, name="vmfailover-journal", daemon=True
            )
            self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stopped.wait(FLUSH_INTERVAL):
            with self._cond:
                if self._pending and not self._committing and self._error is None:
                    try:
                        self._lead()
                    except JournalUnavailable:
                        return

    def _stop(self) -> None:
        with self._cond:
            self._closing = True
            self._stopped.set()
            self._cond.notify_all()
            flusher = self._flusher
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join(COMMIT_TIMEOUT)
