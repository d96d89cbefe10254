"""Virtual NICs: which network a NIC is on, and the backing that puts it on another one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from pyVmomi import vim

from vmfailover.model import _mac as normal_mac  # the model's MAC normaliser

__all__ = ["NetworkInfo", "backing_for", "counterpart_mac", "disks", "nic_network", "nics"]


@attrs.frozen
class NetworkInfo:
    """A port group as vmfailover sees it: standard (``Network``) or distributed."""

    name: str
    ref: Any
    portgroup_key: str | None = None
    switch_uuid: str | None = None

    @property
    def distributed(self) -> bool:
        return self.portgroup_key is not None


def nics(devices: Iterable[Any]) -> list[tuple[Any, str]]:
    """(device, normalised MAC) of every virtual NIC, in device order."""
    found = []
    for device in devices or ():
        if isinstance(device, vim.vm.device.VirtualEthernetCard) and device.macAddress:
            found.append((device, normal_mac(device.macAddress)))
    return found


def counterpart_mac(mac: str, originals: Iterable[Any], copies: Iterable[Any]) -> str | None:
    """The MAC of the copy's NIC that stands for the original's NIC ``mac``, or None.

    vCenter gives a clone's NICs new MACs (unless they were set by hand) and keeps their device
    keys, so the NIC with the original's key is its counterpart; failing that, the NIC at the
    same place in device order when both have as many NICs.
    """
    original_nics = nics(originals)
    copy_nics = nics(copies)
    found = [index for index, (_, address) in enumerate(original_nics) if address == mac]
    if not found:
        return None
    key = getattr(original_nics[found[0]][0], "key", None)
    for device, address in copy_nics:
        if key is not None and getattr(device, "key", None) == key:
            return address
    if len(copy_nics) == len(original_nics):
        return copy_nics[found[0]][1]
    return None


def disks(devices: Iterable[Any]) -> list[Any]:
    return [d for d in devices or () if isinstance(d, vim.vm.device.VirtualDisk)]


def nic_network(device: Any, portgroups_by_key: Mapping[str, str]) -> str:
    """The name of the network a NIC's backing points at ("" when it has none)."""
    backing = device.backing
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
        key = backing.port.portgroupKey if backing.port else None
        return portgroups_by_key.get(key or "", key or "")
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
        return str(backing.deviceName or "")
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.OpaqueNetworkBackingInfo):
        return str(backing.opaqueNetworkId or "")
    return ""


def backing_for(network: NetworkInfo) -> Any:
    """The NIC backing that connects a NIC to ``network``."""
    if network.distributed:
        port = vim.dvs.PortConnection(
            switchUuid=network.switch_uuid, portgroupKey=network.portgroup_key
        )
        return vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port)
    return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
        deviceName=network.name, network=network.ref
    )


def nic_edit(device: Any, network: NetworkInfo) -> Any:
    """A device change that moves ``device`` (its MAC and key kept) onto ``network``."""
    device.backing = backing_for(network)
    if device.connectable is not None:
        device.connectable.startConnected = True
    return vim.vm.device.VirtualDeviceSpec(
        operation=vim.vm.device.VirtualDeviceSpec.Operation.edit, device=device
    )
