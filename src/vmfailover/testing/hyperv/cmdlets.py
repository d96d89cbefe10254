"""The Hyper-V cmdlets of the simulated host, as a :class:`CommandHost`.

:class:`HyperVCommandHost` runs one command of a pipeline against a :class:`HostModel`: it binds
the arguments with the metadata below (transcribed from the reference: parameter sets, types,
aliases, positions, mandatory sets, pipeline flags; where the Microsoft page and the module's code
disagree, the code wins: Connect-VMNetworkAdapter ``-SwitchName`` is position 2 in Name_SwitchName
and ``-VMSwitch`` position 1 in Object_SwitchObject, Get-VMSnapshot ``-Name`` is position 0 in the
Parent/Child sets), then runs the cmdlet once per pipeline record (once when there is none).

Behaviour promised, beyond the reference:

* Errors are :class:`CmdletError` with ``Id,Microsoft.HyperV.PowerShell.Commands.Class`` ids.
  Per-VM failures (not found, wrong state) are non-terminating, as Hyper-V's operation watcher
  writes them; binding errors and the errors the reference says a cmdlet *throws* are
  terminating. ``-ErrorAction Stop`` makes non-terminating errors terminating,
  ``SilentlyContinue``/``Ignore`` drop them.
* ConfirmImpact: the session is non-interactive (a pypsrp client has no host UI), so a
  ShouldProcess prompt fails as PowerShell's null host fails it:
  ``HostFunctionNotImplemented,<class>``, category NotImplemented, exception
  ``System.Management.Automation.Host.HostException``. It happens for Start-VMFailover and
  Complete-VMFailover (ConfirmImpact High) unless ``-Confirm:$false``, and for any
  state-changing cmdlet given ``-Confirm``. ``-WhatIf`` performs nothing and writes nothing.
* VM names are resolved as PowerShell WildcardPatterns (all Hyper-V name parameters accept them,
  per the module's code): a name without an unescaped ``*?[]`` is literal (backtick escapes are
  removed first), a miss is an error; a pattern that matches nothing is silent; an invalid
  pattern (``x[``) is a terminating ``InvalidParameter``. So ``web[1]`` finds ``web1``; escape it
  (``web`[1`]``) or pass ``-Id``/a VM object to name ``web[1]`` itself.
* Objects passed back by a client are resolved on this host by their properties: VMs by
  ``Id``/``VMId`` then ``Name``, checkpoints by ``Id``, adapters by ``Id`` (or VM and adapter
  name), switches by ``Id`` then ``Name``, replication objects by ``VMId``/``VMName``.
* ``-AsJob`` runs synchronously (no job objects); ``-CimSession``/``-Credential`` are accepted
  and ignored; ``-ComputerName`` may name this host (or localhost) or another host of the fabric.
* TimeSpan-typed properties are left out of output objects (the seam carries no TimeSpan).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, ParamSpec, TypeAlias, TypeVar
from xml.sax.saxutils import escape

import attrs

from ._objects import CmdletError, CommandResult, EnumValue, InputObject, OutputObject
from .binding import (
    NO_INPUT,
    Binder,
    BoundCommand,
    CmdletInfo,
    Parameter,
    ParamType,
    WildcardPattern,
)
from .model import (
    AUTHENTICATION_TYPE,
    CHECKPOINT_TYPE,
    HEARTBEAT_STATUS,
    REPLICATION_HEALTH,
    REPLICATION_MODE,
    REPLICATION_RELATIONSHIP_TYPE,
    REPLICATION_STATE,
    REPLICATION_TYPE,
    SNAPSHOT_TYPE,
    SWITCH_TYPE,
    VM_STATE,
    EnumType,
    FailoverIPSettings,
    HostModel,
    HyperVStateError,
    NetworkAdapterRecord,
    SnapshotRecord,
    SwitchRecord,
    VMRecord,
)

__all__ = ["CMDLETS", "HyperVCommandHost"]

NS = "Microsoft.HyperV.PowerShell."

_T = TypeVar("_T")
_P = ParamSpec("_P")

# ------------------------------------------------------------------- parameter types

STR = ParamType("string", "System.String")
STRS = ParamType("string", "System.String", is_array=True)
INT = ParamType("int", "System.Int32")
BOOL = ParamType("bool", "System.Boolean")
SWITCH = ParamType("switch", "System.Management.Automation.SwitchParameter")
GUID = ParamType("guid", "System.Guid")
GUIDS = ParamType("guid", "System.Guid", is_array=True)
DATETIME = ParamType("datetime", "System.DateTime")
TIMESPAN = ParamType("timespan", "System.TimeSpan")
ANY = ParamType("any", "System.Management.Automation.PSObject")
ANYS = ParamType("any", "System.Object", is_array=True)


def _obj(name: str, array: bool = False) -> ParamType:
    return ParamType("object", NS + name, is_array=array)


def _enum(enum: EnumType, array: bool = False) -> ParamType:
    return ParamType("enum", enum.type_name, is_array=array, enum=enum)


VMS = _obj("VirtualMachine", True)
VM1 = _obj("VirtualMachine")
VMBASE = _obj("VirtualMachineBase")
SNAP = _obj("VMSnapshot")
SNAPS = _obj("VMSnapshot", True)
ADAPTER = _obj("VMNetworkAdapter")
ADAPTERS = _obj("VMNetworkAdapter", True)
VSWITCH = _obj("VMSwitch")
REPLS = _obj("VMReplication", True)


#: One parameter as the table below writes it (see :func:`P`), before :func:`_cmdlet` builds it.
_Spec: TypeAlias = tuple[str, ParamType, str, str, int | Mapping[str, int] | None, str, bool, bool]


def P(
    name: str,
    ptype: ParamType,
    *,
    sets: str = "",
    mandatory: str = "",
    pos: int | Mapping[str, int] | None = None,
    aliases: str = "",
    pipe: bool = False,
    prop: bool = False,
) -> _Spec:
    return (name, ptype, sets, mandatory, pos, aliases, pipe, prop)


def _cmdlet(
    name: str,
    sets: str,
    params: Sequence[_Spec],
    *,
    should_process: bool = False,
    impact: str = "Medium",
    class_name: str | None = None,
    namespace: str | None = None,
) -> CmdletInfo:
    set_names = tuple(sets.split())
    built: list[Parameter] = []
    for pname, ptype, psets, mandatory, pos, aliases, pipe, prop in params:
        in_sets = frozenset(psets.split())
        if isinstance(pos, int):
            positions: Mapping[str, int] = dict.fromkeys(in_sets or set_names, pos)
        else:
            positions = dict(pos or {})
        built.append(
            Parameter(
                name=pname,
                type=ptype,
                aliases=tuple(aliases.split()),
                sets=in_sets,
                mandatory_in=frozenset(mandatory.split()),
                positions=positions,
                by_value=pipe,
                by_property_name=prop,
            )
        )
    info = CmdletInfo(
        name=name,
        class_name=class_name or name.replace("-", ""),
        parameters=tuple(built),
        parameter_sets=set_names,
        default_set=set_names[0],
        supports_should_process=should_process,
        confirm_impact=impact,
    )
    return info if namespace is None else attrs.evolve(info, commands_namespace=namespace)


def _piped(
    name: str,
    ptype: ParamType,
    sets: str,
    *,
    pos: int | Mapping[str, int] = 0,
    aliases: str = "",
    prop: bool = False,
) -> _Spec:
    """The input of a parameter set: mandatory in each of its ``sets``, by value from the pipe."""
    return P(name, ptype, sets=sets, mandatory=sets, pos=pos, aliases=aliases, pipe=True, prop=prop)


#: The VM objects of a VMObject set, and the VM names of a VMName set, as most cmdlets take them.
_VM_OBJECT = _piped("VM", VMS, "VMObject")
_VM_NAMES = _piped("VMName", STRS, "VMName")


def _remote(sets: str) -> list[Any]:
    return [
        P("CimSession", ANYS, sets=sets),
        P("ComputerName", STRS, sets=sets),
        P("Credential", ANYS, sets=sets),
    ]


_FILTERS = [
    P("PrimaryServerName", STR, sets="VMName", aliases="PrimaryServer"),
    P("ReplicaServerName", STR, sets="VMName", aliases="ReplicaServer"),
    P("ReplicationHealth", _enum(REPLICATION_HEALTH), sets="VMName", aliases="Health"),
    P("ReplicationMode", _enum(REPLICATION_MODE), sets="VMName", aliases="Mode"),
    P(
        "ReplicationRelationshipType",
        _enum(REPLICATION_RELATIONSHIP_TYPE),
        aliases="Relationship",
    ),
    P("ReplicationState", _enum(REPLICATION_STATE), sets="VMName", aliases="State"),
    P("TrustGroup", STR, sets="VMName"),
    _VM_OBJECT,
    P("VMName", STRS, sets="VMName", pos=0, aliases="Name", pipe=True),
]

_REPLICATION_SETTINGS = [
    P("AutoResynchronizeEnabled", BOOL, aliases="AutoResync"),
    P("AutoResynchronizeIntervalEnd", TIMESPAN, aliases="AutoResyncEnd"),
    P("AutoResynchronizeIntervalStart", TIMESPAN, aliases="AutoResyncStart"),
    P("BypassProxyServer", BOOL),
    P("CompressionEnabled", BOOL),
    P("EnableWriteOrderPreservationAcrossDisks", BOOL),
    P("RecoveryHistory", INT, aliases="RecHist"),
    P("ReplicateHostKvpItems", BOOL),
    P("ReplicationFrequencySec", INT, aliases="RepFreq"),
    P("VSSSnapshotFrequencyHour", INT, aliases="VSSFreq"),
]

_FAILOVER_IP = [
    P("ClearFailoverIPv4Settings", SWITCH),
    P("ClearFailoverIPv6Settings", SWITCH),
    P("IPv4Address", STR),
    P("IPv4AlternateDNSServer", STR),
    P("IPv4DefaultGateway", STR),
    P("IPv4PreferredDNSServer", STR),
    P("IPv4SubnetMask", STR),
    P("IPv6Address", STR),
    P("IPv6AlternateDNSServer", STR),
    P("IPv6DefaultGateway", STR),
    P("IPv6PreferredDNSServer", STR),
    P("IPv6SubnetPrefixLength", INT),
]


def _in_sets(params: Sequence[Any], sets: str) -> list[Any]:
    """The same parameters, restricted to ``sets``."""
    return [(p[0], p[1], sets, *p[3:]) for p in params]


CMDLETS: dict[str, CmdletInfo] = {
    info.name.casefold(): info
    for info in [
        _cmdlet(
            "Get-VM",
            "Name Id ClusterObject",
            [
                *_remote("Name Id"),
                _piped("ClusterObject", ANY, "ClusterObject"),
                P("Id", GUID, sets="Id", pos=0, pipe=True, prop=True),
                P("Name", STRS, sets="Name", pos=0, aliases="VMName", pipe=True),
            ],
        ),
        _cmdlet(
            "Start-VM",
            "Name VMObject",
            [
                P("AsJob", SWITCH),
                *_remote("Name"),
                _piped("Name", STRS, "Name", aliases="VMName"),
                P("Passthru", SWITCH),
                _VM_OBJECT,
            ],
            should_process=True,
        ),
        _cmdlet(
            "Stop-VM",
            "Name VMObject",
            [
                P("AsJob", SWITCH),
                *_remote("Name"),
                P("Force", SWITCH),
                _piped("Name", STRS, "Name", aliases="VMName"),
                P("Passthru", SWITCH),
                P("Save", SWITCH),
                P("TurnOff", SWITCH),
                _VM_OBJECT,
            ],
            should_process=True,
        ),
        _cmdlet(
            "Get-VMNetworkAdapter",
            "VMName VMObject ManagementOS All VMSnapshot",
            [
                P("All", SWITCH, sets="All", mandatory="All"),
                *_remote("All ManagementOS VMName"),
                P("IsLegacy", BOOL, sets="VMName VMObject"),
                P("ManagementOS", SWITCH, sets="ManagementOS", mandatory="ManagementOS"),
                P("Name", STR, pos=1, aliases="VMNetworkAdapterName"),
                P("SwitchName", STR, sets="ManagementOS"),
                _VM_OBJECT,
                _VM_NAMES,
                _piped("VMSnapshot", SNAP, "VMSnapshot", aliases="VMCheckpoint"),
            ],
        ),
        _cmdlet(
            "Connect-VMNetworkAdapter",
            "Name_SwitchName Object_SwitchName Object_SwitchObject Object_UseAutomaticConnection "
            "Name_SwitchObject Name_UseAutomaticConnection",
            [
                *_remote("Name_SwitchName Name_UseAutomaticConnection"),
                P(
                    "Name",
                    STRS,
                    sets="Name_SwitchName Name_SwitchObject Name_UseAutomaticConnection",
                    pos=1,
                    aliases="VMNetworkAdapterName",
                ),
                P("Passthru", SWITCH),
                P(
                    "SwitchName",
                    STR,
                    sets="Name_SwitchName Object_SwitchName",
                    mandatory="Name_SwitchName Object_SwitchName",
                    pos={"Name_SwitchName": 2, "Object_SwitchName": 1},
                ),
                P(
                    "UseAutomaticConnection",
                    SWITCH,
                    sets="Name_UseAutomaticConnection Object_UseAutomaticConnection",
                    mandatory="Name_UseAutomaticConnection Object_UseAutomaticConnection",
                ),
                P(
                    "VMName",
                    STRS,
                    sets="Name_SwitchName Name_SwitchObject Name_UseAutomaticConnection",
                    mandatory="Name_SwitchName Name_SwitchObject Name_UseAutomaticConnection",
                    pos=0,
                ),
                _piped(
                    "VMNetworkAdapter",
                    ADAPTERS,
                    "Object_SwitchName Object_SwitchObject Object_UseAutomaticConnection",
                ),
                _piped(
                    "VMSwitch",
                    VSWITCH,
                    "Name_SwitchObject Object_SwitchObject",
                    pos={"Name_SwitchObject": 2, "Object_SwitchObject": 1},
                ),
            ],
            should_process=True,
        ),
        _cmdlet(
            "Get-VMSwitch",
            "Name Id",
            [
                *_remote(""),
                P("Id", GUIDS, sets="Id", pos=0, aliases="SwitchId", pipe=True, prop=True),
                P("Name", STR, sets="Name", pos=0, aliases="SwitchName"),
                P("ResourcePoolName", STRS, pos=1),
                P("SwitchType", _enum(SWITCH_TYPE, True)),
            ],
        ),
        _cmdlet(
            "Enable-VMReplication",
            "VMName VMName_AsReplica VMObject VMObject_AsReplica",
            [
                P(
                    "AllowedPrimaryServer",
                    STR,
                    sets="VMName_AsReplica VMObject_AsReplica",
                    aliases="AllowedPS",
                    prop=True,
                ),
                P("AsJob", SWITCH),
                P("AsReplica", SWITCH, sets="VMName_AsReplica VMObject_AsReplica"),
                P(
                    "AuthenticationType",
                    _enum(AUTHENTICATION_TYPE),
                    sets="VMName VMObject",
                    mandatory="VMName VMObject",
                    pos=3,
                    aliases="AuthType",
                ),
                *_in_sets(_REPLICATION_SETTINGS, "VMName VMObject"),
                P(
                    "CertificateThumbprint",
                    STR,
                    sets="VMName VMObject",
                    aliases="Cert Thumbprint",
                    prop=True,
                ),
                P("CimSession", ANYS, sets="VMName VMName_AsReplica"),
                P("ComputerName", STRS, sets="VMName VMName_AsReplica"),
                P("Credential", ANYS),
                P("ExcludedVhd", ANYS, sets="VMName VMObject"),
                P("ExcludedVhdPath", STRS, sets="VMName VMObject"),
                P("Passthru", SWITCH),
                P(
                    "ReplicaServerName",
                    STR,
                    sets="VMName VMObject",
                    mandatory="VMName VMObject",
                    pos=1,
                    aliases="ReplicaServer",
                ),
                P(
                    "ReplicaServerPort",
                    INT,
                    sets="VMName VMObject",
                    mandatory="VMName VMObject",
                    pos=2,
                    aliases="ReplicaPort",
                ),
                _piped("VM", VMS, "VMObject VMObject_AsReplica"),
                _piped("VMName", STRS, "VMName VMName_AsReplica", aliases="Name"),
            ],
            should_process=True,
        ),
        _cmdlet(
            "Start-VMInitialReplication",
            "VMName VMObject VMReplication",
            [
                P("AsJob", SWITCH),
                P("CimSession", ANYS),
                P("ComputerName", STRS, sets="VMName"),
                P("Credential", ANYS),
                P("DestinationPath", STR, aliases="IRLoc"),
                P("InitialReplicationStartTime", DATETIME, aliases="IRTime"),
                P("Passthru", SWITCH),
                P("UseBackup", SWITCH),
                _VM_OBJECT,
                _VM_NAMES,
                _piped("VMReplication", REPLS, "VMReplication"),
            ],
            should_process=True,
        ),
        _cmdlet("Get-VMReplication", "VMName VMObject", [*_remote("VMName"), *_FILTERS]),
        _cmdlet("Measure-VMReplication", "VMName VMObject", [*_remote("VMName"), *_FILTERS]),
        _cmdlet(
            "Set-VMReplication",
            "VMName VMObject VMReplication",
            [
                P("AllowedPrimaryServer", STR, aliases="AllowedPS", prop=True),
                P("AsJob", SWITCH),
                P("AsReplica", SWITCH),
                P("AuthenticationType", _enum(AUTHENTICATION_TYPE), pos=3, aliases="AuthType"),
                *_REPLICATION_SETTINGS,
                P("CertificateThumbprint", STR, aliases="Cert Thumbprint", prop=True),
                P("CimSession", ANYS, sets="VMName"),
                P("ComputerName", STRS, sets="VMName"),
                P("Credential", ANYS),
                P("DisableVSSSnapshotReplication", SWITCH, aliases="DisableVSS"),
                P("InitialReplicationStartTime", DATETIME, aliases="IRTime"),
                P("Passthru", SWITCH),
                P("ReplicaServerName", STR, pos=1, aliases="ReplicaServer"),
                P("ReplicaServerPort", INT, pos=2, aliases="ReplicaPort"),
                P("ReplicatedDiskPaths", STRS),
                P("ReplicatedDisks", ANYS),
                P("Reverse", SWITCH),
                P("UseBackup", SWITCH),
                _VM_OBJECT,
                _piped("VMName", STRS, "VMName", aliases="Name"),
                _piped("VMReplication", REPLS, "VMReplication"),
            ],
            should_process=True,
        ),
        _cmdlet(
            "Get-VMSnapshot",
            "VMName VMObject Id Parent Child",
            [
                P("ChildOf", SNAP, sets="Child", mandatory="Child"),
                *_remote("Id VMName"),
                _piped("Id", GUID, "Id", prop=True),
                P(
                    "Name",
                    STR,
                    sets="Child Parent VMName VMObject",
                    pos={"VMName": 1, "VMObject": 1, "Parent": 0, "Child": 0},
                ),
                P("ParentOf", VMBASE, sets="Parent", mandatory="Parent"),
                P(
                    "SnapshotType",
                    _enum(SNAPSHOT_TYPE),
                    sets="Child Parent VMName VMObject",
                    aliases="VMRecoveryCheckpoint",
                ),
                _VM_OBJECT,
                _VM_NAMES,
            ],
        ),
        _cmdlet(
            "Checkpoint-VM",
            "Name VMObject",
            [
                P("AsJob", SWITCH),
                *_remote("Name"),
                _piped("Name", STRS, "Name", aliases="VMName"),
                P("Passthru", SWITCH),
                P("SnapshotName", STR, pos=1, aliases="CheckpointName"),
                _VM_OBJECT,
            ],
            should_process=True,
        ),
        _cmdlet(
            "Remove-VMSnapshot",
            "SnapshotName VMObject SnapshotObject",
            [
                P("AsJob", SWITCH),
                *_remote("SnapshotName"),
                P("IncludeAllChildSnapshots", SWITCH, aliases="IncludeAllChildCheckpoints"),
                P("Name", STRS, sets="SnapshotName VMObject", pos=1, pipe=True),
                P("Passthru", SWITCH),
                _VM_OBJECT,
                P("VMName", STRS, sets="SnapshotName", mandatory="SnapshotName", pos=0),
                _piped("VMSnapshot", SNAPS, "SnapshotObject", aliases="VMCheckpoint"),
            ],
            should_process=True,
        ),
        _cmdlet(
            "Start-VMFailover",
            "VMName VMName_Test VMObject VMObject_Test VMSnapshot VMSnapshot_Test",
            [
                P("AsJob", SWITCH),
                P(
                    "AsTest",
                    SWITCH,
                    sets="VMName_Test VMObject_Test VMSnapshot_Test",
                    mandatory="VMName_Test VMObject_Test VMSnapshot_Test",
                ),
                *_remote("VMName VMName_Test"),
                P("Passthru", SWITCH),
                P("Prepare", SWITCH, sets="VMName VMObject"),
                _piped("VM", VMS, "VMObject VMObject_Test"),
                _piped("VMName", STRS, "VMName VMName_Test"),
                _piped(
                    "VMRecoverySnapshot",
                    SNAP,
                    "VMSnapshot VMSnapshot_Test",
                    aliases="VMRecoveryCheckpoint",
                ),
            ],
            should_process=True,
            impact="High",
        ),
        _cmdlet(
            "Stop-VMFailover",
            "VMName VMObject",
            [
                P("AsJob", SWITCH),
                *_remote("VMName"),
                P("Passthru", SWITCH),
                _VM_OBJECT,
                _VM_NAMES,
            ],
            should_process=True,
        ),
        _cmdlet(
            "Complete-VMFailover",
            "VMName VMObject",
            [
                *_remote("VMName"),
                P("Passthru", SWITCH),
                _VM_OBJECT,
                _VM_NAMES,
            ],
            should_process=True,
            impact="High",
        ),
        _cmdlet(
            "Set-VMNetworkAdapterFailoverConfiguration",
            "VMName ResourceObject VMObject",
            [
                *_remote("VMName"),
                *_FAILOVER_IP,
                P("Passthru", SWITCH),
                _piped("VM", VM1, "VMObject"),
                _piped("VMName", STR, "VMName"),
                _piped("VMNetworkAdapter", ADAPTER, "ResourceObject", prop=True),
                P("VMNetworkAdapterName", STR, sets="VMName VMObject"),
            ],
            should_process=True,
        ),
        _cmdlet(
            "Get-CimInstance",
            "ClassNameComputerSet",
            [
                P("ClassName", STR, mandatory="ClassNameComputerSet", pos=0),
                P("ComputerName", STRS, aliases="CN ServerName"),
                P("Namespace", STR),
                P("OperationTimeoutSec", INT, aliases="OT"),
                P("Property", STRS, aliases="SelectProperties"),
            ],
            class_name="GetCimInstanceCommand",
            namespace="Microsoft.Management.Infrastructure.CimCmdlets.",
        ),
        _cmdlet(
            "Get-VMNetworkAdapterFailoverConfiguration",
            "VMName VMObject ResourceObject",
            [
                *_remote("VMName"),
                _VM_OBJECT,
                _VM_NAMES,
                _piped("VMNetworkAdapter", ADAPTERS, "ResourceObject"),
                P("VMNetworkAdapterName", STR, sets="VMName VMObject"),
            ],
        ),
    ]
}

_BINDERS = {key: Binder(info) for key, info in CMDLETS.items()}

# ------------------------------------------------------------------ output objects

_VM_TYPES = (
    NS + "VirtualMachine",
    NS + "VirtualMachineBase",
    NS + "VirtualizationObject",
    "System.Object",
)
_SNAP_TYPES = (
    NS + "VMSnapshot",
    NS + "VirtualMachineBase",
    NS + "VirtualizationObject",
    "System.Object",
)
_REPL_TYPES = (
    NS + "VMReplication",
    NS + "VMReplicationBase",
    NS + "VMComponentObject",
    NS + "VirtualizationObject",
    "System.Object",
)
_HEALTH_TYPES = (
    NS + "VMReplicationHealth",
    NS + "VMReplicationBase",
    NS + "VMComponentObject",
    NS + "VirtualizationObject",
    "System.Object",
)
_ADAPTER_TYPES = (
    NS + "VMNetworkAdapter",
    NS + "VMNetworkAdapterBase",
    NS + "VMDevice",
    NS + "VMComponentObject",
    NS + "VirtualizationObject",
    "System.Object",
)
_INTERNAL_ADAPTER_TYPES = (NS + "VMInternalNetworkAdapter", *_ADAPTER_TYPES[1:])
_SWITCH_TYPES = (NS + "VMSwitch", NS + "VirtualizationObject", "System.Object")
_FAILOVER_TYPES = (
    NS + "VMNetworkAdapterFailoverSetting",
    NS + "VMComponentObject",
    NS + "VirtualizationObject",
    "System.Object",
)


def adapter_object(
    host: HostModel,
    vm: VMRecord,
    adapter: NetworkAdapterRecord,
    snapshot: SnapshotRecord | None = None,
) -> OutputObject:
    switch = host.find_switch(adapter.switch_name) if adapter.switch_name else None
    # Guest-reported (data exchange service): only a running guest that booted reports.
    reported = (
        adapter.reported_addresses if snapshot is None and vm.booted(host.fabric.current()) else []
    )
    return OutputObject(
        _ADAPTER_TYPES,
        {
            "Name": adapter.name,
            "Id": adapter.id,
            "VMName": vm.name,
            "VMId": vm.id,
            "SwitchName": adapter.switch_name,
            "SwitchId": switch.id if switch else None,
            "Connected": switch is not None,
            "MacAddress": adapter.mac_address,
            "DynamicMacAddressEnabled": True,
            "IPAddresses": reported,
            "IsLegacy": adapter.is_legacy,
            "IsSynthetic": not adapter.is_legacy,
            "IsManagementOs": False,
            "Status": ["Ok"] if switch is not None else [],
            "StatusDescription": ["OK"] if switch is not None else [],
            "PoolName": "",
            "TestReplicaSwitchName": adapter.test_replica_switch_name,
            "TestReplicaPoolName": None,
            "ComputerName": host.name,
            "VMSnapshotId": snapshot.id if snapshot else None,
            "VMSnapshotName": snapshot.name if snapshot else None,
            "IsDeleted": False,
        },
        f"VMNetworkAdapter (Name = '{adapter.name}', VMName = '{vm.name}') [VMId = '{vm.id}']",
    )


def vm_object(host: HostModel, vm: VMRecord) -> OutputObject:
    parent = next((s for s in vm.snapshots if s.id == vm.parent_snapshot_id), None)
    rep = vm.replication
    heartbeat = vm.heartbeat(host.fabric.current())
    return OutputObject(
        _VM_TYPES,
        {
            "Name": vm.name,
            "Id": vm.id,
            "VMName": vm.name,
            "VMId": vm.id,
            "State": VM_STATE[vm.state],
            "Status": "Operating normally",
            "PrimaryStatusDescription": "OK",
            "SecondaryStatusDescription": None,
            "ReplicationState": REPLICATION_STATE[vm.replication_state],
            "ReplicationHealth": REPLICATION_HEALTH[
                rep.health if rep is not None and not vm.is_test_replica else "NotApplicable"
            ],
            "ReplicationMode": REPLICATION_MODE[vm.replication_mode],
            "ComputerName": host.name,
            "Heartbeat": None if heartbeat is None else HEARTBEAT_STATUS[heartbeat],
            "IsClustered": False,
            "NetworkAdapters": [adapter_object(host, vm, a) for a in vm.adapters],
            "HardDrives": [],
            "ParentSnapshotId": parent.id if parent else None,
            "ParentSnapshotName": parent.name if parent else None,
            "CheckpointType": CHECKPOINT_TYPE["Production"],
            "AutomaticCheckpointsEnabled": False,
            "CreationTime": vm.creation_time,
            "MemoryStartup": vm.memory_mb * 1024 * 1024,
            "MemoryAssigned": vm.memory_mb * 1024 * 1024 if vm.state == "Running" else 0,
            "ProcessorCount": vm.cpu,
            "Generation": vm.generation,
            "Version": "10.0",
            "Path": f"C:\\ProgramData\\Microsoft\\Windows\\Hyper-V\\{vm.id}",
            "IsDeleted": False,
        },
        f"VirtualMachine (Name = '{vm.name}') [Id = '{vm.id}']",
    )


def snapshot_object(host: HostModel, vm: VMRecord, snap: SnapshotRecord) -> OutputObject:
    parent = next((s for s in vm.snapshots if s.id == snap.parent_id), None)
    return OutputObject(
        _SNAP_TYPES,
        {
            "Name": snap.name,
            "Id": snap.id,
            "VMName": vm.name,
            "VMId": vm.id,
            "SnapshotType": SNAPSHOT_TYPE[snap.snapshot_type],
            "IsAutomaticCheckpoint": False,
            "CreationTime": snap.creation_time,
            "ParentSnapshotId": parent.id if parent else None,
            "ParentSnapshotName": parent.name if parent else None,
            "State": VM_STATE[snap.state],
            "Path": f"C:\\ProgramData\\Microsoft\\Windows\\Hyper-V\\{vm.id}",
            "Generation": vm.generation,
            "Version": "10.0",
            "NetworkAdapters": [adapter_object(host, vm, a, snap) for a in snap.adapters],
            "ComputerName": host.name,
            "IsDeleted": False,
        },
        f"VMSnapshot (Name = '{snap.name}', VMName = '{vm.name}') [Id = '{snap.id}']",
    )


def _replication_base(host: HostModel, vm: VMRecord) -> dict[str, Any]:
    rep = vm.replication
    assert rep is not None
    test_vm = host.test_vm_of(vm)
    return {
        "VMName": vm.name,
        "VMId": vm.id,
        "ComputerName": host.name,
        "PrimaryServerName": rep.primary_server,
        "ReplicaServerName": rep.replica_server,
        "CurrentReplicaServerName": rep.replica_server,
        "ReplicationState": REPLICATION_STATE[rep.state],
        "ReplicationHealth": REPLICATION_HEALTH[rep.health],
        "ReplicationMode": REPLICATION_MODE[rep.mode],
        "ReplicationRelationshipType": REPLICATION_RELATIONSHIP_TYPE["Simple"],
        "LastReplicationTime": rep.last_replication_time,
        "LastAppliedLogTime": rep.last_replication_time if rep.mode == "Replica" else None,
        "ReplicatedDisks": [],
        "AllowedPrimaryServer": rep.allowed_primary_server,
        "TestVirtualMachine": vm_object(host, test_vm) if test_vm else None,
        "IsDeleted": False,
    }


def replication_object(host: HostModel, vm: VMRecord) -> OutputObject:
    rep = vm.replication
    assert rep is not None
    props = _replication_base(host, vm)
    props.update(
        {
            "ReplicaServerPort": rep.port,
            "AuthenticationType": AUTHENTICATION_TYPE[rep.auth_type],
            "CertificateThumbprint": rep.certificate_thumbprint,
            "ReplicationFrequencySec": rep.frequency_sec,
            "RecoveryHistory": rep.recovery_history,
            "VSSSnapshotFrequencyHour": rep.vss_frequency_hour,
            "VSSSnapshotReplicationEnabled": rep.vss_frequency_hour > 0,
            "ExcludedDisks": [],
            "InitialReplicationStartTime": None,
            "ResynchronizeStartTime": None,
            "AutoResynchronizeEnabled": rep.auto_resynchronize_enabled,
            "CompressionEnabled": rep.compression_enabled,
            "BypassProxyServer": rep.bypass_proxy_server,
            "ReplicateHostKvpItems": rep.replicate_host_kvp_items,
            "EnableWriteOrderPreservationAcrossDisks": True,
        }
    )
    return OutputObject(_REPL_TYPES, props, f"VMReplication (VMName = '{vm.name}')")


def health_object(host: HostModel, vm: VMRecord) -> OutputObject:
    rep = vm.replication
    assert rep is not None
    props = _replication_base(host, vm)
    count = rep.successful_replications
    props.update(
        {
            "MonitoringStartTime": vm.creation_time,
            "MonitoringEndTime": host.fabric.now(),
            "AverageReplicationLatency": None,
            "MaximumReplicationLatency": None,
            "AverageReplicationSize": 1048576 if count else 0,
            "MaximumReplicationSize": 1048576 if count else 0,
            "PendingReplicationSize": 0,
            "InitialReplicationSize": 0,
            "SuccessfulReplicationCount": count,
            "MissedReplicationCount": 0,
            "ReplicationErrors": 0,
            "LastReplicationType": REPLICATION_TYPE[rep.last_replication_type],
            "FailedOverReplicationType": REPLICATION_TYPE["None"],
            "LastTestFailoverInitiatedTime": rep.last_test_failover_time,
            "LastVSSSnapshotTime": None,
            "ReplicationHealthDetails": [],
            "CurrentTask": [],
        }
    )
    return OutputObject(_HEALTH_TYPES, props, f"VMReplicationHealth (VMName = '{vm.name}')")


def switch_object(host: HostModel, switch: SwitchRecord) -> OutputObject:
    return OutputObject(
        _SWITCH_TYPES,
        {
            "Name": switch.name,
            "Id": switch.id,
            "SwitchType": SWITCH_TYPE[switch.switch_type],
            "AllowManagementOS": switch.allow_management_os,
            "NetAdapterInterfaceDescription": (
                "Microsoft Hyper-V Network Adapter" if switch.switch_type == "External" else None
            ),
            "EmbeddedTeamingEnabled": False,
            "IovEnabled": False,
            "Notes": "",
            "ComputerName": host.name,
            "IsDeleted": False,
        },
        f"VMSwitch (Name = '{switch.name}') [Id = '{switch.id}']",
    )


def internal_adapter_object(host: HostModel, switch: SwitchRecord) -> OutputObject:
    return OutputObject(
        _INTERNAL_ADAPTER_TYPES,
        {
            "Name": switch.name,
            "SwitchName": switch.name,
            "SwitchId": switch.id,
            "MacAddress": "00155D" + switch.id.hex[:6].upper(),
            "DeviceId": "{" + str(switch.id).upper() + "}",
            "AdapterId": str(switch.id).upper(),
            "IsManagementOs": True,
            "ComputerName": host.name,
            "IsDeleted": False,
        },
        f"VMInternalNetworkAdapter (Name = '{switch.name}')",
    )


def failover_object(settings: FailoverIPSettings) -> OutputObject:
    return OutputObject(
        _FAILOVER_TYPES,
        {
            "IPv4Address": settings.ipv4_address,
            "IPv4SubnetMask": settings.ipv4_subnet_mask,
            "IPv4DefaultGateway": settings.ipv4_default_gateway,
            "IPv4PreferredDNSServer": settings.ipv4_preferred_dns,
            "IPv4AlternateDNSServer": settings.ipv4_alternate_dns,
            "IPv6Address": settings.ipv6_address,
            "IPv6SubnetPrefixLength": (
                None if settings.ipv6_prefix_length is None else str(settings.ipv6_prefix_length)
            ),
            "IPv6DefaultGateway": settings.ipv6_default_gateway,
            "IPv6PreferredDNSServer": settings.ipv6_preferred_dns,
            "IPv6AlternateDNSServer": settings.ipv6_alternate_dns,
            "ProtocolIFType": 4096,
        },
        "Microsoft.HyperV.PowerShell.VMNetworkAdapterFailoverSetting",
    )


# ------------------------------------------------------------------- one invocation


@attrs.define
class _Run:
    """One cmdlet invocation on one pipeline record: bound parameters, output, errors."""

    host: HostModel
    bound: BoundCommand
    output: list[Any]
    errors: list[CmdletError]

    @property
    def info(self) -> CmdletInfo:
        return self.bound.info

    def error_record(
        self,
        error_id: str,
        message: str,
        target: object = None,
        category: str | None = None,
        *,
        terminating: bool = False,
    ) -> CmdletError:
        return CmdletError(
            self.info.fqid(error_id),
            message,
            category=category or HyperVStateError(error_id, "").category,
            target=target,
            terminating=terminating,
        )

    def fail(
        self, error_id: str, message: str, target: object = None, category: str | None = None
    ) -> CmdletError:
        """A terminating error to raise."""
        return self.error_record(error_id, message, target, category, terminating=True)

    def write_error(self, error: CmdletError) -> None:
        action = self.bound.get("ErrorAction")
        name = action.name if isinstance(action, EnumValue) else "Continue"
        if name == "Stop":
            error.terminating = True
            raise error
        if name in {"SilentlyContinue", "Ignore"}:
            return
        error.terminating = False
        self.errors.append(error)

    def error(
        self, error_id: str, message: str, target: object = None, category: str | None = None
    ) -> None:
        self.write_error(self.error_record(error_id, message, target, category))

    def state_error(self, problem: HyperVStateError) -> None:
        self.write_error(
            self.error_record(problem.error_id, problem.message, problem.target, problem.category)
        )

    def should_process(self, target: str, action: str | None = None) -> bool:
        """ShouldProcess: False under -WhatIf; the prompt fails (see the module doc).

        ``action`` defaults to the cmdlet's name, as Hyper-V's cmdlets word it.
        """
        action = action or self.info.name
        if self.bound.switch("WhatIf"):
            return False
        confirm = self.bound.get("Confirm")
        if confirm is True or (confirm is None and self.info.confirm_impact == "High"):
            raise CmdletError(
                self.info.fqid("HostFunctionNotImplemented"),
                "A command that prompts the user failed because the host program or the command "
                "type does not support user interaction. The host was attempting to request "
                "confirmation with the following message: Are you sure you want to perform this "
                f'action?\r\nPerforming the operation "{action}" on target "{target}".',
                category="NotImplemented",
                exception_type="System.Management.Automation.Host.HostException",
                target=target,
            )
        return True

    def attempt(self, operation: Callable[_P, object], *args: _P.args, **kwargs: _P.kwargs) -> bool:
        """Run one Hyper-V operation on one target; False when Hyper-V refused it.

        The refusal (:class:`HyperVStateError`) is written as that target's non-terminating
        error, so the cmdlet goes on with its next target; a :class:`CmdletError` the operation
        raises stays terminating.
        """
        try:
            operation(*args, **kwargs)
        except HyperVStateError as problem:
            self.state_error(problem)
            return False
        return True

    def passthru(
        self, make: Callable[_P, OutputObject], *args: _P.args, **kwargs: _P.kwargs
    ) -> None:
        """With ``-Passthru``, write ``make(*args, **kwargs)``: the object the cmdlet changed."""
        if self.bound.switch("Passthru"):
            self.output.append(make(*args, **kwargs))

    # ----------------------------------------------------------------- resolution

    def hosts(self) -> list[HostModel]:
        names = self.bound.get("ComputerName")
        if not names:
            return [self.host]
        found: list[HostModel] = []
        for name in names:
            if name.casefold() in {"localhost", ".", "127.0.0.1", "::1"}:
                target: HostModel | None = self.host
            else:
                target = self.host.fabric.host(name)
            if target is None:
                self.error(
                    "InvalidParameter",
                    f"Hyper-V was unable to find a virtual machine management service on "
                    f"computer '{name}'.",
                    name,
                )
            elif target not in found:
                found.append(target)
        return found

    def match_names(self, pattern: str, names: Iterable[tuple[str, Any]]) -> list[Any] | None:
        """Items whose name matches; None when ``pattern`` is literal and nothing matched."""
        if WildcardPattern.contains_wildcards(pattern):
            try:
                compiled = WildcardPattern(pattern)
            except ValueError as problem:
                raise self.fail("InvalidParameter", str(problem), pattern) from None
            return [item for name, item in names if compiled.is_match(name)]
        # literal: compared as WildcardPattern compares characters (ignoring case, no folding
        # of "ß" into "ss"), after removing backtick escapes
        literal = WildcardPattern(pattern)
        hits = [item for name, item in names if literal.is_match(name)]
        return hits or None

    def vms_by_name(
        self,
        names: Sequence[str] | None,
        miss: str = "ObjectNotFound",
    ) -> list[tuple[HostModel, VMRecord]]:
        everything = [(vm.name, (host, vm)) for host in self.hosts() for vm in host.all_vms()]
        if names is None:
            return [item for _, item in everything]
        result: list[tuple[HostModel, VMRecord]] = []
        for name in names:
            hits = self.match_names(name, everything)
            if hits is None:  # a literal name found on none of the hosts
                self.error(
                    miss,
                    f'Hyper-V was unable to find a virtual machine with name "{name}".',
                    name,
                )
                continue
            result.extend(hit for hit in hits if hit not in result)
        return result

    def vm_from_object(self, value: object) -> tuple[HostModel, VMRecord] | None:
        props = _props(value)
        for key in ("Id", "VMId"):
            ident = _as_uuid(props.get(key))
            if ident is not None and ident in self.host.vms:
                return self.host, self.host.vms[ident]
        if "Id" not in props and "VMId" not in props and isinstance(props.get("Name"), str):
            hits = [vm for vm in self.host.all_vms() if vm.name == props["Name"]]
            if len(hits) == 1:
                return self.host, hits[0]
        self.error(
            "ObjectNotFound",
            f"The virtual machine '{props.get('Name', _text(value))}' was not found on "
            f"'{self.host.name}'; it may have been deleted.",
            _text(value),
        )
        return None

    def objects(self, param: str, resolve: Callable[[object], _T | None]) -> list[_T]:
        """The objects given to ``param`` (one or an array), each resolved on this host.

        ``resolve`` writes the error for an object it cannot find and returns None; those are
        left out.
        """
        value = self.bound.get(param)
        found = [resolve(item) for item in (value if isinstance(value, list) else [value])]
        return [item for item in found if item is not None]

    def vms(
        self, names_param: str = "VMName", objects_param: str = "VM", miss: str = "ObjectNotFound"
    ) -> list[tuple[HostModel, VMRecord]]:
        """The VMs a by-name or by-object parameter set names."""
        if self.bound.has(objects_param):
            return self.objects(objects_param, self.vm_from_object)
        names = self.bound.get(names_param)
        if isinstance(names, str):
            names = [names]
        return self.vms_by_name(names, miss)

    def vm_items(
        self,
        objects_param: str,
        from_object: Callable[[object], tuple[VMRecord, _T] | None],
        items_of: Callable[[VMRecord], Sequence[tuple[str, _T]]],
        patterns: Sequence[str] | None,
        not_found: str,
    ) -> list[tuple[HostModel, VMRecord, _T]]:
        """Items of VMs (adapters, checkpoints) given as objects, or named per VM.

        With ``objects_param`` bound, its objects resolved by ``from_object``. Otherwise each VM
        of :meth:`vms` contributes its named ``items_of(vm)`` that match ``patterns`` (all of
        them when None), resolved as VM names are: a literal name that matches nothing writes
        an ``ObjectNotFound`` error, ``not_found`` formatted with ``{name}`` and ``{vm}``.
        """
        if self.bound.has(objects_param):
            return [(self.host, vm, item) for vm, item in self.objects(objects_param, from_object)]
        result: list[tuple[HostModel, VMRecord, _T]] = []
        for host, vm in self.vms():
            named = items_of(vm)
            if patterns is None:
                result.extend((host, vm, item) for _, item in named)
                continue
            for pattern in patterns:
                hits = self.match_names(pattern, named)
                if hits is None:
                    self.error(
                        "ObjectNotFound", not_found.format(name=pattern, vm=vm.name), pattern
                    )
                    continue
                result.extend((host, vm, hit) for hit in hits)
        return result

    def snapshot_from_object(self, value: object) -> tuple[VMRecord, SnapshotRecord] | None:
        ident = _as_uuid(_props(value).get("Id"))
        found = self.host.find_snapshot(ident) if ident is not None else None
        if found is None:
            self.not_held(value, f"the checkpoint '{_props(value).get('Name', '')}'")
        return found

    def replication_from_object(self, value: object) -> tuple[HostModel, VMRecord] | None:
        props = _props(value)
        ident = _as_uuid(props.get("VMId"))
        if ident is not None and ident in self.host.vms:
            return self.host, self.host.vms[ident]
        self.not_held(value, f"the replication of virtual machine '{props.get('VMName', '')}'")
        return None

    def adapter_from_object(self, value: object) -> tuple[VMRecord, NetworkAdapterRecord] | None:
        props = _props(value)
        vm_id = _as_uuid(props.get("VMId"))
        vm = self.host.vms.get(vm_id) if vm_id is not None else None
        if vm is not None:
            for adapter in vm.adapters:
                if adapter.id == props.get("Id") or (
                    "Id" not in props and adapter.name == props.get("Name")
                ):
                    return vm, adapter
        self.not_held(
            value,
            f"the network adapter '{props.get('Name', '')}' of virtual machine "
            f"'{props.get('VMName', '')}'",
        )
        return None

    def not_held(self, value: object, what: str) -> None:
        """Write that ``value``, an object given back by the client, is not on this host."""
        self.error(
            "ObjectNotFound",
            f"Hyper-V was unable to find {what} on '{self.host.name}'.",
            _text(value),
        )


def _props(value: object) -> Mapping[str, Any]:
    if isinstance(value, InputObject | OutputObject):
        return value.properties
    return {}


def _text(value: object) -> str:
    if isinstance(value, InputObject | OutputObject):
        return value.to_string
    return str(value)


def _as_uuid(value: object) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return None


# ----------------------------------------------------------------- cmdlet bodies


# Items of a VM by name, for _Run.vm_items, and what a literal name that matches none says.


def _adapters(vm: VMRecord) -> list[tuple[str, NetworkAdapterRecord]]:
    return [(a.name, a) for a in vm.adapters]


def _synthetic_adapters(vm: VMRecord) -> list[tuple[str, NetworkAdapterRecord]]:
    return [(a.name, a) for a in vm.adapters if not a.is_legacy]


_NO_ADAPTER = (
    "Hyper-V was unable to find a network adapter named \"{name}\" on virtual machine '{vm}'."
)


def _snapshots(vm: VMRecord) -> list[tuple[str, SnapshotRecord]]:
    return [(s.name, s) for s in vm.snapshots]


_NO_SNAPSHOT = "Hyper-V was unable to find a checkpoint named \"{name}\" of virtual machine '{vm}'."


def get_vm(run: _Run) -> None:
    b = run.bound
    if b.parameter_set == "ClusterObject":
        run.error(
            "InvalidParameter",
            "The cluster object is not a virtual machine cluster resource: this host is not "
            "clustered.",
            _text(b.get("ClusterObject")),
        )
        return
    if b.parameter_set == "Id" and b.has("Id"):
        ident = b.get("Id")
        for host in run.hosts():
            if ident in host.vms:
                run.output.append(vm_object(host, host.vms[ident]))
                return
        raise run.fail(
            "ObjectNotFound",
            f'Hyper-V was unable to find a virtual machine with id "{ident}".',
            str(ident),
        )
    for host, vm in run.vms_by_name(b.get("Name"), miss="InvalidParameter"):
        run.output.append(vm_object(host, vm))


def start_vm(run: _Run) -> None:
    for host, vm in run.vms("Name"):
        if run.should_process(vm.name) and run.attempt(host.start_vm, vm):
            run.passthru(vm_object, host, vm)


def stop_vm(run: _Run) -> None:
    save = run.bound.switch("Save")
    for host, vm in run.vms("Name"):
        if run.should_process(vm.name) and run.attempt(host.stop_vm, vm, save=save):
            run.passthru(vm_object, host, vm)


def get_vm_network_adapter(run: _Run) -> None:
    b = run.bound
    items: list[tuple[str, OutputObject]] = []
    if b.parameter_set in {"ManagementOS", "All"}:
        for host in run.hosts():
            for switch in host.switches.values():
                if switch.allow_management_os and (
                    not b.has("SwitchName")
                    or switch.name.casefold() == b.get("SwitchName").casefold()
                ):
                    items.append((switch.name, internal_adapter_object(host, switch)))
    if b.parameter_set == "VMSnapshot":
        found = run.snapshot_from_object(b.get("VMSnapshot"))
        if found is not None:
            vm, snap = found
            items.extend((a.name, adapter_object(run.host, vm, a, snap)) for a in snap.adapters)
    elif b.parameter_set != "ManagementOS":
        pairs = run.vms_by_name(None) if b.parameter_set == "All" else run.vms()
        legacy = b.get("IsLegacy")
        for host, vm in pairs:
            for adapter in vm.adapters:
                if legacy is None or adapter.is_legacy == legacy:
                    items.append((adapter.name, adapter_object(host, vm, adapter)))
    if b.has("Name"):
        hits = run.match_names(b.get("Name"), items) or []
        if not hits:
            raise run.fail(
                "ObjectNotFound",
                f'Hyper-V was unable to find a network adapter named "{b.get("Name")}".',
                b.get("Name"),
            )
        run.output.extend(hits)
    else:
        run.output.extend(obj for _, obj in items)


def connect_vm_network_adapter(run: _Run) -> None:
    b = run.bound
    targets = run.vm_items(
        "VMNetworkAdapter", run.adapter_from_object, _adapters, b.get("Name"), _NO_ADAPTER
    )
    if b.parameter_set.endswith("UseAutomaticConnection"):
        for _, vm, adapter in targets:
            run.error(
                "InvalidParameter",
                f"Cannot connect '{adapter.name}' of '{vm.name}' automatically: the adapter is "
                "not assigned to an Ethernet resource pool.",
                adapter.name,
            )
        return
    if b.has("VMSwitch"):
        props = _props(b.get("VMSwitch"))
        ident = _as_uuid(props.get("Id"))
        switch = run.host.switches.get(ident) if ident is not None else None
        if switch is None and isinstance(props.get("Name"), str):
            switch = run.host.find_switch(props["Name"])
        if switch is None:
            raise run.fail(
                "InvalidParameter",
                f"The virtual switch '{props.get('Name', '')}' was not found on '{run.host.name}'.",
                _text(b.get("VMSwitch")),
            )
        switch_name = switch.name
    else:
        switch_name = b.get("SwitchName")
    for host, vm, adapter in targets:
        if run.should_process(f"{vm.name}: {adapter.name}") and run.attempt(
            host.connect_adapter, adapter, switch_name
        ):
            run.passthru(adapter_object, host, vm, adapter)


def get_vm_switch(run: _Run) -> None:
    b = run.bound
    kinds = {k.name for k in b.get("SwitchType") or []}
    pools = b.get("ResourcePoolName")
    for host in run.hosts():
        switches = sorted(host.switches.values(), key=lambda s: s.name.casefold())
        if b.parameter_set == "Id" and b.has("Id"):
            chosen = []
            for ident in b.get("Id"):
                if ident not in host.switches:
                    raise run.fail(
                        "ObjectNotFound",
                        f'Hyper-V was unable to find a virtual switch with id "{ident}".',
                        str(ident),
                    )
                chosen.append(host.switches[ident])
        elif b.has("Name"):
            chosen = run.match_names(b.get("Name"), [(s.name, s) for s in switches]) or []
            if not chosen and not WildcardPattern.contains_wildcards(b.get("Name")):
                run.error(
                    "InvalidParameter",
                    f'Hyper-V was unable to find a virtual switch with name "{b.get("Name")}".',
                    b.get("Name"),
                )
        else:
            chosen = switches
        for switch in chosen:
            if kinds and switch.switch_type not in kinds:
                continue
            if pools:  # resource pools are not modelled: no switch belongs to one
                continue
            run.output.append(switch_object(host, switch))


_FREQUENCIES = (30, 300, 900)


def _validate_replication_settings(run: _Run, vm: VMRecord, auth: str | None) -> None:
    b = run.bound
    if b.has("ReplicationFrequencySec") and b.get("ReplicationFrequencySec") not in _FREQUENCIES:
        raise run.fail(
            "InvalidParameter",
            f"The replication frequency {b.get('ReplicationFrequencySec')} is not valid: use 30, "
            "300 or 900 seconds.",
            vm.name,
        )
    history = b.get("RecoveryHistory")
    if history is not None and not 0 <= history <= 24:
        raise run.fail(
            "InvalidParameter",
            f"The number of recovery points {history} is not valid: use 0 to 24.",
            vm.name,
        )
    if b.get("VSSSnapshotFrequencyHour") and not (
        history or (vm.replication is not None and vm.replication.recovery_history)
    ):
        raise run.fail(
            "InvalidParameter",
            "VSSSnapshotFrequencyHour requires RecoveryHistory greater than 0.",
            vm.name,
        )
    thumbprint = b.get("CertificateThumbprint")
    if (
        auth == "Certificate"
        and not thumbprint
        and not (vm.replication is not None and vm.replication.certificate_thumbprint)
    ):
        raise run.fail(
            "InvalidParameter",
            "Certificate authentication requires -CertificateThumbprint.",
            vm.name,
        )
    if auth == "Kerberos" and thumbprint:
        raise run.fail(
            "InvalidParameter",
            "-CertificateThumbprint applies only to Certificate authentication.",
            vm.name,
        )


def _is_ip_literal(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def enable_vm_replication(run: _Run) -> None:
    b = run.bound
    as_replica_set = b.parameter_set.endswith("_AsReplica")
    for host, vm in run.vms():
        operation: Callable[[], object]
        if as_replica_set:
            if not b.switch("AsReplica"):
                raise run.fail(
                    "InvalidParameter",
                    "-AllowedPrimaryServer applies only with -AsReplica; to enable replication "
                    "as a primary give -ReplicaServerName, -ReplicaServerPort and "
                    "-AuthenticationType.",
                    vm.name,
                )
            operation = partial(host.enable_as_replica, vm, b.get("AllowedPrimaryServer"))
        else:
            server = b.get("ReplicaServerName")
            if _is_ip_literal(server):
                raise run.fail(
                    "InvalidParameter",
                    f"The Replica server name '{server}' is not valid: give a host name (FQDN), "
                    "not an IP address.",
                    server,
                )
            auth = b.get("AuthenticationType").name
            _validate_replication_settings(run, vm, auth)
            operation = partial(
                host.enable_replication,
                vm,
                replica_server=server,
                port=b.get("ReplicaServerPort"),
                auth_type=auth,
                certificate_thumbprint=b.get("CertificateThumbprint"),
                frequency_sec=b.get("ReplicationFrequencySec", 300),
                recovery_history=b.get("RecoveryHistory", 0),
                vss_frequency_hour=b.get("VSSSnapshotFrequencyHour", 0),
                compression_enabled=b.get("CompressionEnabled", True),
                bypass_proxy_server=b.get("BypassProxyServer", False),
                replicate_host_kvp_items=b.get("ReplicateHostKvpItems", True),
                auto_resynchronize_enabled=b.get("AutoResynchronizeEnabled", False),
            )
        if run.should_process(vm.name) and run.attempt(operation):
            run.passthru(replication_object, host, vm)


def _replication_targets(run: _Run) -> list[tuple[HostModel, VMRecord]]:
    if run.bound.has("VMReplication"):
        return run.objects("VMReplication", run.replication_from_object)
    return run.vms()


def start_vm_initial_replication(run: _Run) -> None:
    for host, vm in _replication_targets(run):
        if run.should_process(vm.name) and run.attempt(_start_initial_replication, run, host, vm):
            run.passthru(replication_object, host, vm)


def _start_initial_replication(run: _Run, host: HostModel, vm: VMRecord) -> None:
    """Start (or schedule, or stage with -DestinationPath) one VM's initial replication."""
    b = run.bound
    start: datetime | None = b.get("InitialReplicationStartTime")
    now = host.fabric.now()
    if start is not None and start > now + timedelta(days=7):
        raise run.fail(
            "InvalidParameter",
            "The initial replication can be scheduled at most 7 days ahead.",
            vm.name,
        )
    if b.switch("UseBackup"):
        raise HyperVStateError(
            "InvalidState",
            f"Initial replication of '{vm.name}' from a backup needs a Replica virtual "
            "machine prepared with Enable-VMReplication -AsReplica.",
            vm.name,
        )
    if start is not None and start > now:
        _check_initial_ready(vm)  # scheduled: state stays ReadyForInitialReplication
    elif b.has("DestinationPath"):
        _check_initial_ready(vm)
        with host.lock:
            assert vm.replication is not None
            vm.replication.state = "InitialReplicationInProgress"
    else:
        host.start_initial_replication(vm)


def _check_initial_ready(vm: VMRecord) -> None:
    rep = vm.replication
    if rep is None or rep.mode != "Primary" or rep.state != "ReadyForInitialReplication":
        raise HyperVStateError.wrong_state(vm, vm.replication_state)


def _replication_listing(run: _Run, measure: bool) -> None:
    b = run.bound
    for param, bad in (("ReplicationState", "Disabled"), ("ReplicationMode", "None")):
        value = b.get(param)
        if value is not None and value.name == bad:
            raise run.fail(
                "InvalidState",
                "Virtual machines without replication cannot be listed with this cmdlet; use "
                "Get-VM.",
                value.name,
            )
    relationship = b.get("ReplicationRelationshipType")
    if relationship is not None and relationship.name == "Extended":
        return  # extended (chained) replication is not modelled
    make = health_object if measure else replication_object
    named = b.has("VM") or b.has("VMName")
    pairs = (
        run.vms()
        if named
        else [(host, vm) for host in run.hosts() for vm in host.iter_replications()]
    )
    for host, vm in pairs:
        if vm.replication is None or vm.is_test_replica:
            message = f"Replication is not enabled for virtual machine '{vm.name}'."
            if measure:
                run.error("ObjectNotFound", message, vm.name)
                continue
            raise run.fail("OperationFailed", message, vm.name)
        if not _matches_filters(b, vm):
            continue
        run.output.append(make(host, vm))


def _server_matches(pattern: str, value: str) -> bool:
    compiled = WildcardPattern(pattern)
    return compiled.is_match(value) or compiled.is_match(value.split(".", 1)[0])


def _matches_filters(b: BoundCommand, vm: VMRecord) -> bool:
    rep = vm.replication
    assert rep is not None
    checks: list[tuple[str, Callable[[Any], bool]]] = [
        ("PrimaryServerName", lambda v: _server_matches(v, rep.primary_server)),
        ("ReplicaServerName", lambda v: _server_matches(v, rep.replica_server)),
        ("ReplicationHealth", lambda v: v.name == rep.health),
        ("ReplicationMode", lambda v: v.name == rep.mode),
        ("ReplicationState", lambda v: v.name == rep.state),
        ("TrustGroup", lambda v: False),  # no authorization entries are modelled
    ]
    return all(check(b.get(name)) for name, check in checks if b.has(name))


def get_vm_replication(run: _Run) -> None:
    _replication_listing(run, measure=False)


def measure_vm_replication(run: _Run) -> None:
    _replication_listing(run, measure=True)


_SETTING_FIELDS = {
    "ReplicationFrequencySec": "frequency_sec",
    "RecoveryHistory": "recovery_history",
    "VSSSnapshotFrequencyHour": "vss_frequency_hour",
    "CompressionEnabled": "compression_enabled",
    "BypassProxyServer": "bypass_proxy_server",
    "ReplicateHostKvpItems": "replicate_host_kvp_items",
    "AutoResynchronizeEnabled": "auto_resynchronize_enabled",
    "ReplicaServerPort": "port",
    "CertificateThumbprint": "certificate_thumbprint",
}


def set_vm_replication(run: _Run) -> None:
    b = run.bound
    if b.get("VSSSnapshotFrequencyHour") and b.switch("DisableVSSSnapshotReplication"):
        raise run.fail(
            "InvalidParameter",
            "-VSSSnapshotFrequencyHour conflicts with -DisableVSSSnapshotReplication.",
        )
    for host, vm in _replication_targets(run):
        auth = b.get("AuthenticationType")
        auth_name = (
            auth.name
            if auth is not None
            else (vm.replication.auth_type if vm.replication else None)
        )
        operation: Callable[[], object]
        if b.switch("Reverse"):
            if b.has("ReplicaServerName") and _is_ip_literal(b.get("ReplicaServerName")):
                raise run.fail(
                    "InvalidParameter",
                    f"The Replica server name '{b.get('ReplicaServerName')}' is not valid: give a "
                    "host name.",
                    b.get("ReplicaServerName"),
                )
            operation = partial(
                host.reverse_replication,
                vm,
                replica_server=b.get("ReplicaServerName"),
                port=b.get("ReplicaServerPort"),
                auth_type=auth.name if auth is not None else None,
                certificate_thumbprint=b.get("CertificateThumbprint"),
            )
        elif b.switch("AsReplica"):
            operation = partial(host.set_as_replica, vm, b.get("AllowedPrimaryServer"))
        else:
            _validate_replication_settings(run, vm, auth_name if auth is not None else None)
            changes: dict[str, object] = {
                field: b.get(param) for param, field in _SETTING_FIELDS.items() if b.has(param)
            }
            if auth is not None:
                changes["auth_type"] = auth.name
            if b.switch("DisableVSSSnapshotReplication"):
                changes["vss_frequency_hour"] = 0
            if b.has("ReplicaServerName") and vm.replication is not None:
                target = host.fabric.host(b.get("ReplicaServerName"))
                current = host.fabric.host(vm.replication.replica_server)
                if target is None or target is not current:
                    run.error(
                        "OperationFailed",
                        f"Hyper-V cannot move the replica of '{vm.name}' to "
                        f"'{b.get('ReplicaServerName')}' (only renaming the current Replica "
                        "server is simulated).",
                        vm.name,
                    )
                    continue
                changes["replica_server"] = b.get("ReplicaServerName")
            operation = partial(host.set_replication, vm, **changes)
        if run.should_process(vm.name) and run.attempt(operation):
            run.passthru(replication_object, host, vm)


def get_vm_snapshot(run: _Run) -> None:
    b = run.bound
    pairs: list[tuple[VMRecord, SnapshotRecord]] = []
    filtered = b.has("Name") or b.has("SnapshotType")
    if b.parameter_set == "Id":
        found = run.host.find_snapshot(b.get("Id"))
        if found is None:
            raise run.fail(
                "ObjectNotFound",
                f'Hyper-V was unable to find a checkpoint with id "{b.get("Id")}".',
                str(b.get("Id")),
            )
        pairs.append(found)
        filtered = True
    elif b.parameter_set in {"Parent", "Child"}:
        filtered = True
        source = b.get("ParentOf") if b.parameter_set == "Parent" else b.get("ChildOf")
        props = _props(source)
        ident = _as_uuid(props.get("Id"))
        if b.parameter_set == "Parent":
            vm: VMRecord | None
            parent_id: uuid.UUID | None
            if ident is not None and ident in run.host.vms:
                vm = run.host.vms[ident]
                parent_id = vm.parent_snapshot_id
            else:
                found = run.host.find_snapshot(ident) if ident else None
                vm, parent_id = (found[0], found[1].parent_id) if found else (None, None)
            if vm is not None and parent_id is not None:
                pairs.extend((vm, s) for s in vm.snapshots if s.id == parent_id)
        else:
            found = run.host.find_snapshot(ident) if ident else None
            if found is not None:
                pairs.extend((found[0], s) for s in found[0].snapshots if s.parent_id == ident)
    else:
        for _, vm in run.vms():
            pairs.extend((vm, s) for s in vm.snapshots)
    if b.has("SnapshotType"):
        pairs = [p for p in pairs if p[1].snapshot_type == b.get("SnapshotType").name]
    if b.has("Name"):
        pairs = run.match_names(b.get("Name"), [(s.name, (vm, s)) for vm, s in pairs]) or []
    if not pairs and filtered:
        raise run.fail(
            "ObjectNotFound",
            "Hyper-V was unable to find a checkpoint matching the given criteria.",
            b.get("Name"),
        )
    pairs.sort(key=lambda p: p[1].creation_time)
    run.output.extend(snapshot_object(run.host, vm, s) for vm, s in pairs)


def checkpoint_vm(run: _Run) -> None:
    b = run.bound
    for host, vm in run.vms("Name"):
        if not run.should_process(vm.name):
            continue
        try:
            snap = host.checkpoint(vm, b.get("SnapshotName"))
        except HyperVStateError as problem:
            run.state_error(problem)
            continue
        run.passthru(snapshot_object, host, vm, snap)


def remove_vm_snapshot(run: _Run) -> None:
    b = run.bound
    doomed = run.vm_items(
        "VMSnapshot",
        run.snapshot_from_object,
        _snapshots,
        b.get("Name"),
        _NO_SNAPSHOT,
    )
    for host, vm, snap in doomed:
        if not any(s.id == snap.id for s in vm.snapshots):
            continue  # already removed with a subtree
        if not run.should_process(snap.name):
            continue
        obj = snapshot_object(host, vm, snap)
        host.remove_snapshot(vm, snap, subtree=b.switch("IncludeAllChildSnapshots"))
        if b.switch("Passthru"):
            run.output.append(obj)


def start_vm_failover(run: _Run) -> None:
    b = run.bound
    test = b.switch("AsTest")
    if b.parameter_set.startswith("VMSnapshot"):
        found = run.snapshot_from_object(b.get("VMRecoverySnapshot"))
        if found is None:
            return
        targets: list[tuple[HostModel, VMRecord, SnapshotRecord | None]] = [
            (run.host, found[0], found[1])
        ]
    else:
        targets = [(host, vm, None) for host, vm in run.vms()]
    for host, vm, point in targets:
        if not run.should_process(vm.name):
            continue
        try:
            mode = vm.replication_mode
            if mode in {"None", "TestReplica"}:
                raise HyperVStateError.not_applicable(vm, mode)
            if mode == "Primary":
                if test or point is not None:
                    raise HyperVStateError(
                        "InvalidParameter",
                        f"'Prepare' is the only valid parameter for the primary virtual machine "
                        f"'{vm.name}'.",
                        vm.name,
                    )
                if not b.switch("Prepare"):
                    raise HyperVStateError(
                        "InvalidParameter",
                        f"'Prepare' is not provided: the virtual machine '{vm.name}' is a primary "
                        "virtual machine; use -Prepare for a planned failover.",
                        vm.name,
                    )
                host.prepare_failover(vm)
                result = vm
            elif b.switch("Prepare"):
                raise HyperVStateError(
                    "InvalidParameter",
                    f"'Prepare' applies only to a primary virtual machine; '{vm.name}' is a "
                    "Replica.",
                    vm.name,
                )
            elif test:
                result = host.test_failover(vm, point)
            else:
                host.failover(vm, point)
                result = vm
        except HyperVStateError as problem:
            run.state_error(problem)
            continue
        if test or b.switch("Passthru"):
            run.output.append(vm_object(host, result))


def stop_vm_failover(run: _Run) -> None:
    for host, vm in run.vms():
        if run.should_process(vm.name) and run.attempt(host.stop_failover, vm):
            run.passthru(vm_object, host, vm)


def complete_vm_failover(run: _Run) -> None:
    for host, vm in run.vms():
        if run.should_process(vm.name) and run.attempt(host.complete_failover, vm):
            run.passthru(vm_object, host, vm)


def _failover_adapters(run: _Run) -> list[tuple[HostModel, VMRecord, NetworkAdapterRecord]]:
    """The adapters a *-VMNetworkAdapterFailoverConfiguration names (synthetic ones only)."""
    name = run.bound.get("VMNetworkAdapterName")
    return run.vm_items(
        "VMNetworkAdapter",
        run.adapter_from_object,
        _synthetic_adapters,
        None if name is None else [name],
        _NO_ADAPTER,
    )


_IPV4_FIELDS = {
    "IPv4Address": "ipv4_address",
    "IPv4SubnetMask": "ipv4_subnet_mask",
    "IPv4DefaultGateway": "ipv4_default_gateway",
    "IPv4PreferredDNSServer": "ipv4_preferred_dns",
    "IPv4AlternateDNSServer": "ipv4_alternate_dns",
}
_IPV6_FIELDS = {
    "IPv6Address": "ipv6_address",
    "IPv6SubnetPrefixLength": "ipv6_prefix_length",
    "IPv6DefaultGateway": "ipv6_default_gateway",
    "IPv6PreferredDNSServer": "ipv6_preferred_dns",
    "IPv6AlternateDNSServer": "ipv6_alternate_dns",
}


def _validate_failover_ip(run: _Run) -> None:
    b = run.bound
    given4 = [p for p in _IPV4_FIELDS if b.has(p)]
    given6 = [p for p in _IPV6_FIELDS if b.has(p)]
    if not (
        given4
        or given6
        or b.switch("ClearFailoverIPv4Settings")
        or b.switch("ClearFailoverIPv6Settings")
    ):
        raise run.fail("OperationFailed", "No failover IP setting was given; nothing changed.")
    for clear, given, family in (
        ("ClearFailoverIPv4Settings", given4, "IPv4"),
        ("ClearFailoverIPv6Settings", given6, "IPv6"),
    ):
        if b.switch(clear) and given:
            raise run.fail(
                "InvalidParameter",
                f"-{clear} conflicts with the {family} settings given ({', '.join(given)}).",
            )
    if b.has("IPv4Address") != b.has("IPv4SubnetMask"):
        raise run.fail("InvalidParameter", "IPv4Address and IPv4SubnetMask must be given together.")
    if b.has("IPv6Address") != b.has("IPv6SubnetPrefixLength"):
        raise run.fail(
            "InvalidParameter", "IPv6Address and IPv6SubnetPrefixLength must be given together."
        )
    for param in given4:
        try:
            ipaddress.IPv4Address(b.get(param))
        except ValueError:
            raise run.fail(
                "InvalidParameter", f"'{b.get(param)}' is not a valid IPv4 address ({param})."
            ) from None
    for param in given6:
        if param == "IPv6SubnetPrefixLength":
            if not 0 <= b.get(param) <= 128:
                raise run.fail(
                    "InvalidParameter", f"'{b.get(param)}' is not a valid prefix length."
                )
            continue
        try:
            ipaddress.IPv6Address(b.get(param))
        except ValueError:
            raise run.fail(
                "InvalidParameter", f"'{b.get(param)}' is not a valid IPv6 address ({param})."
            ) from None


def set_vm_network_adapter_failover_configuration(run: _Run) -> None:
    b = run.bound
    _validate_failover_ip(run)
    for host, vm, adapter in _failover_adapters(run):
        if vm.replication is None or vm.is_test_replica:
            run.state_error(HyperVStateError.not_enabled(vm))
            continue
        if not run.should_process(f"{vm.name}: {adapter.name}"):
            continue
        with host.lock:
            settings = adapter.failover
            if b.switch("ClearFailoverIPv4Settings"):
                for field in _IPV4_FIELDS.values():
                    setattr(settings, field, None)
            if b.switch("ClearFailoverIPv6Settings"):
                for field in _IPV6_FIELDS.values():
                    setattr(settings, field, None)
            for param, field in {**_IPV4_FIELDS, **_IPV6_FIELDS}.items():
                if b.has(param):
                    setattr(settings, field, b.get(param))
            snapshot = attrs.evolve(settings)
        run.passthru(failover_object, snapshot)


def get_vm_network_adapter_failover_configuration(run: _Run) -> None:
    for host, _, adapter in _failover_adapters(run):
        with host.lock:
            settings = attrs.evolve(adapter.failover)
        if not settings.is_empty:
            run.output.append(failover_object(settings))


# ------------------------------------------------------------ Get-CimInstance (two classes)

#: The WMI namespace of Hyper-V's provider, the only one the simulated host serves.
CIM_NAMESPACE = "root/virtualization/v2"
_CIM = "Microsoft.Management.Infrastructure.CimInstance"


def _cim_types(class_name: str) -> tuple[str, ...]:
    return (f"{_CIM}#{CIM_NAMESPACE}/{class_name}", f"{_CIM}#{class_name}", _CIM, "System.Object")


def guest_network_objects(host: HostModel, vm: VMRecord) -> list[OutputObject]:
    """Msvm_GuestNetworkAdapterConfiguration of each synthetic NIC of a booted guest: what its
    data exchange service reports (addresses, subnets, gateways, DNS servers, DHCP)."""
    if not vm.booted(host.fabric.current()):
        return []
    found = []
    for adapter in vm.adapters:
        if adapter.is_legacy:
            continue
        config = adapter.reported_config
        interfaces = [ipaddress.ip_interface(text) for text in config.addresses]
        families = {interface.version for interface in interfaces}
        protocol = {frozenset({4}): 4096, frozenset({6}): 4097, frozenset({4, 6}): 4098}.get(
            frozenset(families), 0
        )
        device = adapter.id.split("\\", 1)[-1]
        instance = f"Microsoft:GuestNetwork\\{str(vm.id).upper()}\\{device}"
        found.append(
            OutputObject(
                _cim_types("Msvm_GuestNetworkAdapterConfiguration"),
                {
                    "InstanceID": instance,
                    "ProtocolIFType": protocol,
                    "DHCPEnabled": config.dhcp,
                    "IPAddresses": [str(i.ip) for i in interfaces],
                    "Subnets": [
                        str(i.netmask) if i.version == 4 else str(i.network.prefixlen)
                        for i in interfaces
                    ],
                    "DefaultGateways": list(config.gateways),
                    "DNSServers": list(config.dns),
                    "IPAddressOrigins": [3 if config.dhcp else 2 for _ in interfaces],
                    "PSComputerName": host.name,
                },
                f'Msvm_GuestNetworkAdapterConfiguration (InstanceID = "{instance}")',
            )
        )
    return found


def _kvp_item(name: str, data: str) -> str:
    """A guest intrinsic KVP item as Hyper-V's provider writes it: an embedded CIM instance."""
    return (
        '<INSTANCE CLASSNAME="Msvm_KvpExchangeDataItem">'
        f'<PROPERTY NAME="Data" TYPE="string"><VALUE>{escape(data)}</VALUE></PROPERTY>'
        f'<PROPERTY NAME="Name" TYPE="string"><VALUE>{escape(name)}</VALUE></PROPERTY>'
        '<PROPERTY NAME="Source" TYPE="uint16"><VALUE>2</VALUE></PROPERTY>'
        "</INSTANCE>"
    )


def kvp_objects(host: HostModel, vm: VMRecord) -> list[OutputObject]:
    """Msvm_KvpExchangeComponent of a VM: the guest's intrinsic items (OSName among them) while
    a guest with integration services runs, none otherwise."""
    items: list[str] = []
    if vm.booted(host.fabric.current()) and vm.guest_os is not None:
        items = [
            _kvp_item("FullyQualifiedDomainName", vm.name),
            _kvp_item("OSName", vm.guest_os),
            _kvp_item("IntegrationServicesVersion", "10.0.20348.1"),
        ]
    return [
        OutputObject(
            _cim_types("Msvm_KvpExchangeComponent"),
            {
                "SystemName": str(vm.id).upper(),
                "ElementName": "Key-Value Pair Exchange",
                "EnabledState": 2,
                "GuestIntrinsicExchangeItems": items,
                "PSComputerName": host.name,
            },
            f'Msvm_KvpExchangeComponent (SystemName = "{str(vm.id).upper()}")',
        )
    ]


_CIM_CLASSES: dict[str, Callable[[HostModel, VMRecord], list[OutputObject]]] = {
    "msvm_guestnetworkadapterconfiguration": guest_network_objects,
    "msvm_kvpexchangecomponent": kvp_objects,
}


def get_cim_instance(run: _Run) -> None:
    """Get-CimInstance of the two Hyper-V classes the backend reads, in Hyper-V's namespace."""
    b = run.bound
    namespace = str(b.get("Namespace") or "root/cimv2").replace("\\", "/").strip("/")
    class_name = str(b.get("ClassName"))
    if namespace.casefold() != CIM_NAMESPACE:
        run.error("HRESULT 0x8004100e", "Invalid namespace ", namespace, "ObjectNotFound")
        return
    produce = _CIM_CLASSES.get(class_name.casefold())
    if produce is None:
        run.error("HRESULT 0x80041010", "Invalid class ", class_name, "ObjectNotFound")
        return
    for host in run.hosts():
        with host.lock:
            for vm in sorted(host.vms.values(), key=lambda record: record.creation_time):
                run.output.extend(produce(host, vm))


_BODIES: dict[str, Callable[[_Run], None]] = {
    "get-vm": get_vm,
    "start-vm": start_vm,
    "stop-vm": stop_vm,
    "get-vmnetworkadapter": get_vm_network_adapter,
    "connect-vmnetworkadapter": connect_vm_network_adapter,
    "get-vmswitch": get_vm_switch,
    "enable-vmreplication": enable_vm_replication,
    "start-vminitialreplication": start_vm_initial_replication,
    "get-vmreplication": get_vm_replication,
    "set-vmreplication": set_vm_replication,
    "measure-vmreplication": measure_vm_replication,
    "get-vmsnapshot": get_vm_snapshot,
    "checkpoint-vm": checkpoint_vm,
    "remove-vmsnapshot": remove_vm_snapshot,
    "start-vmfailover": start_vm_failover,
    "stop-vmfailover": stop_vm_failover,
    "complete-vmfailover": complete_vm_failover,
    "set-vmnetworkadapterfailoverconfiguration": set_vm_network_adapter_failover_configuration,
    "get-vmnetworkadapterfailoverconfiguration": get_vm_network_adapter_failover_configuration,
    "get-ciminstance": get_cim_instance,
}


def _command_not_found(command: str) -> CmdletError:
    return CmdletError(
        "CommandNotFoundException",
        f"The term '{command}' is not recognized as the name of a cmdlet, function, script file, "
        "or operable program. Check the spelling of the name, or if a path was included, verify "
        "that the path is correct and try again.",
        category="ObjectNotFound",
        exception_type="System.Management.Automation.CommandNotFoundException",
        target=command,
    )


class HyperVCommandHost:
    """Runs the 19 Hyper-V cmdlets (and Get-CimInstance of two Hyper-V WMI classes) against one
    :class:`HostModel` (a :class:`CommandHost`).

    Command names are case-insensitive, with or without the ``Hyper-V\\`` module prefix; an
    unknown command raises ``CommandNotFoundException`` as PowerShell does. Each call holds the
    fabric lock while it runs, so concurrent pipelines see each cmdlet as atomic.

    Fault hooks and the call log live one layer up, on :class:`~.host.HyperVHost` (``faults``,
    ``calls``), where they act on every transport alike.
    """

    def __init__(self, model: HostModel) -> None:
        self.model = model

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(info.name for info in CMDLETS.values())

    @staticmethod
    def _key(command: str) -> str:
        return command.strip().casefold().removeprefix("hyper-v\\")

    def _lookup(self, command: str) -> tuple[CmdletInfo, Binder, Callable[[_Run], None]]:
        key = self._key(command)
        if key not in CMDLETS:
            raise _command_not_found(command)
        return CMDLETS[key], _BINDERS[key], _BODIES[key]

    def validate(self, command: str, arguments: Sequence[tuple[str | None, Any]]) -> None:
        """Bind named and positional arguments only (what PowerShell checks before input).

        Raises the binding error a downstream command of a pipeline reports even when no input
        reaches it.
        """
        _, binder, _ = self._lookup(command)
        binder.bind_arguments(arguments)

    def invoke(
        self,
        command: str,
        arguments: Sequence[tuple[str | None, Any]],
        input_objects: Sequence[Any] = (),
    ) -> CommandResult:
        _info, binder, body = self._lookup(command)
        output: list[Any] = []
        errors: list[CmdletError] = []
        records: Sequence[Any] = input_objects if input_objects else (NO_INPUT,)
        if input_objects:
            binder.bind_arguments(arguments)  # static binding errors stop before any record
        with self.model.lock:
            for record in records:
                try:
                    bound = binder.bind(arguments, record)
                except CmdletError as problem:
                    if problem.terminating:
                        raise
                    errors.append(problem)
                    continue
                body(_Run(self.model, bound, output, errors))
        return CommandResult(tuple(output), tuple(errors))
