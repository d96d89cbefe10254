"""A memory-backend replica's life, written as one transition table.

Like the sequencer's table (and h11's ``_state.py``), every change of a replica's
:class:`~vmfailover.model.ReplicaState` is a row of :data:`REPLICA_TRANSITIONS`: state -> event ->
next state. A replica is born ``initializing`` (by ``create_replica``, or by
``reverse_replication`` for the replica that runs the other way); from then on the backend changes
its state only through :func:`next_replica_state`, and an event the table does not list for the
replica's state raises :class:`~vmfailover.errors.ConflictError` naming the replica, the event and
the state. Later calls (commit, undo, failback) add their events and rows here, nowhere else.

Two rules the table encodes on purpose:

- A test copy exists only while its replica is ``test_failover``: a replica cannot be reverted
  (failed over) or tested once failed over until the test is cleaned up, so removing the last test
  copy always returns the replica to ``ready``.
- ``reversed`` replicas may sync again: after a failback, ``reverse_replication`` of the reverse
  replica hands back the original one, which then replicates in its first direction again.
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
    REVERSE = "reverse_replication"


_S = ReplicaState
_E = ReplicaEvent

#: state -> event -> next state. The only place a replica's state changes are decided.
REPLICA_TRANSITIONS: Final[Mapping[ReplicaState, Mapping[ReplicaEvent, ReplicaState]]] = {
    _S.INITIALIZING: {_E.SYNC: _S.READY},
    _S.READY: {_E.SYNC: _S.READY, _E.TEST: _S.TEST_FAILOVER, _E.REVERT: _S.FAILED_OVER},
    _S.TEST_FAILOVER: {_E.TEST: _S.TEST_FAILOVER, _E.END_TEST: _S.READY},
    _S.FAILED_OVER: {_E.REVERT: _S.FAILED_OVER, _E.REVERSE: _S.REVERSED},
    _S.COMMITTED: {_E.REVERSE: _S.REVERSED},
    _S.REVERSED: {_E.SYNC: _S.REVERSED},
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
