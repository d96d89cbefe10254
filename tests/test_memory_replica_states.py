"""The memory backend's replica transition table, checked pair by pair, and the backend obeying it.

Every (state, event) pair is checked twice: against :func:`next_replica_state` directly, and
through the backend call that delivers the event, on a replica put in that state. Legal pairs
move the replica to the table's next state; every other pair raises ConflictError naming the
replica, the event and the state, and changes nothing.
"""

from __future__ import annotations

import itertools
from collections import deque
from pathlib import Path

import attrs
import pytest

from vmfailover.backends.memory import MemoryBackend
from vmfailover.backends.memory.replica_states import (
    REPLICA_TRANSITIONS,
    ReplicaEvent,
    next_replica_state,
)
from vmfailover.clock import VirtualClock
from vmfailover.errors import ConflictError
from vmfailover.model import VM, IPConfig, Nic, PowerState, Replica, ReplicaState

PAIRS = list(itertools.product(ReplicaState, ReplicaEvent))


def _replica(state: ReplicaState) -> Replica:
    return Replica(
        id="replica-vm-1",
        source_vm="vm-1",
        replica_vm="vm-1-replica",
        target_host="h-b",
        created_at=VirtualClock().now(),
        state=state,
    )


# --- the table as data ---------------------------------------------------------------------------


def test_the_table_has_every_state_and_only_known_events() -> None:
    assert set(REPLICA_TRANSITIONS) == set(ReplicaState)
    for moves in REPLICA_TRANSITIONS.values():
        assert all(isinstance(event, ReplicaEvent) for event in moves)
        assert all(isinstance(state, ReplicaState) for state in moves.values())


def test_every_event_is_allowed_somewhere() -> None:
    used = {event for moves in REPLICA_TRANSITIONS.values() for event in moves}
    assert used == set(ReplicaEvent)


def test_what_a_new_replica_can_reach() -> None:
    """Nothing fails a replica yet: ``error`` waits for the call that leads there (a repair)."""
    reached = {ReplicaState.INITIALIZING}
    queue = deque(reached)
    while queue:
        for following in REPLICA_TRANSITIONS[queue.popleft()].values():
            if following not in reached:
                reached.add(following)
                queue.append(following)
    assert reached == set(ReplicaState) - {ReplicaState.ERROR}


@pytest.mark.parametrize(("state", "event"), PAIRS)
def test_each_pair_moves_as_the_table_says_or_is_refused(
    state: ReplicaState, event: ReplicaEvent
) -> None:
    replica = _replica(state)
    expected = REPLICA_TRANSITIONS[state].get(event)
    if expected is not None:
        assert next_replica_state(replica, event) is expected
        return
    with pytest.raises(ConflictError) as refused:
        next_replica_state(replica, event)
    _names_replica_event_and_state(refused.value, replica, event, state)


def _names_replica_event_and_state(
    error: ConflictError, replica: Replica, event: ReplicaEvent, state: ReplicaState
) -> None:
    message = str(error)
    assert repr(replica.id) in message
    assert event.value in message
    assert f"it is {state.value}" in message


def transitions_markdown() -> str:
    lines = ["| state | event (the call) | next state |", "|---|---|---|"]
    for state, moves in REPLICA_TRANSITIONS.items():
        for event, target in moves.items():
            lines.append(f"| `{state.value}` | `{event.value}` | `{target.value}` |")
    return "\n".join(lines)


def test_docs_show_the_table_generated_from_the_code() -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "backends.md"
    assert transitions_markdown() in docs.read_text(encoding="utf-8")


# --- the backend obeys it ------------------------------------------------------------------------


@attrs.define
class Scene:
    """A replica (``replica-vm-1``) with one recovery point, its source shut down, and, when
    asked, a test copy: every call that delivers an event can then pass all its other checks."""

    backend: MemoryBackend
    replica: str
    point: str
    test_copy: str | None


def _scene(*, with_test_copy: bool = False) -> Scene:
    backend = MemoryBackend(clock=VirtualClock())
    for site in ("a", "b"):
        backend.add_site(site)
        backend.add_host(f"h-{site}", site)
        backend.add_datastore(f"ds-{site}", site)
        backend.add_network("lan", site)
    backend.add_vm(
        VM(
            id="vm-1",
            name="app",
            host="h-a",
            power_state=PowerState.ON,
            nics=(Nic("00:50:56:00:00:01", "lan", (IPConfig("192.168.1.5/24"),)),),
            datastore="ds-a",
            disk_bytes=4 << 20,
        ),
        boot_seconds=20,
    )
    replica = backend.create_replica("vm-1", "h-b", "ds-b")
    point = backend.sync(replica.id)
    copy = backend.create_test_copy(replica.id, point.id, "t1") if with_test_copy else None
    backend.shutdown_guest("vm-1", timeout=60)
    return Scene(backend, replica.id, point.id, copy)


def _force(backend: MemoryBackend, replica_id: str, state: ReplicaState) -> None:
    """Put a replica in ``state`` behind the table's back (a white-box step: some states have
    no call leading to them yet, and the table's refusals must be checked in all of them)."""
    store = backend._store
    store._replicas[replica_id] = attrs.evolve(store.replica(replica_id), state=state)
    store._changed()


def _deliver(scene: Scene, event: ReplicaEvent) -> None:
    backend = scene.backend
    if event is ReplicaEvent.SYNC:
        backend.sync(scene.replica)
    elif event is ReplicaEvent.TEST:
        backend.create_test_copy(scene.replica, scene.point, "t2")
    elif event is ReplicaEvent.END_TEST:
        assert scene.test_copy is not None
        backend.remove_test_copy(scene.test_copy)
    elif event is ReplicaEvent.REVERT:
        backend.revert(scene.replica, scene.point)
    elif event is ReplicaEvent.REVERSE:
        backend.reverse_replication(scene.replica)
    elif event is ReplicaEvent.COMMIT:
        backend.commit_failover(scene.replica)
    elif event is ReplicaEvent.UNDO:
        backend.undo_failover(scene.replica)
    elif event is ReplicaEvent.RESUME:
        # delivered by reverse_replication of the replica running the other way, once that one
        # is committed (a failback done): built here behind the table's back
        store = backend._store
        replica = store.replica(scene.replica)
        back = Replica(
            id=f"replica-{replica.replica_vm}",
            source_vm=replica.replica_vm,
            replica_vm=replica.source_vm,
            target_host="h-a",
            created_at=replica.created_at,
        )
        store.add_replica(back)
        _force(backend, back.id, ReplicaState.COMMITTED)
        backend.reverse_replication(back.id)
    else:  # pragma: no cover - every event is delivered above
        raise AssertionError(event)


@pytest.mark.parametrize(("state", "event"), PAIRS)
def test_the_backend_moves_replicas_only_as_the_table_says(
    state: ReplicaState, event: ReplicaEvent
) -> None:
    scene = _scene(with_test_copy=event is ReplicaEvent.END_TEST)
    backend = scene.backend
    _force(backend, scene.replica, state)
    before = backend.inventory()
    expected = REPLICA_TRANSITIONS[state].get(event)
    if expected is None:
        with pytest.raises(ConflictError) as refused:
            _deliver(scene, event)
        _names_replica_event_and_state(refused.value, before.replica(scene.replica), event, state)
        after = backend.inventory()
        if event is ReplicaEvent.RESUME:  # the scene added the replica running the other way
            after = attrs.evolve(
                after, replicas=tuple(r for r in after.replicas if r.id != "replica-vm-1-replica")
            )
        assert after == before, "a refused event changed the world"
    else:
        _deliver(scene, event)
        assert backend.inventory().replica(scene.replica).state is expected


def test_a_replica_walks_the_table_through_real_calls_and_back() -> None:
    """Protect, test twice, clean up, fail over, reverse, fail back, and replicate again."""
    scene = _scene()
    backend = scene.backend
    replica, point = scene.replica, scene.point

    def state(replica_id: str) -> ReplicaState:
        return backend.inventory().replica(replica_id).state

    assert state(replica) is ReplicaState.READY
    first = backend.create_test_copy(replica, point, "t1")
    second = backend.create_test_copy(replica, point, "t2")
    assert state(replica) is ReplicaState.TEST_FAILOVER
    backend.remove_test_copy(first)
    assert state(replica) is ReplicaState.TEST_FAILOVER, "one test copy is still there"
    backend.remove_test_copy(second)
    assert state(replica) is ReplicaState.READY

    backend.revert(replica, point)
    backend.revert(replica, point)
    assert state(replica) is ReplicaState.FAILED_OVER
    replica_vm = backend.inventory().replica(replica).replica_vm
    backend.power_on(replica_vm)
    reverse = backend.reverse_replication(replica)
    assert state(replica) is ReplicaState.REVERSED
    assert reverse.state is ReplicaState.INITIALIZING

    backend.shutdown_guest(replica_vm, timeout=60)  # planned failback: final sync, then revert
    final = backend.sync(reverse.id)
    assert state(reverse.id) is ReplicaState.READY
    backend.revert(reverse.id, final.id)
    assert state(reverse.id) is ReplicaState.FAILED_OVER
    backend.power_on("vm-1")
    backend.commit_failover(reverse.id)
    assert state(reverse.id) is ReplicaState.COMMITTED
    assert backend.reverse_replication(reverse.id).id == replica, "the circle closes"
    assert backend.reverse_replication(reverse.id).id == replica, "and stays closed"
    assert state(reverse.id) is ReplicaState.REVERSED
    assert state(replica) is ReplicaState.READY
    backend.sync(replica)
    assert state(replica) is ReplicaState.READY
    assert backend.inventory().replica_of("vm-1").id == replica


def test_a_replica_under_test_cannot_be_failed_over_until_the_test_is_cleaned_up() -> None:
    scene = _scene(with_test_copy=True)
    backend = scene.backend
    with pytest.raises(ConflictError, match="cannot revert replica 'replica-vm-1': it is test_"):
        backend.revert(scene.replica, scene.point)
    assert scene.test_copy is not None
    backend.remove_test_copy(scene.test_copy)
    backend.revert(scene.replica, scene.point)
    assert backend.inventory().replica(scene.replica).state is ReplicaState.FAILED_OVER
