"""A memory-backend replica's life, written as one transition table.

Like the sequencer's table (and h11's ``_state.py``), every change of a replica's
:class:`~vmfailover.model.ReplicaState` is a row of :data:`REPLICA_TRANSITIONS`: state -> event ->
next state. A replica is born ``initializing`` (by ``create_replica``, or by
``reverse_replication`` for the replica that runs the other way); from then on the backend changes
its state only through :func:`next_replica_state`, and an event the table does not list for the
replica's state raises :class:`~vmfailover.errors.ConflictError` naming the replica, the event and
the state.

Rules the table encodes on purpose:

- A test copy exists only while its replica is ``test_failover``: a replica cannot be reverted
  (failed over) or tested once failed over until the test is cleaned up, so removing the last test
  copy always returns the replica to ``ready``.
- A failover is undone (``undo_failover``: back to ``ready``) or committed (``commit_failover``)
  only while it is failed over; both may be repeated (a ready replica stays ready, a committed
  one committed), so a journal can repeat them after a crash.
- A ``reversed`` replica does not sync (its replica VM runs production now); it is *resumed*
  (back to ``ready``) when ``reverse_replication`` of its reverse replica, failed over or
  committed in turn (a failback), hands it back: it then replicates in its first direction
  again, and its reverse replica is the ``reversed`` one.
- Nothing leads to ``error`` yet: it waits for the calls that lead there (a repair).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from vmfailover.errors import ConflictError
from vmfailover.model import Replica, ReplicaState

__all__ = ["REPLICA_TRANSITIONS", "ReplicaEvent", "next_replica_state"]


class ReplicaEvent(enum.StrEnum):
    """What can happen to a replica. The value is the backend call that delivers it."""

    SYNC = "sync"
    TEST = "create_test_copy"
    END_TEST = "remove_test_copy"  # the replica's last test copy is removed
    REVERT = "revert"
    COMMIT = "commit_failover"
    UNDO = "undo_failover"
    REVERSE = "reverse_replication"
    RESUME = "resume"  # by reverse_replication of its reverse replica (a failback done)


_S = ReplicaState
_E = ReplicaEvent

#: state -> event -> next state. The only place a replica's state changes are decided.
REPLICA_TRANSITIONS: Final[Mapping[ReplicaState, Mapping[ReplicaEvent, ReplicaState]]] = {
    _S.INITIALIZING: {_E.SYNC: _S.READY},
    _S.READY: {
        _E.SYNC: _S.READY,
        _E.TEST: _S.TEST_FAILOVER,
        _E.REVERT: _S.FAILED_OVER,
        _E.UNDO: _S.READY,
    },
    _S.TEST_FAILOVER: {_E.TEST: _S.TEST_FAILOVER, _E.END_TEST: _S.READY},
    _S.FAILED_OVER: {
        _E.REVERT: _S.FAILED_OVER,
        _E.COMMIT: _S.COMMITTED,
        _E.UNDO: _S.READY,
        _E.REVERSE: _S.REVERSED,
    },
    _S.COMMITTED: {_E.COMMIT: _S.COMMITTED, _E.REVERSE: _S.REVERSED},
    _S.REVERSED: {_E.RESUME: _S.READY},
    _S.ERROR: {},
}


def next_replica_state(replica: Replica, event: ReplicaEvent) -> ReplicaState:
    """The state ``event`` moves ``replica`` to; ConflictError if the table does not allow it."""
    try:
        return REPLICA_TRANSITIONS[replica.state][event]
    except KeyError:
        allowed = [state.value for state, moves in REPLICA_TRANSITIONS.items() if event in moves]
        raise ConflictError(
            f"cannot {event.value} replica {replica.id!r}: it is {replica.state.value} "
            f"({event.value} needs it {' or '.join(allowed)})"
        ) from None
