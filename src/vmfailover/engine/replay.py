"""What an interrupted run's journal says happened, read back for resuming it.

A resumed run walks its plan again with this beside it: VMs whose recovery finished are handed
back to the sequencer with their recorded outcome (never redone); a VM in the middle of its
recovery repeats its steps, and each journaled backend call it meets again is *replayed* from its
record (the recorded result, without calling) or, where the intent has no outcome, reconciled
against the backend (:mod:`vmfailover.engine.reconcile`) before anything is repeated.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from vmfailover.engine.journal import EntryKind, JournalEntry
from vmfailover.engine.journal_codec import decode
from vmfailover.engine.recovery import VMProgress
from vmfailover.engine.run_journal import call_key
from vmfailover.errors import (
    BackendError,
    ConflictError,
    NotFoundError,
    PermanentBackendError,
    TransientBackendError,
    ValidationError,
    VMFailoverError,
)
from vmfailover.policy.sequencer import VMState

__all__ = ["CallRecord", "Replay", "progress_record"]

_ERRORS: dict[str, type[VMFailoverError]] = {
    cls.__name__: cls
    for cls in (
        TransientBackendError,
        PermanentBackendError,
        BackendError,
        ConflictError,
        NotFoundError,
    )
}


@attrs.frozen
class CallRecord:
    """A journaled call: its intent and, if it was recorded, its outcome."""

    seq: int
    vm: str | None
    operation: str
    key: str
    args: tuple[Any, ...]
    at: datetime
    outcome: Mapping[str, Any] | None = None
    outcome_at: datetime | None = None
    outlived: bool = False
    """A later call of the same VM has an outcome: this one had acted (calls are sequential)."""
    context: Mapping[str, Any] = attrs.field(factory=dict)
    """What the run knew just before the call, for reconciling it."""

    @property
    def failed(self) -> bool:
        return self.outcome is not None and "error" in self.outcome

    def replayed(self) -> object:
        """The recorded result, or the recorded error raised again."""
        assert self.outcome is not None
        if "error" in self.outcome:
            kind = _ERRORS.get(self.outcome.get("error_type", ""), VMFailoverError)
            raise kind(f"{self.outcome['error']} (recorded before the run was interrupted)")
        return decode(self.outcome.get("result"))


def progress_record(progress: VMProgress) -> dict[str, object]:
    """A VM's progress as the journal holds it (see :func:`_progress`)."""
    return {field.name: getattr(progress, field.name) for field in attrs.fields(VMProgress)}


def _progress(data: object) -> VMProgress:
    fields = decode(data)
    if not isinstance(fields, dict):
        raise ValidationError.of("journal record", "a VM's progress is not a table")
    fields["steps"] = list(fields.get("steps", ()))
    return VMProgress(**fields)


class Replay:
    """The journal of one run, arranged for resuming it."""

    def __init__(self, started_at: datetime, entries: Iterable[JournalEntry]) -> None:
        self.started_at = started_at
        self.vm_started: dict[str, datetime] = {}
        self.finished: dict[str, tuple[VMState, VMProgress]] = {}
        self.approvals: dict[tuple[str, str | None, int | None], tuple[bool, str]] = {}
        self.last_seq = 0
        self.interrupted_calls = 0
        self._calls: dict[str, deque[CallRecord]] = {}
        self._lock = threading.Lock()
        intents: dict[int, CallRecord] = {}
        for entry in entries:
            self.last_seq = max(self.last_seq, entry.seq)
            if entry.kind is EntryKind.INTENT:
                assert entry.operation is not None
                payload = entry.payload()
                context: Mapping[str, Any] = {}
                if isinstance(payload, dict) and "args" in payload:
                    context = decode(payload.get("context", {"$map": []}))
                    payload = payload["args"]
                args = decode(payload)
                intents[entry.seq] = CallRecord(
                    entry.seq,
                    entry.vm,
                    entry.operation,
                    call_key(entry.operation, args),
                    args,
                    entry.at,
                    context=context,
                )
            elif entry.kind is EntryKind.OUTCOME:
                payload = entry.payload()
                seq = payload["intent"]
                if seq in intents:
                    intents[seq] = attrs.evolve(intents[seq], outcome=payload, outcome_at=entry.at)
            elif entry.kind is EntryKind.VM_STARTED and entry.vm is not None:
                self.vm_started.setdefault(entry.vm, entry.at)
            elif entry.kind is EntryKind.VM_FINISHED and entry.vm is not None:
                payload = entry.payload()
                self.finished[entry.vm] = (
                    VMState(payload["state"]),
                    _progress(payload["progress"]),
                )
            elif entry.kind is EntryKind.APPROVAL:
                payload = entry.payload()
                key = (payload["name"], payload["vm"], payload["group"])
                self.approvals[key] = (bool(payload["approved"]), str(payload["by"]))
        for record in intents.values():
            if record.vm is not None and record.vm in self.finished:
                continue
            self._calls.setdefault(record.vm or "", deque()).append(record)
            if record.outcome is None:
                self.interrupted_calls += 1
        for vm, queue in self._calls.items():
            if not vm:
                continue  # plan and group steps are not one sequence
            acted_later = False
            for index in range(len(queue) - 1, -1, -1):
                record = queue[index]
                if record.outcome is None and acted_later:
                    queue[index] = attrs.evolve(record, outlived=True)
                acted_later = acted_later or (record.outcome is not None and not record.failed)

    def take(self, vm: str | None, operation: str, key: str) -> CallRecord | None:
        """The next journaled call of ``vm`` if it is this one (then it is consumed).

        A call that differs from the record means the run went another way than before: the
        rest of that VM's records no longer apply and are dropped (later calls act anew).
        """
        with self._lock:
            queue = self._calls.get(vm or "")
            if not queue:
                return None
            record = queue[0]
            if record.operation != operation or record.key != key:
                queue.clear()
                return None
            return queue.popleft()

    def saw(self, vm: str, operations: Iterable[str]) -> bool:
        """Whether ``vm``'s remaining records hold a call of one of ``operations``."""
        wanted = set(operations)
        with self._lock:
            return any(record.operation in wanted for record in self._calls.get(vm, ()))

    def first_at(self, vm: str, operations: Iterable[str]) -> datetime | None:
        """When ``vm``'s first remaining record of one of ``operations`` was journaled, if any
        (a resumed move back's downtime runs from its journaled shutdown)."""
        wanted = set(operations)
        with self._lock:
            return next((r.at for r in self._calls.get(vm, ()) if r.operation in wanted), None)

    def remaining(self, vm: str | None) -> bool:
        """Whether ``vm`` still has journaled calls to replay."""
        with self._lock:
            return bool(self._calls.get(vm or ""))
