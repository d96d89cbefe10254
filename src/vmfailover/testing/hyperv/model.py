"""The simulated Hyper-V hosts' state: VMs, switches, checkpoints and Hyper-V Replica.

A :class:`ReplicationFabric` holds every simulated host that can replicate to another (a primary
and its replica server, usually ``hv-a`` and ``hv-b``); :class:`HostModel` is one host. Tests set a
scene with the plain-Python methods here (``add_switch``, ``add_vm``, ``write_data``,
``replicate``); everything a client does goes through the cmdlets (``cmdlets`` module), which call
the ``*_op`` style methods of this module and turn :class:`HyperVStateError` into error records.

State lives in mutable records guarded by one lock per fabric, so a cmdlet that touches both
hosts (failover, reverse replication) sees and leaves a consistent pair. The module knows nothing
of PowerShell, PSRP or HTTP.

Replication is synchronous and explicit: :meth:`HostModel.replicate` is one replication cycle
(the primary's current data is sent, the replica records a recovery point), so tests decide when
recovery points appear. A VM's "data" is an integer, ``data_version``, that
:meth:`HostModel.write_data` bumps on a primary; every recovery point remembers the version it
holds, so a test can tell which point a failover used.

Hyper-V Replica also replicates on its own, every ``ReplicationFrequencySec``: a fabric built with
``scheduled_replication=True`` runs those cycles as :meth:`ReplicationFabric.advance` moves its
clock (an application-consistent one every ``VSSSnapshotFrequencyHour``), so a client that waits
for the next recovery point sees it come, in fabric time. The guest is modelled as far as a
client can observe it: a running VM's heartbeat turns OK ``boot_seconds`` (fabric time) after it
starts, and its adapters then report the guest's addresses, or the failover IP settings Hyper-V
injected at that boot when the VM runs failed over (a Replica after Start-VMFailover, or a test
VM).
"""

from __future__ import annotations

import ipaddress
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import attrs

from vmfailover.errors import ValidationError

from ._objects import EnumValue

__all__ = [
    "AUTHENTICATION_TYPE",
    "CHECKPOINT_TYPE",
    "HEARTBEAT_STATUS",
    "REPLICATION_HEALTH",
    "REPLICATION_MODE",
    "REPLICATION_RELATIONSHIP_TYPE",
    "REPLICATION_STATE",
    "REPLICATION_TYPE",
    "SNAPSHOT_TYPE",
    "SWITCH_TYPE",
    "VM_STATE",
    "EnumType",
    "FailoverIPSettings",
    "HostModel",
    "HyperVStateError",
    "NetworkAdapterRecord",
    "ReplicationFabric",
    "ReplicationRecord",
    "SnapshotRecord",
    "SwitchRecord",
    "VMRecord",
]

_NS = "Microsoft.HyperV.PowerShell."


@attrs.frozen
class EnumType:
    """A .NET enum: its full type name and its members (name -> integer value)."""

    type_name: str
    members: Mapping[str, int]

    def __getitem__(self, name: str) -> EnumValue:
        return EnumValue(self.type_name, name, self.members[name])

    def lookup(self, name: str) -> EnumValue | None:
        """The member named ``name`` compared case-insensitively, as PowerShell converts."""
        folded = name.strip().casefold()
        for member, value in self.members.items():
            if member.casefold() == folded:
                return EnumValue(self.type_name, member, value)
        return None

    def by_value(self, value: int) -> EnumValue | None:
        for member, number in self.members.items():
            if number == value:
                return EnumValue(self.type_name, member, number)
        return None


# Numbers from the reference, section 3 (module 2.0.0.0). Compare by name; numbers drift.
VM_STATE = EnumType(
    _NS + "VMState",
    {
        "Other": 1,
        "Running": 2,
        "Off": 3,
        "Stopping": 4,
        "Saved": 6,
        "Paused": 9,
        "Starting": 10,
        "Reset": 11,
        "Saving": 32773,
        "Pausing": 32776,
        "Resuming": 32777,
        "FastSaved": 32779,
        "FastSaving": 32780,
    },
)
REPLICATION_STATE = EnumType(
    _NS + "VMReplicationState",
    {
        name: number
        for number, name in enumerate(
            [
                "Disabled",
                "ReadyForInitialReplication",
                "InitialReplicationInProgress",
                "WaitingForInitialReplication",
                "Replicating",
                "PreparedForFailover",
                "FailedOverWaitingCompletion",
                "FailedOver",
                "Suspended",
                "Error",
                "WaitingForStartResynchronize",
                "Resynchronizing",
                "ResynchronizeSuspended",
                "RecoveryInProgress",
                "FailbackInProgress",
                "FailbackComplete",
                "WaitingForUpdateCompletion",
                "UpdateError",
                "WaitingForRepurposeCompletion",
                "PreparedForSyncReplication",
                "PreparedForGroupReverseReplication",
                "FiredrillInProgress",
            ]
        )
    },
)
REPLICATION_HEALTH = EnumType(
    _NS + "VMReplicationHealthState",
    {"NotApplicable": 0, "Normal": 1, "Warning": 2, "Critical": 3},
)
REPLICATION_MODE = EnumType(
    _NS + "VMReplicationMode",
    {"None": 0, "Primary": 1, "Replica": 2, "TestReplica": 3, "ExtendedReplica": 4},
)
REPLICATION_RELATIONSHIP_TYPE = EnumType(
    _NS + "VMReplicationRelationshipType", {"Simple": 0, "Extended": 1}
)
AUTHENTICATION_TYPE = EnumType(
    _NS + "ReplicationAuthenticationType", {"Kerberos": 1, "Certificate": 2}
)
REPLICATION_TYPE = EnumType(
    _NS + "VMReplicationType",
    {"None": 0, "Regular": 1, "ApplicationConsistent": 2, "Planned": 3},
)
SNAPSHOT_TYPE = EnumType(
    _NS + "SnapshotType",
    {
        "Standard": 0,
        "Recovery": 1,
        "Planned": 2,
        "Missing": 5,
        "Replica": 6,
        "AppConsistentReplica": 7,
        "SyncedReplica": 8,
    },
)
SWITCH_TYPE = EnumType(_NS + "VMSwitchType", {"Private": 0, "Internal": 1, "External": 2})
#: ``VirtualMachine.Heartbeat`` (module 2.0 numbering; null while the VM is off).
HEARTBEAT_STATUS = EnumType(
    _NS + "VMHeartbeatStatus",
    {
        name: number
        for number, name in enumerate(
            [
                "Unknown",
                "Disabled",
                "NoContact",
                "Error",
                "LostCommunication",
                "OkApplicationsUnknown",
                "OkApplicationsHealthy",
                "OkApplicationsCritical",
                "Paused",
            ]
        )
    },
)
CHECKPOINT_TYPE = EnumType(
    _NS + "CheckpointType",
    {"Disabled": 2, "Production": 3, "ProductionOnly": 4, "Standard": 5},
)

#: Recovery point types Start-VMFailover accepts (SnapshotType 6..8).
RECOVERY_SNAPSHOT_TYPES = frozenset({"Replica", "AppConsistentReplica", "SyncedReplica"})

#: The checkpoint names of recovery points, by SnapshotType.
_POINT_LABELS = {
    "Replica": "Standard Replica",
    "AppConsistentReplica": "Application-consistent Replica",
    "SyncedReplica": "Planned Replica",
}

#: A Replica failed over (committed or not): it runs, takes checkpoints, can be reversed.
_FAILED_OVER = frozenset({"FailedOverWaitingCompletion", "FailedOver"})


class HyperVStateError(Exception):
    """An operation Hyper-V refuses; ``error_id`` is the first half of the FullyQualifiedErrorId.

    ``error_id`` is one of Hyper-V's ids (``InvalidState``, ``InvalidParameter``,
    ``OperationFailed``, ``ObjectNotFound``); ``category`` the matching ErrorCategory name.
    """

    _CATEGORIES = {  # noqa: RUF012 - a constant table
        "InvalidState": "InvalidOperation",
        "InvalidParameter": "InvalidArgument",
        "OperationFailed": "InvalidOperation",
        "ObjectNotFound": "ObjectNotFound",
        "InvalidOperation": "InvalidOperation",
    }

    def __init__(self, error_id: str, message: str, target: object = None) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.message = message
        self.category = self._CATEGORIES.get(error_id, "NotSpecified")
        self.target = target

    @classmethod
    def not_applicable(cls, record: VMRecord, mode: str) -> HyperVStateError:
        """OperationFailed: the operation does not apply to a VM in replication ``mode``."""
        return cls(
            "OperationFailed",
            f"The operation is not applicable to virtual machine '{record.name}' in "
            f"replication mode {mode}.",
            record.name,
        )

    @classmethod
    def wrong_state(cls, record: VMRecord, state: str) -> HyperVStateError:
        """InvalidState: the operation does not apply in the current replication ``state``."""
        return cls(
            "InvalidState",
            f"The operation cannot be performed on virtual machine '{record.name}' in the "
            f"current replication state ({state}).",
            record.name,
        )

    @classmethod
    def not_enabled(cls, record: VMRecord) -> HyperVStateError:
        """InvalidState: the VM has no replication (or is a test replica)."""
        return cls(
            "InvalidState",
            f"Replication is not enabled for virtual machine '{record.name}'.",
            record.name,
        )


@attrs.define
class FailoverIPSettings:
    """The static IP settings Hyper-V injects into a NIC when its VM is failed over."""

    ipv4_address: str | None = None
    ipv4_subnet_mask: str | None = None
    ipv4_default_gateway: str | None = None
    ipv4_preferred_dns: str | None = None
    ipv4_alternate_dns: str | None = None
    ipv6_address: str | None = None
    ipv6_prefix_length: int | None = None
    ipv6_default_gateway: str | None = None
    ipv6_preferred_dns: str | None = None
    ipv6_alternate_dns: str | None = None

    @property
    def is_empty(self) -> bool:
        return all(value is None for value in attrs.astuple(self))


@attrs.define(frozen=True)
class GuestIPConfig:
    """One NIC's TCP/IP configuration as the guest reports it (WMI's
    Msvm_GuestNetworkAdapterConfiguration): addresses with their prefix lengths, gateways, DNS
    servers, and whether DHCP gave them."""

    addresses: tuple[str, ...] = ()  # "192.168.1.10/24", "fd00::10/64"
    gateways: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dhcp: bool = False

    @classmethod
    def of(
        cls, addresses: Sequence[str], gateways: Sequence[str] = (), dns: Sequence[str] = ()
    ) -> GuestIPConfig:
        """Addresses given without a prefix length get the simulator's default: /24 for IPv4,
        /64 for IPv6."""
        full = []
        for text in addresses:
            interface = ipaddress.ip_interface(
                text if "/" in text else f"{text}/{24 if ':' not in text else 64}"
            )
            full.append(str(interface))
        return cls(tuple(full), tuple(gateways), tuple(dns))

    @classmethod
    def injected(cls, settings: FailoverIPSettings) -> GuestIPConfig:
        """What the guest runs with once Hyper-V injected ``settings`` as it booted."""
        addresses: list[str] = []
        gateways: list[str] = []
        dns: list[str] = []
        if settings.ipv4_address:
            mask = settings.ipv4_subnet_mask or "255.255.255.255"
            addresses.append(str(ipaddress.ip_interface(f"{settings.ipv4_address}/{mask}")))
        if settings.ipv6_address:
            prefix = settings.ipv6_prefix_length or 128
            addresses.append(str(ipaddress.ip_interface(f"{settings.ipv6_address}/{prefix}")))
        for gateway in (settings.ipv4_default_gateway, settings.ipv6_default_gateway):
            if gateway:
                gateways.append(gateway)
        for server in (
            settings.ipv4_preferred_dns,
            settings.ipv4_alternate_dns,
            settings.ipv6_preferred_dns,
            settings.ipv6_alternate_dns,
        ):
            if server:
                dns.append(server)
        return cls(tuple(addresses), tuple(gateways), tuple(dns))

    @property
    def ips(self) -> list[str]:
        return [text.split("/", 1)[0] for text in self.addresses]


@attrs.define
class NetworkAdapterRecord:
    """A VM's virtual NIC.

    ``guest_addresses`` are the addresses the guest configured itself (``guest_config`` the whole
    configuration, prefixes, gateways and DNS servers included); ``applied_ip`` is what Hyper-V
    injected into the guest when it booted failed over (None otherwise).
    """

    id: str
    name: str
    mac_address: str
    switch_name: str | None
    is_legacy: bool = False
    failover: FailoverIPSettings = attrs.Factory(FailoverIPSettings)
    test_replica_switch_name: str | None = None
    applied_ip: FailoverIPSettings | None = None
    guest_addresses: list[str] = attrs.Factory(list)
    guest_config: GuestIPConfig | None = None

    @property
    def reported_addresses(self) -> list[str]:
        """What the guest reports through the data exchange service (KVP) while it runs."""
        if self.applied_ip is not None:
            injected = [self.applied_ip.ipv4_address, self.applied_ip.ipv6_address]
            return [address for address in injected if address]
        return list(self.guest_addresses)

    @property
    def reported_config(self) -> GuestIPConfig:
        """The guest's whole TCP/IP configuration of this NIC, as it reports it while it runs."""
        if self.applied_ip is not None:
            return GuestIPConfig.injected(self.applied_ip)
        if self.guest_config is not None:
            return self.guest_config
        return GuestIPConfig.of(self.guest_addresses)

    def copy_for(self, vm_id: uuid.UUID) -> NetworkAdapterRecord:
        return NetworkAdapterRecord(
            id=f"Microsoft:{str(vm_id).upper()}\\{str(uuid.uuid4()).upper()}",
            name=self.name,
            mac_address=self.mac_address,
            switch_name=self.switch_name,
            is_legacy=self.is_legacy,
            failover=attrs.evolve(self.failover),
            test_replica_switch_name=self.test_replica_switch_name,
            guest_addresses=list(self.guest_addresses),
            guest_config=self.guest_config,
        )


@attrs.define
class SwitchRecord:
    id: uuid.UUID
    name: str
    switch_type: str
    allow_management_os: bool


@attrs.define
class SnapshotRecord:
    """A checkpoint, or a Replica recovery point (``snapshot_type`` Replica, ...)."""

    id: uuid.UUID
    name: str
    vm_id: uuid.UUID
    snapshot_type: str
    creation_time: datetime
    parent_id: uuid.UUID | None
    state: str
    data_version: int
    adapters: list[NetworkAdapterRecord]


@attrs.define
class ReplicationRecord:
    """One VM's Simple replication relationship, seen from the host that holds the VM."""

    mode: str  # Primary | Replica
    state: str
    primary_server: str
    replica_server: str
    port: int
    auth_type: str
    certificate_thumbprint: str | None = None
    frequency_sec: int = 300
    recovery_history: int = 0
    vss_frequency_hour: int = 0
    compression_enabled: bool = True
    bypass_proxy_server: bool = False
    replicate_host_kvp_items: bool = True
    auto_resynchronize_enabled: bool = False
    allowed_primary_server: str | None = None
    health: str = "Normal"
    last_replication_time: datetime | None = None
    successful_replications: int = 0
    last_replication_type: str = "None"
    test_vm_id: uuid.UUID | None = None
    #: Replica side, while failed over: the data version the VM held before, to revert to.
    pre_failover_version: int | None = None
    failed_over_point_id: uuid.UUID | None = None
    last_test_failover_time: datetime | None = None
    #: Primary side: when the last application-consistent cycle ran (scheduled replication).
    last_vss_time: datetime | None = None


@attrs.define
class VMRecord:
    id: uuid.UUID
    name: str
    state: str
    memory_mb: int
    cpu: int
    creation_time: datetime
    generation: int = 2
    adapters: list[NetworkAdapterRecord] = attrs.Factory(list)
    snapshots: list[SnapshotRecord] = attrs.Factory(list)
    replication: ReplicationRecord | None = None
    data_version: int = 0
    is_test_replica: bool = False
    parent_snapshot_id: uuid.UUID | None = None
    started_at: datetime | None = None
    boot_seconds: float = 0.0
    #: The guest's OSName, as its data exchange service (KVP) reports it while it runs.
    guest_os: str | None = None

    def heartbeat(self, now: datetime) -> str | None:
        """``VirtualMachine.Heartbeat`` at ``now``: None while off, OK once the guest booted."""
        if self.state == "Paused":
            return "Paused"
        if self.state != "Running" or self.started_at is None:
            return None
        booted = (now - self.started_at).total_seconds() >= self.boot_seconds
        return "OkApplicationsHealthy" if booted else "NoContact"

    def booted(self, now: datetime) -> bool:
        return self.heartbeat(now) == "OkApplicationsHealthy"

    @property
    def replication_mode(self) -> str:
        if self.is_test_replica:
            return "TestReplica"
        return self.replication.mode if self.replication else "None"

    @property
    def replication_state(self) -> str:
        if self.replication is None or self.is_test_replica:
            return "Disabled"
        return self.replication.state


class ReplicationFabric:
    """The simulated hosts that can replicate to each other, and the lock that guards them all.

    ``add_host("hv-b")`` creates a host; Enable-VMReplication on another host with
    ``-ReplicaServerName hv-b`` (or an FQDN starting ``hv-b.``) reaches it. One re-entrant lock
    serialises every change across the fabric, so the hosts may be driven from many threads.

    With ``scheduled_replication=True`` every replicating primary sends a cycle each
    ``ReplicationFrequencySec`` of fabric time, as :meth:`advance` moves the clock (Hyper-V
    Replica's own schedule); off by default, so a test decides when recovery points appear.
    """

    def __init__(
        self, *, clock: datetime | None = None, scheduled_replication: bool = False
    ) -> None:
        self.lock = threading.RLock()
        self._hosts: dict[str, HostModel] = {}
        self._now = (clock or datetime.now(UTC)).replace(microsecond=0)
        self.scheduled_replication = scheduled_replication

    def add_host(self, name: str) -> HostModel:
        if not name or not name.strip():
            raise ValidationError.of("host name", "must not be empty", "pass a name like 'hv-b'")
        with self.lock:
            key = name.casefold()
            if key in self._hosts:
                raise ValidationError.of(
                    f"host {name!r}", "already exists in this fabric", "use another name"
                )
            host = HostModel(name, fabric=self)
            self._hosts[key] = host
            return host

    def host(self, name: str) -> HostModel | None:
        """The host called ``name``: short name or FQDN, case-insensitive; None if unknown."""
        folded = name.strip().casefold()
        with self.lock:
            if folded in self._hosts:
                return self._hosts[folded]
            short = folded.split(".", 1)[0]
            return self._hosts.get(short)

    @property
    def hosts(self) -> tuple[HostModel, ...]:
        with self.lock:
            return tuple(self._hosts.values())

    def now(self) -> datetime:
        """The fabric's clock: starts at creation time, advances one second per reading.

        Deterministic and strictly increasing, so checkpoints sort by CreationTime the way they
        were made even when made within the same real millisecond.
        """
        with self.lock:
            self._now += timedelta(seconds=1)
            return self._now

    def current(self) -> datetime:
        """The fabric's clock, read without advancing it."""
        with self.lock:
            return self._now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward; with scheduled replication, run the cycles that fall due."""
        with self.lock:
            target = self._now + delta
            if self.scheduled_replication:
                self._run_cycles_until(target)
            self._now = max(self._now, target)

    def _run_cycles_until(self, target: datetime) -> None:
        """Run, in time order, every replication cycle due at or before ``target``."""
        while True:
            due = self._next_cycle()
            if due is None or due[0] > target:
                return
            moment, host, record = due
            rep = record.replication
            assert rep is not None
            self._now = max(self._now, moment - timedelta(seconds=1))  # now() ticks onto it
            app = rep.vss_frequency_hour > 0 and (
                rep.last_vss_time is None
                or moment - rep.last_vss_time >= timedelta(hours=rep.vss_frequency_hour)
            )
            try:
                host.replicate(record.id, app_consistent=app)
            except (ValidationError, HyperVStateError):
                rep.last_replication_time = moment  # the replica is unreachable: skip a cycle
                continue
            if app:
                rep.last_vss_time = rep.last_replication_time

    def _next_cycle(self) -> tuple[datetime, HostModel, VMRecord] | None:
        soonest: tuple[datetime, HostModel, VMRecord] | None = None
        for host in self._hosts.values():
            for record in host.vms.values():
                rep = record.replication
                if rep is None or record.is_test_replica or rep.mode != "Primary":
                    continue
                if rep.state != "Replicating" or rep.last_replication_time is None:
                    continue
                due = rep.last_replication_time + timedelta(seconds=rep.frequency_sec)
                if soonest is None or due < soonest[0]:
                    soonest = (due, host, record)
        return soonest


def _mac_for(vm_id: uuid.UUID, index: int) -> str:
    return "00155D" + vm_id.hex[:4].upper() + f"{index:02X}"


class HostModel:
    """One simulated Hyper-V host: its switches and VMs, and their replication relationships.

    Scene setters (``add_switch``, ``add_vm``, ``write_data``, ``replicate``, ...) are for
    tests; the cmdlets drive the operations. All methods take the fabric lock.
    """

    def __init__(self, name: str, *, fabric: ReplicationFabric | None = None) -> None:
        self.name = name
        self.fabric = fabric if fabric is not None else ReplicationFabric()
        self.lock = self.fabric.lock
        self.switches: dict[uuid.UUID, SwitchRecord] = {}
        self.vms: dict[uuid.UUID, VMRecord] = {}

    def __repr__(self) -> str:
        return f"HostModel({self.name!r}, vms={len(self.vms)}, switches={len(self.switches)})"

    # ----------------------------------------------------------------- scene setters

    def add_switch(
        self, name: str, switch_type: str = "External", *, allow_management_os: bool | None = None
    ) -> SwitchRecord:
        """Create a virtual switch; ``switch_type`` is Private, Internal or External."""
        kind = SWITCH_TYPE.lookup(switch_type)
        if kind is None:
            raise ValidationError.of(
                f"switch {name!r}",
                f"unknown switch type {switch_type!r}",
                "use Private, Internal or External",
            )
        if not name:
            raise ValidationError.of("switch name", "must not be empty", "pass a name")
        with self.lock:
            if any(s.name.casefold() == name.casefold() for s in self.switches.values()):
                raise ValidationError.of(f"switch {name!r}", "already exists", "use another name")
            record = SwitchRecord(
                id=uuid.uuid4(),
                name=name,
                switch_type=kind.name,
                allow_management_os=(
                    kind.name != "Private" if allow_management_os is None else allow_management_os
                ),
            )
            self.switches[record.id] = record
            return record

    def add_vm(
        self,
        name: str,
        switch: str | None = None,
        state: str = "Off",
        memory_mb: int = 1024,
        cpu: int = 1,
        *,
        adapters: int = 1,
        vm_id: uuid.UUID | None = None,
        ip_addresses: tuple[str, ...] | list[str] = (),
        gateway: str | None = None,
        dns: tuple[str, ...] | list[str] = (),
        boot_seconds: float = 0.0,
        guest_os: str | None = "Windows Server 2022 Datacenter",
    ) -> VMRecord:
        """Create a VM with ``adapters`` NICs connected to ``switch`` (or to nothing).

        ``ip_addresses`` are what the guest configured on its first adapter (reported while it
        runs), ``"address/prefix"`` or bare (then /24 or /64), with ``gateway`` and ``dns``;
        ``boot_seconds`` how long, in fabric time, its guest takes to boot; ``guest_os`` the
        OSName its data exchange service reports (None: a guest without integration services).

        Names are data: any string is accepted as is, and names need not be unique (as on
        Hyper-V); the returned record's ``id`` is the stable key.
        """
        vm_state = VM_STATE.lookup(state)
        if vm_state is None or vm_state.name not in {"Off", "Running", "Saved", "Paused"}:
            raise ValidationError.of(
                f"VM {name!r}", f"unsupported state {state!r}", "use Off, Running, Saved or Paused"
            )
        if memory_mb <= 0 or cpu <= 0 or adapters < 0 or not boot_seconds >= 0:
            raise ValidationError.of(
                f"VM {name!r}", "memory_mb and cpu must be positive", "pass e.g. memory_mb=1024"
            )
        with self.lock:
            if switch is not None and self.find_switch(switch) is None:
                raise ValidationError.of(
                    f"VM {name!r}", f"switch {switch!r} does not exist", "add_switch() it first"
                )
            identifier = vm_id or uuid.uuid4()
            if identifier in self.vms:
                raise ValidationError.of(f"VM {name!r}", "a VM with this id exists", "new id")
            now = self.fabric.now()
            record = VMRecord(
                id=identifier,
                name=name,
                state=vm_state.name,
                memory_mb=memory_mb,
                cpu=cpu,
                creation_time=now,
                started_at=now if vm_state.name == "Running" else None,
                boot_seconds=float(boot_seconds),
                guest_os=guest_os,
            )
            for index in range(adapters):
                record.adapters.append(
                    NetworkAdapterRecord(
                        id=f"Microsoft:{str(identifier).upper()}\\{str(uuid.uuid4()).upper()}",
                        name="Network Adapter",
                        mac_address=_mac_for(identifier, index),
                        switch_name=self.find_switch(switch).name if switch else None,  # type: ignore[union-attr]
                    )
                )
            if record.adapters:
                config = GuestIPConfig.of(
                    [str(a) for a in ip_addresses], [gateway] if gateway else (), dns
                )
                record.adapters[0].guest_config = config
                record.adapters[0].guest_addresses = config.ips
            self.vms[identifier] = record
            return record

    def remove_vm(self, vm: str | uuid.UUID) -> None:
        with self.lock:
            del self.vms[self.vm(vm).id]

    def vm(self, vm: str | uuid.UUID) -> VMRecord:
        """The VM with this id, or the only VM with this exact name (scene helper)."""
        with self.lock:
            if isinstance(vm, uuid.UUID):
                if vm in self.vms:
                    return self.vms[vm]
                raise ValidationError.of(f"VM {vm}", "no VM with this id", "check the id")
            matches = [r for r in self.vms.values() if r.name == vm]
            if len(matches) != 1:
                raise ValidationError.of(
                    f"VM {vm!r}",
                    f"{len(matches)} VMs have this name on {self.name}",
                    "pass the VM's id instead",
                )
            return matches[0]

    def set_state(self, vm: str | uuid.UUID, state: str) -> None:
        """Force a power state (scene setter, e.g. to simulate a crashed primary)."""
        vm_state = VM_STATE.lookup(state)
        if vm_state is None:
            raise ValidationError.of("state", f"unknown VM state {state!r}", "use Off or Running")
        with self.lock:
            self.vm(vm).state = vm_state.name

    def write_data(self, vm: str | uuid.UUID, changes: int = 1) -> int:
        """Simulate guest writes on a VM: bump its data version; returns the new version."""
        with self.lock:
            record = self.vm(vm)
            record.data_version += changes
            return record.data_version

    def replicate(self, vm: str | uuid.UUID, *, app_consistent: bool = False) -> SnapshotRecord:
        """One replication cycle of a primary VM: send its data, record a recovery point.

        The replica's recovery points are trimmed to ``RecoveryHistory`` (at least one is kept, the
        newest, so there is always a point to name). Refused unless the relationship is
        Replicating.
        """
        with self.lock:
            record = self.vm(vm)
            rep = record.replication
            if rep is None or rep.mode != "Primary" or rep.state != "Replicating":
                raise ValidationError.of(
                    f"VM {record.name!r}",
                    f"is not a replicating primary (state {record.replication_state})",
                    "enable replication and run the initial replication first",
                )
            replica_host, replica = self._replica_of(record)
            if app_consistent:
                return replica_host._receive(
                    record, replica, "AppConsistentReplica", "ApplicationConsistent"
                )
            return replica_host._receive(record, replica, "Replica", "Regular")

    # ------------------------------------------------------------------------ lookups

    def find_switch(self, name: str) -> SwitchRecord | None:
        with self.lock:
            for record in self.switches.values():
                if record.name.casefold() == name.casefold():
                    return record
            return None

    def all_vms(self) -> list[VMRecord]:
        with self.lock:
            return sorted(self.vms.values(), key=lambda r: (r.name.casefold(), r.creation_time))

    def find_snapshot(self, snapshot_id: uuid.UUID) -> tuple[VMRecord, SnapshotRecord] | None:
        with self.lock:
            for record in self.vms.values():
                for snap in record.snapshots:
                    if snap.id == snapshot_id:
                        return record, snap
            return None

    def iter_replications(self) -> Iterator[VMRecord]:
        with self.lock:
            for record in self.all_vms():
                if record.replication is not None and not record.is_test_replica:
                    yield record

    # ---------------------------------------------------------------- power operations

    def start_vm(self, record: VMRecord) -> None:
        with self.lock:
            rep = record.replication
            if rep is not None and rep.mode == "Replica" and rep.state not in _FAILED_OVER:
                raise HyperVStateError(
                    "InvalidState",
                    f"'{record.name}' failed to start. The virtual machine is a Replica "
                    f"(replication state {rep.state}): fail it over before starting it.",
                    record.name,
                )
            if rep is not None and rep.mode == "Primary" and rep.state == "PreparedForFailover":
                raise HyperVStateError(
                    "InvalidState",
                    f"'{record.name}' failed to start. A planned failover is prepared for this "
                    "virtual machine; cancel it with Stop-VMFailover before starting it.",
                    record.name,
                )
            if record.state != "Running":
                if record.is_test_replica or (rep is not None and rep.state in _FAILED_OVER):
                    # Hyper-V injects the failover TCP/IP settings as the failed-over guest boots.
                    for adapter in record.adapters:
                        adapter.applied_ip = (
                            None if adapter.failover.is_empty else attrs.evolve(adapter.failover)
                        )
                record.state = "Running"
                record.started_at = self.fabric.now()

    def stop_vm(self, record: VMRecord, *, save: bool = False) -> None:
        with self.lock:
            if record.state == "Off":
                return
            record.state = "Saved" if save else "Off"
            record.started_at = None

    # --------------------------------------------------------------------- checkpoints

    def checkpoint(self, record: VMRecord, name: str | None = None) -> SnapshotRecord:
        with self.lock:
            if (
                record.replication_mode == "Replica"
                and record.replication_state not in _FAILED_OVER
            ):
                raise HyperVStateError(
                    "InvalidState",
                    f"Cannot create a checkpoint of '{record.name}': it is a Replica virtual "
                    "machine; its checkpoints are the recovery points replication creates.",
                    record.name,
                )
            now = self.fabric.now()
            snap = SnapshotRecord(
                id=uuid.uuid4(),
                name=name or f"{record.name} - ({_stamp(now)})",
                vm_id=record.id,
                snapshot_type="Standard",
                creation_time=now,
                parent_id=record.parent_snapshot_id,
                state=record.state,
                data_version=record.data_version,
                adapters=[a.copy_for(record.id) for a in record.adapters],
            )
            record.snapshots.append(snap)
            record.parent_snapshot_id = snap.id
            return snap

    def remove_snapshot(self, record: VMRecord, snap: SnapshotRecord, *, subtree: bool) -> None:
        with self.lock:
            doomed = {snap.id}
            if subtree:
                changed = True
                while changed:
                    changed = False
                    for other in record.snapshots:
                        if other.parent_id in doomed and other.id not in doomed:
                            doomed.add(other.id)
                            changed = True
            for other in record.snapshots:
                if other.parent_id in doomed and other.id not in doomed:
                    other.parent_id = snap.parent_id
            record.snapshots = [s for s in record.snapshots if s.id not in doomed]
            if record.parent_snapshot_id in doomed:
                record.parent_snapshot_id = snap.parent_id

    # ---------------------------------------------------------------------- network

    def connect_adapter(self, adapter: NetworkAdapterRecord, switch_name: str) -> None:
        with self.lock:
            switch = self.find_switch(switch_name)
            if switch is None:
                raise HyperVStateError(
                    "InvalidParameter",
                    f"Failed to connect: no virtual switch named '{switch_name}' was found.",
                    switch_name,
                )
            adapter.switch_name = switch.name

    # ------------------------------------------------------------------- replication

    def _replica_of(self, record: VMRecord) -> tuple[HostModel, VMRecord]:
        rep = record.replication
        assert rep is not None
        host = self.fabric.host(rep.replica_server)
        if host is None or record.id not in host.vms:
            raise HyperVStateError(
                "OperationFailed",
                f"Hyper-V could not reach the Replica virtual machine of '{record.name}' on "
                f"'{rep.replica_server}'.",
                record.name,
            )
        return host, host.vms[record.id]

    def _primary_of(self, record: VMRecord) -> tuple[HostModel, VMRecord] | None:
        rep = record.replication
        assert rep is not None
        host = self.fabric.host(rep.primary_server)
        if host is None or record.id not in host.vms:
            return None
        return host, host.vms[record.id]

    def enable_replication(
        self,
        record: VMRecord,
        *,
        replica_server: str,
        port: int,
        auth_type: str,
        certificate_thumbprint: str | None = None,
        frequency_sec: int = 300,
        recovery_history: int = 0,
        vss_frequency_hour: int = 0,
        compression_enabled: bool = True,
        bypass_proxy_server: bool = False,
        replicate_host_kvp_items: bool = True,
        auto_resynchronize_enabled: bool = False,
    ) -> ReplicationRecord:
        """Make ``record`` a primary replicating to ``replica_server`` (creates the replica VM)."""
        with self.lock:
            mode = record.replication_mode
            if mode == "Primary":
                raise HyperVStateError(
                    "OperationFailed",
                    f"Replication is already enabled for virtual machine '{record.name}'.",
                    record.name,
                )
            if mode != "None":
                raise HyperVStateError.not_applicable(record, mode)
            target = self.fabric.host(replica_server)
            if target is None:
                raise HyperVStateError(
                    "OperationFailed",
                    f"Hyper-V failed to enable replication for virtual machine '{record.name}': "
                    f"could not connect to the Replica server '{replica_server}'.",
                    record.name,
                )
            if target is self:
                raise HyperVStateError(
                    "InvalidParameter",
                    f"The Replica server '{replica_server}' is this host; choose another server.",
                    replica_server,
                )
            if record.id in target.vms:
                raise HyperVStateError(
                    "OperationFailed",
                    f"The Replica server '{replica_server}' already holds a virtual machine with "
                    f"the id {record.id}.",
                    record.name,
                )
            rep = ReplicationRecord(
                mode="Primary",
                state="ReadyForInitialReplication",
                primary_server=self.name,
                replica_server=replica_server,
                port=port,
                auth_type=auth_type,
                certificate_thumbprint=certificate_thumbprint,
                frequency_sec=frequency_sec,
                recovery_history=recovery_history,
                vss_frequency_hour=vss_frequency_hour,
                compression_enabled=compression_enabled,
                bypass_proxy_server=bypass_proxy_server,
                replicate_host_kvp_items=replicate_host_kvp_items,
                auto_resynchronize_enabled=auto_resynchronize_enabled,
            )
            record.replication = rep
            target._create_replica_vm(record, rep)
            return rep

    def enable_as_replica(self, record: VMRecord, allowed_primary: str | None) -> None:
        """Enable-VMReplication -AsReplica: mark a VM (mode None) as a replica awaiting data.

        The replica server is taken to have a ``*`` authorization entry, so any primary (or the
        one named) is allowed. Seeding such a replica (``-UseBackup``) is not simulated.
        """
        with self.lock:
            if record.replication_mode != "None":
                raise HyperVStateError.not_applicable(record, record.replication_mode)
            record.replication = ReplicationRecord(
                mode="Replica",
                state="WaitingForInitialReplication",
                primary_server=allowed_primary or "",
                replica_server=self.name,
                port=0,
                auth_type="Kerberos",
                allowed_primary_server=allowed_primary or "*",
            )

    def set_as_replica(self, record: VMRecord, allowed_primary: str | None) -> None:
        """Set-VMReplication -AsReplica: only a Replica's allowed primary server can change."""
        with self.lock:
            rep = self._enabled_replication(record)
            if rep.mode != "Replica":
                raise HyperVStateError.not_applicable(record, rep.mode)
            if allowed_primary:
                rep.allowed_primary_server = allowed_primary

    def _create_replica_vm(self, primary: VMRecord, rep: ReplicationRecord) -> VMRecord:
        now = self.fabric.now()
        replica = VMRecord(
            id=primary.id,
            name=primary.name,
            state="Off",
            memory_mb=primary.memory_mb,
            cpu=primary.cpu,
            creation_time=now,
            generation=primary.generation,
            guest_os=primary.guest_os,
        )
        for adapter in primary.adapters:
            copy = adapter.copy_for(primary.id)
            copy.id = adapter.id  # the replica's NIC keeps its identity
            copy.failover = FailoverIPSettings()
            if copy.switch_name and self.find_switch(copy.switch_name) is None:
                copy.switch_name = None  # no switch of that name on the replica host
            replica.adapters.append(copy)
        replica.replication = attrs.evolve(
            rep,
            mode="Replica",
            state="WaitingForInitialReplication",
            last_replication_time=None,
            successful_replications=0,
            test_vm_id=None,
        )
        self.vms[replica.id] = replica
        return replica

    def start_initial_replication(self, record: VMRecord) -> None:
        with self.lock:
            rep = self._enabled_replication(record)
            if rep.mode != "Primary" or rep.state != "ReadyForInitialReplication":
                raise HyperVStateError.wrong_state(record, rep.state)
            replica_host, replica = self._replica_of(record)
            rep.state = "Replicating"
            assert replica.replication is not None
            replica.replication.state = "Replicating"
            replica.data_version = record.data_version
            _count_cycle("Regular", self.fabric.now(), rep, replica.replication)
            del replica_host  # same lock; nothing else to do on the replica host

    def _receive(
        self, primary: VMRecord, replica: VMRecord, kind: str, cycle: str
    ) -> SnapshotRecord:
        """Replica side of a replication cycle: apply the data, add and trim recovery points.

        ``kind`` is the recovery point's SnapshotType (Replica, AppConsistentReplica, or
        SyncedReplica for the one a planned failover's -Prepare sends), ``cycle`` the
        VMReplicationType counted (Regular, ApplicationConsistent, Planned).
        """
        now = self.fabric.now()
        replica.data_version = primary.data_version
        label = _POINT_LABELS[kind]
        point = SnapshotRecord(
            id=uuid.uuid4(),
            name=f"{replica.name} - {label} - ({_stamp(now)})",
            vm_id=replica.id,
            snapshot_type=kind,
            creation_time=now,
            parent_id=None,
            state="Off",
            data_version=primary.data_version,
            adapters=[a.copy_for(replica.id) for a in replica.adapters],
        )
        replica.snapshots.append(point)
        assert replica.replication is not None
        assert primary.replication is not None
        keep = max(1, replica.replication.recovery_history)
        points = [s for s in replica.snapshots if s.snapshot_type in RECOVERY_SNAPSHOT_TYPES]
        stale = {s.id for s in points[:-keep]}
        replica.snapshots = [s for s in replica.snapshots if s.id not in stale]
        _count_cycle(cycle, now, primary.replication, replica.replication)
        return point

    def prepare_failover(self, record: VMRecord) -> None:
        """Planned failover step 1 on the primary: VM must be off; sends pending changes."""
        with self.lock:
            rep = self._require_replication(record)
            if rep.state != "Replicating" or record.state != "Off":
                raise HyperVStateError(
                    "InvalidState",
                    f"Cannot prepare a planned failover of '{record.name}': the virtual machine "
                    f"must be turned off and replicating (state {record.state}, replication "
                    f"state {rep.state}).",
                    record.name,
                )
            replica_host, replica = self._replica_of(record)
            replica_host._receive(record, replica, "SyncedReplica", "Planned")
            rep.state = "PreparedForFailover"

    def _enabled_replication(self, record: VMRecord) -> ReplicationRecord:
        """The VM's relationship; InvalidState ("not enabled") for none or a test replica."""
        if record.replication is None or record.is_test_replica:
            raise HyperVStateError.not_enabled(record)
        return record.replication

    def _require_replication(self, record: VMRecord) -> ReplicationRecord:
        """The VM's relationship; OperationFailed ("not applicable") for none or a test replica."""
        if record.is_test_replica:
            raise HyperVStateError.not_applicable(record, "TestReplica")
        if record.replication is None:
            raise HyperVStateError(
                "OperationFailed",
                f"The operation is not applicable to virtual machine '{record.name}': "
                "replication is not enabled for it.",
                record.name,
            )
        return record.replication

    def _failover_source(
        self, record: VMRecord, *, test: bool, on_primary: str
    ) -> ReplicationRecord:
        """The relationship of a Replica VM that can fail over now (off, replicated at least once).

        ``on_primary`` is the InvalidParameter message for a primary VM.
        """
        rep = self._require_replication(record)
        if rep.mode != "Replica":
            raise HyperVStateError("InvalidParameter", on_primary, record.name)
        allowed = {"Replicating", "Suspended"}
        if not test:
            allowed |= {"Resynchronizing", "WaitingForUpdateCompletion"}
        if record.state != "Off" or rep.state not in allowed or rep.last_replication_time is None:
            raise HyperVStateError(
                "InvalidState",
                f"The operation cannot be performed on virtual machine '{record.name}' in the "
                f"current replication state ({rep.state}, virtual machine {record.state}, "
                f"last replication {rep.last_replication_time or 'never'}).",
                record.name,
            )
        return rep

    def _point_for(self, record: VMRecord, point: SnapshotRecord | None) -> int:
        if point is None:
            return record.data_version
        if point.vm_id != record.id or point.snapshot_type not in RECOVERY_SNAPSHOT_TYPES:
            raise HyperVStateError(
                "InvalidParameter",
                f"'{point.name}' is not a recovery checkpoint of virtual machine "
                f"'{record.name}' (type {point.snapshot_type}).",
                point.name,
            )
        return point.data_version

    def failover(self, record: VMRecord, point: SnapshotRecord | None = None) -> None:
        """Fail a replica VM over to ``point`` (the latest replicated data when None)."""
        with self.lock:
            rep = self._failover_source(
                record,
                test=False,
                on_primary=f"'Prepare' is not provided: on the primary virtual machine "
                f"'{record.name}' only a planned failover (-Prepare) can be started.",
            )
            version = self._point_for(record, point)
            rep.pre_failover_version = record.data_version
            rep.failed_over_point_id = point.id if point else None
            record.data_version = version
            rep.state = "FailedOverWaitingCompletion"

    def test_failover(self, record: VMRecord, point: SnapshotRecord | None = None) -> VMRecord:
        """Create the test VM (``<name> - Test``) of a replica from ``point`` or the latest."""
        with self.lock:
            rep = self._failover_source(
                record,
                test=True,
                on_primary=f"'Prepare' is the only valid parameter for the primary virtual "
                f"machine '{record.name}'; a test failover runs on the Replica server.",
            )
            if rep.test_vm_id is not None and rep.test_vm_id in self.vms:
                raise HyperVStateError(
                    "InvalidState",
                    f"A test failover is already in progress for virtual machine "
                    f"'{record.name}'; stop it with Stop-VMFailover first.",
                    record.name,
                )
            version = self._point_for(record, point)
            now = self.fabric.now()
            test_vm = VMRecord(
                id=uuid.uuid4(),
                name=f"{record.name} - Test",
                state="Off",
                memory_mb=record.memory_mb,
                cpu=record.cpu,
                creation_time=now,
                generation=record.generation,
                data_version=version,
                is_test_replica=True,
                guest_os=record.guest_os,
            )
            for adapter in record.adapters:
                copy = adapter.copy_for(test_vm.id)
                copy.switch_name = adapter.test_replica_switch_name
                test_vm.adapters.append(copy)
            self.vms[test_vm.id] = test_vm
            rep.test_vm_id = test_vm.id
            rep.last_test_failover_time = now
            return test_vm

    def test_vm_of(self, record: VMRecord) -> VMRecord | None:
        with self.lock:
            rep = record.replication
            if rep is None or rep.test_vm_id is None:
                return None
            return self.vms.get(rep.test_vm_id)

    def stop_failover(self, record: VMRecord) -> None:
        """Cancel: delete a test VM, revert an uncommitted failover, or cancel a -Prepare."""
        with self.lock:
            rep = self._require_replication(record)
            test_vm = self.test_vm_of(record)
            if test_vm is not None:
                del self.vms[test_vm.id]
                rep.test_vm_id = None
                return
            if rep.state not in {
                "FailedOverWaitingCompletion",
                "PreparedForFailover",
                "RecoveryInProgress",
            }:
                raise HyperVStateError.wrong_state(record, rep.state)
            self.stop_vm(record)
            if rep.mode == "Replica":
                if rep.pre_failover_version is not None:
                    record.data_version = rep.pre_failover_version
                rep.pre_failover_version = None
                rep.failed_over_point_id = None
                for adapter in record.adapters:
                    adapter.applied_ip = None
            rep.state = "Replicating"

    def complete_failover(self, record: VMRecord) -> None:
        """Commit a failover: keep the used point, drop every other recovery point."""
        with self.lock:
            rep = self._require_replication(record)
            if rep.mode != "Replica":
                raise HyperVStateError.not_applicable(record, rep.mode)
            if rep.state != "FailedOverWaitingCompletion":
                raise HyperVStateError.wrong_state(record, rep.state)
            _drop_recovery_points(record)
            rep.pre_failover_version = None
            rep.state = "FailedOver"

    def reverse_replication(
        self,
        record: VMRecord,
        *,
        replica_server: str | None = None,
        port: int | None = None,
        auth_type: str | None = None,
        certificate_thumbprint: str | None = None,
    ) -> ReplicationRecord:
        """Set-VMReplication -Reverse on a failed-over replica: it becomes the primary.

        After a planned failover (the old primary is PreparedForFailover) both sides are in sync
        and go straight to Replicating; otherwise the new primary needs an initial replication
        (ReadyForInitialReplication) and the old primary VM, which must be off, is overwritten.
        """
        with self.lock:
            rep = self._require_replication(record)
            if rep.mode != "Replica":
                raise HyperVStateError(
                    "OperationFailed",
                    f"The operation is not applicable to the primary virtual machine "
                    f"'{record.name}': reverse replication runs on the Replica.",
                    record.name,
                )
            if rep.state not in _FAILED_OVER:
                raise HyperVStateError.wrong_state(record, rep.state)
            new_auth = auth_type or rep.auth_type
            thumbprint = certificate_thumbprint or (
                rep.certificate_thumbprint if auth_type is None else None
            )
            if new_auth == "Certificate" and not thumbprint:
                raise HyperVStateError(
                    "InvalidParameter",
                    "Certificate authentication requires -CertificateThumbprint.",
                    record.name,
                )
            target_name = replica_server or rep.primary_server
            target = self.fabric.host(target_name)
            if target is None or target is self:
                raise HyperVStateError(
                    "OperationFailed",
                    f"Hyper-V failed to reverse replication for '{record.name}': could not connect"
                    f" to the Replica server '{target_name}'.",
                    record.name,
                )
            old = target.vms.get(record.id)
            planned = (
                old is not None
                and old.replication is not None
                and old.replication.mode == "Primary"
                and old.replication.state == "PreparedForFailover"
            )
            if old is not None and old.state != "Off":
                raise HyperVStateError(
                    "InvalidState",
                    f"Cannot reverse replication of '{record.name}': the virtual machine on "
                    f"'{target.name}' must be turned off (it is {old.state}).",
                    record.name,
                )
            _drop_recovery_points(record)
            new = attrs.evolve(
                rep,
                mode="Primary",
                state="Replicating" if planned else "ReadyForInitialReplication",
                primary_server=self.name,
                replica_server=target_name,
                port=port if port is not None else rep.port,
                auth_type=new_auth,
                certificate_thumbprint=thumbprint,
                pre_failover_version=None,
                failed_over_point_id=None,
                test_vm_id=None,
                successful_replications=0,
                last_replication_time=rep.last_replication_time if planned else None,
            )
            record.replication = new
            if old is None:
                target._create_replica_vm(record, new)
            else:
                _drop_recovery_points(old)
                old.replication = attrs.evolve(
                    new,
                    mode="Replica",
                    state="Replicating" if planned else "WaitingForInitialReplication",
                )
                if planned:
                    old.data_version = record.data_version
            return new

    def set_replication(self, record: VMRecord, **changes: object) -> ReplicationRecord:
        """Change settings of a primary's relationship (mirrored to the replica's record)."""
        with self.lock:
            rep = self._enabled_replication(record)
            if rep.mode != "Primary":
                raise HyperVStateError(
                    "OperationFailed",
                    f"Replication settings of '{record.name}' cannot be changed on the Replica "
                    "server; change them on the primary server.",
                    record.name,
                )
            for key, value in changes.items():
                setattr(rep, key, value)
            try:
                _, replica = self._replica_of(record)
            except HyperVStateError:
                return rep
            assert replica.replication is not None
            for key, value in changes.items():
                setattr(replica.replication, key, value)
            return rep


def _count_cycle(kind: str, now: datetime, *sides: ReplicationRecord) -> None:
    """Both ends of a relationship record one replication cycle of ``kind``, sent at ``now``."""
    for side in sides:
        side.last_replication_time = now
        side.successful_replications += 1
        side.last_replication_type = kind


def _drop_recovery_points(record: VMRecord) -> None:
    """Remove a VM's Replica recovery points; its own checkpoints stay."""
    record.snapshots = [
        s for s in record.snapshots if s.snapshot_type not in RECOVERY_SNAPSHOT_TYPES
    ]


def _stamp(moment: datetime) -> str:
    """Hyper-V's checkpoint-name timestamp, e.g. ``11/26/2026 - 8:00:05 PM``."""
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return (
        f"{moment.month}/{moment.day}/{moment.year} - "
        f"{hour}:{moment.minute:02d}:{moment.second:02d} {half}"
    )
