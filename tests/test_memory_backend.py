"""The memory backend's own promises: disks that compare, faults on demand, site loss."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from attrs import evolve

from vmfailover import ConflictError, PermanentBackendError, PowerState, TransientBackendError
from vmfailover.backends.base import Backend
from vmfailover.backends.memory import BLOCK_SIZE, MemoryBackend
from vmfailover.testing import LAB_DEPENDENCIES, LAB_VMS, SimulatedCrash, lab


@pytest.fixture
def backend() -> MemoryBackend:
    return lab()


def _replica(backend: MemoryBackend, name: str) -> tuple[str, str, str]:
    inventory = backend.inventory()
    vm = inventory.vm(name)
    replica = inventory.replica_of(vm.id)
    return vm.id, replica.id, replica.replica_vm


def test_it_is_a_backend(backend: MemoryBackend) -> None:
    assert isinstance(backend, Backend)


def test_lab_matches_its_description(backend: MemoryBackend) -> None:
    inventory = backend.inventory()
    sources = inventory.vms_at("site-a")
    assert {vm.name for vm in sources} == set(LAB_VMS)
    assert set(LAB_DEPENDENCIES) == set(LAB_VMS)
    assert len({vm.host for vm in sources}) == 3
    assert {nic.network for vm in sources for nic in vm.nics} == {"Prod-App", "Prod-Web"}
    assert all(vm.power_state is PowerState.ON for vm in sources)
    assert len(inventory.replicas) == len(LAB_VMS)
    isolated = {n.name for n in inventory.networks if n.isolated}
    assert isolated == {"Test-App", "Test-Web"}
    for replica in inventory.replicas:
        points = backend.recovery_points(replica.id)
        assert len(points) == 4
        assert inventory.site_of(replica.replica_vm) == "site-b"


def test_sync_with_no_writes_in_between_makes_replica_equal_source(backend: MemoryBackend) -> None:
    source, replica, replica_vm = _replica(backend, "db01")
    assert backend.blocks_differing(backend.disk(source), backend.disk(replica_vm)) > 0
    point = backend.sync(replica)
    assert backend.disk(replica_vm) == backend.disk(source)
    assert backend.point_disk(point.id) == backend.disk(source)


def test_sync_moves_only_changed_blocks(backend: MemoryBackend) -> None:
    source, replica, _ = _replica(backend, "db01")
    backend.sync(replica)
    before = backend.bytes_transferred
    written = set(backend.write(source, [1, 2, 3, 2]))
    point = backend.sync(replica)
    assert point.size_bytes == len(written) * BLOCK_SIZE
    assert backend.bytes_transferred - before == len(written) * BLOCK_SIZE


def test_a_recovery_point_is_immutable(backend: MemoryBackend) -> None:
    source, replica, replica_vm = _replica(backend, "app01")
    point = backend.sync(replica)
    frozen = dict(backend.point_disk(point.id))
    backend.write(source, 50)
    backend.sync(replica)
    assert dict(backend.point_disk(point.id)) == frozen
    backend.revert(replica, point.id)
    assert dict(backend.disk(replica_vm)) == frozen


def test_data_lost_since_a_point_is_measurable(backend: MemoryBackend) -> None:
    source, replica, replica_vm = _replica(backend, "web01")
    point = backend.sync(replica)
    written = set(backend.write(source, [7, 8, 9]))
    backend.revert(replica, point.id)
    assert backend.blocks_differing(backend.disk(source), backend.disk(replica_vm)) == len(written)


def test_a_replica_cannot_start_before_failover(backend: MemoryBackend) -> None:
    _, replica, replica_vm = _replica(backend, "dc01")
    with pytest.raises(ConflictError, match="not been failed over"):
        backend.power_on(replica_vm)
    backend.revert(replica, backend.recovery_points(replica)[-1].id)
    backend.power_on(replica_vm)


def test_nth_call_fails_transiently_then_succeeds(backend: MemoryBackend) -> None:
    _, replica, _ = _replica(backend, "dc01")
    backend.faults.fail("sync", nth=2, times=2)
    backend.sync(replica)
    for _ in range(2):
        with pytest.raises(TransientBackendError, match="injected transient failure of sync"):
            backend.sync(replica)
    backend.sync(replica)


def test_permanent_failure_targets_one_vm(backend: MemoryBackend) -> None:
    _, replica_a, _ = _replica(backend, "dc01")
    _, replica_b, _ = _replica(backend, "dc02")
    backend.faults.fail("sync", transient=False, target=replica_b)
    backend.sync(replica_a)
    with pytest.raises(PermanentBackendError):
        backend.sync(replica_b)


def test_random_failures_are_seeded(backend: MemoryBackend) -> None:
    def outcomes() -> list[bool]:
        subject = lab()
        subject.faults.fail_randomly(0.3, seed=42)
        results = []
        for _ in range(40):
            try:
                subject.inventory()
                results.append(True)
            except TransientBackendError:
                results.append(False)
        return results

    first = outcomes()
    assert first == outcomes()
    assert 0 < first.count(False) < 40


def test_latency_uses_the_backend_clock(backend: MemoryBackend) -> None:
    before = backend.clock.now()
    backend.faults.add_latency(2.5, operations=["inventory"])
    backend.inventory()
    backend.recovery_point_limit()
    assert (backend.clock.now() - before).total_seconds() == pytest.approx(2.5)


def test_crash_at_the_nth_call_escapes_except_exception(backend: MemoryBackend) -> None:
    backend.faults.crash_at(backend.faults.calls + 3)
    backend.inventory()
    backend.inventory()
    with pytest.raises(SimulatedCrash):
        _swallowing_exceptions(backend.inventory)


def _swallowing_exceptions(call: Callable[[], object]) -> None:
    try:
        call()
    except Exception:  # the point: this does not catch a SimulatedCrash
        pytest.fail("SimulatedCrash must not be an Exception")


def test_site_loss_powers_everything_off_and_blocks_calls(backend: MemoryBackend) -> None:
    source, replica, _ = _replica(backend, "db01")
    backend.fail_site("site-a")
    inventory = backend.inventory()
    assert all(vm.power_state is PowerState.OFF for vm in inventory.vms_at("site-a"))
    assert not any(h.available for h in inventory.hosts if h.site == "site-a")
    with pytest.raises(TransientBackendError, match="not_responding"):
        backend.sync(replica)
    with pytest.raises(TransientBackendError):
        backend.power_on(source)


def test_isolated_site_keeps_running_but_is_unreachable(backend: MemoryBackend) -> None:
    source, _, _ = _replica(backend, "db01")
    backend.isolate_site("site-a")
    assert backend.inventory().vm(source).power_state is PowerState.ON
    with pytest.raises(TransientBackendError):
        backend.readiness(source)
    backend.restore_host(backend.inventory().vm(source).host)
    assert backend.readiness(source).ready


def test_boot_takes_the_configured_time_on_the_clock(backend: MemoryBackend) -> None:
    _, replica, replica_vm = _replica(backend, "db01")
    backend.revert(replica, backend.recovery_points(replica)[-1].id)
    backend.power_on(replica_vm)
    assert not backend.readiness(replica_vm).ready
    backend.clock.advance(LAB_VMS["db01"][3])  # type: ignore[attr-defined]
    assert backend.readiness(replica_vm).ready


def test_a_guest_that_never_boots_never_gets_ready(backend: MemoryBackend) -> None:
    _, replica, replica_vm = _replica(backend, "web01")
    backend.set_boot(replica_vm, boots=False)
    backend.revert(replica, backend.recovery_points(replica)[-1].id)
    backend.power_on(replica_vm)
    backend.clock.advance(3600)  # type: ignore[attr-defined]
    readiness = backend.readiness(replica_vm)
    assert readiness.powered_on
    assert not readiness.ready


def test_shutdown_timeout_is_transient(backend: MemoryBackend) -> None:
    source, _, _ = _replica(backend, "web01")
    backend.set_boot(source, boots=False)
    with pytest.raises(TransientBackendError, match="did not shut down within 10 s"):
        backend.shutdown_guest(source, timeout=10)
    backend.power_off(source)
    assert backend.inventory().vm(source).power_state is PowerState.OFF


def test_reverse_replication_moves_only_the_delta(backend: MemoryBackend) -> None:
    source, replica, replica_vm = _replica(backend, "db01")
    backend.shutdown_guest(source, timeout=60)
    final = backend.sync(replica)
    backend.revert(replica, final.id)
    backend.power_on(replica_vm)
    written = set(backend.write(replica_vm, [10, 11, 12, 13]))
    reverse = backend.reverse_replication(replica)
    before = backend.bytes_transferred
    backend.sync(reverse.id)
    assert backend.bytes_transferred - before == len(written) * BLOCK_SIZE
    assert backend.disk(source) == backend.disk(replica_vm)


def test_undo_gives_the_replica_vm_back_the_disk_replication_had_sent(
    backend: MemoryBackend,
) -> None:
    source, replica, replica_vm = _replica(backend, "db01")
    older = backend.sync(replica)
    backend.write(source, [1, 2, 3])
    backend.sync(replica)
    sent = dict(backend.disk(replica_vm))
    backend.shutdown_guest(source, timeout=60)
    backend.revert(replica, older.id)
    backend.revert(replica, older.id)  # a repeat keeps the disk from before the first revert
    backend.power_on(replica_vm)
    backend.write(replica_vm, [7, 8])
    backend.undo_failover(replica)
    assert dict(backend.disk(replica_vm)) == sent
    assert backend.inventory().vm(replica_vm).power_state is PowerState.OFF


def test_commit_keeps_the_point_the_replica_runs_from_and_only_that(
    backend: MemoryBackend,
) -> None:
    source, replica, replica_vm = _replica(backend, "db01")
    points = [backend.sync(replica) for _ in range(3)]
    backend.shutdown_guest(source, timeout=60)
    backend.revert(replica, points[0].id)
    backend.revert(replica, points[1].id)  # the failover moved to another point before commit
    backend.commit_failover(replica)
    assert [p.id for p in backend.recovery_points(replica)] == [points[1].id]
    assert backend.point_disk(points[1].id) == backend.disk(replica_vm)


def test_recovery_point_limit_is_enforced() -> None:
    backend = lab()
    limited = MemoryBackend(recovery_point_limit=2)
    limited.add_site("a")
    limited.add_site("b")
    limited.add_host("h1", "a")
    limited.add_host("h2", "b")
    limited.add_datastore("d2", "b")
    vm = backend.inventory().vm("web01")
    limited.add_network("Prod-Web", "a")
    limited.add_network("Prod-Web", "b")
    limited.add_vm(evolve(vm, host="h1", datastore=None))
    replica = limited.create_replica(vm.id, "h2", "d2")
    limited.sync(replica.id)
    limited.sync(replica.id)
    with pytest.raises(ConflictError, match="limit"):
        limited.sync(replica.id)
    assert limited.recovery_point_limit() == 2


def test_an_isolated_site_keeps_writing(backend: MemoryBackend) -> None:
    source, _, _ = _replica(backend, "db01")
    before = backend.disk(source)
    backend.isolate_site("site-a")
    backend.run_workload(600)
    assert backend.blocks_differing(before, backend.disk(source)) > 0
    backend.fail_site("site-a")
    after_loss = backend.disk(source)
    backend.run_workload(600)
    assert backend.disk(source) == after_loss


def test_the_lab_witnesses_split_brain_the_moment_it_happens(backend: MemoryBackend) -> None:
    source, replica_id, target = _replica(backend, "db01")
    assert backend.split_brains() == ()
    backend.isolate_site("site-a")  # db01 still runs there, out of reach
    point = backend.recovery_points(replica_id)[-1]
    backend.revert(replica_id, point.id)
    backend.power_on(target)
    backend.power_off(target)  # gone again at once: the moment is still on record
    (moment,) = backend.split_brains()
    assert f"VM {target!r} started while {source!r} ran" in moment
    backend.power_on(target)  # once more, the source still running: a second moment
    assert len(backend.split_brains()) == 2
