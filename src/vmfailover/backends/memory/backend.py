"""The in-memory backend: a real backend for tests, demos and what-if simulation.

Not a test double: it keeps the same promises as the vSphere and Hyper-V backends and passes the
same contract suite (in the spirit of fsspec's ``MemoryFileSystem``). What it adds is what real
hypervisors cannot give a test: disks whose every block can be compared, a clock that can be
virtual, and faults on demand.

Disks are block maps (block number -> content version). A workload writes blocks; a sync sends
the blocks that differ to the replica and records an immutable copy as a recovery point. So "no
data lost" and "exactly these blocks lost" are facts a test can check by comparing disks.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

import attrs

from vmfailover.backends.base import Readiness, Throttle
from vmfailover.backends.memory.faults import FaultInjector
from vmfailover.clock import Clock, VirtualClock
from vmfailover.errors import ConflictError, NotFoundError, TransientBackendError, ValidationError
from vmfailover.model import (
    VM,
    ConnectionState,
    Consistency,
    Datastore,
    Host,
    Inventory,
    IPAddress,
    IPConfig,
    Network,
    Nic,
    PowerState,
    RecoveryPoint,
    Replica,
    ReplicaState,
    Site,
    lookup,
)

__all__ = ["BLOCK_SIZE", "Disk", "MemoryBackend"]

BLOCK_SIZE = 1 << 20
"""Bytes per block of a memory-backend disk."""

Disk = Mapping[int, int]
"""A disk's contents: block number -> content version (0, never written, is left out)."""


@attrs.define
class _VMRecord:
    vm: VM
    disk: dict[int, int]
    boot_seconds: float = 30.0
    booted_at: float | None = None  # clock.monotonic() at power-on
    guest_ip: dict[str, tuple[IPConfig, ...] | None] = attrs.field(factory=dict)
    boots: bool = True
    shutdown_seconds: float = 5.0
    test_copy_of: str | None = None  # replica id
    write_rate: float = 0.0  # blocks per second while running


@attrs.define
class _PointRecord:
    point: RecoveryPoint
    disk: Disk


class MemoryBackend:
    """Sites, hosts, datastores, networks and VMs held in memory, with fault injection.

    Build a scene with the ``add_*`` methods (or start from the lab,
    :func:`vmfailover.backends.memory.lab.lab`), then use it through the
    :class:`~vmfailover.backends.base.Backend` protocol like any other backend.
    ``clock`` decides whether boots and shutdowns take real or virtual time.
    """

    name = "memory"

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        recovery_point_limit: int | None = None,
        seed: int = 0,
    ) -> None:
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.faults = FaultInjector()
        self._limit = recovery_point_limit
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)
        self._version = itertools.count(1)
        self._sites: dict[str, Site] = {}
        self._hosts: dict[str, Host] = {}
        self._datastores: dict[str, Datastore] = {}
        self._networks: dict[tuple[str, str], Network] = {}
        self._vms: dict[str, _VMRecord] = {}
        self._replicas: dict[str, Replica] = {}
        self._points: dict[str, _PointRecord] = {}
        self._points_by_replica: dict[str, list[str]] = {}
        self.bytes_transferred = 0

    def __repr__(self) -> str:
        return (
            f"MemoryBackend(sites={len(self._sites)}, hosts={len(self._hosts)}, "
            f"vms={len(self._vms)}, replicas={len(self._replicas)})"
        )

    # --- building a scene ------------------------------------------------------------------------

    def add_site(self, name: str, description: str = "") -> Site:
        site = Site(name, description)
        with self._lock:
            self._check_new(name, self._sites, "site")
            self._sites[name] = site
        return site

    def add_host(self, name: str, site: str, **kwargs: object) -> Host:
        host = Host(name, site, **kwargs)  # type: ignore[arg-type]
        with self._lock:
            self._check_new(name, self._hosts, "host")
            self._require(site, self._sites, "site")
            self._hosts[name] = host
        return host

    def add_datastore(
        self, name: str, site: str, capacity_bytes: int = 10 << 40, free_bytes: int | None = None
    ) -> Datastore:
        free = capacity_bytes if free_bytes is None else free_bytes
        datastore = Datastore(name, site, capacity_bytes, free)
        with self._lock:
            self._check_new(name, self._datastores, "datastore")
            self._require(site, self._sites, "site")
            self._datastores[name] = datastore
        return datastore

    def add_network(self, name: str, site: str, *, isolated: bool = False) -> Network:
        network = Network(name, site, isolated)
        with self._lock:
            self._require(site, self._sites, "site")
            if (site, name) in self._networks:
                raise ValidationError.of(f"network {name!r}", f"exists already at site {site!r}")
            self._networks[(site, name)] = network
        return network

    def add_vm(
        self,
        vm: VM,
        *,
        boot_seconds: float = 30.0,
        shutdown_seconds: float = 5.0,
        write_rate: float = 0.0,
    ) -> VM:
        """Add a VM; its disk starts with every block written once, as a freshly installed VM."""
        with self._lock:
            self._check_new(vm.id, self._vms, "VM")
            self._check_placement(vm)
            blocks = max(1, vm.disk_bytes // BLOCK_SIZE)
            version = next(self._version)
            record = _VMRecord(
                vm=vm,
                disk=dict.fromkeys(range(blocks), version),
                boot_seconds=boot_seconds,
                shutdown_seconds=shutdown_seconds,
                write_rate=write_rate,
            )
            if vm.power_state is PowerState.ON:
                record.booted_at = self.clock.monotonic() - boot_seconds
            self._vms[vm.id] = record
        return vm

    def _check_new(self, key: str, table: Mapping[str, object], what: str) -> None:
        if key in table:
            raise ValidationError.of(f"{what} {key!r}", "exists already")

    def _require(self, key: str, table: Mapping[str, object], what: str) -> None:
        if key not in table:
            raise NotFoundError(f"no {what} {key!r}")

    def _check_placement(self, vm: VM) -> None:
        host = self._hosts.get(vm.host)
        if host is None:
            raise ValidationError.of(f"VM {vm.name!r}", f"host {vm.host!r} does not exist")
        for other in self._vms.values():
            if other.vm.name == vm.name and self._hosts[other.vm.host].site == host.site:
                raise ValidationError.of(
                    f"VM {vm.name!r}",
                    f"another VM ({other.vm.id!r}) has this name at {host.site!r}",
                )
        for nic in vm.nics:
            if (host.site, nic.network) not in self._networks:
                raise ValidationError.of(
                    f"VM {vm.name!r} NIC {nic.mac}",
                    f"network {nic.network!r} does not exist at site {host.site!r}",
                )

    # --- what the lab and tests do to the world -------------------------------------------------

    def write(self, vm_id: str, blocks: int | Iterable[int] = 1) -> tuple[int, ...]:
        """Write to a VM's disk: ``blocks`` random blocks, or the given block numbers.

        Returns the block numbers written. The VM must be running on an available host.
        """
        with self._lock:
            record = self._vm(vm_id)
            self._require_running(record, "write to")
            size = max(1, record.vm.disk_bytes // BLOCK_SIZE)
            if isinstance(blocks, int):
                chosen = tuple(self._rng.randrange(size) for _ in range(blocks))
            else:
                chosen = tuple(blocks)
            for block in chosen:
                record.disk[block] = next(self._version)
            return chosen

    def run_workload(self, seconds: float) -> None:
        """Let ``seconds`` pass: every running VM writes ``write_rate`` blocks per second.

        Advances the clock when it is a :class:`VirtualClock`.
        """
        with self._lock:
            for record in self._vms.values():
                if record.write_rate and self._running(record):
                    count = int(record.write_rate * seconds)
                    if count:
                        self.write(record.vm.id, count)
        if isinstance(self.clock, VirtualClock):
            self.clock.advance(seconds)

    def disk(self, vm_id: str) -> Disk:
        """A read-only copy of the VM's disk, for comparisons."""
        with self._lock:
            return MappingProxyType(dict(self._vm(vm_id).disk))

    def point_disk(self, point_id: str) -> Disk:
        with self._lock:
            return self._point(point_id).disk

    @staticmethod
    def blocks_differing(a: Disk, b: Disk) -> int:
        """How many blocks differ between two disks."""
        return sum(1 for block in a.keys() | b.keys() if a.get(block) != b.get(block))

    def set_boot(self, vm_id: str, *, seconds: float | None = None, boots: bool = True) -> None:
        """How long the guest takes to become ready; ``boots=False`` means it never does."""
        with self._lock:
            record = self._vm(vm_id)
            if seconds is not None:
                record.boot_seconds = seconds
            record.boots = boots

    def fail_host(self, name: str) -> None:
        """The host loses power: it stops answering and its VMs are off."""
        with self._lock:
            host = self._host(name)
            self._hosts[name] = attrs.evolve(
                host, power=PowerState.OFF, connection=ConnectionState.NOT_RESPONDING
            )
            for record in self._vms.values():
                if record.vm.host == name:
                    self._set_power(record, PowerState.OFF)

    def isolate_host(self, name: str) -> None:
        """The management network loses the host: VMs keep running, but nothing reaches them."""
        with self._lock:
            host = self._host(name)
            self._hosts[name] = attrs.evolve(host, connection=ConnectionState.NOT_RESPONDING)

    def restore_host(self, name: str) -> None:
        """Power and connection come back (VMs stay as they are: off after a power loss)."""
        with self._lock:
            host = self._host(name)
            self._hosts[name] = attrs.evolve(
                host, power=PowerState.ON, connection=ConnectionState.CONNECTED
            )

    def fail_site(self, site: str) -> None:
        """Every host of the site loses power (a disaster)."""
        self._each_host_at(site, self.fail_host)

    def isolate_site(self, site: str) -> None:
        """The site is cut off but still running (the split-brain scenario)."""
        self._each_host_at(site, self.isolate_host)

    def _each_host_at(self, site: str, action: Callable[[str], None]) -> None:
        with self._lock:
            self._require(site, self._sites, "site")
            for host in [h.name for h in self._hosts.values() if h.site == site]:
                action(host)

    # --- the Backend protocol --------------------------------------------------------------------

    def inventory(self) -> Inventory:
        self._enter("inventory", None)
        with self._lock:
            return Inventory(
                sites=tuple(self._sites.values()),
                hosts=tuple(self._hosts.values()),
                datastores=tuple(self._datastores.values()),
                networks=tuple(self._networks.values()),
                vms=tuple(record.vm for record in self._vms.values()),
                replicas=tuple(self._replicas.values()),
            )

    def create_replica(
        self,
        vm_id: str,
        target_host: str,
        target_datastore: str,
        *,
        network_map: Mapping[str, str] | None = None,
    ) -> Replica:
        self._enter("create_replica", vm_id)
        with self._lock:
            source = self._vm(vm_id)
            host = self._host(target_host)
            self._require(target_datastore, self._datastores, "datastore")
            existing = self._replica_of(vm_id)
            if existing is not None:
                if existing.target_host != target_host:
                    raise ConflictError(
                        f"VM {source.vm.name!r} already has replica {existing.id!r} "
                        f"on host {existing.target_host!r}"
                    )
                return existing
            self._require_available(self._hosts[source.vm.host], f"VM {source.vm.name!r}")
            self._require_available(host, f"target host {target_host!r}")
            mapping = network_map or {}
            nics = []
            for nic in source.vm.nics:
                target_network = mapping.get(nic.network, nic.network)
                if (host.site, target_network) not in self._networks:
                    raise NotFoundError(
                        f"VM {source.vm.name!r} NIC {nic.mac}: network {target_network!r} "
                        f"does not exist at site {host.site!r}"
                    )
                nics.append(attrs.evolve(nic, network=target_network))
            replica_vm = attrs.evolve(
                source.vm,
                id=f"{vm_id}-replica",
                name=f"{source.vm.name}_replica",
                host=target_host,
                datastore=target_datastore,
                power_state=PowerState.OFF,
                nics=tuple(nics),
            )
            self._check_placement(replica_vm)
            self._vms[replica_vm.id] = _VMRecord(
                vm=replica_vm, disk={}, boot_seconds=source.boot_seconds
            )
            replica = Replica(
                id=f"replica-{vm_id}",
                source_vm=vm_id,
                replica_vm=replica_vm.id,
                target_host=target_host,
                target_datastore=target_datastore,
                created_at=self.clock.now(),
            )
            self._replicas[replica.id] = replica
            self._points_by_replica[replica.id] = []
            return replica

    def sync(
        self,
        replica_id: str,
        *,
        consistency: Consistency = Consistency.CRASH,
        tags: Sequence[str] = (),
        throttle: Throttle | None = None,
    ) -> RecoveryPoint:
        self._enter("sync", replica_id)
        with self._lock:
            replica = self._replica(replica_id)
            if replica.state not in (
                ReplicaState.INITIALIZING,
                ReplicaState.READY,
                ReplicaState.REVERSED,
            ) and not self._is_reverse(replica):
                raise ConflictError(
                    f"replica {replica_id!r} is {replica.state.value}: it cannot sync now"
                )
            source = self._vm(replica.source_vm)
            self._require_available(self._hosts[source.vm.host], f"VM {source.vm.name!r}")
            target = self._vm(replica.replica_vm)
            if self._running(target):
                raise ConflictError(
                    f"replica VM {target.vm.name!r} is running: it cannot receive a sync"
                )
            points = self._points_by_replica[replica_id]
            if self._limit is not None and len(points) >= self._limit:
                raise ConflictError(
                    f"replica {replica_id!r} holds {len(points)} recovery points, the limit: "
                    "apply retention before syncing"
                )
            changed = [
                block
                for block in source.disk.keys() | target.disk.keys()
                if source.disk.get(block) != target.disk.get(block)
            ]
            for block in changed:
                if throttle is not None:
                    throttle.consume(BLOCK_SIZE)  # the data path pays before each block moves
                if block in source.disk:
                    target.disk[block] = source.disk[block]
                else:
                    del target.disk[block]
            moved = len(changed) * BLOCK_SIZE
            self.bytes_transferred += moved
            point = RecoveryPoint(
                id=f"rp-{next(self._ids)}",
                replica=replica_id,
                created_at=self.clock.now(),
                consistency=consistency,
                tags=frozenset(tags),
                size_bytes=moved,
            )
            replica.check_point(point)
            self._points[point.id] = _PointRecord(point, MappingProxyType(dict(target.disk)))
            points.append(point.id)
            if replica.state is ReplicaState.INITIALIZING:
                self._replicas[replica_id] = attrs.evolve(replica, state=ReplicaState.READY)
            return point

    def recovery_points(self, replica_id: str) -> tuple[RecoveryPoint, ...]:
        self._enter("recovery_points", replica_id)
        with self._lock:
            self._replica(replica_id)
            return tuple(self._points[p].point for p in self._points_by_replica[replica_id])

    def delete_recovery_point(self, point_id: str) -> None:
        self._enter("delete_recovery_point", point_id)
        with self._lock:
            record = self._points.pop(point_id, None)
            if record is not None:
                self._points_by_replica[record.point.replica].remove(point_id)

    def recovery_point_limit(self) -> int | None:
        self._enter("recovery_point_limit", None)
        return self._limit

    def revert(self, replica_id: str, point_id: str) -> None:
        self._enter("revert", replica_id)
        with self._lock:
            replica = self._replica(replica_id)
            point = self._point(point_id)
            if point.point.replica != replica_id:
                raise ConflictError(
                    f"recovery point {point_id!r} belongs to replica {point.point.replica!r}"
                )
            target = self._vm(replica.replica_vm)
            self._require_available(self._hosts[target.vm.host], f"VM {target.vm.name!r}")
            if self._running(target):
                raise ConflictError(
                    f"replica VM {target.vm.name!r} is running: power it off before reverting"
                )
            target.disk = dict(point.disk)
            if replica.state is not ReplicaState.FAILED_OVER:
                self._replicas[replica_id] = attrs.evolve(replica, state=ReplicaState.FAILED_OVER)

    def connect_nic(self, vm_id: str, mac: str, network: str) -> None:
        self._enter("connect_nic", vm_id)
        with self._lock:
            record = self._vm(vm_id)
            self._require_reachable(record)
            nic = record.vm.nic(mac)
            site = self._hosts[record.vm.host].site
            if (site, network) not in self._networks:
                raise NotFoundError(f"no network {network!r} at site {site!r}")
            if nic.network != network:
                nics = tuple(
                    attrs.evolve(n, network=network) if n.mac == nic.mac else n
                    for n in record.vm.nics
                )
                record.vm = attrs.evolve(record.vm, nics=nics)

    def set_guest_ip(self, vm_id: str, mac: str, configs: Sequence[IPConfig] | None) -> None:
        self._enter("set_guest_ip", vm_id)
        with self._lock:
            record = self._vm(vm_id)
            self._require_reachable(record)
            nic = record.vm.nic(mac)
            if self._running(record):
                raise ConflictError(
                    f"VM {record.vm.name!r} is running: its guest IP is set before power-on"
                )
            new = None if configs is None else tuple(configs)
            record.guest_ip[nic.mac] = new
            updated = attrs.evolve(nic, ip_configs=new or (), dhcp=new is None)
            record.vm = attrs.evolve(
                record.vm,
                nics=tuple(updated if n.mac == nic.mac else n for n in record.vm.nics),
            )

    def power_on(self, vm_id: str) -> None:
        self._enter("power_on", vm_id)
        with self._lock:
            record = self._vm(vm_id)
            self._require_reachable(record)
            if self._running(record):
                return
            for replica in self._replicas.values():
                if replica.replica_vm == vm_id and replica.state in (
                    ReplicaState.INITIALIZING,
                    ReplicaState.READY,
                ):
                    raise ConflictError(
                        f"VM {record.vm.name!r} is the replica of {replica.source_vm!r} and has "
                        "not been failed over: revert it to a recovery point first"
                    )
            self._set_power(record, PowerState.ON)

    def shutdown_guest(self, vm_id: str, timeout: float) -> None:
        self._enter("shutdown_guest", vm_id)
        with self._lock:
            record = self._vm(vm_id)
            self._require_reachable(record)
            if not self._running(record):
                return
            needed = record.shutdown_seconds if record.boots else float("inf")
        if needed > timeout:
            self.clock.sleep(timeout)
            raise TransientBackendError(
                f"VM {record.vm.name!r} did not shut down within {timeout:g} s"
            )
        self.clock.sleep(needed)
        with self._lock:
            self._set_power(record, PowerState.OFF)

    def power_off(self, vm_id: str) -> None:
        self._enter("power_off", vm_id)
        with self._lock:
            record = self._vm(vm_id)
            self._require_reachable(record)
            self._set_power(record, PowerState.OFF)

    def readiness(self, vm_id: str) -> Readiness:
        self._enter("readiness", vm_id)
        with self._lock:
            record = self._vm(vm_id)
            self._require_reachable(record)
            if not self._running(record) or record.booted_at is None:
                return Readiness(powered_on=False)
            up = self.clock.monotonic() - record.booted_at
            if not record.boots or up < record.boot_seconds * 0.5:
                return Readiness(powered_on=True)
            if up < record.boot_seconds:
                return Readiness(powered_on=True, heartbeat=True)
            return Readiness(True, True, self._guest_addresses(record))

    def create_test_copy(self, replica_id: str, point_id: str, key: str) -> str:
        self._enter("create_test_copy", replica_id)
        with self._lock:
            replica = self._replica(replica_id)
            point = self._point(point_id)
            if point.point.replica != replica_id:
                raise ConflictError(
                    f"recovery point {point_id!r} belongs to replica {point.point.replica!r}"
                )
            copy_id = f"{replica.replica_vm}-test-{key}"
            if copy_id in self._vms:
                return copy_id
            template = self._vm(replica.replica_vm)
            self._require_available(self._hosts[template.vm.host], f"VM {template.vm.name!r}")
            copy = attrs.evolve(
                template.vm,
                id=copy_id,
                name=f"{template.vm.name}-test-{key}",
                power_state=PowerState.OFF,
            )
            self._check_placement(copy)
            self._vms[copy_id] = _VMRecord(
                vm=copy,
                disk=dict(point.disk),
                boot_seconds=template.boot_seconds,
                test_copy_of=replica_id,
            )
            self._replicas[replica_id] = attrs.evolve(replica, state=ReplicaState.TEST_FAILOVER)
            return copy_id

    def remove_test_copy(self, vm_id: str) -> None:
        self._enter("remove_test_copy", vm_id)
        with self._lock:
            record = self._vms.get(vm_id)
            if record is None:
                return
            if record.test_copy_of is None:
                raise ConflictError(f"VM {record.vm.name!r} is not a test copy")
            self._require_reachable(record)
            del self._vms[vm_id]
            replica_id = record.test_copy_of
            still_testing = any(r.test_copy_of == replica_id for r in self._vms.values())
            replica = self._replicas[replica_id]
            if not still_testing and replica.state is ReplicaState.TEST_FAILOVER:
                state = (
                    ReplicaState.READY
                    if self._points_by_replica[replica_id]
                    else (ReplicaState.INITIALIZING)
                )
                self._replicas[replica_id] = attrs.evolve(replica, state=state)

    def reverse_replication(self, replica_id: str) -> Replica:
        self._enter("reverse_replication", replica_id)
        with self._lock:
            replica = self._replica(replica_id)
            reverse_id = f"replica-{replica.replica_vm}"
            if reverse_id in self._replicas:
                return self._replicas[reverse_id]
            if replica.state not in (ReplicaState.FAILED_OVER, ReplicaState.COMMITTED):
                raise ConflictError(
                    f"replica {replica_id!r} is {replica.state.value}: only a failed-over "
                    "replica can replicate back"
                )
            original = self._vm(replica.source_vm)
            self._require_available(self._hosts[original.vm.host], f"VM {original.vm.name!r}")
            if self._running(original):
                raise ConflictError(
                    f"VM {original.vm.name!r} is running: it must be off to receive "
                    "reverse replication"
                )
            reverse = Replica(
                id=reverse_id,
                source_vm=replica.replica_vm,
                replica_vm=replica.source_vm,
                target_host=original.vm.host,
                target_datastore=original.vm.datastore,
                created_at=self.clock.now(),
            )
            self._replicas[replica_id] = attrs.evolve(replica, state=ReplicaState.REVERSED)
            self._replicas[reverse_id] = reverse
            self._points_by_replica[reverse_id] = []
            return reverse

    # --- internals -------------------------------------------------------------------------------

    def _enter(self, operation: str, target: str | None) -> None:
        delay = self.faults.before_call(operation, target)
        if delay:
            self.clock.sleep(delay)

    def _vm(self, vm_id: str) -> _VMRecord:
        return lookup(self._vms, vm_id, "VM with id")

    def _host(self, name: str) -> Host:
        return lookup(self._hosts, name, "host")

    def _replica(self, replica_id: str) -> Replica:
        return lookup(self._replicas, replica_id, "replica")

    def _point(self, point_id: str) -> _PointRecord:
        return lookup(self._points, point_id, "recovery point")

    def _replica_of(self, vm_id: str) -> Replica | None:
        for replica in self._replicas.values():
            if replica.source_vm == vm_id and replica.state is not ReplicaState.REVERSED:
                return replica
        return None

    def _is_reverse(self, replica: Replica) -> bool:
        return any(r.replica_vm == replica.source_vm for r in self._replicas.values())

    def _running(self, record: _VMRecord) -> bool:
        return record.vm.power_state is PowerState.ON

    def _set_power(self, record: _VMRecord, state: PowerState) -> None:
        if record.vm.power_state is state:
            return
        record.vm = attrs.evolve(record.vm, power_state=state)
        record.booted_at = self.clock.monotonic() if state is PowerState.ON else None

    def _require_available(self, host: Host, what: str) -> None:
        if not host.available:
            raise TransientBackendError(
                f"{what}: host {host.name!r} is {host.connection.value}, power {host.power.value}"
            )

    def _require_reachable(self, record: _VMRecord) -> None:
        self._require_available(self._hosts[record.vm.host], f"VM {record.vm.name!r}")

    def _require_running(self, record: _VMRecord, action: str) -> None:
        self._require_reachable(record)
        if not self._running(record):
            raise ConflictError(f"cannot {action} VM {record.vm.name!r}: it is powered off")

    def _guest_addresses(self, record: _VMRecord) -> tuple[IPAddress, ...]:
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
