"""The memory backend's damage fault: damage from a moment on, carried by later points, syncs,
test copies and failovers of those points, and nothing else."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from vmfailover.backends.memory import DAMAGE_BLOCK, MemoryBackend
from vmfailover.errors import ValidationError
from vmfailover.testing import lab


@pytest.fixture
def backend() -> MemoryBackend:
    return lab(points=6)


def test_points_from_the_moment_on_carry_the_damage_and_copies_of_them_show_it(
    backend: MemoryBackend,
) -> None:
    inventory = backend.inventory()
    replica = inventory.replica_of("db01")
    points = backend.recovery_points(replica.id)
    hit = backend.damage("vm-003", since=points[3].created_at)
    assert hit == tuple(p.id for p in points[3:])
    assert backend.damaged("vm-003")  # the source
    assert backend.damaged(replica.replica_vm)  # the replica VM holds its last sync
    for number, point in enumerate(points):
        assert (DAMAGE_BLOCK in backend.point_disk(point.id)) is (number >= 3)
        copy = backend.create_test_copy(replica.id, point.id, f"t{number}")
        assert backend.damaged(copy) is (number >= 3)
        backend.remove_test_copy(copy)
    later = backend.sync(replica.id)  # damage, once in, stays in every later point
    assert DAMAGE_BLOCK in backend.point_disk(later.id)
    others = [vm.id for vm in inventory.vms if vm.id not in ("vm-003", replica.replica_vm)]
    assert not any(backend.damaged(vm) for vm in others)
    assert backend.inventory() == inventory  # a fault of the disks; the inventory is as it was


def test_damage_now_reaches_only_points_synced_later(backend: MemoryBackend) -> None:
    replica = backend.inventory().replica_of("web01")
    before = backend.recovery_points(replica.id)
    backend.run_workload(60)
    assert backend.damage("vm-008") == ()
    assert not backend.damaged(replica.replica_vm)
    assert all(DAMAGE_BLOCK not in backend.point_disk(p.id) for p in before)
    after = backend.sync(replica.id)
    assert DAMAGE_BLOCK in backend.point_disk(after.id)
    assert backend.data_loss_blocks("vm-008", before[-1].id) >= 1


def test_damage_in_the_future_or_without_a_time_zone_is_refused(backend: MemoryBackend) -> None:
    with pytest.raises(ValidationError, match="in the future"):
        backend.damage("vm-001", since=backend.clock.now() + timedelta(seconds=1))
    with pytest.raises(ValidationError, match="naive"):
        backend.damage("vm-001", since=datetime(2024, 1, 1))
    assert not backend.damaged("vm-001")
