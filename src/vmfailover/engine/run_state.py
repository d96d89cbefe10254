"""The life of a failover run, as data: one transition table per kind of failover.

Written like the sequencer's per-VM table (and h11's ``_state.py``): :data:`TRANSITIONS` maps a
kind, a state and an action to the next state; anything missing is illegal and raises
:class:`~vmfailover.errors.ConflictError` naming the run, its state, the action and what is
allowed. A failback is a planned failover with a life of its own (:data:`FAILBACK_TRANSITIONS`:
it is committed or undone, never failed back in turn). The documentation's diagrams are generated
from the tables (:func:`mermaid`).

After the recovery a production run (planned or regular) is *uncommitted*: ``commit`` makes it
permanent (``committing`` until every replica is committed, then ``committed``), ``undo`` reverts
it (``undoing``, then ``undone``); both may be repeated while they are under way, so an
interrupted one is finished by calling it again. ``fail_back`` (from ``failed_over``, committing
on the way, or from ``committed``) reverses replication and starts the failback run; the original
run is ``failing_back`` until that run is committed (``failed_back``) or undone (``committed``
again: production still runs at the recovery site, and failback may be tried again).
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

__all__ = [
    "FAILBACK_TRANSITIONS",
    "TRANSITIONS",
    "RunAction",
    "RunState",
    "RunStateMachine",
    "mermaid",
    "table_for",
]


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
    COMMITTING = "committing"
    COMMITTED = "committed"
    UNDOING = "undoing"
    UNDONE = "undone"
    FAILING_BACK = "failing_back"
    FAILED_BACK = "failed_back"


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
    COMMIT = "commit"
    FINISH_COMMIT = "finish_commit"
    UNDO = "undo"
    FINISH_UNDO = "finish_undo"
    FAIL_BACK = "fail_back"
    FINISH_FAIL_BACK = "finish_fail_back"
    CANCEL_FAIL_BACK = "cancel_fail_back"


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
    RunState.COMMITTING: {},
    RunState.COMMITTED: {},
    RunState.UNDOING: {},
    RunState.UNDONE: {},
    RunState.FAILING_BACK: {},
    RunState.FAILED_BACK: {},
}

_S, _A = RunState, RunAction

#: A production run after its recovery: committed or undone (partly recovered runs too: undo
#: reverts what the run touched, commit makes permanent what it failed over).
_AFTERCARE: dict[RunState, dict[RunAction, RunState]] = {
    _S.FAILED_OVER: {_A.COMMIT: _S.COMMITTING, _A.UNDO: _S.UNDOING},
    _S.PARTIAL: {_A.COMMIT: _S.COMMITTING, _A.UNDO: _S.UNDOING},
    _S.FAILED: {_A.UNDO: _S.UNDOING},
    _S.CANCELLED: {_A.UNDO: _S.UNDOING},
    _S.COMMITTING: {_A.COMMIT: _S.COMMITTING, _A.FINISH_COMMIT: _S.COMMITTED},
    _S.UNDOING: {_A.UNDO: _S.UNDOING, _A.FINISH_UNDO: _S.UNDONE},
}

#: What a production run adds to that: it can be failed back.
_FAILBACK_ROWS: dict[RunState, dict[RunAction, RunState]] = {
    _S.FAILED_OVER: {_A.FAIL_BACK: _S.FAILING_BACK},
    _S.COMMITTED: {_A.FAIL_BACK: _S.FAILING_BACK},
    _S.FAILING_BACK: {
        _A.FAIL_BACK: _S.FAILING_BACK,
        _A.FINISH_FAIL_BACK: _S.FAILED_BACK,
        _A.CANCEL_FAIL_BACK: _S.COMMITTED,
    },
}

#: Per kind, what each action does in each state. A test run's copies are cleaned up whatever way
#: it ended (and a test is never committed, undone or failed back); production kinds are
#: committed, undone and failed back.
_EXTRA: dict[FailoverKind, tuple[dict[RunState, dict[RunAction, RunState]], ...]] = {
    FailoverKind.TEST: ({state: {_A.CLEAN_UP: _S.CLEANED_UP} for state in _ENDED},),
    FailoverKind.PLANNED: (_AFTERCARE, _FAILBACK_ROWS),
    FailoverKind.REGULAR: (_AFTERCARE, _FAILBACK_ROWS),
}

Table = Mapping[RunState, Mapping[RunAction, RunState]]


def _rows(*extras: dict[RunState, dict[RunAction, RunState]]) -> Table:
    rows = {state: dict(actions) for state, actions in _COMMON.items()}
    for extra in extras:
        for state, actions in extra.items():
            rows[state].update(actions)
    return MappingProxyType({state: MappingProxyType(actions) for state, actions in rows.items()})


TRANSITIONS: Final[Mapping[FailoverKind, Table]] = MappingProxyType(
    {kind: _rows(*_EXTRA[kind]) for kind in FailoverKind}
)
"""kind -> state -> action -> next state. Anything missing is illegal."""

FAILBACK_TRANSITIONS: Final[Table] = _rows(_AFTERCARE)
"""A failback run's table: a planned failover that is committed or undone, not failed back (to
go the other way again, run the original plan)."""


def table_for(kind: FailoverKind, *, failback: bool = False) -> Table:
    """The table a run of ``kind`` lives by (a failback's own when ``failback``)."""
    return FAILBACK_TRANSITIONS if failback else TRANSITIONS[kind]


class RunStateMachine:
    """One run's state, moved only through its table (:func:`table_for`); thread-safe."""

    def __init__(
        self,
        run_id: str,
        kind: FailoverKind,
        state: RunState = RunState.PENDING,
        *,
        failback: bool = False,
    ) -> None:
        """``state`` other than pending restores a journaled run where it was."""
        self.run_id = run_id
        self.kind = kind
        self.failback = failback
        self._table = table_for(kind, failback=failback)
        self._state = RunState(state)
        self._lock = threading.Lock()

    @property
    def state(self) -> RunState:
        return self._state

    @property
    def what(self) -> str:
        """The run's life in words: ``planned failover``, ``failback (planned failover)``."""
        kind = f"{self.kind.value} failover"
        return f"failback ({kind})" if self.failback else kind

    def allowed(self) -> tuple[RunAction, ...]:
        return tuple(self._table[self._state])

    def fire(self, action: RunAction) -> tuple[RunState, RunState]:
        """Apply ``action``; returns (old, new). Raises ConflictError if the table forbids it."""
        with self._lock:
            old = self._state
            new = self._table[old].get(action)
            if new is None:
                allowed = listing([in_words(a) for a in self._table[old]], 10)
                raise ConflictError(
                    f"run {self.run_id} ({self.what}) is {in_words(old)}: it "
                    f"cannot {in_words(action)}"
                    + (f"; allowed: {allowed}" if allowed else "; nothing more can happen to it")
                )
            self._state = new
            return old, new

    def can(self, action: RunAction) -> bool:
        return action in self._table[self._state]

    def __repr__(self) -> str:
        return f"RunStateMachine({self.run_id!r}, {self.what}, {self._state.value})"


def mermaid(kind: FailoverKind | str) -> str:
    """The table of ``kind`` (or ``"failback"``) as a Mermaid state diagram, for the docs.

    States that nothing leads to in that table are left out.
    """
    table = FAILBACK_TRANSITIONS if kind == "failback" else TRANSITIONS[FailoverKind(kind)]
    lines = ["stateDiagram-v2", f"    [*] --> {RunState.PENDING.value}"]
    for state, actions in table.items():
        for action, target in actions.items():
            lines.append(f"    {state.value} --> {target.value}: {action.value}")
    return "\n".join(lines)
