"""The backend protocol: what the engine asks of a hypervisor, and nothing more.

A backend translates; it makes no policy decisions (which point, which order, whether to fence is
decided above it). Every method names its idempotency, because the runner resumes interrupted runs
by repeating calls whose outcome it did not record: an idempotent call may simply be repeated; a
non-idempotent one is first reconciled against :meth:`Backend.inventory` and
:meth:`Backend.recovery_points`.

How the primitives map onto the hypervisors (so that a new backend knows what is expected):

============================  ====================================  ==============================
primitive                     vSphere                               Hyper-V Replica
============================  ====================================  ==============================
create_replica                clone a source snapshot, NICs mapped  Enable-VMReplication + initial
sync                          data mover, then a replica snapshot   replication / Checkpoint-VM
revert                        RevertToSnapshot on the replica       Start-VMFailover
                                                                    -VMRecoverySnapshot
commit_failover               delete the replica's other            Complete-VMFailover
                              snapshots, mark it committed
undo_failover                 power off, RevertToSnapshot to the    Stop-VMFailover (turns the
                              newest point (what the last sync      replica off, reverts the
                              left), mark it ready                  failover)
create_test_copy              linked clone of the snapshot          Start-VMFailover -AsTest
create_test_copy's            not needed: set_guest_ip customizes   the replica's failover TCP/IP
``guest_ips``                 the clone before it boots             lent for -AsTest, given back
remove_test_copy              destroy the clone                     Stop-VMFailover
reverse_replication           new replica in the other direction    Set-VMReplication -Reverse
                              (or the reversed one resumed)
sync's ``throttle``           our data mover calls ``consume`` for  not enforced by us: the
                              each chunk before sending it          hypervisor moves the data (a
                                                                    job's result says so)
restart_on_host               RelocateVM_Task (host and pool of     refused: needs Hyper-V failover
                              the survivor), then PowerOnVM_Task    clustering (a clustered VM
                                                                    role on a Cluster Shared
                                                                    Volume), not modelled
migrate_vm                    MigrateVM_Task (vMotion) for a        refused, as restart_on_host
                              running VM, RelocateVM_Task for one   (Move-ClusterVirtualMachineRole
                              that is off                           would do it)
============================  ====================================  ==============================

Host failover (a failover cluster: VMs on shared datastores, restarted by the survivors when
their host dies) needs the last two. A backend without them raises
:class:`~vmfailover.errors.PermanentBackendError` naming what it would need.

Optional capability: a backend whose test copies take their guest addresses when they are made
says so with a true ``guest_ips_at_test_copy`` attribute, and its ``create_test_copy`` takes the
keyword ``guest_ips`` (MAC -> the IPConfigs the copy's guest gets at first boot, None for DHCP).
The runner then passes the test addresses there, and still calls :meth:`Backend.set_guest_ip` on
the copy, which confirms them. Hyper-V is such a backend: Start-VMFailover -AsTest copies the
replica's failover TCP/IP settings into the test VM and Hyper-V refuses them on the test VM
afterwards, so the backend lends the replica the test settings for that moment. (Coming: the
keyword in the protocol itself, once every backend accepts it; those that set addresses later
ignore it.)

A replica's life around a failover: ``revert`` fails it over (``failed_over``, uncommitted);
``undo_failover`` returns it to ``ready`` with the disks it had before, or ``commit_failover``
makes it ``committed`` for good; ``reverse_replication`` of a failed-over or committed replica
makes it ``reversed`` and returns the replica that runs the other way (the failback's), and
``reverse_replication`` of that one, once it is failed over or committed in turn, hands the
original replica back, replicating in its first direction again.

Optional capability: a backend that can count what a failover loses offers
``data_loss_blocks(source_vm_id, point_id) -> int`` (the blocks of the source's disk that differ
from the point); the runner reports it where present (the memory backend has it). A backend
whose recovery points count the blocks they moved offers ``block_size: int`` (bytes per block), so
reports can say how many blocks a sync (a failback's, for one) moved; the memory backend has it.

The memory backend honours ``throttle`` too: it pays for each block before copying it.

Optional capability: a backend whose hypervisor moves the replication data itself (so a sync's
``throttle`` is accepted and never called) says so with a true ``hypervisor_moves_data``
attribute. A replication job with a bandwidth limit then reports the limit as not enforced for
each of its VMs, even when the backend's points do not say how many bytes moved (Hyper-V's do
not, so a job could not tell from the bytes). Hyper-V is such a backend.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import attrs

from vmfailover.model import (
    VM,
    Consistency,
    Host,
    Inventory,
    IPAddress,
    IPConfig,
    RecoveryPoint,
    Replica,
    as_items,
    check_flag,
)

__all__ = ["CHANGING_CALLS", "Backend", "Readiness", "Throttle", "host_lacks"]

#: The protocol's calls that change something, the one list the engine keys on: each is fenced by
#: :class:`~vmfailover.engine.fenced.FencedBackend` and journaled (intent, then outcome) by a
#: journaled run. A test fails when the protocol grows a call that is neither here nor a read.
CHANGING_CALLS = frozenset(
    {
        "create_replica",
        "sync",
        "delete_recovery_point",
        "revert",
        "connect_nic",
        "set_guest_ip",
        "power_on",
        "shutdown_guest",
        "power_off",
        "create_test_copy",
        "remove_test_copy",
        "restart_on_host",
        "migrate_vm",
        "commit_failover",
        "undo_failover",
        "reverse_replication",
    }
)


def host_lacks(vm: VM, host: Host) -> tuple[str, ...]:
    """What ``host`` lacks to run ``vm``: its datastore, the networks of its NICs (named).

    For backends checking a target of :meth:`Backend.restart_on_host` and
    :meth:`Backend.migrate_vm` before they act.
    """
    missing: list[str] = []
    if vm.datastore is not None and vm.datastore not in host.datastores:
        missing.append(f"datastore {vm.datastore!r}")
    networks = sorted({nic.network for nic in vm.nics} - set(host.networks))
    missing += [f"network {name!r}" for name in networks]
    return tuple(missing)


def _addresses(value: Iterable[IPAddress]) -> tuple[IPAddress, ...]:
    kinds = (ipaddress.IPv4Address, ipaddress.IPv6Address)
    return as_items(value, kinds, "Readiness ip_addresses", "an IP address")


@attrs.frozen
class Readiness:
    """What a backend can tell about a VM's guest without logging into it."""

    powered_on: bool = attrs.field(validator=check_flag)
    heartbeat: bool = attrs.field(default=False, validator=check_flag)
    ip_addresses: tuple[IPAddress, ...] = attrs.field(default=(), converter=_addresses)

    @property
    def ready(self) -> bool:
        """Powered on, the guest agent answers, and the guest reports an address."""
        return self.powered_on and self.heartbeat and bool(self.ip_addresses)


@runtime_checkable
class Throttle(Protocol):
    """A bandwidth limit on a data path (a replication job's token bucket).

    A data path that moves bytes calls :meth:`consume` before moving each chunk, chunks no larger
    than a block or a network buffer, so that the bytes moved over any stretch of time stay
    within the limit (plus one burst).
    """

    def consume(self, nbytes: int) -> None:
        """Wait, on the backend's clock, until ``nbytes`` more may move."""
        ...


@runtime_checkable
class Backend(Protocol):
    """One hypervisor management plane (a vCenter, a set of Hyper-V hosts, the memory lab).

    Ids are the backend's stable ids (VM ids, replica ids, recovery point ids), never display
    names. Unknown ids raise :class:`~vmfailover.errors.NotFoundError`; an operation the object's
    state forbids raises :class:`~vmfailover.errors.ConflictError`; failures of the hypervisor
    raise :class:`~vmfailover.errors.TransientBackendError` (worth retrying) or
    :class:`~vmfailover.errors.PermanentBackendError`.
    """

    name: str

    def inventory(self) -> Inventory:
        """A consistent snapshot of sites, hosts, datastores, networks, VMs and replicas.

        Read-only, idempotent.
        """
        ...

    def create_replica(
        self,
        vm_id: str,
        target_host: str,
        target_datastore: str,
        *,
        network_map: Mapping[str, str] | None = None,
    ) -> Replica:
        """Create a replica of ``vm_id`` on the target host and datastore.

        The replica VM's NICs are connected to ``network_map[source network]`` (target networks by
        name); unmapped NICs keep their network name, which must exist at the target site.
        Idempotent: if the VM already has a replica on that host, that replica is returned.
        """
        ...

    def sync(
        self,
        replica_id: str,
        *,
        consistency: Consistency = Consistency.CRASH,
        tags: Sequence[str] = (),
        throttle: Throttle | None = None,
    ) -> RecoveryPoint:
        """Bring the replica up to date with its source and record a new recovery point.

        The point's ``size_bytes`` is what moved. A data path of ours calls
        ``throttle.consume`` before it moves each chunk; where the hypervisor moves the data
        itself, ``throttle`` is accepted and not called. Not idempotent: each call creates a
        point. Reconcile by listing recovery points.
        """
        ...

    def recovery_points(self, replica_id: str) -> tuple[RecoveryPoint, ...]:
        """The replica's recovery points, oldest first. Read-only, idempotent."""
        ...

    def delete_recovery_point(self, point_id: str) -> None:
        """Delete a recovery point. Idempotent: deleting a point that is gone does nothing."""
        ...

    def recovery_point_limit(self) -> int | None:
        """How many recovery points a replica can hold, or None for no limit. Read-only."""
        ...

    def revert(self, replica_id: str, point_id: str) -> None:
        """Make the replica VM's disks equal to the recovery point, ready to power on.

        Idempotent for the same point. The replica VM must be powered off.
        """
        ...

    def commit_failover(self, replica_id: str) -> None:
        """Make the replica's failover permanent: the replica VM keeps running from the point it
        was reverted to (which stays listed, or is merged into the VM as Hyper-V does), the
        replica's other recovery points are deleted, and the failover can no longer be undone.

        Idempotent: a committed replica stays committed (a repeat after a crash finishes what
        the first call left, such as points not yet deleted). ConflictError unless the replica
        is failed over or committed.
        """
        ...

    def undo_failover(self, replica_id: str) -> None:
        """Revert an uncommitted failover: the replica VM is powered off, its disks return to
        what they were before :meth:`revert` (what replication had sent), and the replica is
        ``ready`` again, replicating.

        NICs and guest addresses changed with :meth:`connect_nic` and :meth:`set_guest_ip` are
        the caller's to set back (it knows what they were). Idempotent: a replica that is
        ``ready`` (undone already, or never failed over) is left as it is. ConflictError for a
        committed or reversed replica, or one under test.
        """
        ...

    def connect_nic(self, vm_id: str, mac: str, network: str) -> None:
        """Connect the VM's NIC to a network of the VM's site. Idempotent."""
        ...

    def set_guest_ip(self, vm_id: str, mac: str, configs: Sequence[IPConfig] | None) -> None:
        """Set the guest's address for the NIC, applied at next boot; ``None`` means DHCP.

        Idempotent. The VM must be powered off (the change is applied by guest customization or
        Hyper-V's failover IP configuration while it boots).
        """
        ...

    def power_on(self, vm_id: str) -> None:
        """Power the VM on. Idempotent: a running VM stays running."""
        ...

    def shutdown_guest(self, vm_id: str, timeout: float) -> None:
        """Ask the guest to shut down and wait up to ``timeout`` seconds for it to be off.

        Idempotent: an off VM stays off. Raises TransientBackendError if it is still running
        when the time is up (the caller may then :meth:`power_off`).
        """
        ...

    def power_off(self, vm_id: str) -> None:
        """Cut the power. Idempotent."""
        ...

    def readiness(self, vm_id: str) -> Readiness:
        """Power, guest heartbeat and reported addresses. Read-only."""
        ...

    def create_test_copy(self, replica_id: str, point_id: str, key: str) -> str:
        """Create a powered-off copy of the replica at the point, for a test failover.

        Returns the copy's VM id. Production (source and replica) is untouched. The copy's NICs
        keep the replica's MAC addresses, so :meth:`connect_nic` and :meth:`set_guest_ip` address
        them as the plan names them (a hypervisor that gives copies new MACs maps them itself).
        Idempotent per ``key`` (a run id): calling again with the same key returns the same copy.
        """
        ...

    def remove_test_copy(self, vm_id: str) -> None:
        """Power off and delete a test copy. Idempotent: a copy that is gone stays gone."""
        ...

    def restart_on_host(self, vm_id: str, host: str) -> None:
        """Restart a VM of a failed host on ``host``, from its files on a shared datastore.

        What vSphere HA and Hyper-V failover clustering do after a host failure: the VM is
        registered on ``host`` (keeping its id) and powered on. ``host`` must be available,
        reach the VM's datastore and have the networks of its NICs (ConflictError naming what
        is missing). A VM that still runs (its host cut off the management network but alive,
        so holding the lock on its disks) is refused with ConflictError: starting it again
        would run it twice. Idempotent: a VM already running on ``host`` stays as it is.
        """
        ...

    def migrate_vm(self, vm_id: str, host: str) -> None:
        """Move a VM to ``host``, which reaches its datastore and has its networks.

        A running VM moves live and keeps running (vMotion, live migration); a powered-off one
        moves cold. A running VM that cannot move live (hosts of different CPU families or
        feature levels) is refused with ConflictError, so that the caller may shut it down,
        move it and start it again. Its own host must answer. Idempotent: a VM already on
        ``host`` stays as it is.
        """
        ...

    def reverse_replication(self, replica_id: str) -> Replica:
        """Replicate from the (failed-over or committed) replica VM back to the original source
        VM, which must be off: the replica becomes ``reversed``.

        Returns the replica that runs the other way, whose source is the old replica VM: a new
        one (``initializing`` where it needs a first sync, ``ready`` where the hypervisor has
        the two in sync already), or, when this replica is itself the reverse of a ``reversed``
        one (a failback that was committed), that original replica resumed (``ready``). Only
        changed blocks move where the original still exists (a data path that cannot tell
        moves whole disks, and says so). Idempotent: once reversed, returns the same replica.
        """
        ...
