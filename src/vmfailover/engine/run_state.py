"""The life of a failover run, as data: one transition table per kind of failover.

Written like the sequencer's per-VM table (and h11's ``_state.py``): :data:`TRANSITIONS` maps a
kind, a state and an action to the next state; anything missing is illegal and raises
:class:`~vmfailover.errors.ConflictError` naming the run, its state, the action and what is
allowed. Work that extends a run's life (commit, undo, failback) adds rows here and nowhere else;
the documentation's diagram is generated from the table (:func:`mermaid`).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from vmfailover._render import in_words, listing
from vmfailover.errors import ConflictError
from vmfailover.model import FailoverKind

__all__ = ["TRANSITIONS", "RunAction", "RunState", "RunStateMachine", "mermaid"]


class RunState(enum.StrEnum):
    """Where a run is. ``failed_over``, ``partial``, ``failed`` and ``cancelled`` are how the
    recovery ended; a test run then ends ``cleaned_up``."""

    PENDING = "pending"
    VALIDATING = "validating"
    RUNNING = "running"
    FAILED_OVER = "failed_over"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CLEANED_UP = "cleaned_up"


class RunAction(enum.StrEnum):
    """What can happen to a run."""

    VALIDATE = "validate"
    REFUSE = "refuse"
    START = "start"
    FINISH_ALL_READY = "finish_all_ready"
    FINISH_SOME_READY = "finish_some_ready"
    FINISH_NONE_READY = "finish_none_ready"
    CANCEL = "cancel"
    CLEAN_UP = "clean_up"


_ENDED = (RunState.FAILED_OVER, RunState.PARTIAL, RunState.FAILED, RunState.CANCELLED)

_COMMON: dict[RunState, dict[RunAction, RunState]] = {
    RunState.PENDING: {
        RunAction.VALIDATE: RunState.VALIDATING,
        RunAction.CANCEL: RunState.CANCELLED,
    },
    RunState.VALIDATING: {
        RunAction.REFUSE: RunState.FAILED,
        RunAction.START: RunState.RUNNING,
        RunAction.CANCEL: RunState.CANCELLED,
    },
    RunState.RUNNING: {
        RunAction.FINISH_ALL_READY: RunState.FAILED_OVER,
        RunAction.FINISH_SOME_READY: RunState.PARTIAL,
        RunAction.FINISH_NONE_READY: RunState.FAILED,
        RunAction.CANCEL: RunState.CANCELLED,
    },
    RunState.FAILED_OVER: {},
    RunState.PARTIAL: {},
    RunState.FAILED: {},
    RunState.CANCELLED: {},
    RunState.CLEANED_UP: {},
}

#: Per kind, what each action does in each state. A test run's copies are cleaned up whatever way
#: it ended; production kinds gain commit and undo with the journal.
_EXTRA: dict[FailoverKind, dict[RunState, dict[RunAction, RunState]]] = {
    FailoverKind.TEST: {state: {RunAction.CLEAN_UP: RunState.CLEANED_UP} for state in _ENDED},
    FailoverKind.PLANNED: {},
    FailoverKind.REGULAR: {},
}


def _table() -> Mapping[FailoverKind, Mapping[RunState, Mapping[RunAction, RunState]]]:
    tables = {}
    for kind in FailoverKind:
        rows = {state: dict(actions) for state, actions in _COMMON.items()}
        for state, actions in _EXTRA[kind].items():
            rows[state].update(actions)
        tables[kind] = MappingProxyType(
            {state: MappingProxyType(actions) for state, actions in rows.items()}
        )
    return MappingProxyType(tables)


TRANSITIONS: Final = _table()
"""kind -> state -> action -> next state. Anything missing is illegal."""


class RunStateMachine:
    """One run's state, moved only through :data:`TRANSITIONS`; thread-safe."""

    def __init__(self, run_id: str, kind: FailoverKind, state: RunState = RunState.PENDING) -> None:
        """``state`` other than pending restores a journaled run where it was."""
        self.run_id = run_id
        self.kind = kind
        self._state = RunState(state)
        self._lock = threading.Lock()

    @property
    def state(self) -> RunState:
        return self._state

    def allowed(self) -> tuple[RunAction, ...]:
        return tuple(TRANSITIONS[self.kind][self._state])

    def fire(self, action: RunAction) -> tuple[RunState, RunState]:
        """Apply ``action``; returns (old, new). Raises ConflictError if the table forbids it."""
        with self._lock:
            old = self._state
            new = TRANSITIONS[self.kind][old].get(action)
            if new is None:
                allowed = listing([in_words(a) for a in TRANSITIONS[self.kind][old]], 10)
                raise ConflictError(
                    f"run {self.run_id} ({self.kind.value} failover) is {in_words(old)}: it "
                    f"cannot {in_words(action)}"
                    + (f"; allowed: {allowed}" if allowed else "; nothing more can happen to it")
                )
            self._state = new
            return old, new

    def can(self, action: RunAction) -> bool:
        return action in TRANSITIONS[self.kind][self._state]

    def __repr__(self) -> str:
        return f"RunStateMachine({self.run_id!r}, {self.kind.value}, {self._state.value})"


def mermaid(kind: FailoverKind | str) -> str:
    """The table of ``kind`` as a Mermaid state diagram (for the documentation)."""
    kind = FailoverKind(kind)
    lines = ["stateDiagram-v2", f"    [*] --> {RunState.PENDING.value}"]
    for state, actions in TRANSITIONS[kind].items():
        for action, target in actions.items():
            lines.append(f"    {state.value} --> {target.value}: {action.value}")
    return "\n".join(lines)
