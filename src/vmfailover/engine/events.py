"""Typed events a run emits, for progress displays, logs and embedding products.

Subscribers receive them one at a time, in the order they happen, from the thread that drives the
run or from one of its workers. An event never carries a secret: only names, ids, times and
messages. Fields with a fixed set of values are enums (:class:`Step`, ``Outcome``, ``RunResult``,
``FailoverKind``); they are string enums, so ``event.step == "revert"`` holds too.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime

import attrs

from vmfailover.engine.results import Outcome, RunResult
from vmfailover.model import FailoverKind

__all__ = [
    "RunEvent",
    "RunFinished",
    "RunStarted",
    "RunWarning",
    "Step",
    "StepFinished",
    "StepStarted",
    "Subscriber",
    "VMFailed",
    "VMReady",
]


class Step(enum.StrEnum):
    """A step of one VM's part of a run, as :class:`StepStarted` and :class:`StepFinished` name it.

    ``revert``: the replica goes back to the chosen recovery point. ``power_on``: the replica VM is
    switched on. ``wait_ready``: its readiness probe is polled until it passes or times out.
    """

    REVERT = "revert"
    POWER_ON = "power_on"
    WAIT_READY = "wait_ready"


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
    step: Step
    at: datetime


@attrs.frozen
class StepFinished:
    run_id: str
    vm: str
    step: Step
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


RunEvent = RunStarted | StepStarted | StepFinished | VMReady | VMFailed | RunWarning | RunFinished
Subscriber = Callable[[RunEvent], None]
