"""Setting a scene on the simulator the way an administrator would: port groups and VMs.

Test set-up only (it uses pyVmomi directly); everything under test goes through the backend.
"""

from __future__ import annotations

import ipaddress
import ssl
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from vmfailover.errors import ValidationError
from vmfailover.testing.vcsim.launcher import VCSim

__all__ = ["SceneBuilder"]


class SceneBuilder:
    """An administrator's session with the simulator (use as a context manager)."""

    def __init__(self, sim: VCSim) -> None:
        context = ssl.create_default_context(cafile=sim.ca_file)
        credentials = sim.credentials
        self.instance = SmartConnect(
            host=sim.host,
            port=sim.port,
            user=credentials.username,
            pwd=credentials.secret.reveal(),
            sslContext=context,
        )
        self.content = self.instance.RetrieveContent()

    def close(self) -> None:
        Disconnect(self.instance)

    def __enter__(self) -> SceneBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _find(self, kind: Any, name: str) -> Any:
        view = self.content.viewManager.CreateContainerView(self.content.rootFolder, [kind], True)
        try:
            for obj in view.view:
                if obj.name == name:
                    return obj
        finally:
            view.DestroyView()
        raise LookupError(f"no {kind.__name__} named {name!r}")

    def datacenter(self, name: str) -> Any:
        return self._find(vim.Datacenter, name)

    def vm(self, name: str) -> Any:
        return self._find(vim.VirtualMachine, name)

    def add_standard_portgroup(self, datacenter: str, name: str, vlan: int = 0) -> None:
        """A standard port group on vSwitch0 of the datacenter's first host."""
        dc = self.datacenter(datacenter)
        view = self.content.viewManager.CreateContainerView(dc, [vim.HostSystem], True)
        try:
            host = sorted(view.view, key=lambda h: h.name)[0]
        finally:
            view.DestroyView()
        spec = vim.host.PortGroup.Specification(
            name=name, vlanId=vlan, vswitchName="vSwitch0", policy=vim.host.NetworkPolicy()
        )
        host.configManager.networkSystem.AddPortGroup(portgrp=spec)

    def add_distributed_portgroup(self, datacenter: str, name: str) -> None:
        """A distributed port group on the datacenter's distributed switch."""
        dc = self.datacenter(datacenter)
        kinds = [vim.DistributedVirtualSwitch, vim.dvs.VmwareDistributedVirtualSwitch]
        view = self.content.viewManager.CreateContainerView(dc, kinds, True)
        try:
            dvs = sorted(view.view, key=lambda s: s.name)[0]
        finally:
            view.DestroyView()
        spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
            name=name, type="earlyBinding", numPorts=16
        )
        _done(dvs.AddDVPortgroup_Task([spec]))

    def network(self, datacenter: str, name: str) -> Any:
        """A port group of the datacenter (standard or distributed) by name."""
        for network in self.datacenter(datacenter).network:
            if network.name == name:
                return network
        raise LookupError(f"no port group {name!r} in datacenter {datacenter!r}")

    def add_nic(self, vm_name: str, datacenter: str, network: str) -> str:
        """Give the VM another e1000 NIC on ``network``; returns the new NIC's MAC."""
        vm = self.vm(vm_name)
        port_group = self.network(datacenter, network)
        if isinstance(port_group, vim.dvs.DistributedVirtualPortgroup):
            switch: Any = port_group.config.distributedVirtualSwitch
            backing: Any = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                port=vim.dvs.PortConnection(portgroupKey=port_group.key, switchUuid=switch.uuid)
            )
        else:
            backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                deviceName=network, network=port_group
            )
        before = {d.key for d in vm.config.hardware.device}
        nic = vim.vm.device.VirtualE1000(key=-1, backing=backing)
        add = vim.vm.device.VirtualDeviceSpec(operation="add", device=nic)
        _done(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[add])))
        added = [d for d in vm.config.hardware.device if d.key not in before]
        return str(added[0].macAddress)

    def add_disk(self, vm_name: str, label: str, capacity_bytes: int) -> str:
        """Give the VM another disk of ``capacity_bytes`` (whole KiB), a new file ``label.vmdk``
        in the VM's folder on its first disk's controller; returns the disk's file name."""
        if capacity_bytes <= 0 or capacity_bytes % 1024:
            raise ValidationError.of(
                f"disk {label!r} of {vm_name!r}",
                f"a capacity is whole KiB > 0, got {capacity_bytes} bytes",
            )
        vm = self.vm(vm_name)
        devices = vm.config.hardware.device
        first: Any = next(d for d in devices if isinstance(d, vim.vm.device.VirtualDisk))
        datastore = str(first.backing.fileName).split("]")[0] + "]"
        file_name = f"{datastore} {vm_name}/{label}.vmdk"
        used = {d.unitNumber for d in devices if d.controllerKey == first.controllerKey}
        unit = next(n for n in range(16) if n not in used and n != 7)  # 7: the SCSI controller
        disk = vim.vm.device.VirtualDisk(
            key=-1,
            controllerKey=first.controllerKey,
            unitNumber=unit,
            capacityInKB=capacity_bytes // 1024,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                diskMode="persistent", fileName=file_name
            ),
        )
        add = vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk)
        _done(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[add])))
        return file_name

    def address_guest(self, vm_name: str, addresses: list[str], gateway: str) -> None:
        """Give the guest static IPv4 addresses (``a.b.c.d/len``, one per NIC in device order),
        as its administrator once did: the VM is powered off, customized and powered on, and
        its tools report the addresses in ``guest.net``."""
        vm = self.vm(vm_name)
        if vm.runtime.powerState != "poweredOff":
            _done(vm.PowerOffVM_Task())
        adapters = []
        for address in addresses:
            interface = ipaddress.ip_interface(address)
            adapters.append(
                vim.vm.customization.AdapterMapping(
                    adapter=vim.vm.customization.IPSettings(
                        ip=vim.vm.customization.FixedIp(ipAddress=str(interface.ip)),
                        subnetMask=str(interface.netmask),
                        gateway=[gateway],
                    )
                )
            )
        spec = vim.vm.customization.Specification(
            identity=vim.vm.customization.LinuxPrep(
                hostName=vim.vm.customization.FixedName(name=vm_name.replace("_", "-")),
                domain="example.com",
            ),
            globalIPSettings=vim.vm.customization.GlobalIPSettings(),
            nicSettingMap=adapters,
        )
        _done(vm.CustomizeVM_Task(spec))
        _done(vm.PowerOnVM_Task())

    def set_guest_id(self, vm_name: str, guest_id: str) -> None:
        vm = self.vm(vm_name)
        _done(vm.ReconfigVM_Task(vim.vm.ConfigSpec(guestId=guest_id)))

    def clone_vm(
        self, source: str, name: str, *, power_on: bool = True, host: str | None = None
    ) -> str:
        """Clone ``source`` as ``name`` (on ``host`` if given); returns the new VM's moref."""
        vm = self.vm(source)
        location = vim.vm.RelocateSpec()
        if host is not None:
            location.host = self._find(vim.HostSystem, host)
        spec = vim.vm.CloneSpec(location=location, powerOn=power_on, template=False)
        clone = _done(vm.CloneVM_Task(folder=vm.parent, name=name, spec=spec))
        return str(clone._moId)


def _done(task: Any) -> Any:
    info = task.info
    while info.state not in ("success", "error"):
        info = task.info
    if info.state == "error":
        raise RuntimeError(f"simulator set-up failed: {info.error}")
    return info.result
