"""The backend contract suite: what every backend promises, as pytest tests.

A backend's test module subclasses :class:`BackendContract` and provides a ``scene`` fixture that
returns a :class:`ContractScene` for a fresh world::

    from vmfailover.testing.contract import BackendContract, ContractScene

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def scene(self):
            backend = connect_to_my_test_peer()
            return ContractScene(backend, source_vm="vm-1", target_host="h2", ...)

The suite checks the promises the engine relies on (ids, ordering, idempotency, errors of our own
types, test copies that leave production untouched) and nothing a backend may legitimately do
differently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs
import pytest

from vmfailover.backends.base import Backend, Readiness
from vmfailover.errors import ConflictError, NotFoundError, PermanentBackendError
from vmfailover.model import (
    VM,
    Inventory,
    IPConfig,
    PowerState,
    RecoveryPoint,
    Replica,
    ReplicaState,
)

__all__ = ["BackendContract", "ContractScene"]


def _no_writes(vm_id: str) -> None:
    return None


def _no_host_changes(host: str) -> None:
    raise AssertionError("the scene has no cluster_host, so no host failure hooks")


@attrs.frozen
class ContractScene:
    """A fresh world for one contract test.

    ``source_vm`` is a powered-on VM with at least one NIC and no replica yet; ``network_map``
    maps each of its networks to a network at the target site; ``spare_network`` is another
    network at the target site. ``write(vm_id)`` changes a running VM's disks (a no-op where a
    backend cannot); ``wait`` lets ``seconds`` of the backend's time pass; ``boot_timeout``
    bounds how long a booting VM may take to become ready, in the backend's time.

    Host failover: ``cluster_host`` is another host of the source VM's cluster that reaches its
    datastore and has its networks; ``fail_host`` makes a host lose power (its VMs go off and it
    stops answering) and ``restore_host`` brings it back. A backend without host failover leaves
    ``cluster_host`` None, and the suite then checks that it refuses the host-failover
    primitives with :class:`~vmfailover.errors.PermanentBackendError`.
    """

    backend: Backend
    source_vm: str
    target_host: str
    target_datastore: str
    network_map: Mapping[str, str]
    spare_network: str
    guest_ip: IPConfig
    wait: Callable[[float], None]
    write: Callable[[str], None] = _no_writes
    boot_timeout: float = 600.0
    cluster_host: str | None = None
    fail_host: Callable[[str], None] = _no_host_changes
    restore_host: Callable[[str], None] = _no_host_changes


class BackendContract:
    """Subclass it and provide a ``scene`` fixture; every ``test_*`` here then runs for you."""

    @pytest.fixture
    def scene(self) -> ContractScene:
        raise NotImplementedError("a BackendContract subclass must provide the scene fixture")

    # --- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def replicate(scene: ContractScene) -> Replica:
        return scene.backend.create_replica(
            scene.source_vm,
            scene.target_host,
            scene.target_datastore,
            network_map=scene.network_map,
        )

    @staticmethod
    def vm(scene: ContractScene, vm_id: str) -> VM:
        return scene.backend.inventory().vm(vm_id)

    @staticmethod
    def wait_ready(scene: ContractScene, vm_id: str) -> Readiness:
        waited = 0.0
        step = max(scene.boot_timeout / 200, 0.05)
        while True:
            readiness = scene.backend.readiness(vm_id)
            if readiness.ready or waited >= scene.boot_timeout:
                return readiness
            scene.wait(step)
            waited += step

    def fail_over(self, scene: ContractScene) -> tuple[Replica, RecoveryPoint]:
        replica = self.replicate(scene)
        point = scene.backend.sync(replica.id)
        scene.backend.revert(replica.id, point.id)
        return replica, point

    # --- inventory -------------------------------------------------------------------------------

    def test_inventory_is_a_consistent_snapshot(self, scene: ContractScene) -> None:
        inventory = scene.backend.inventory()
        assert isinstance(inventory, Inventory)
        source = inventory.vm(scene.source_vm)
        assert source.power_state is PowerState.ON
        assert source.nics, "the scene's source VM needs a NIC"
        host = inventory.host(source.host)
        assert inventory.site(host.site).name == host.site
        target_site = inventory.host(scene.target_host).site
        for nic in source.nics:
            assert inventory.has_network(target_site, scene.network_map[nic.network])
        assert inventory.has_network(target_site, scene.spare_network)
        assert scene.backend.inventory() == inventory, "two reads with no change differ"

    def test_unknown_ids_raise_not_found(self, scene: ContractScene) -> None:
        backend = scene.backend
        calls: list[Callable[[], object]] = [
            lambda: backend.sync("no-such-replica"),
            lambda: backend.recovery_points("no-such-replica"),
            lambda: backend.revert("no-such-replica", "no-such-point"),
            lambda: backend.power_on("no-such-vm"),
            lambda: backend.power_off("no-such-vm"),
            lambda: backend.readiness("no-such-vm"),
            lambda: backend.connect_nic("no-such-vm", "00:00:00:00:00:01", scene.spare_network),
            lambda: backend.create_replica("no-such-vm", scene.target_host, scene.target_datastore),
            lambda: backend.reverse_replication("no-such-replica"),
            lambda: backend.commit_failover("no-such-replica"),
            lambda: backend.undo_failover("no-such-replica"),
        ]
        for call in calls:
            with pytest.raises(NotFoundError):
                call()

    # --- replicas and recovery points ------------------------------------------------------------

    def test_create_replica_is_idempotent(self, scene: ContractScene) -> None:
        first = self.replicate(scene)
        second = self.replicate(scene)
        assert first.id == second.id
        assert first.replica_vm == second.replica_vm
        inventory = scene.backend.inventory()
        assert inventory.replica_of(scene.source_vm).id == first.id
        assert sum(1 for r in inventory.replicas if r.source_vm == scene.source_vm) == 1

    def test_replica_is_off_on_target_with_mapped_networks(self, scene: ContractScene) -> None:
        replica = self.replicate(scene)
        inventory = scene.backend.inventory()
        source = inventory.vm(scene.source_vm)
        replica_vm = inventory.vm(replica.replica_vm)
        assert replica.source_vm == source.id
        assert replica_vm.host == scene.target_host
        assert replica_vm.power_state is PowerState.OFF
        assert len(replica_vm.nics) == len(source.nics)
        assert {nic.network for nic in replica_vm.nics} == {
            scene.network_map[nic.network] for nic in source.nics
        }

    def test_sync_adds_recovery_points_oldest_first(self, scene: ContractScene) -> None:
        replica = self.replicate(scene)
        first = scene.backend.sync(replica.id)
        scene.write(scene.source_vm)
        scene.wait(60)
        second = scene.backend.sync(replica.id)
        points = scene.backend.recovery_points(replica.id)
        assert [p.id for p in points][-2:] == [first.id, second.id]
        assert first.id != second.id
        for point in points:
            assert point.replica == replica.id
            assert point.created_at.tzinfo is not None
            assert point.created_at >= replica.created_at
        assert first.created_at <= second.created_at

    def test_sync_accepts_a_throttle_and_pays_for_what_it_moves(self, scene: ContractScene) -> None:
        """A data path of ours pays for every byte it moves, in chunks; a backend whose
        hypervisor moves the data itself says so (``hypervisor_moves_data``) and pays for none,
        and a replication job then says its limit is not enforced there."""
        replica = self.replicate(scene)
        scene.backend.sync(replica.id)
        scene.write(scene.source_vm)
        scene.wait(60)
        paid: list[int] = []

        class Recorder:
            def consume(self, nbytes: int) -> None:
                assert nbytes > 0
                paid.append(nbytes)

        point = scene.backend.sync(replica.id, throttle=Recorder())
        if getattr(scene.backend, "hypervisor_moves_data", False) is True:
            assert paid == []
        else:
            assert sum(paid) == point.size_bytes

    def test_delete_recovery_point_is_idempotent(self, scene: ContractScene) -> None:
        replica = self.replicate(scene)
        keep = scene.backend.sync(replica.id)
        scene.wait(60)
        drop = scene.backend.sync(replica.id)
        scene.backend.delete_recovery_point(drop.id)
        scene.backend.delete_recovery_point(drop.id)
        ids = [p.id for p in scene.backend.recovery_points(replica.id)]
        assert drop.id not in ids
        assert keep.id in ids

    def test_recovery_point_limit_is_positive_or_none(self, scene: ContractScene) -> None:
        limit = scene.backend.recovery_point_limit()
        assert limit is None or (isinstance(limit, int) and limit > 0)

    # --- failover primitives ---------------------------------------------------------------------

    def test_revert_then_boot_with_new_network_and_ip(self, scene: ContractScene) -> None:
        replica, _ = self.fail_over(scene)
        backend = scene.backend
        replica_vm = self.vm(scene, replica.replica_vm)
        nic = replica_vm.nics[0]
        backend.connect_nic(replica_vm.id, nic.mac, scene.spare_network)
        backend.set_guest_ip(replica_vm.id, nic.mac, [scene.guest_ip])
        assert backend.readiness(replica_vm.id).powered_on is False
        backend.power_on(replica_vm.id)
        readiness = self.wait_ready(scene, replica_vm.id)
        assert readiness.ready, f"replica VM not ready after {scene.boot_timeout} s: {readiness}"
        assert scene.guest_ip.address.ip in readiness.ip_addresses
        after = self.vm(scene, replica_vm.id)
        assert after.power_state is PowerState.ON
        assert after.nic(nic.mac).network == scene.spare_network

    def test_revert_is_idempotent(self, scene: ContractScene) -> None:
        replica, point = self.fail_over(scene)
        scene.backend.revert(replica.id, point.id)
        assert self.vm(scene, replica.replica_vm).power_state is PowerState.OFF

    def test_power_calls_are_idempotent(self, scene: ContractScene) -> None:
        replica, _ = self.fail_over(scene)
        backend = scene.backend
        backend.power_on(replica.replica_vm)
        backend.power_on(replica.replica_vm)
        assert self.vm(scene, replica.replica_vm).power_state is PowerState.ON
        backend.power_off(replica.replica_vm)
        backend.power_off(replica.replica_vm)
        assert self.vm(scene, replica.replica_vm).power_state is PowerState.OFF
        assert backend.readiness(replica.replica_vm).ready is False

    def test_connect_nic_to_unknown_network_raises_not_found(self, scene: ContractScene) -> None:
        replica = self.replicate(scene)
        nic = self.vm(scene, replica.replica_vm).nics[0]
        with pytest.raises(NotFoundError):
            scene.backend.connect_nic(replica.replica_vm, nic.mac, "no-such-network")

    def test_shutdown_guest_stops_the_source(self, scene: ContractScene) -> None:
        scene.backend.shutdown_guest(scene.source_vm, timeout=scene.boot_timeout)
        assert self.vm(scene, scene.source_vm).power_state is PowerState.OFF
        scene.backend.shutdown_guest(scene.source_vm, timeout=scene.boot_timeout)
        assert self.vm(scene, scene.source_vm).power_state is PowerState.OFF

    def test_revert_refuses_a_point_of_another_replica(self, scene: ContractScene) -> None:
        replica = self.replicate(scene)
        point = scene.backend.sync(replica.id)
        with pytest.raises((ConflictError, NotFoundError)):
            scene.backend.revert("no-such-replica", point.id)

    # --- after a failover: commit or undo --------------------------------------------------------

    def state(self, scene: ContractScene, replica: Replica) -> ReplicaState:
        return scene.backend.inventory().replica(replica.id).state

    def reversed_or_gone(self, scene: ContractScene, replica: Replica) -> bool:
        """A reversed replica is listed ``reversed``, or no more (Hyper-V lists a relationship
        at its replica's end, and that VM is the primary now)."""
        found = [r for r in scene.backend.inventory().replicas if r.id == replica.id]
        return not found or found[0].state is ReplicaState.REVERSED

    def test_commit_failover_is_final_and_idempotent(self, scene: ContractScene) -> None:
        backend = scene.backend
        replica = self.replicate(scene)
        backend.sync(replica.id)
        scene.write(scene.source_vm)
        scene.wait(60)
        used = backend.sync(replica.id)
        backend.shutdown_guest(scene.source_vm, timeout=scene.boot_timeout)
        backend.revert(replica.id, used.id)
        backend.power_on(replica.replica_vm)
        backend.commit_failover(replica.id)
        backend.commit_failover(replica.id)
        assert self.state(scene, replica) is ReplicaState.COMMITTED
        # the point it runs from may stay listed (or be merged into the VM, as on Hyper-V)
        assert {p.id for p in backend.recovery_points(replica.id)} <= {used.id}
        assert self.vm(scene, replica.replica_vm).power_state is PowerState.ON
        with pytest.raises(ConflictError):
            backend.undo_failover(replica.id)
        with pytest.raises((ConflictError, NotFoundError)):  # the point may be merged
            backend.revert(replica.id, used.id)

    def test_commit_failover_refuses_a_replica_that_is_not_failed_over(
        self, scene: ContractScene
    ) -> None:
        replica = self.replicate(scene)
        scene.backend.sync(replica.id)
        with pytest.raises(ConflictError):
            scene.backend.commit_failover(replica.id)
        assert self.state(scene, replica) is ReplicaState.READY

    def test_undo_failover_returns_the_replica_to_replicating(self, scene: ContractScene) -> None:
        backend = scene.backend
        replica = self.replicate(scene)
        older = backend.sync(replica.id)
        scene.write(scene.source_vm)
        scene.wait(60)
        newer = backend.sync(replica.id)
        backend.shutdown_guest(scene.source_vm, timeout=scene.boot_timeout)
        backend.revert(replica.id, older.id)
        backend.power_on(replica.replica_vm)
        backend.undo_failover(replica.id)
        backend.undo_failover(replica.id)
        assert self.state(scene, replica) is ReplicaState.READY
        assert self.vm(scene, replica.replica_vm).power_state is PowerState.OFF
        assert {older.id, newer.id} <= {p.id for p in backend.recovery_points(replica.id)}
        backend.power_on(scene.source_vm)  # production runs on, replicating
        scene.write(scene.source_vm)
        scene.wait(60)
        again = backend.sync(replica.id)
        assert again.id not in (older.id, newer.id)
        assert self.state(scene, replica) is ReplicaState.READY

    def test_undo_failover_of_a_ready_replica_does_nothing(self, scene: ContractScene) -> None:
        replica = self.replicate(scene)
        scene.backend.sync(replica.id)
        before = scene.backend.inventory()
        scene.backend.undo_failover(replica.id)
        assert scene.backend.inventory().replica(replica.id) == before.replica(replica.id)
        assert self.vm(scene, replica.replica_vm) == before.vm(replica.replica_vm)

    # --- test failover ---------------------------------------------------------------------------

    def test_test_copy_leaves_production_untouched(self, scene: ContractScene) -> None:
        backend = scene.backend
        replica = self.replicate(scene)
        point = backend.sync(replica.id)
        before = backend.inventory()
        copy = backend.create_test_copy(replica.id, point.id, key="t1")
        assert backend.create_test_copy(replica.id, point.id, key="t1") == copy
        during = backend.inventory()
        assert copy not in {vm.id for vm in before.vms}
        assert during.vm(copy).power_state is PowerState.OFF
        for vm_id in (scene.source_vm, replica.replica_vm):
            assert during.vm(vm_id) == before.vm(vm_id)
        backend.power_on(copy)
        backend.remove_test_copy(copy)
        backend.remove_test_copy(copy)
        after = backend.inventory()
        assert {vm.id for vm in after.vms} == {vm.id for vm in before.vms}
        for vm in before.vms:
            assert after.vm(vm.id) == vm
        assert after.replica(replica.id).state == before.replica(replica.id).state

    # --- failback --------------------------------------------------------------------------------

    def test_reverse_replication_points_back_to_the_source(self, scene: ContractScene) -> None:
        backend = scene.backend
        backend.shutdown_guest(scene.source_vm, timeout=scene.boot_timeout)
        replica, _ = self.fail_over(scene)
        backend.power_on(replica.replica_vm)
        reverse = backend.reverse_replication(replica.id)
        assert backend.reverse_replication(replica.id).id == reverse.id
        assert reverse.source_vm == replica.replica_vm
        assert reverse.replica_vm == scene.source_vm
        scene.write(replica.replica_vm)
        point = backend.sync(reverse.id)
        assert point.replica == reverse.id
        assert [p.id for p in backend.recovery_points(reverse.id)][-1] == point.id

    # --- host failover ---------------------------------------------------------------------------

    def test_host_failover_primitives_are_done_or_refused_as_permanent(
        self, scene: ContractScene
    ) -> None:
        backend = scene.backend
        host = scene.cluster_host or scene.target_host
        if scene.cluster_host is None:
            for call in (backend.restart_on_host, backend.migrate_vm):
                with pytest.raises(PermanentBackendError):
                    call(scene.source_vm, host)
            assert self.vm(scene, scene.source_vm).power_state is PowerState.ON
            return
        with pytest.raises(NotFoundError):
            backend.migrate_vm("no-such-vm", host)
        with pytest.raises(NotFoundError):
            backend.restart_on_host("no-such-vm", host)
        with pytest.raises(NotFoundError):
            backend.migrate_vm(scene.source_vm, "no-such-host")

    def test_migrate_vm_moves_a_running_vm_live_and_is_idempotent(
        self, scene: ContractScene
    ) -> None:
        if scene.cluster_host is None:
            return  # refused: the test above
        backend = scene.backend
        before = self.vm(scene, scene.source_vm)
        backend.migrate_vm(scene.source_vm, scene.cluster_host)
        backend.migrate_vm(scene.source_vm, scene.cluster_host)
        moved = self.vm(scene, scene.source_vm)
        assert moved.host == scene.cluster_host
        assert moved.power_state is PowerState.ON, "a live move keeps the VM running"
        assert (moved.id, moved.name, moved.nics) == (before.id, before.name, before.nics)
        backend.migrate_vm(scene.source_vm, before.host)
        assert self.vm(scene, scene.source_vm).host == before.host

    def test_restart_on_host_refuses_a_running_vm(self, scene: ContractScene) -> None:
        if scene.cluster_host is None:
            return  # refused: the first host-failover test
        with pytest.raises(ConflictError):
            scene.backend.restart_on_host(scene.source_vm, scene.cluster_host)
        assert self.vm(scene, scene.source_vm).host != scene.cluster_host

    def test_restart_on_host_after_a_host_failure(self, scene: ContractScene) -> None:
        if scene.cluster_host is None:
            return  # refused: the first host-failover test
        backend = scene.backend
        failed = self.vm(scene, scene.source_vm).host
        scene.fail_host(failed)
        try:
            inventory = backend.inventory()
            assert not inventory.host(failed).available
            assert inventory.vm(scene.source_vm).power_state is not PowerState.ON
            backend.restart_on_host(scene.source_vm, scene.cluster_host)
            backend.restart_on_host(scene.source_vm, scene.cluster_host)
            restarted = self.vm(scene, scene.source_vm)
            assert restarted.host == scene.cluster_host
            assert restarted.power_state is PowerState.ON
            readiness = self.wait_ready(scene, scene.source_vm)
            assert readiness.powered_on
            assert readiness.heartbeat, "the guest runs again"
        finally:
            scene.restore_host(failed)

    def test_a_committed_failback_hands_the_original_replica_back(
        self, scene: ContractScene
    ) -> None:
        """Fail over, commit, reverse, fail back (planned), commit: the first replica resumes."""
        backend = scene.backend
        backend.shutdown_guest(scene.source_vm, timeout=scene.boot_timeout)
        replica, _ = self.fail_over(scene)
        backend.power_on(replica.replica_vm)
        backend.commit_failover(replica.id)
        reverse = backend.reverse_replication(replica.id)
        assert self.reversed_or_gone(scene, replica)
        scene.write(replica.replica_vm)
        scene.wait(60)
        backend.sync(reverse.id)
        backend.shutdown_guest(replica.replica_vm, timeout=scene.boot_timeout)
        final = backend.sync(reverse.id)
        backend.revert(reverse.id, final.id)
        backend.power_on(scene.source_vm)
        backend.commit_failover(reverse.id)
        resumed = backend.reverse_replication(reverse.id)
        assert resumed.id == replica.id
        assert backend.reverse_replication(reverse.id).id == replica.id
        assert self.state(scene, replica) is ReplicaState.READY
        assert self.reversed_or_gone(scene, reverse)
        assert backend.inventory().replica_of(scene.source_vm).id == replica.id
        scene.write(scene.source_vm)
        scene.wait(60)
        assert backend.sync(replica.id).replica == replica.id
