"""The memory backend's world: its tables, the indexes over them, and the one lock.

The protocol, the scene builder and the world events all read and change the world through one
:class:`MemoryStore`. Every change goes through a store method, which updates the table, each
index that depends on it and the cached inventory together; so a lookup is a dictionary read, no
call scans every VM or replica, and the indexes cannot drift from the tables (the tests compare
them with a brute-force scan after every kind of change).

Callers hold :attr:`MemoryStore.lock` across a whole operation (it is reentrant); store methods
do not take it themselves.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping

import attrs

from vmfailover.backends.memory.replica_states import ReplicaEvent, next_replica_state
from vmfailover.clock import Clock
from vmfailover.errors import ConflictError, TransientBackendError, ValidationError
from vmfailover.model import (
    VM,
    Datastore,
    Host,
    Inventory,
    Network,
    PowerState,
    RecoveryPoint,
    Replica,
    ReplicaState,
    Site,
    lookup,
)

__all__ = [
    "BLOCK_SIZE",
    "Disk",
    "FailoverRecord",
    "MemoryStore",
    "PointRecord",
    "VMRecord",
    "differing_blocks",
]

BLOCK_SIZE = 1 << 20
"""Bytes per block of a memory-backend disk."""

Disk = Mapping[int, int]
"""A disk's contents: block number -> content version (0, never written, is left out)."""

DAMAGE_BLOCK = -1
"""The block a damaged disk carries (``MemoryBackend.damage``): its presence is the damage."""


@attrs.define
class VMRecord:
    """A VM and what only the memory backend knows about it: its disk, boot and workload.

    ``vm`` is replaced only through :meth:`MemoryStore.replace_vm`, which keeps the cached
    inventory honest.
    """

    vm: VM
    disk: dict[int, int]
    boot_seconds: float = 30.0
    booted_at: float | None = None  # clock.monotonic() at power-on
    boots: bool = True
    shutdown_seconds: float = 5.0
    test_copy_of: str | None = None  # replica id
    write_rate: float = 0.0  # blocks per second while running

    @property
    def running(self) -> bool:
        return self.vm.power_state is PowerState.ON

    @property
    def blocks(self) -> int:
        """How many blocks the disk has (at least one)."""
        return max(1, self.vm.disk_bytes // BLOCK_SIZE)


@attrs.frozen
class FailoverRecord:
    """An uncommitted failover of a replica: the point its VM was reverted to, and the disk it
    had before (what undo gives back)."""

    point: str
    disk_before: Mapping[int, int]


@attrs.define
class PointRecord:
    """A recovery point and the disk it holds (never changed once recorded)."""

    point: RecoveryPoint
    disk: dict[int, int]


def _add(index: dict[str, dict[str, None]], key: str, value: str) -> None:
    index.setdefault(key, {})[value] = None


def _append(index: dict[str, tuple[str, ...]], key: str, value: str) -> None:
    """For indexes whose entries are almost always one value and never removed: a tuple is a
    fifth of a one-entry dict's memory, which counts at 100,000 entries."""
    index[key] = (*index.get(key, ()), value)


def _discard(index: dict[str, dict[str, None]], key: str, value: str) -> None:
    members = index.get(key)
    if members is not None:
        members.pop(value, None)
        if not members:
            del index[key]


class MemoryStore:
    """Sites, hosts, datastores, networks, VMs, replicas and recovery points, indexed.

    Indexes (each kept by the methods that change what it is built from):

    - site -> its hosts; host -> the VMs on it (kept by :meth:`move_vm` too); site -> VM name
      -> VM id;
    - VMs with a workload (``write_rate > 0``), in the order they were added;
    - source VM -> its replicas; replica VM -> the replicas that write into it;
    - replica -> its recovery points, oldest first; replica -> its test copies;
    - the :class:`~vmfailover.model.Inventory`, built on first read after a change.
    """

    def __init__(self, clock: Clock, *, recovery_point_limit: int | None, seed: int) -> None:
        self.clock = clock
        self.recovery_point_limit = recovery_point_limit
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.bytes_transferred = 0
        self.last_point_number = 0  # of the newest point's id, rp-N
        self.last_version = 0  # the newest content version a block was given
        self._sites: dict[str, Site] = {}
        self._hosts: dict[str, Host] = {}
        self._datastores: dict[str, Datastore] = {}
        self._networks: dict[tuple[str, str], Network] = {}
        self._vms: dict[str, VMRecord] = {}
        self._replicas: dict[str, Replica] = {}
        self._points: dict[str, PointRecord] = {}
        self._hosts_at: dict[str, dict[str, None]] = {}
        self._vms_on: dict[str, dict[str, None]] = {}
        self._vm_named: dict[str, dict[str, str]] = {}  # site -> VM name -> VM id
        self._writers: dict[str, None] = {}
        self._replicas_from: dict[str, tuple[str, ...]] = {}
        self._replicas_into: dict[str, tuple[str, ...]] = {}
        self._points_of: dict[str, dict[str, None]] = {}
        self._test_copies: dict[str, dict[str, None]] = {}
        self._failovers: dict[str, FailoverRecord] = {}
        self._inventory: Inventory | None = None
        self.split_brains: list[str] = []  # each moment both ends of a replica ran at once
        #: Parts that never change once made (frozen model values, a point's disk, a failover's
        #: disk before) as the saved world writes them, by the identity of what holds them: a
        #: world kept in a file is saved after every change, and most of it did not change.
        self.saved_parts: dict[int, tuple[object, object]] = {}
        # An isolated host's agent stopping its VMs: VM id -> (host, clock.monotonic() due).
        self.due_stops: dict[str, tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"MemoryStore({self.summary()})"

    def summary(self) -> str:
        return (
            f"sites={len(self._sites)}, hosts={len(self._hosts)}, "
            f"vms={len(self._vms)}, replicas={len(self._replicas)}"
        )

    # --- counters --------------------------------------------------------------------------------

    def next_version(self) -> int:
        """A content version no block has had before."""
        self.last_version += 1
        return self.last_version

    def next_point_id(self) -> str:
        self.last_point_number += 1
        return f"rp-{self.last_point_number}"

    # --- sites, hosts, datastores, networks ------------------------------------------------------

    def add_site(self, site: Site) -> None:
        _check_new(site.name, self._sites, "site")
        self._sites[site.name] = site
        self._vm_named[site.name] = {}
        self._changed()

    def add_host(self, host: Host) -> None:
        _check_new(host.name, self._hosts, "host")
        self.require_site(host.site)
        self._hosts[host.name] = host
        _add(self._hosts_at, host.site, host.name)
        self._changed()

    def replace_host(self, host: Host) -> None:
        """A host's new power or connection state (it stays where it is)."""
        if self.host(host.name).site != host.site:
            raise ConflictError(f"host {host.name!r} cannot move to site {host.site!r}")
        self._hosts[host.name] = host
        self._changed()

    def add_datastore(self, datastore: Datastore) -> None:
        _check_new(datastore.name, self._datastores, "datastore")
        self.require_site(datastore.site)
        self._datastores[datastore.name] = datastore
        self._changed()

    def add_network(self, network: Network) -> None:
        self.require_site(network.site)
        if (network.site, network.name) in self._networks:
            raise ValidationError.of(
                f"network {network.name!r}", f"exists already at site {network.site!r}"
            )
        self._networks[(network.site, network.name)] = network
        self._changed()

    def require_site(self, name: str) -> None:
        lookup(self._sites, name, "site")

    def host(self, name: str) -> Host:
        return lookup(self._hosts, name, "host")

    def hosts_at(self, site: str) -> tuple[Host, ...]:
        self.require_site(site)
        return tuple(self._hosts[name] for name in self._hosts_at.get(site, ()))

    def require_datastore(self, name: str) -> None:
        lookup(self._datastores, name, "datastore")

    def has_network(self, site: str, name: str) -> bool:
        return (site, name) in self._networks

    # --- VMs -------------------------------------------------------------------------------------

    def add_vm(self, record: VMRecord) -> None:
        """Add a VM: its id must be new and its placement valid (see :meth:`check_placement`)."""
        vm = record.vm
        _check_new(vm.id, self._vms, "VM")
        site = self.check_placement(vm)
        self._vms[vm.id] = record
        _add(self._vms_on, vm.host, vm.id)
        self._vm_named[site][vm.name] = vm.id
        if record.write_rate:
            self._writers[vm.id] = None
        if record.test_copy_of is not None:
            _add(self._test_copies, record.test_copy_of, vm.id)
        self._changed()

    def check_placement(self, vm: VM) -> str:
        """Refuse a VM whose host is unknown, whose name its site already has, or whose NICs
        are on networks its site lacks; return its site."""
        host = self._hosts.get(vm.host)
        if host is None:
            raise ValidationError.of(f"VM {vm.name!r}", f"host {vm.host!r} does not exist")
        other = self._vm_named[host.site].get(vm.name)
        if other is not None:
            raise ValidationError.of(
                f"VM {vm.name!r}", f"another VM ({other!r}) has this name at {host.site!r}"
            )
        for nic in vm.nics:
            if (host.site, nic.network) not in self._networks:
                raise ValidationError.of(
                    f"VM {vm.name!r} NIC {nic.mac}",
                    f"network {nic.network!r} does not exist at site {host.site!r}",
                )
        return host.site

    def replace_vm(self, record: VMRecord, vm: VM) -> None:
        """The VM's new power state, NICs or addresses (its id, name and host stay)."""
        old = record.vm
        if (vm.id, vm.name, vm.host) != (old.id, old.name, old.host):
            raise ConflictError(f"VM {old.name!r} cannot change its id, name or host here")
        record.vm = vm
        self._changed()

    def move_vm(self, record: VMRecord, host: str) -> None:
        """Register the VM on another host of its site (its id, name, disk and power stay)."""
        old = record.vm
        site = self.host(old.host).site
        target = self.host(host)
        if target.site != site:
            raise ConflictError(
                f"VM {old.name!r} cannot move to host {host!r} of site {target.site!r}: "
                f"it lives at site {site!r}"
            )
        if old.host == host:
            return
        _discard(self._vms_on, old.host, old.id)
        _add(self._vms_on, host, old.id)
        record.vm = attrs.evolve(old, host=host)
        self._changed()

    def remove_vm(self, vm_id: str) -> VMRecord:
        record = self.vm(vm_id)
        vm = record.vm
        del self._vms[vm_id]
        _discard(self._vms_on, vm.host, vm_id)
        del self._vm_named[self._hosts[vm.host].site][vm.name]
        self._writers.pop(vm_id, None)
        if record.test_copy_of is not None:
            _discard(self._test_copies, record.test_copy_of, vm_id)
        self._changed()
        return record

    def vm(self, vm_id: str) -> VMRecord:
        if self.due_stops:
            self.settle_stops()
        return lookup(self._vms, vm_id, "VM with id")

    def settle_stops(self) -> None:
        """Power off the VMs whose isolated host's agent has stopped them by now (a stop is
        dropped when the VM has left that host or the host answers again)."""
        now = self.clock.monotonic()
        for vm_id, (host, due) in list(self.due_stops.items()):
            record = self._vms.get(vm_id)
            if record is None or record.vm.host != host or self._hosts[host].available:
                del self.due_stops[vm_id]
            elif due <= now:
                del self.due_stops[vm_id]
                self.set_power(record, PowerState.OFF)

    def find_vm(self, vm_id: str) -> VMRecord | None:
        return self._vms.get(vm_id)

    def vms_on(self, host: str) -> tuple[VMRecord, ...]:
        """The VMs on ``host``, in the order they arrived there (added, or moved)."""
        return tuple(self._vms[vm_id] for vm_id in self._vms_on.get(host, ()))

    def arrange_vms_on(self, host: str, vm_ids: tuple[str, ...]) -> None:
        """Put the VMs of ``host`` in this order (the order they arrived, in a saved world)."""
        if sorted(vm_ids) != sorted(self._vms_on.get(host, ())):
            raise ConflictError(f"host {host!r} does not hold exactly the VMs {list(vm_ids)}")
        if vm_ids:
            self._vms_on[host] = dict.fromkeys(vm_ids)

    def vm_order_on(self, host: str) -> tuple[str, ...]:
        """The ids of the VMs on ``host``, in the order they arrived there."""
        return tuple(self._vms_on.get(host, ()))

    def writers(self) -> tuple[VMRecord, ...]:
        """The VMs with a workload (``write_rate > 0``), in the order they were added."""
        return tuple(self._vms[vm_id] for vm_id in self._writers)

    def test_copies_of(self, replica_id: str) -> tuple[str, ...]:
        return tuple(self._test_copies.get(replica_id, ()))

    def set_power(self, record: VMRecord, state: PowerState) -> None:
        """Power a VM on or off; a VM powered on starts booting now."""
        if record.vm.power_state is state:
            return
        self.replace_vm(record, attrs.evolve(record.vm, power_state=state))
        record.booted_at = self.clock.monotonic() if state is PowerState.ON else None
        if state is PowerState.ON:
            self._note_split_brain(record.vm.id)

    def _note_split_brain(self, vm_id: str) -> None:
        """Record it if ``vm_id`` now runs beside the VM at the other end of one of its replicas
        (either direction, whatever the replica's state): the lab's split-brain witness."""
        ends = (
            *(self._replicas[r].replica_vm for r in self._replicas_from.get(vm_id, ())),
            *(self._replicas[r].source_vm for r in self._replicas_into.get(vm_id, ())),
        )
        for twin in dict.fromkeys(ends):
            other = self._vms.get(twin)
            if other is not None and other.running:
                self.split_brains.append(
                    f"{self.clock.now().isoformat()}: VM {vm_id!r} started while {twin!r} ran"
                )

    def require_available(self, host: Host, what: str) -> None:
        if not host.available:
            raise TransientBackendError(
                f"{what}: host {host.name!r} is {host.connection.value}, power {host.power.value}"
            )

    def reachable_vm(self, vm_id: str) -> VMRecord:
        """The VM, if the management plane reaches its host (TransientBackendError if not)."""
        record = self.vm(vm_id)
        self.require_reachable(record)
        return record

    def require_reachable(self, record: VMRecord) -> None:
        """The management plane reaches the VM's host."""
        self.require_available(self._hosts[record.vm.host], f"VM {record.vm.name!r}")

    # --- replicas --------------------------------------------------------------------------------

    def add_replica(self, replica: Replica) -> None:
        """A new replica; it starts ``initializing``, and from then on moves by :meth:`apply`."""
        if replica.id in self._replicas:
            raise ConflictError(f"replica {replica.id!r} exists already")
        if replica.state is not ReplicaState.INITIALIZING:
            raise ConflictError(f"replica {replica.id!r} must start initializing")
        self._replicas[replica.id] = replica
        _append(self._replicas_from, replica.source_vm, replica.id)
        _append(self._replicas_into, replica.replica_vm, replica.id)
        self._points_of[replica.id] = {}
        self._changed()

    def restore_replica(self, replica: Replica) -> None:
        """A replica read back from a saved world, in whatever state it was saved; its source
        and replica VMs must exist already."""
        for vm_id in (replica.source_vm, replica.replica_vm):
            self.vm(vm_id)
        if replica.id in self._replicas:
            raise ConflictError(f"replica {replica.id!r} exists already")
        self._replicas[replica.id] = replica
        _append(self._replicas_from, replica.source_vm, replica.id)
        _append(self._replicas_into, replica.replica_vm, replica.id)
        self._points_of[replica.id] = {}
        self._changed()

    def apply(self, replica: Replica, event: ReplicaEvent) -> Replica:
        """Move the replica as the transition table says (ConflictError if it does not)."""
        state = next_replica_state(replica, event)
        if state is replica.state:
            return replica
        moved = attrs.evolve(replica, state=state)
        self._replicas[replica.id] = moved
        self._changed()
        return moved

    def replica(self, replica_id: str) -> Replica:
        return lookup(self._replicas, replica_id, "replica")

    def find_replica(self, replica_id: str) -> Replica | None:
        return self._replicas.get(replica_id)

    def replica_of(self, vm_id: str) -> Replica | None:
        """The replica that copies ``vm_id`` now (not one reversed into it)."""
        for replica_id in self._replicas_from.get(vm_id, ()):
            replica = self._replicas[replica_id]
            if replica.state is not ReplicaState.REVERSED:
                return replica
        return None

    def replicas_into(self, vm_id: str) -> tuple[Replica, ...]:
        """The replicas whose replica VM is ``vm_id``."""
        return tuple(self._replicas[r] for r in self._replicas_into.get(vm_id, ()))

    # --- uncommitted failovers --------------------------------------------------------------------

    def record_failover(self, replica_id: str, point_id: str, disk_before: Disk) -> None:
        """The replica VM was reverted to ``point_id``; the first revert keeps the disk before."""
        earlier = self._failovers.get(replica_id)
        kept = earlier.disk_before if earlier is not None else dict(disk_before)
        self._failovers[replica_id] = FailoverRecord(point_id, kept)

    def failover_of(self, replica_id: str) -> FailoverRecord | None:
        return self._failovers.get(replica_id)

    def all_failovers(self) -> dict[str, FailoverRecord]:
        """Every uncommitted failover, by replica id."""
        return dict(self._failovers)

    def restore_failover(self, replica_id: str, record: FailoverRecord) -> None:
        """An uncommitted failover read back from a saved world; its replica must exist."""
        self.replica(replica_id)
        self._failovers[replica_id] = record

    def end_failover(self, replica_id: str) -> None:
        """The failover was committed, undone or reversed: nothing is left to undo."""
        self._failovers.pop(replica_id, None)

    # --- recovery points -------------------------------------------------------------------------

    def add_point(self, record: PointRecord) -> None:
        point = record.point
        self.replica(point.replica).check_point(point)
        self._points[point.id] = record
        self._points_of[point.replica][point.id] = None

    def remove_point(self, point_id: str) -> None:
        record = self._points.pop(point_id, None)
        if record is not None:
            del self._points_of[record.point.replica][point_id]

    def point(self, point_id: str) -> PointRecord:
        return lookup(self._points, point_id, "recovery point")

    def damage_point(self, point_id: str) -> None:
        """A lab fault reaches a recorded point: its disk now carries :data:`DAMAGE_BLOCK`."""
        record = self.point(point_id)
        self._points[point_id] = PointRecord(
            record.point, {**record.disk, DAMAGE_BLOCK: DAMAGE_BLOCK}
        )

    def points_of(self, replica_id: str) -> tuple[PointRecord, ...]:
        """The replica's recovery points, oldest first."""
        self.replica(replica_id)
        return tuple(self._points[p] for p in self._points_of[replica_id])

    def point_count(self, replica_id: str) -> int:
        return len(self._points_of[replica_id])

    # --- the inventory ---------------------------------------------------------------------------

    def inventory(self) -> Inventory:
        """The inventory as it is now; built once per change, since building it is O(size)."""
        if self.due_stops:
            self.settle_stops()
        if self._inventory is None:
            self._inventory = self.build_inventory()
        return self._inventory

    def build_inventory(self) -> Inventory:
        """A fresh inventory from the tables (what the cached one must equal)."""
        return Inventory(
            sites=tuple(self._sites.values()),
            hosts=tuple(self._hosts.values()),
            datastores=tuple(self._datastores.values()),
            networks=tuple(self._networks.values()),
            vms=tuple(record.vm for record in self._vms.values()),
            replicas=tuple(self._replicas.values()),
        )

    def _changed(self) -> None:
        self._inventory = None

    # --- whole tables, for the brute-force checks in the tests and for repr ----------------------

    def vm_records(self) -> tuple[VMRecord, ...]:
        return tuple(self._vms.values())

    def all_replicas(self) -> tuple[Replica, ...]:
        return tuple(self._replicas.values())

    def all_points(self) -> tuple[PointRecord, ...]:
        return tuple(self._points.values())

    def all_hosts(self) -> tuple[Host, ...]:
        return tuple(self._hosts.values())

    def all_sites(self) -> tuple[Site, ...]:
        return tuple(self._sites.values())

    def all_datastores(self) -> tuple[Datastore, ...]:
        return tuple(self._datastores.values())

    def all_networks(self) -> tuple[Network, ...]:
        return tuple(self._networks.values())


def _check_new(key: str, table: Mapping[str, object], what: str) -> None:
    if key in table:
        raise ValidationError.of(f"{what} {key!r}", "exists already")


def differing_blocks(a: Disk, b: Disk) -> list[int]:
    """The blocks two disks differ in (what a sync from one to the other sends or drops)."""
    return [block for block in a.keys() | b.keys() if a.get(block) != b.get(block)]
