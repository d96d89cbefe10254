"""Guest customization specs for re-addressing a guest at its next boot (Linux and Windows).

One spec covers every NIC of the VM (vSphere customizes all adapters at once): NICs given
addresses get them (IPv4 and IPv6, gateways, DNS servers and suffixes); the others use DHCP.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pyVmomi import vim

from vmfailover.errors import ConflictError
from vmfailover.model import GuestOS, IPConfig

__all__ = ["customization_spec", "guest_os_of"]

_LINUX_IDS = (
    "rhel",
    "centos",
    "ubuntu",
    "debian",
    "sles",
    "suse",
    "opensuse",
    "oracle",
    "fedora",
    "photon",
    "coreos",
    "asianux",
    "amazonlinux",
    "rocky",
    "almalinux",
    "mandrake",
    "mandriva",
    "turbolinux",
    "redhat",
    "other24xlinux",
    "other26xlinux",
    "other3xlinux",
    "other4xlinux",
    "other5xlinux",
    "other6xlinux",
    "otherlinux",
    "genericlinux",
)


def guest_os_of(guest_id: str | None) -> GuestOS:
    """The guest family of a vSphere guest id (``windows9Server64Guest`` -> windows)."""
    text = (guest_id or "").lower()
    if text.startswith("win"):
        return GuestOS.WINDOWS
    if text.startswith(_LINUX_IDS):
        return GuestOS.LINUX
    return GuestOS.OTHER


def _host_name(vm_name: str, limit: int) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9-]+", "-", vm_name).strip("-") or "vm"
    return cleaned[:limit].rstrip("-") or "vm"


def _adapter(configs: Sequence[IPConfig] | None, guest_os: GuestOS) -> Any:
    settings = vim.vm.customization.IPSettings()
    v4 = [c for c in configs or () if c.address.version == 4]
    v6 = [c for c in configs or () if c.address.version == 6]
    if v4:
        first = v4[0]
        settings.ip = vim.vm.customization.FixedIp(ipAddress=str(first.address.ip))
        settings.subnetMask = str(first.address.netmask)
        if first.gateway is not None:
            settings.gateway = [str(first.gateway)]
    else:
        settings.ip = vim.vm.customization.DhcpIpGenerator()
    if v6:
        settings.ipV6Spec = vim.vm.customization.IPSettings.IpV6AddressSpec(
            ip=[
                vim.vm.customization.FixedIpV6(
                    ipAddress=str(c.address.ip), subnetMask=c.address.network.prefixlen
                )
                for c in v6
            ],
            gateway=[str(c.gateway) for c in v6 if c.gateway is not None] or None,
        )
    every = list(configs or ())
    suffixes = [s for c in every for s in c.dns_suffixes]
    if suffixes:
        settings.dnsDomain = suffixes[0]
    if guest_os is GuestOS.WINDOWS:
        servers = [str(s) for c in every for s in c.dns]
        if servers:
            settings.dnsServerList = list(dict.fromkeys(servers))
    return settings


def customization_spec(
    vm_name: str,
    guest_os: GuestOS,
    macs: Sequence[str],
    settings: Mapping[str, Sequence[IPConfig] | None],
) -> Any:
    """The spec that gives each NIC (by MAC, in device order) its addresses at next boot."""
    every = [c for configs in settings.values() for c in configs or ()]
    suffixes = list(dict.fromkeys(s for c in every for s in c.dns_suffixes))
    servers = list(dict.fromkeys(str(s) for c in every for s in c.dns))
    if guest_os is GuestOS.LINUX:
        identity: Any = vim.vm.customization.LinuxPrep(
            hostName=vim.vm.customization.FixedName(name=_host_name(vm_name, 63)),
            domain=suffixes[0] if suffixes else "localdomain",
            hwClockUTC=True,
        )
    elif guest_os is GuestOS.WINDOWS:
        identity = vim.vm.customization.Sysprep(
            guiUnattended=vim.vm.customization.GuiUnattended(
                autoLogon=False, autoLogonCount=0, timeZone=85
            ),
            userData=vim.vm.customization.UserData(
                computerName=vim.vm.customization.FixedName(name=_host_name(vm_name, 15)),
                fullName="vmfailover",
                orgName="vmfailover",
                productId="",
            ),
            identification=vim.vm.customization.Identification(joinWorkgroup="WORKGROUP"),
        )
    else:
        raise ConflictError(
            f"VM {vm_name!r}: its guest OS is neither Linux nor Windows; vSphere guest "
            "customization cannot set its address"
        )
    global_settings = vim.vm.customization.GlobalIPSettings(
        dnsSuffixList=suffixes or None,
        dnsServerList=(servers or None) if guest_os is GuestOS.LINUX else None,
    )
    mapping = [
        vim.vm.customization.AdapterMapping(
            macAddress=mac, adapter=_adapter(settings.get(mac), guest_os)
        )
        for mac in macs
    ]
    return vim.vm.customization.Specification(
        identity=identity, globalIPSettings=global_settings, nicSettingMap=mapping
    )


def reported_addresses(guest_net: Any, fallback: Any) -> tuple[Any, ...]:
    """Addresses the guest agent reports (``guest.net``, else ``guest.ipAddress``), parsed."""
    found: list[Any] = []
    for nic in guest_net or ():
        texts: list[str] = []
        config = getattr(nic, "ipConfig", None)
        for entry in getattr(config, "ipAddress", None) or ():
            texts.append(str(entry.ipAddress))
        texts.extend(str(a) for a in getattr(nic, "ipAddress", None) or ())
        for text in texts:
            try:
                address = ipaddress.ip_address(text.split("%")[0])
            except ValueError:
                continue
            if address not in found:
                found.append(address)
    if not found and fallback:
        with contextlib.suppress(ValueError):
            found.append(ipaddress.ip_address(str(fallback)))
    return tuple(found)
