"""The :class:`~vmfailover.backends.base.Backend` protocol over a memory-backend world.

Every call passes the fault injector first (so it can fail, wait or crash), then works on the
store under its lock. Replica states change only through the transition table
(:mod:`~vmfailover.backends.memory.replica_states`). Each call costs O(1) plus the size of what it
touches or answers: a VM's NICs, a replica's recovery points, a disk's blocks for ``sync``,
``revert`` and ``create_test_copy`` (they copy block maps); ``inventory`` is O(size of the world)
once per change and O(1) when nothing changed since the last call.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from vmfailover.backends.base import Readiness, Throttle
from vmfailover.backends.memory.autosave import changes_world
from vmfailover.backends.memory.faults import FaultInjector
from vmfailover.backends.memory.replica_states import ReplicaEvent, next_replica_state
from vmfailover.backends.memory.store import (
    BLOCK_SIZE,
    MemoryStore,
    PointRecord,
    VMRecord,
    differing_blocks,
)
from vmfailover.errors import ConflictError, NotFoundError, TransientBackendError
from vmfailover.model import (
    Consistency,
    Inventory,
    IPAddress,
    IPConfig,
    Nic,
    PowerState,
    RecoveryPoint,
    Replica,
    ReplicaState,
    parse_seconds,
)

__all__ = ["MemoryProtocol"]

_NO_TAGS: frozenset[str] = frozenset()  # shared: an empty frozenset is a new object each time


class MemoryProtocol:
    """The protocol half of :class:`~vmfailover.backends.memory.MemoryBackend`."""

    _store: MemoryStore
    faults: FaultInjector

    if TYPE_CHECKING:  # the backend's: saves the world after a change when it is kept in a file

        def _world_changed(self) -> None: ...

    def inventory(self) -> Inventory:
        self._enter("inventory", None)
        with self._store.lock:
            return self._store.inventory()

    @changes_world
    def create_replica(
        self,
        vm_id: str,
        target_host: str,
        target_datastore: str,
        *,
        network_map: Mapping[str, str] | None = None,
    ) -> Replica:
        self._enter("create_replica", vm_id)
        store = self._store
        with store.lock:
            source = store.vm(vm_id)
            host = store.host(target_host)
            store.require_datastore(target_datastore)
            if source.test_copy_of is not None:
                raise ConflictError(
                    f"VM {source.vm.name!r} is a test copy: it lives only as long as its test "
                    "and is not replicated"
                )
            existing = store.replica_of(vm_id)
            if existing is not None:
                if existing.target_host != target_host:
                    raise ConflictError(
                        f"VM {source.vm.name!r} already has replica {existing.id!r} "
                        f"on host {existing.target_host!r}"
                    )
                return existing
            store.require_reachable(source)
            store.require_available(host, f"target host {target_host!r}")
            mapping = network_map or {}
            nics = []
            for nic in source.vm.nics:
                target_network = mapping.get(nic.network, nic.network)
                if not store.has_network(host.site, target_network):
                    raise NotFoundError(
                        f"VM {source.vm.name!r} NIC {nic.mac}: network {target_network!r} "
                        f"does not exist at site {host.site!r}"
                    )
                nics.append(attrs.evolve(nic, network=target_network))
            replica_id = f"replica-{vm_id}"
            taken = store.find_replica(replica_id)
            if taken is not None:
                raise ConflictError(
                    f"VM {source.vm.name!r} cannot get a new replica: replica {replica_id!r} "
                    f"exists already and is {taken.state.value}"
                )
            replica_vm = attrs.evolve(
                source.vm,
                id=f"{vm_id}-replica",
                name=f"{source.vm.name}_replica",
                host=target_host,
                datastore=target_datastore,
                power_state=PowerState.OFF,
                nics=tuple(nics),
            )
            if store.find_vm(replica_vm.id) is not None:
                raise ConflictError(
                    f"VM {source.vm.name!r} cannot get a new replica: its replica VM id "
                    f"{replica_vm.id!r} is taken"
                )
            replica = Replica(
                id=replica_id,
                source_vm=vm_id,
                replica_vm=replica_vm.id,
                target_host=target_host,
                target_datastore=target_datastore,
                created_at=store.clock.now(),
            )
            store.add_vm(VMRecord(vm=replica_vm, disk={}, boot_seconds=source.boot_seconds))
            store.add_replica(replica)
            return replica

    @changes_world
    def sync(
        self,
        replica_id: str,
        *,
        consistency: Consistency = Consistency.CRASH,
        tags: Sequence[str] = (),
        throttle: Throttle | None = None,
    ) -> RecoveryPoint:
        """Send the changed blocks, paying ``throttle`` for each before it moves.

        The waiting happens outside the backend's lock (other calls go on meanwhile, and virtual
        time can jump while a throttled sync waits); blocks the source writes during the wait are
        paid for too before the point is recorded.
        """
        self._enter("sync", replica_id)
        store = self._store
        paid = 0
        while True:
            with store.lock:
                replica = store.replica(replica_id)
                next_replica_state(replica, ReplicaEvent.SYNC)
                source = store.vm(replica.source_vm)
                store.require_reachable(source)
                target = store.vm(replica.replica_vm)
                if target.running:
                    raise ConflictError(
                        f"replica VM {target.vm.name!r} is running: it cannot receive a sync"
                    )
                held = store.point_count(replica_id)
                limit = store.recovery_point_limit
                if limit is not None and held >= limit:
                    raise ConflictError(
                        f"replica {replica_id!r} holds {held} recovery points, the limit: "
                        "apply retention before syncing"
                    )
                changed = differing_blocks(source.disk, target.disk)
                if throttle is None or len(changed) <= paid:
                    return self._record_sync(replica, source, target, changed, consistency, tags)
                owed = len(changed) - paid
            for _ in range(owed):  # the data path pays before each block moves
                throttle.consume(BLOCK_SIZE)
            paid += owed

    def _record_sync(
        self,
        replica: Replica,
        source: VMRecord,
        target: VMRecord,
        changed: Collection[int],
        consistency: Consistency,
        tags: Sequence[str],
    ) -> RecoveryPoint:
        store = self._store
        for block in changed:
            if block in source.disk:
                target.disk[block] = source.disk[block]
            else:
                del target.disk[block]
        moved = len(changed) * BLOCK_SIZE
        store.bytes_transferred += moved
        point = RecoveryPoint(
            id=store.next_point_id(),
            replica=replica.id,
            created_at=store.clock.now(),
            consistency=consistency,
            tags=frozenset(tags) if tags else _NO_TAGS,
            size_bytes=moved,
        )
        store.add_point(PointRecord(point, dict(target.disk)))
        store.apply(replica, ReplicaEvent.SYNC)
        return point

    def recovery_points(self, replica_id: str) -> tuple[RecoveryPoint, ...]:
        self._enter("recovery_points", replica_id)
        with self._store.lock:
            return tuple(record.point for record in self._store.points_of(replica_id))

    @changes_world
    def delete_recovery_point(self, point_id: str) -> None:
        self._enter("delete_recovery_point", point_id)
        with self._store.lock:
            self._store.remove_point(point_id)

    def recovery_point_limit(self) -> int | None:
        self._enter("recovery_point_limit", None)
        return self._store.recovery_point_limit

    @changes_world
    def revert(self, replica_id: str, point_id: str) -> None:
        self._enter("revert", replica_id)
        store = self._store
        with store.lock:
            replica = store.replica(replica_id)
            point = self._point_of(replica, point_id)
            next_replica_state(replica, ReplicaEvent.REVERT)
            target = store.vm(replica.replica_vm)
            store.require_reachable(target)
            if target.running:
                raise ConflictError(
                    f"replica VM {target.vm.name!r} is running: power it off before reverting"
                )
            store.record_failover(replica.id, point_id, target.disk)
            target.disk = dict(point.disk)
            store.apply(replica, ReplicaEvent.REVERT)

    @changes_world
    def commit_failover(self, replica_id: str) -> None:
        self._enter("commit_failover", replica_id)
        store = self._store
        with store.lock:
            replica = store.replica(replica_id)
            next_replica_state(replica, ReplicaEvent.COMMIT)
            if replica.state is ReplicaState.COMMITTED:
                return
            failover = store.failover_of(replica_id)
            if failover is not None:  # the point it runs from stays; the others go
                for record in store.points_of(replica_id):
                    if record.point.id != failover.point:
                        store.remove_point(record.point.id)
            store.end_failover(replica_id)
            store.apply(replica, ReplicaEvent.COMMIT)

    @changes_world
    def undo_failover(self, replica_id: str) -> None:
        self._enter("undo_failover", replica_id)
        store = self._store
        with store.lock:
            replica = store.replica(replica_id)
            next_replica_state(replica, ReplicaEvent.UNDO)
            if replica.state is ReplicaState.READY:
                return
            target = store.vm(replica.replica_vm)
            store.require_reachable(target)
            failover = store.failover_of(replica_id)
            store.set_power(target, PowerState.OFF)
            if failover is not None:
                target.disk = dict(failover.disk_before)
            store.end_failover(replica_id)
            store.apply(replica, ReplicaEvent.UNDO)

    @changes_world
    def connect_nic(self, vm_id: str, mac: str, network: str) -> None:
        self._enter("connect_nic", vm_id)
        store = self._store
        with store.lock:
            record = store.reachable_vm(vm_id)
            nic = record.vm.nic(mac)
            site = store.host(record.vm.host).site
            if not store.has_network(site, network):
                raise NotFoundError(f"no network {network!r} at site {site!r}")
            if nic.network != network:
                nics = tuple(
                    attrs.evolve(n, network=network) if n.mac == nic.mac else n
                    for n in record.vm.nics
                )
                store.replace_vm(record, attrs.evolve(record.vm, nics=nics))

    @changes_world
    def set_guest_ip(self, vm_id: str, mac: str, configs: Sequence[IPConfig] | None) -> None:
        self._enter("set_guest_ip", vm_id)
        store = self._store
        with store.lock:
            record = store.reachable_vm(vm_id)
            nic = record.vm.nic(mac)
            if record.running:
                raise ConflictError(
                    f"VM {record.vm.name!r} is running: its guest IP is set before power-on"
                )
            new = None if configs is None else tuple(configs)
            updated = attrs.evolve(nic, ip_configs=new or (), dhcp=new is None)
            store.replace_vm(
                record,
                attrs.evolve(
                    record.vm,
                    nics=tuple(updated if n.mac == nic.mac else n for n in record.vm.nics),
                ),
            )

    @changes_world
    def power_on(self, vm_id: str) -> None:
        self._enter("power_on", vm_id)
        store = self._store
        with store.lock:
            record = store.reachable_vm(vm_id)
            if record.running:
                return
            for replica in store.replicas_into(vm_id):
                if replica.state in (ReplicaState.INITIALIZING, ReplicaState.READY):
                    raise ConflictError(
                        f"VM {record.vm.name!r} is the replica of {replica.source_vm!r} and has "
                        "not been failed over: revert it to a recovery point first"
                    )
            store.set_power(record, PowerState.ON)

    @changes_world
    def shutdown_guest(self, vm_id: str, timeout: float) -> None:
        timeout = parse_seconds(timeout, "shutdown_guest timeout", allow_zero=True)
        self._enter("shutdown_guest", vm_id)
        store = self._store
        with store.lock:
            record = store.reachable_vm(vm_id)
            if not record.running:
                return
            needed = record.shutdown_seconds if record.boots else float("inf")
        if needed > timeout:
            store.clock.sleep(timeout)
            raise TransientBackendError(
                f"VM {record.vm.name!r} did not shut down within {timeout:g} s"
            )
        store.clock.sleep(needed)
        with store.lock:
            store.set_power(record, PowerState.OFF)

    @changes_world
    def power_off(self, vm_id: str) -> None:
        self._enter("power_off", vm_id)
        store = self._store
        with store.lock:
            record = store.reachable_vm(vm_id)
            store.set_power(record, PowerState.OFF)

    def readiness(self, vm_id: str) -> Readiness:
        self._enter("readiness", vm_id)
        store = self._store
        with store.lock:
            record = store.reachable_vm(vm_id)
            if not record.running or record.booted_at is None:
                return Readiness(powered_on=False)
            up = store.clock.monotonic() - record.booted_at
            if not record.boots or up < record.boot_seconds * 0.5:
                return Readiness(powered_on=True)
            if up < record.boot_seconds:
                return Readiness(powered_on=True, heartbeat=True)
            return Readiness(True, True, _guest_addresses(record))

    @changes_world
    def create_test_copy(self, replica_id: str, point_id: str, key: str) -> str:
        self._enter("create_test_copy", replica_id)
        store = self._store
        with store.lock:
            replica = store.replica(replica_id)
            point = self._point_of(replica, point_id)
            copy_id = f"{replica.replica_vm}-test-{key}"
            if store.find_vm(copy_id) is not None:
                return copy_id
            next_replica_state(replica, ReplicaEvent.TEST)
            template = store.vm(replica.replica_vm)
            store.require_reachable(template)
            copy = attrs.evolve(
                template.vm,
                id=copy_id,
                name=f"{template.vm.name}-test-{key}",
                power_state=PowerState.OFF,
            )
            store.add_vm(
                VMRecord(
                    vm=copy,
                    disk=dict(point.disk),
                    boot_seconds=template.boot_seconds,
                    test_copy_of=replica_id,
                )
            )
            store.apply(replica, ReplicaEvent.TEST)
            return copy_id

    @changes_world
    def remove_test_copy(self, vm_id: str) -> None:
        self._enter("remove_test_copy", vm_id)
        store = self._store
        with store.lock:
            record = store.find_vm(vm_id)
            if record is None:
                return
            replica_id = record.test_copy_of
            if replica_id is None:
                raise ConflictError(f"VM {record.vm.name!r} is not a test copy")
            store.require_reachable(record)
            replica = store.replica(replica_id)
            last = store.test_copies_of(replica_id) == (vm_id,)
            if last:
                next_replica_state(replica, ReplicaEvent.END_TEST)
            store.remove_vm(vm_id)
            if last:
                store.apply(replica, ReplicaEvent.END_TEST)

    @changes_world
    def reverse_replication(self, replica_id: str) -> Replica:
        self._enter("reverse_replication", replica_id)
        store = self._store
        with store.lock:
            replica = store.replica(replica_id)
            reverse_id = f"replica-{replica.replica_vm}"
            existing = store.find_replica(reverse_id)
            if existing is not None and replica.state is ReplicaState.REVERSED:
                return existing  # reversed already
            next_replica_state(replica, ReplicaEvent.REVERSE)
            if existing is not None:  # the failback is done: the original replica resumes
                next_replica_state(existing, ReplicaEvent.RESUME)
            original = store.vm(replica.source_vm)
            store.require_reachable(original)
            if original.running:
                raise ConflictError(
                    f"VM {original.vm.name!r} is running: it must be off to receive "
                    "reverse replication"
                )
            store.end_failover(replica.id)
            if existing is not None:
                store.apply(replica, ReplicaEvent.REVERSE)
                return store.apply(existing, ReplicaEvent.RESUME)
            reverse = Replica(
                id=reverse_id,
                source_vm=replica.replica_vm,
                replica_vm=replica.source_vm,
                target_host=original.vm.host,
                target_datastore=original.vm.datastore,
                created_at=store.clock.now(),
            )
            store.apply(replica, ReplicaEvent.REVERSE)
            store.add_replica(reverse)
            return reverse

    # --- internals -------------------------------------------------------------------------------

    def _enter(self, operation: str, target: str | None) -> None:
        delay = self.faults.before_call(operation, target)
        if delay:
            self._store.clock.sleep(delay)

    def _point_of(self, replica: Replica, point_id: str) -> PointRecord:
        point = self._store.point(point_id)
        if point.point.replica != replica.id:
            raise ConflictError(
                f"recovery point {point_id!r} belongs to replica {point.point.replica!r}"
            )
        return point


def _guest_addresses(record: VMRecord) -> tuple[IPAddress, ...]:
    addresses: list[IPAddress] = []
    for nic in record.vm.nics:
        if nic.dhcp or not nic.ip_configs:
            addresses.append(_dhcp_address(nic))
        else:
            addresses.extend(nic.addresses)
    return tuple(addresses)


def _dhcp_address(nic: Nic) -> IPAddress:
    """A stable address a DHCP server would hand this NIC (172.31.0.0/16, from the MAC)."""
    low = int(nic.mac.replace(":", "")[-4:], 16) or 1
    return ipaddress.IPv4Address((172 << 24) | (31 << 16) | low)
