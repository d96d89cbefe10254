"""Reading Hyper-V's objects into the model: pure functions, no I/O.

Everything a host's pipelines returned arrives here as :class:`~.values.PSObject` values and
leaves as model objects (VMs with their NICs, networks, replicas, recovery points), so the rules
of the translation (which states mean what, which ids, what a host that does not answer still
tells us) are tested without a host.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

import attrs

from vmfailover.model import (
    VM,
    ConnectionState,
    Consistency,
    Datastore,
    GuestOS,
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
)

from .config import HostConnection
from .ids import PointRef, VMRef
from .values import PSObject, as_datetime, as_uuid, enum_name

__all__ = [
    "GUEST_NETWORK",
    "KVP_EXCHANGE",
    "NOT_CONNECTED",
    "RECOVERY_POINT_TYPES",
    "GuestFacts",
    "HostView",
    "build_inventory",
    "cim_class",
    "guest_os_of",
    "guid_of_test_vm",
    "mac_of",
    "power_state",
    "recovery_points",
    "replica_state",
]

NS = "Microsoft.HyperV.PowerShell."
VIRTUAL_MACHINE = NS + "VirtualMachine"
NETWORK_ADAPTER = NS + "VMNetworkAdapter"
SWITCH = NS + "VMSwitch"
REPLICATION = NS + "VMReplication"
SNAPSHOT = NS + "VMSnapshot"
FAILOVER_SETTING = NS + "VMNetworkAdapterFailoverSetting"

#: The WMI classes (namespace root/virtualization/v2) that say what a guest runs: its NICs' TCP/IP
#: configuration, and the data exchange (KVP) items its integration services report (OSName).
GUEST_NETWORK = "Msvm_GuestNetworkAdapterConfiguration"
KVP_EXCHANGE = "Msvm_KvpExchangeComponent"

#: The network a NIC that Hyper-V shows "Not connected" is on, in the inventory.
NOT_CONNECTED = "(not connected)"

#: Checkpoint types that are Hyper-V Replica recovery points (Start-VMFailover takes them).
RECOVERY_POINT_TYPES = frozenset({"Replica", "AppConsistentReplica", "SyncedReplica"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_OFF = frozenset({"Off", "OffCritical"})
_SUSPENDED = frozenset(
    {
        "Saved",
        "Paused",
        "FastSaved",
        "Hibernated",
        "SavedCritical",
        "PausedCritical",
        "FastSavedCritical",
    }
)
_REPLICA_STATES: Mapping[str, ReplicaState] = {
    "ReadyForInitialReplication": ReplicaState.INITIALIZING,
    "InitialReplicationInProgress": ReplicaState.INITIALIZING,
    "WaitingForInitialReplication": ReplicaState.INITIALIZING,
    "Replicating": ReplicaState.READY,
    "Suspended": ReplicaState.READY,
    "Resynchronizing": ReplicaState.READY,
    "ResynchronizeSuspended": ReplicaState.READY,
    "WaitingForUpdateCompletion": ReplicaState.READY,
    "PreparedForFailover": ReplicaState.READY,
    "FailedOverWaitingCompletion": ReplicaState.FAILED_OVER,
    "RecoveryInProgress": ReplicaState.FAILED_OVER,
    "FailedOver": ReplicaState.COMMITTED,
}
_VM_ID_IN_TEXT = re.compile(r"\[Id = '([0-9A-Fa-f-]{36})'\]")
_GUEST_NETWORK_ID = re.compile(r"^Microsoft:GuestNetwork\\([0-9A-Fa-f-]{36})\\(.+)$")
_ADAPTER_ID = re.compile(r"^Microsoft:([0-9A-Fa-f-]{36})\\(.+)$")
#: IPAddressOrigins (CIM_IPProtocolEndpoint's AddressOrigin): 2 static, 3 DHCP.
_ORIGIN_STATIC, _ORIGIN_DHCP = 2, 3
#: A KVP item larger than this is not read (an OSName is a few dozen characters).
_KVP_ITEM_LIMIT = 8192
_LINUX_NAMES = (
    "linux",
    "ubuntu",
    "debian",
    "red hat",
    "centos",
    "rocky",
    "alma",
    "suse",
    "fedora",
    "oracle",
)


def power_state(state: str | None) -> PowerState:
    """Hyper-V's VMState as our power state (anything on its way up or down counts as on)."""
    if state in _OFF:
        return PowerState.OFF
    if state in _SUSPENDED:
        return PowerState.SUSPENDED
    return PowerState.ON


def replica_state(replication_state: str | None, *, testing: bool = False) -> ReplicaState:
    """The replica's life stage for Hyper-V's VMReplicationState (unknown states are errors)."""
    state = _REPLICA_STATES.get(replication_state or "", ReplicaState.ERROR)
    if testing and state is ReplicaState.READY:
        return ReplicaState.TEST_FAILOVER
    return state


def mac_of(text: Any) -> str:
    """Hyper-V's ``00155D0A0B01`` (or any separators) as ``00:15:5d:0a:0b:01``."""
    digits = re.sub(r"[^0-9a-fA-F]", "", str(text or "")).lower()
    if len(digits) != 12:
        return ""
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def guid_of_test_vm(replication: PSObject) -> uuid.UUID | None:
    """The test VM of a relationship (``TestVirtualMachine``), as an object or its text."""
    found = replication.get("TestVirtualMachine")
    if found is None:
        return None
    if isinstance(found, PSObject):
        return as_uuid(found.get("Id")) or as_uuid(found.get("VMId")) or _guid_in(found.to_string)
    return _guid_in(str(found))


def _guid_in(text: str) -> uuid.UUID | None:
    match = _VM_ID_IN_TEXT.search(text or "")
    return uuid.UUID(match.group(1)) if match else None


def addresses(adapters: Iterable[PSObject]) -> tuple[IPAddress, ...]:
    """The guest-reported addresses of ``adapters``, in order, unparseable ones left out."""
    found: list[IPAddress] = []
    for adapter in adapters:
        for text in adapter.get("IPAddresses") or ():
            try:
                address = ipaddress.ip_address(str(text).split("%", 1)[0])
            except ValueError:
                continue
            if address not in found:
                found.append(address)
    return tuple(found)


def cim_class(item: PSObject) -> str:
    """The CIM class of a CimInstance (``Msvm_KvpExchangeComponent``), or "" for other objects."""
    for name in item.type_names:
        head, sep, tail = name.partition("#")
        if sep and head.endswith("CimInstance"):
            return tail.rsplit("/", 1)[-1]
    return ""


@attrs.frozen
class GuestFacts:
    """What a running guest's integration services report: its OS and its NICs' TCP/IP settings
    (by adapter, ``(VM GUID, device id)``), each NIC's static configuration or DHCP."""

    os: dict[uuid.UUID, GuestOS] = attrs.field(factory=dict)
    networks: dict[tuple[uuid.UUID, str], tuple[tuple[IPConfig, ...], bool]] = attrs.field(
        factory=dict
    )

    @classmethod
    def read(cls, items: Iterable[PSObject]) -> GuestFacts:
        facts = cls()
        for item in items:
            kind = cim_class(item)
            if kind == GUEST_NETWORK:
                match = _GUEST_NETWORK_ID.match(str(item.get("InstanceID") or ""))
                if match:
                    key = (uuid.UUID(match.group(1)), match.group(2).upper())
                    facts.networks[key] = guest_network(item)
            elif kind == KVP_EXCHANGE:
                guid = as_uuid(item.get("SystemName"))
                if guid is not None:
                    facts.os[guid] = guest_os_of(item.get("GuestIntrinsicExchangeItems") or ())
        return facts

    def network_of(self, adapter: PSObject) -> tuple[tuple[IPConfig, ...], bool] | None:
        match = _ADAPTER_ID.match(str(adapter.get("Id") or ""))
        if not match:
            return None
        return self.networks.get((uuid.UUID(match.group(1)), match.group(2).upper()))


def guest_network(item: PSObject) -> tuple[tuple[IPConfig, ...], bool]:
    """A NIC's guest TCP/IP configuration: its static addresses with their prefixes, the family's
    first gateway and its DNS servers; or DHCP (no static configuration). Link-local and
    temporary addresses, and what does not parse, are left out."""
    dhcp = bool(item.get("DHCPEnabled"))
    if dhcp:
        return (), True
    ips = list(item.get("IPAddresses") or ())
    subnets = list(item.get("Subnets") or ())
    origins = list(item.get("IPAddressOrigins") or ())
    gateways = _parsed(item.get("DefaultGateways"))
    servers = _parsed(item.get("DNSServers"))
    configs: list[IPConfig] = []
    for index, text in enumerate(ips):
        origin = origins[index] if index < len(origins) else _ORIGIN_STATIC
        if origin not in (_ORIGIN_STATIC, 0, 1) or index >= len(subnets):
            continue
        try:
            interface = ipaddress.ip_interface(f"{str(text).split('%', 1)[0]}/{subnets[index]}")
        except ValueError:
            continue
        if interface.ip.is_link_local:
            continue
        family_dns = tuple(a for a in servers if a.version == interface.version)
        gateway = next(
            (g for g in gateways if g.version == interface.version and g in interface.network),
            None,
        )
        configs.append(IPConfig(interface, gateway=gateway, dns=family_dns))
    return tuple(configs), False


def _parsed(values: Any) -> list[IPAddress]:
    found: list[IPAddress] = []
    for text in values or ():
        try:
            found.append(ipaddress.ip_address(str(text).split("%", 1)[0]))
        except ValueError:
            continue
    return found


def guest_os_of(items: Iterable[Any]) -> GuestOS:
    """The guest's OS family from its intrinsic KVP items (OSName): Windows, Linux, or other
    (unknown, or a guest whose integration services report nothing)."""
    name = ""
    for text in items:
        text = str(text)
        if len(text) > _KVP_ITEM_LIMIT:
            continue
        try:
            instance = ElementTree.fromstring(text)
        except ElementTree.ParseError:
            continue
        values = {
            prop.get("NAME"): (prop.findtext("VALUE") or "") for prop in instance.iter("PROPERTY")
        }
        if values.get("Name") == "OSName":
            name = values.get("Data", "").casefold()
            break
    if "windows" in name:
        return GuestOS.WINDOWS
    if any(marker in name for marker in _LINUX_NAMES):
        return GuestOS.LINUX
    return GuestOS.OTHER


@attrs.frozen
class HostView:
    """What one host's inventory pipeline returned, sorted by kind."""

    vms: tuple[PSObject, ...] = ()
    adapters: tuple[PSObject, ...] = ()
    switches: tuple[PSObject, ...] = ()
    replications: tuple[PSObject, ...] = ()
    guests: GuestFacts = attrs.field(factory=GuestFacts)

    @classmethod
    def from_output(cls, output: Iterable[Any]) -> HostView:
        kinds: dict[str, list[PSObject]] = {
            VIRTUAL_MACHINE: [],
            NETWORK_ADAPTER: [],
            SWITCH: [],
            REPLICATION: [],
        }
        cim: list[PSObject] = []
        for item in output:
            if not isinstance(item, PSObject):
                continue
            if item.type_name in kinds:
                kinds[item.type_name].append(item)
            elif cim_class(item):
                cim.append(item)
        return cls(
            tuple(kinds[VIRTUAL_MACHINE]),
            tuple(kinds[NETWORK_ADAPTER]),
            tuple(kinds[SWITCH]),
            tuple(kinds[REPLICATION]),
            GuestFacts.read(cim),
        )

    def vm(self, guid: uuid.UUID) -> PSObject | None:
        return next((vm for vm in self.vms if as_uuid(vm.get("Id")) == guid), None)

    def adapters_of(self, guid: uuid.UUID) -> list[PSObject]:
        return [a for a in self.adapters if as_uuid(a.get("VMId")) == guid]


def vm_from(
    connection: HostConnection,
    vm: PSObject,
    adapters: Sequence[PSObject],
    guests: GuestFacts | None = None,
) -> VM:
    """Our VM for Hyper-V's VirtualMachine object and its adapters; ``guests`` adds what the
    running guest reports (its OS, its NICs' addresses)."""
    guid = as_uuid(vm.get("Id"))
    guests = guests or GuestFacts()
    nics = []
    for adapter in adapters:
        mac = mac_of(adapter.get("MacAddress"))
        if not mac:
            continue  # a dynamic MAC not yet assigned: nothing to address it by
        configs, dhcp = guests.network_of(adapter) or ((), False)
        nics.append(
            Nic(
                mac=mac,
                network=str(adapter.get("SwitchName") or NOT_CONNECTED),
                ip_configs=configs,
                dhcp=dhcp,
                label=str(adapter.get("Name") or ""),
            )
        )
    memory = vm.get("MemoryStartup")
    cpu = vm.get("ProcessorCount")
    return VM(
        id=str(VMRef(connection.name, guid or uuid.UUID(int=0))),
        name=str(vm.get("Name") or guid),
        host=connection.name,
        power_state=power_state(enum_name(vm.get("State"))),
        nics=tuple(nics),
        cpu=cpu if isinstance(cpu, int) and cpu > 0 else 1,
        memory_mb=max(1, memory // 2**20) if isinstance(memory, int) and memory > 0 else 1024,
        guest_os=guests.os.get(guid, GuestOS.OTHER) if guid is not None else GuestOS.OTHER,
        datastore=connection.datastore,
    )


def replica_from(
    replica_host: HostConnection,
    replica_vm: PSObject | None,
    replication: PSObject,
    primary_host: HostConnection,
) -> Replica:
    """The Replica for a relationship as seen on the replica's host."""
    guid = as_uuid(replication.get("VMId"))
    ref = VMRef(replica_host.name, guid or uuid.UUID(int=0))
    created = as_datetime(replica_vm.get("CreationTime")) if replica_vm is not None else None
    return Replica(
        id=str(ref),
        source_vm=str(VMRef(primary_host.name, ref.guid)),
        replica_vm=str(ref),
        target_host=replica_host.name,
        created_at=created or _EPOCH,
        state=replica_state(
            enum_name(replication.get("ReplicationState")),
            testing=guid_of_test_vm(replication) is not None,
        ),
        target_datastore=replica_host.datastore,
    )


def recovery_points(replica: VMRef, snapshots: Iterable[PSObject]) -> tuple[RecoveryPoint, ...]:
    """The replica's recovery points (Replica checkpoints), oldest first."""
    points = []
    for snapshot in snapshots:
        kind = enum_name(snapshot.get("SnapshotType"))
        guid = as_uuid(snapshot.get("Id"))
        created = as_datetime(snapshot.get("CreationTime"))
        if kind not in RECOVERY_POINT_TYPES or guid is None or created is None:
            continue
        points.append(
            RecoveryPoint(
                id=str(PointRef(replica.host, replica.guid, guid)),
                replica=str(replica),
                created_at=created,
                consistency=(
                    Consistency.APPLICATION if kind == "AppConsistentReplica" else Consistency.CRASH
                ),
            )
        )
    points.sort(key=lambda p: p.created_at)
    return tuple(points)


def _host_for(server_name: Any, connections: Sequence[HostConnection]) -> HostConnection | None:
    if not server_name:
        return None
    return next((c for c in connections if c.answers_to(str(server_name))), None)


def build_inventory(
    connections: Sequence[HostConnection],
    views: Mapping[str, HostView | None],
    down: Iterable[str] = (),
) -> Inventory:
    """The inventory of every host; ``views[name]`` is None for a host that did not answer.

    A host declared ``down`` is powered off in the inventory, with its VMs; one that merely did
    not answer is ``not_responding`` and its VMs, known only from their replication partners,
    count as running (nothing says they are not: the split-brain guard decides).
    Relationships with a host that is not one of ``connections`` are left out.
    """
    lost = set(down)
    sites = sorted({c.site for c in connections})
    hosts: list[Host] = []
    datastores: list[Datastore] = []
    networks: dict[tuple[str, str], Network] = {}
    vms: dict[str, VM] = {}
    replicas: dict[str, Replica] = {}
    placeholders: dict[str, VM] = {}

    def placeholder(connection: HostConnection, guid: uuid.UUID, name: str, replica: bool) -> None:
        ref = str(VMRef(connection.name, guid))
        unknown_power = PowerState.OFF if (replica or connection.name in lost) else PowerState.ON
        placeholders.setdefault(
            ref,
            VM(
                id=ref,
                name=name or str(guid),
                host=connection.name,
                power_state=unknown_power,
                guest_os=GuestOS.OTHER,
                datastore=connection.datastore,
            ),
        )

    for connection in connections:
        view = views.get(connection.name)
        switch_names = []
        if view is not None:
            for switch in view.switches:
                name = str(switch.get("Name") or "")
                if not name:
                    continue
                switch_names.append(name)
                isolated = (
                    enum_name(switch.get("SwitchType")) == "Private"
                    or name in connection.isolated_networks
                )
                key = (connection.site, name)
                known = networks.get(key)
                networks[key] = Network(
                    name, connection.site, isolated=isolated and (known is None or known.isolated)
                )
        hosts.append(
            Host(
                name=connection.name,
                site=connection.site,
                connection=(
                    ConnectionState.CONNECTED
                    if view is not None
                    else ConnectionState.NOT_RESPONDING
                ),
                power=PowerState.OFF if connection.name in lost else PowerState.ON,
                datastores=(connection.datastore,),
                networks=tuple(sorted(switch_names)),
            )
        )
        datastores.append(Datastore(connection.datastore, connection.site, 0, 0))
        if view is None:
            continue
        for vm in view.vms:
            guid = as_uuid(vm.get("Id"))
            if guid is None:
                continue
            model = vm_from(connection, vm, view.adapters_of(guid), view.guests)
            vms[model.id] = model
            for nic in model.nics:
                if nic.network == NOT_CONNECTED:
                    networks.setdefault(
                        (connection.site, NOT_CONNECTED),
                        Network(NOT_CONNECTED, connection.site, isolated=True),
                    )
        for replication in view.replications:
            guid = as_uuid(replication.get("VMId"))
            mode = enum_name(replication.get("ReplicationMode"))
            if guid is None:
                continue
            name = str(replication.get("VMName") or "")
            if mode == "Replica":
                primary = _host_for(replication.get("PrimaryServerName"), connections)
                if primary is None or primary is connection:
                    continue
                replica = replica_from(connection, view.vm(guid), replication, primary)
                replicas[replica.id] = replica
                if views.get(primary.name) is None:
                    placeholder(primary, guid, name, replica=False)
            elif mode == "Primary":
                target = _host_for(replication.get("ReplicaServerName"), connections)
                if target is None or target is connection or views.get(target.name) is not None:
                    continue  # the replica's own host reports it
                placeholder(target, guid, name, replica=True)
                source_vm = view.vm(guid)
                created = (
                    as_datetime(source_vm.get("CreationTime")) if source_vm is not None else None
                )
                ref = str(VMRef(target.name, guid))
                replicas[ref] = Replica(
                    id=ref,
                    source_vm=str(VMRef(connection.name, guid)),
                    replica_vm=ref,
                    target_host=target.name,
                    created_at=created or _EPOCH,
                    state=replica_state(enum_name(replication.get("ReplicationState"))),
                    target_datastore=target.datastore,
                )
    for ref, stand_in in placeholders.items():
        vms.setdefault(ref, stand_in)
    return Inventory(
        sites=tuple(Site(name) for name in sites),
        hosts=tuple(hosts),
        datastores=tuple(datastores),
        networks=tuple(networks[key] for key in sorted(networks)),
        vms=tuple(vms[key] for key in sorted(vms)),
        replicas=tuple(replicas[key] for key in sorted(replicas)),
    )
