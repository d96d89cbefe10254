"""Reading one site: every host, datastore, port group and VM of it in one PropertyCollector read.

A site is a vCenter connection, scoped to one datacenter when the settings name one. The read is a
ContainerView over the datacenter with explicit property paths for each type: three round trips
whatever the number of VMs. The result (:class:`SiteView`) keeps the managed object references
next to the model objects, so the backend acts on what it read without reading it again.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any

import attrs

from vmfailover.backends.vsphere.connection import VCenterConnection
from vmfailover.backends.vsphere.devices import NetworkInfo, disks, nic_network, nics
from vmfailover.backends.vsphere.guest import guest_os_of
from vmfailover.backends.vsphere.metadata import (
    TESTCOPY_KEY,
    TESTCOPY_REPLICA,
    ReplicaRecord,
    extra_config,
)
from vmfailover.backends.vsphere.properties import ObjectProperties, retrieve_view
from vmfailover.errors import NotFoundError, ValidationError
from vmfailover.model import (
    VM,
    ConnectionState,
    Host,
    IPConfig,
    Nic,
    PowerState,
)

__all__ = [
    "VM_PATHS",
    "DatacenterInfo",
    "HostInfo",
    "SiteView",
    "VMInfo",
    "find_datacenter",
    "read_site",
]

log = logging.getLogger("vmfailover.backends.vsphere")

VM_PATHS = (
    "name",
    "runtime.powerState",
    "runtime.host",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "config.guestId",
    "config.template",
    "config.extraConfig",
    "datastore",
    "guest.net",
    "snapshot.rootSnapshotList",
    "resourcePool",
    "parent",
)
"""What a read of a VM fetches: the inventory's, and what failover calls act on."""
HOST_PATHS = (
    "name",
    "parent",
    "runtime.connectionState",
    "runtime.powerState",
    "summary.hardware.numCpuCores",
    "summary.hardware.memorySize",
    "datastore",
    "network",
)
_PATHS: Mapping[str, tuple[str, ...]] = {
    "ComputeResource": ("name", "resourcePool"),
    "HostSystem": HOST_PATHS,
    "Datastore": ("name", "summary.capacity", "summary.freeSpace"),
    "Network": ("name",),
    "DistributedVirtualPortgroup": (
        "name",
        "key",
        "config.distributedVirtualSwitch",
        "config.uplink",
    ),
    "DistributedVirtualSwitch": ("uuid",),
    "VirtualMachine": VM_PATHS,
}

POWER = {
    "poweredOn": PowerState.ON,
    "poweredOff": PowerState.OFF,
    "suspended": PowerState.SUSPENDED,
    "standBy": PowerState.OFF,
    "unknown": PowerState.ON,  # not known to be off: the careful answer for fencing
}
CONNECTION = {
    "connected": ConnectionState.CONNECTED,
    "disconnected": ConnectionState.DISCONNECTED,
    "notResponding": ConnectionState.NOT_RESPONDING,
}


@attrs.frozen
class DatacenterInfo:
    name: str
    ref: Any
    vm_folder: Any


@attrs.frozen
class HostInfo:
    host: Host
    ref: Any
    pool: Any  # the root resource pool of the host's cluster or standalone compute resource


@attrs.frozen
class VMInfo:
    vm: VM
    ref: Any
    extra: Mapping[str, str]
    devices: tuple[Any, ...]
    record: ReplicaRecord | None
    test_copy_of: str | None
    props: ObjectProperties  # the VM as read (VM_PATHS)


@attrs.frozen
class SiteView:
    """What one read of a site found, model objects with their references."""

    site: str
    datacenter: DatacenterInfo
    hosts: Mapping[str, HostInfo]  # by name
    host_names: Mapping[str, str]  # moref -> name
    datastores: Mapping[str, tuple[Any, int, int]]  # name -> (ref, capacity, free)
    datastore_names: Mapping[str, str]  # moref -> name
    networks: Mapping[str, NetworkInfo]  # by name
    vms: tuple[VMInfo, ...]

    def vm(self, moref: str) -> VMInfo | None:
        for info in self.vms:
            if info.ref._moId == moref:
                return info
        return None


def find_datacenter(conn: VCenterConnection, name: str | None) -> DatacenterInfo:
    """The site's datacenter: the one named, or the vCenter's only one."""
    found = retrieve_view(
        conn,
        conn.content.rootFolder,
        {"Datacenter": ("name", "vmFolder")},
        what=f"{conn.label}: finding datacenters",
    )
    datacenters = sorted(
        (DatacenterInfo(str(o.get("name")), o.ref, o.get("vmFolder")) for o in found),
        key=lambda d: d.name,
    )
    if name is None:
        if len(datacenters) == 1:
            return datacenters[0]
        names = ", ".join(d.name for d in datacenters) or "none"
        raise ValidationError.of(
            f"VCenter {conn.settings.site!r}",
            f"{conn.label} has {len(datacenters)} datacenters ({names})",
            "name the site's datacenter with datacenter=...",
        )
    for datacenter in datacenters:
        if datacenter.name == name:
            return datacenter
    names = ", ".join(d.name for d in datacenters) or "none"
    raise NotFoundError(f"{conn.label} has no datacenter {name!r} (it has: {names})")


def read_site(conn: VCenterConnection, site: str, datacenter: DatacenterInfo) -> SiteView:
    """Read everything of the site in one PropertyCollector read (three round trips)."""
    objects = retrieve_view(
        conn,
        datacenter.ref,
        _PATHS,
        subtypes=("ClusterComputeResource", "VmwareDistributedVirtualSwitch"),
        what=f"{conn.label}: reading the inventory",
    )
    by_type: dict[str, list[ObjectProperties]] = {}
    for item in objects:
        by_type.setdefault(item.type_name, []).append(item)

    pools: dict[str, tuple[str, bool, Any]] = {}
    for kind in ("ComputeResource", "ClusterComputeResource"):
        for item in by_type.get(kind, ()):
            pools[item.moref] = (
                str(item.get("name")),
                kind == "ClusterComputeResource",
                item.get("resourcePool"),
            )

    datastores: dict[str, tuple[Any, int, int]] = {}
    datastore_names: dict[str, str] = {}
    for item in by_type.get("Datastore", ()):
        name = str(item.get("name"))
        capacity = int(item.get("summary.capacity") or 0)
        free = min(int(item.get("summary.freeSpace") or 0), capacity)
        datastores[name] = (item.ref, capacity, free)
        datastore_names[item.moref] = name

    switches = {
        item.moref: str(item.get("uuid"))
        for kind, items in by_type.items()
        if kind.endswith("DistributedVirtualSwitch")
        for item in items
    }
    networks: dict[str, NetworkInfo] = {}
    portgroups_by_key: dict[str, str] = {}
    for item in by_type.get("Network", ()):
        networks[str(item.get("name"))] = NetworkInfo(str(item.get("name")), item.ref)
    for item in by_type.get("DistributedVirtualPortgroup", ()):
        if item.get("config.uplink"):
            continue  # a switch's uplink port group carries no VM traffic
        name = str(item.get("name"))
        key = str(item.get("key"))
        switch = item.get("config.distributedVirtualSwitch")
        networks[name] = NetworkInfo(
            name,
            item.ref,
            portgroup_key=key,
            switch_uuid=switches.get(getattr(switch, "_moId", "")),
        )
        portgroups_by_key[key] = name

    hosts: dict[str, HostInfo] = {}
    host_names: dict[str, str] = {}
    for item in by_type.get("HostSystem", ()):
        name = str(item.get("name"))
        parent = pools.get(getattr(item.get("parent"), "_moId", ""))
        host = Host(
            name=name,
            site=site,
            cluster=parent[0] if parent and parent[1] else None,
            connection=CONNECTION.get(
                str(item.get("runtime.connectionState")), ConnectionState.NOT_RESPONDING
            ),
            power=POWER.get(str(item.get("runtime.powerState")), PowerState.ON),
            cpu_cores=max(1, int(item.get("summary.hardware.numCpuCores") or 1)),
            memory_mb=max(1, int(item.get("summary.hardware.memorySize") or 0) >> 20),
            datastores=sorted(
                datastore_names[d._moId]
                for d in item.get("datastore") or ()
                if d._moId in datastore_names
            ),
            networks=sorted({n.name for n in networks.values() if _on_host(n, item)}),
        )
        hosts[name] = HostInfo(host, item.ref, parent[2] if parent else None)
        host_names[item.moref] = name

    vms = []
    for item in by_type.get("VirtualMachine", ()):
        info = _vm_info(site, item, host_names, datastore_names, networks, portgroups_by_key)
        if info is not None:
            vms.append(info)
    vms.sort(key=lambda v: v.vm.id)
    return SiteView(
        site=site,
        datacenter=datacenter,
        hosts=hosts,
        host_names=host_names,
        datastores=datastores,
        datastore_names=datastore_names,
        networks=networks,
        vms=tuple(vms),
    )


def _on_host(network: NetworkInfo, host: ObjectProperties) -> bool:
    return any(getattr(n, "_moId", None) == network.ref._moId for n in host.get("network") or ())


def _vm_info(
    site: str,
    item: ObjectProperties,
    host_names: Mapping[str, str],
    datastore_names: Mapping[str, str],
    networks: Mapping[str, NetworkInfo],
    portgroups_by_key: Mapping[str, str],
) -> VMInfo | None:
    if item.get("config.template") or "config.hardware.device" not in item.values:
        return None  # templates and VMs whose configuration is not readable are not ours to run
    host = host_names.get(getattr(item.get("runtime.host"), "_moId", ""))
    if host is None:
        return None
    vm_id = f"{site}:{item.moref}"
    name = str(item.get("name"))
    devices = tuple(item.get("config.hardware.device") or ())
    addresses = _guest_addresses(item.get("guest.net"))
    vm_nics = []
    for device, mac in nics(devices):
        network = nic_network(device, portgroups_by_key)
        if network not in networks:
            log.warning(
                "VM %r NIC %s: network %r is not a port group of site %r; left out",
                name,
                mac,
                network,
                site,
            )
            continue
        vm_nics.append(Nic(mac, network, addresses.get(mac, ())))
    extra = extra_config(item.get("config.extraConfig"))
    stores = [
        datastore_names[d._moId] for d in item.get("datastore") or () if d._moId in datastore_names
    ]
    vm = VM(
        id=vm_id,
        name=name,
        host=host,
        power_state=POWER.get(str(item.get("runtime.powerState")), PowerState.ON),
        nics=tuple(vm_nics),
        cpu=max(1, int(item.get("config.hardware.numCPU") or 1)),
        memory_mb=max(1, int(item.get("config.hardware.memoryMB") or 1)),
        guest_os=guest_os_of(item.get("config.guestId")),
        datastore=stores[0] if stores else None,
        disk_bytes=sum(_capacity(d) for d in disks(devices)),
    )
    return VMInfo(
        vm=vm,
        ref=item.ref,
        extra=extra,
        devices=devices,
        record=ReplicaRecord.decode(extra, f"VM {name!r}"),
        test_copy_of=extra.get(TESTCOPY_REPLICA) if extra.get(TESTCOPY_KEY) else None,
        props=item,
    )


def _capacity(disk: Any) -> int:
    in_bytes = getattr(disk, "capacityInBytes", None)
    return int(in_bytes) if in_bytes else int(getattr(disk, "capacityInKB", 0) or 0) * 1024


def _guest_addresses(guest_net: Any) -> dict[str, tuple[IPConfig, ...]]:
    """MAC -> the addresses the guest agent reports on it (link-local IPv6 left out)."""
    from vmfailover.model import _mac as normal_mac

    found: dict[str, tuple[IPConfig, ...]] = {}
    for nic in guest_net or ():
        mac = getattr(nic, "macAddress", None)
        if not mac:
            continue
        configs: list[IPConfig] = []
        entries = getattr(getattr(nic, "ipConfig", None), "ipAddress", None) or ()
        for entry in entries:
            try:
                address = ipaddress.ip_address(str(entry.ipAddress).split("%")[0])
            except ValueError:
                continue
            if address.is_link_local:
                continue
            prefix = int(getattr(entry, "prefixLength", 0) or 0) or address.max_prefixlen
            configs.append(IPConfig(f"{address}/{prefix}"))
        if not configs:
            for text in getattr(nic, "ipAddress", None) or ():
                try:
                    address = ipaddress.ip_address(str(text).split("%")[0])
                except ValueError:
                    continue
                if not address.is_link_local:
                    configs.append(IPConfig(f"{address}/{address.max_prefixlen}"))
        try:
            found[normal_mac(mac)] = tuple(configs)
        except ValidationError:
            continue
    return found
