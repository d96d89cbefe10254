"""Typed events a run emits, for progress displays, logs and embedding products.

Subscribers receive them in the order they happen, from the thread that drives the run. An event
never carries a secret: only names, ids, times and messages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import attrs

from vmfailover.model import FailoverKind

__all__ = [
    "RunEvent",
    "RunFinished",
    "RunStarted",
    "RunWarning",
    "StepFinished",
    "StepStarted",
    "Subscriber",
    "VMFailed",
    "VMReady",
]


@attrs.frozen
class RunStarted:
    run_id: str
    kind: FailoverKind
    vms: tuple[str, ...]
    at: datetime


@attrs.frozen
class StepStarted:
    run_id: str
    vm: str
    step: str
    at: datetime


@attrs.frozen
class StepFinished:
    run_id: str
    vm: str
    step: str
    at: datetime
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@attrs.frozen
class VMReady:
    run_id: str
    vm: str
    at: datetime


@attrs.frozen
class VMFailed:
    run_id: str
    vm: str
    state: str
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
    result: str
    at: datetime
    rto_seconds: float


RunEvent = RunStarted | StepStarted | StepFinished | VMReady | VMFailed | RunWarning | RunFinished
Subscriber = Callable[[RunEvent], None]
