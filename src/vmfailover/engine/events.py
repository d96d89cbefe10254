"""Typed events a run emits, for progress displays, logs and embedding products, and the bus that
delivers them.

Subscribers receive events one at a time, in the order they happened, on the bus's own delivery
thread: a slow, failing or re-entrant subscriber never holds up a run or changes its course. A
subscriber that raises is logged and reported as a warning of the run; subscribing and
unsubscribing from inside a callback is fine. An event never carries a secret: only names, ids,
times and messages. Fields with a fixed set of values are enums (string enums, so
``event.step == "revert"`` holds too).
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime

import attrs

from vmfailover.engine.results import Outcome, RunResult
from vmfailover.model import FailoverKind

__all__ = [
    "ApprovalAnswered",
    "ApprovalWaiting",
    "CleanupFinished",
    "EventBus",
    "PlanStepFinished",
    "PlanStepStarted",
    "RunEvent",
    "RunFinished",
    "RunStarted",
    "RunStateChanged",
    "RunWarning",
    "StepFinished",
    "StepStarted",
    "Subscriber",
    "VMFailed",
    "VMReady",
    "VMStep",
]

logger = logging.getLogger("vmfailover.events")


class VMStep(enum.StrEnum):
    """A step of one VM's part of a run, as :class:`StepStarted` and :class:`StepFinished` name it.

    ``check_source``: the source's power is read again just before acting. ``shutdown_source`` /
    ``power_off_source``: the source is stopped. ``final_sync``: a planned failover's last sync,
    taken with the source down. ``revert``: the replica goes back to the recovery point.
    ``create_test_copy``: a test failover's isolated copy of the point. ``connect_nic``: NICs move
    to their mapped networks. ``set_guest_ip``: the guest's addresses for its next boot.
    ``power_on``, ``wait_ready`` (the readiness probe, polled), ``verify_addresses`` (what the
    guest reports against what re-IP gave it), ``remove_test_copy`` (cleanup). Host failover:
    ``restart_on_host`` (a failed host's VM registered on a survivor and powered on),
    ``migrate_vm`` (moved between hosts, live where it can), ``shutdown_guest`` (stopped to be
    moved when it cannot move live).
    """

    CHECK_SOURCE = "check_source"
    SHUTDOWN_SOURCE = "shutdown_source"
    POWER_OFF_SOURCE = "power_off_source"
    FINAL_SYNC = "final_sync"
    REVERT = "revert"
    CREATE_TEST_COPY = "create_test_copy"
    CONNECT_NIC = "connect_nic"
    SET_GUEST_IP = "set_guest_ip"
    POWER_ON = "power_on"
    WAIT_READY = "wait_ready"
    VERIFY_ADDRESSES = "verify_addresses"
    REMOVE_TEST_COPY = "remove_test_copy"
    RESTART_ON_HOST = "restart_on_host"
    MIGRATE_VM = "migrate_vm"
    SHUTDOWN_GUEST = "shutdown_guest"


@attrs.frozen
class RunStarted:
    run_id: str
    kind: FailoverKind
    vms: tuple[str, ...]
    at: datetime
    plan: str = ""


@attrs.frozen
class RunStateChanged:
    """The run moved from ``old`` to ``new`` (states of :mod:`vmfailover.engine.run_state`)."""

    run_id: str
    old: str
    new: str
    at: datetime


@attrs.frozen
class StepStarted:
    run_id: str
    vm: str
    step: VMStep
    at: datetime


@attrs.frozen
class StepFinished:
    run_id: str
    vm: str
    step: VMStep
    at: datetime
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@attrs.frozen
class PlanStepStarted:
    """A plan's pre- or post-step started (``vm``/``group`` say where; neither: the plan)."""

    run_id: str
    name: str
    when: str
    at: datetime
    vm: str | None = None
    group: int | None = None


@attrs.frozen
class PlanStepFinished:
    run_id: str
    name: str
    when: str
    at: datetime
    error: str | None = None
    vm: str | None = None
    group: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@attrs.frozen
class ApprovalWaiting:
    """The run waits at approval gate ``name`` until ``run.approve(name)`` (or its approver)."""

    run_id: str
    name: str
    at: datetime
    vm: str | None = None
    group: int | None = None


@attrs.frozen
class ApprovalAnswered:
    run_id: str
    name: str
    approved: bool
    by: str
    at: datetime


@attrs.frozen
class VMReady:
    run_id: str
    vm: str
    at: datetime


@attrs.frozen
class VMFailed:
    """VM ``vm`` ended without becoming ready; ``state`` says how (failed, timed out, skipped,
    cancelled) and ``reason`` why."""

    run_id: str
    vm: str
    state: Outcome
    reason: str
    at: datetime


@attrs.frozen
class RunWarning:
    run_id: str
    message: str
    at: datetime
    vm: str | None = None


@attrs.frozen
class RunFinished:
    run_id: str
    result: RunResult
    at: datetime
    rto_seconds: float


@attrs.frozen
class CleanupFinished:
    """A test failover's cleanup ended; ``restored`` is whether the inventory equals the one
    before the test (``differences`` names what does not)."""

    run_id: str
    at: datetime
    restored: bool
    differences: tuple[str, ...] = ()


RunEvent = (
    RunStarted
    | RunStateChanged
    | StepStarted
    | StepFinished
    | PlanStepStarted
    | PlanStepFinished
    | ApprovalWaiting
    | ApprovalAnswered
    | VMReady
    | VMFailed
    | RunWarning
    | RunFinished
    | CleanupFinished
)
Subscriber = Callable[[RunEvent], None]
ErrorHandler = Callable[[RunEvent, BaseException], None]


class EventBus:
    """Delivers events to subscribers on one delivery thread, in order, isolated from the run.

    :meth:`publish` never blocks and never raises; :meth:`flush` waits (bounded) until what was
    published has been delivered. ``on_error`` hears of each subscriber that raised.
    """

    def __init__(self, name: str = "vmfailover-events") -> None:
        self._name = name
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[RunEvent, ErrorHandler | None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pending = 0
        self._idle = threading.Condition(self._lock)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Deliver every event to ``callback``; returns a function that unsubscribes."""
        _check_callable(callback)
        with self._lock:
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    def publish(self, event: RunEvent, on_error: ErrorHandler | None = None) -> None:
        with self._lock:
            if not self._subscribers:
                return
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._deliver, name=self._name, daemon=True)
                self._thread.start()
        self._queue.put((event, on_error))

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` real seconds for delivery to catch up; True if it did."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _deliver(self) -> None:
        while True:
            event, on_error = self._queue.get()
            with self._lock:
                subscribers = self._subscribers
            for callback in subscribers:
                try:
                    callback(event)
                except Exception as error:
                    logger.warning(
                        "event subscriber %r raised on %s",
                        callback,
                        type(event).__name__,
                        exc_info=True,
                    )
                    if on_error is not None:
                        try:
                            on_error(event, error)
                        except Exception:  # pragma: no cover - our own handler
                            logger.exception("reporting a subscriber's error failed")
            with self._idle:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.notify_all()


def _check_callable(callback: object) -> None:
    if not callable(callback):
        from vmfailover.errors import ValidationError

        raise ValidationError.of("subscribe", f"needs a callable, got {callback!r}")
