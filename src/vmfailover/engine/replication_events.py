"""Typed events of replication jobs and RPO monitoring, for alerting and progress displays.

A job hands them to its subscribers (and a :class:`~vmfailover.engine.scheduler.Scheduler` to
everyone subscribed to it). A subscriber that raises is logged and ignored: it can never change
what a job does. Events carry names, ids, times and numbers, never a secret.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from vmfailover.policy.rpo import RPOState

if TYPE_CHECKING:
    from vmfailover.engine.replication_results import JobOutcome, JobResult

__all__ = [
    "JobFinished",
    "JobStarted",
    "RPOChanged",
    "ReplicationEvent",
    "ReplicationSubscriber",
    "Subscribers",
]

_log = logging.getLogger("vmfailover.replication")


@attrs.frozen
class JobStarted:
    job: str
    vms: tuple[str, ...]
    at: datetime


@attrs.frozen
class JobFinished:
    job: str
    outcome: JobOutcome
    at: datetime
    result: JobResult = attrs.field(repr=False)


@attrs.frozen
class RPOChanged:
    """A VM's RPO state changed (sent once per change, however often it is checked).

    ``previous`` is ``None`` the first time a VM is seen; a first sighting is only sent when the
    VM is not compliant, so a new monitor reports breaches, not every healthy VM.
    """

    vm: str
    job: str | None
    previous: RPOState | None
    current: RPOState
    age_seconds: float | None
    target_seconds: float
    at: datetime


ReplicationEvent = JobStarted | JobFinished | RPOChanged
ReplicationSubscriber = Callable[[ReplicationEvent], None]


class Subscribers:
    """A set of callbacks, called one at a time; a callback that raises is logged and skipped."""

    def __init__(self) -> None:
        self._callbacks: list[ReplicationSubscriber] = []
        self._lock = threading.RLock()

    def add(self, callback: ReplicationSubscriber) -> Callable[[], None]:
        """Subscribe; returns a function that unsubscribes."""
        with self._lock:
            self._callbacks.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove

    def emit(self, event: ReplicationEvent) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
            for callback in callbacks:
                try:
                    callback(event)
                except Exception:  # a subscriber can never change a job's course
                    _log.exception("replication event subscriber %r failed on %r", callback, event)

    def emit_all(self, events: Iterable[ReplicationEvent]) -> None:
        for event in events:
            self.emit(event)
