"""One run's side of the journal: the entries a run writes, numbered, encoded, durable when needed.

What must be durable before the run goes on: the run itself (:meth:`RunJournal.begin`), each
intent (a mutating backend call about to act, or a plan step about to run) and the run's end.
Everything else (outcomes, a VM's start and end, state changes, approvals) rides along with the
next commit: if a crash loses it, resuming reconciles the intent it belonged to, which is exactly
what would have happened had it never been written.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from vmfailover.backends.base import CHANGING_CALLS
from vmfailover.engine.journal import EntryKind, JournalEntry, RunSummary
from vmfailover.engine.journal_codec import dumps, encode
from vmfailover.engine.journal_writer import JournalWriter
from vmfailover.engine.results import RunReport

__all__ = ["MUTATING", "RunJournal", "call_key"]

MUTATING = CHANGING_CALLS
"""The backend calls that change something (the protocol's one list): each is journaled."""

#: Calls whose later arguments do not say *what* is done (a shutdown's remaining timeout): only
#: the first so many arguments identify the call when a resumed run matches it to its record.
_IDENTIFYING_ARGUMENTS = {"shutdown_guest": 1}


def call_key(operation: str, args: Sequence[object]) -> str:
    """What identifies a call for matching it with its journal record: its identifying args."""
    count = _IDENTIFYING_ARGUMENTS.get(operation, len(args))
    return json.dumps(encode(tuple(args[:count])), separators=(",", ":"))


class RunJournal:
    """Writes one run's entries through the journal's writer, numbering them in order."""

    def __init__(
        self,
        writer: JournalWriter,
        run_id: str,
        clock: Callable[[], datetime],
        *,
        first_seq: int = 1,
    ) -> None:
        self.writer = writer
        self.run_id = run_id
        self._now = clock
        self._seq = itertools.count(first_seq)
        self._lock = threading.Lock()

    def begin(self, summary: RunSummary, record: str) -> None:
        """Store the run (durable) before anything of it acts."""
        self.writer.journal.begin(summary, record)

    def _entry(
        self,
        kind: EntryKind,
        data: object,
        *,
        vm: str | None = None,
        operation: str | None = None,
        at: datetime | None = None,
    ) -> JournalEntry:
        with self._lock:
            seq = next(self._seq)
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        return JournalEntry(
            self.run_id, seq, kind, at or self._now(), vm=vm, operation=operation, data=text
        )

    # --- durable before acting --------------------------------------------------------------------

    def intent(
        self,
        vm: str | None,
        operation: str,
        args: Sequence[object],
        context: Mapping[str, object] | None = None,
    ) -> int:
        """Journal that ``operation(*args)`` is about to act for ``vm``; durable on return.

        ``context`` is what reconciling the call will need to know of the moment before it
        (the newest recovery point before a sync, say).
        """
        if context is None:
            data = dumps(tuple(args))
        else:
            data = json.dumps(
                {"args": encode(tuple(args)), "context": encode(dict(context))},
                separators=(",", ":"),
            )
        entry = self._entry(EntryKind.INTENT, data, vm=vm, operation=operation)
        self.writer.write([entry], durable=True)
        return entry.seq

    def intents(self, vm: str | None, calls: Sequence[tuple[str, Sequence[object]]]) -> list[int]:
        """Journal several calls ``vm`` is about to make, in one durable write; their numbers."""
        entries = [
            self._entry(EntryKind.INTENT, dumps(tuple(args)), vm=vm, operation=operation)
            for operation, args in calls
        ]
        self.writer.write(entries, durable=True)
        return [entry.seq for entry in entries]

    def end(self, report: RunReport, state: str) -> None:
        """The recovery ended: its result, RTO and report (durable on return)."""
        entry = self._entry(
            EntryKind.END,
            {
                "result": report.result.value,
                "state": state,
                "rto_seconds": report.rto_seconds,
                "report": dumps(report),
            },
            at=report.finished_at,
        )
        self.writer.write([entry], durable=True)

    def cleanup(self, report: RunReport, restored: bool) -> None:
        """A test run's cleanup and the report that now holds it (durable on return)."""
        entry = self._entry(EntryKind.CLEANUP, {"restored": restored, "report": dumps(report)})
        self.writer.write([entry], durable=True)

    def checked(self, differences: Sequence[str]) -> None:
        """A move back's end state as the inventory showed it after the run (durable on
        return): restored when ``differences`` is empty."""
        entry = self._entry(
            EntryKind.CHECKED, {"restored": not differences, "differences": list(differences)}
        )
        self.writer.write([entry], durable=True)

    def aftercare(self, action: str, report: RunReport, state: str) -> None:
        """A commit, undo or failback ended (or stopped): the report holding its result and the
        run's state (durable on return)."""
        entry = self._entry(
            EntryKind.AFTERCARE, {"action": action, "state": state, "report": dumps(report)}
        )
        self.writer.write([entry], durable=True)

    def deadline(self, action: str, at: datetime) -> None:
        """The plan's deadline for this run: ``action`` at ``at`` (durable on return), so that
        another process keeps it once this one is gone."""
        entry = self._entry(EntryKind.DEADLINE, {"action": action, "at": at.isoformat()})
        self.writer.write([entry], durable=True)

    def deadline_claim(self, action: str, at: datetime, owner: str) -> None:
        """Claim the run's deadline for process ``owner`` before acting on it: everything queued
        is committed first, then the claim alone, straight to the journal, at the run's next
        entry number. Raises (ConflictError) if that number is taken: another process wrote to
        the run meanwhile, and this one must stand back. The writer stays usable either way."""
        self.writer.flush()
        entry = self._entry(
            EntryKind.DEADLINE, {"action": action, "at": at.isoformat(), "fired_by": owner}
        )
        self.writer.journal.append([entry])

    def failback_link(self, failback_run: str) -> None:
        """The failback run about to be begun for this run (durable on return), so a resumed
        failback finds it, or begins it under the same id if it never was."""
        entry = self._entry(
            EntryKind.AFTERCARE, {"action": "failback", "failback_run": failback_run}
        )
        self.writer.write([entry], durable=True)

    # --- riding along -----------------------------------------------------------------------------

    def outcome(
        self,
        seq: int,
        vm: str | None,
        operation: str,
        *,
        result: object = None,
        error: BaseException | None = None,
        reconciled: bool = False,
        durable: bool = False,
    ) -> None:
        """What intent ``seq`` did: its result, or the error it raised."""
        data: dict[str, Any] = {"intent": seq}
        if error is not None:
            data["error"] = str(error)
            data["error_type"] = type(error).__name__
        else:
            data["result"] = encode(result)
        if reconciled:
            data["reconciled"] = True
        self.writer.write(
            [self._entry(EntryKind.OUTCOME, data, vm=vm, operation=operation)], durable=durable
        )

    def state(self, old: str, new: str, at: datetime) -> None:
        self.writer.write(
            [self._entry(EntryKind.STATE, {"from": old, "to": new}, at=at)], durable=False
        )

    def resumed(self, owner: str) -> None:
        self.writer.write([self._entry(EntryKind.RESUMED, {"owner": owner})], durable=False)

    def vm_started(self, vm: str, at: datetime) -> None:
        self.writer.write([self._entry(EntryKind.VM_STARTED, {}, vm=vm, at=at)], durable=False)

    def vm_finished(self, vm: str, state: str, progress: object) -> None:
        entry = self._entry(
            EntryKind.VM_FINISHED, {"state": state, "progress": encode(progress)}, vm=vm
        )
        self.writer.write([entry], durable=False)

    def approval(
        self, name: str, vm: str | None, group: int | None, approved: bool, by: str
    ) -> None:
        data = {"name": name, "vm": vm, "group": group, "approved": approved, "by": by}
        self.writer.write([self._entry(EntryKind.APPROVAL, data, vm=vm)], durable=False)
