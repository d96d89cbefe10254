"""Ready two-site labs: a three-tier application, or any number of generated VMs.

Tests, the demo, the examples and the benchmarks all start from here, so they talk about the same
world. :func:`lab` is the small one: directory servers, databases, application and web servers on
two networks and three hosts, with replicas on site B holding a few hours of recovery points and a
workload still writing. :func:`scaled_lab` builds the same kind of world with as many VMs as a
scaling test or benchmark needs.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from vmfailover.backends.memory import BLOCK_SIZE, MemoryBackend
from vmfailover.clock import VirtualClock
from vmfailover.errors import Finding, ValidationError
from vmfailover.model import VM, GuestOS, IPConfig, Nic, PowerState

__all__ = [
    "LAB_DEPENDENCIES",
    "LAB_NETWORK_MAP",
    "LAB_TEST_NETWORK_MAP",
    "LAB_VMS",
    "SCALED_HOSTS_PER_DATASTORE",
    "SCALED_NETWORK_MAP",
    "SCALED_VMS_PER_HOST",
    "lab",
    "scaled_lab",
]

# name: (network, last octet, OS, boot seconds, disk GiB, write blocks/s, memory MB, host)
LAB_VMS: Mapping[str, tuple[str, int, GuestOS, float, int, float, int, str]] = {
    "dc01": ("Prod-App", 11, GuestOS.WINDOWS, 45, 2, 0.2, 4096, "esx-a1"),
    "dc02": ("Prod-App", 12, GuestOS.WINDOWS, 45, 2, 0.2, 4096, "esx-a2"),
    "db01": ("Prod-App", 21, GuestOS.LINUX, 60, 4, 2.0, 16384, "esx-a1"),
    "db02": ("Prod-App", 22, GuestOS.LINUX, 60, 4, 2.0, 16384, "esx-a2"),
    "app01": ("Prod-App", 31, GuestOS.LINUX, 35, 2, 0.5, 8192, "esx-a1"),
    "app02": ("Prod-App", 32, GuestOS.LINUX, 35, 2, 0.5, 8192, "esx-a2"),
    "app03": ("Prod-App", 33, GuestOS.LINUX, 35, 2, 0.5, 8192, "esx-a3"),
    "web01": ("Prod-Web", 41, GuestOS.LINUX, 20, 1, 0.1, 2048, "esx-a1"),
    "web02": ("Prod-Web", 42, GuestOS.LINUX, 20, 1, 0.1, 2048, "esx-a2"),
    "web03": ("Prod-Web", 43, GuestOS.LINUX, 20, 1, 0.1, 2048, "esx-a3"),
    "mon01": ("Prod-App", 51, GuestOS.LINUX, 25, 1, 0.3, 2048, "esx-a3"),
    "file01": ("Prod-App", 61, GuestOS.WINDOWS, 30, 4, 1.0, 8192, "esx-a3"),
}
"""The lab's VMs. Tests may rely on these names."""

LAB_DEPENDENCIES: Mapping[str, tuple[str, ...]] = {
    "dc01": (),
    "dc02": (),
    "db01": ("dc01",),
    "db02": ("dc01", "dc02"),
    "app01": ("db01", "db02"),
    "app02": ("db01", "db02"),
    "app03": ("db01",),
    "web01": ("app01", "app02"),
    "web02": ("app01", "app02"),
    "web03": ("app03",),
    "mon01": ("dc01",),
    "file01": ("dc01", "dc02"),
}
"""What each lab VM needs ready before it starts: directory, then database, app, web."""

LAB_NETWORK_MAP: Mapping[str, str] = {"Prod-App": "DR-App", "Prod-Web": "DR-Web"}
"""Production networks of site A -> their counterparts at site B."""

LAB_TEST_NETWORK_MAP: Mapping[str, str] = {"Prod-App": "Test-App", "Prod-Web": "Test-Web"}
"""Production networks of site A -> isolated test networks at site B."""

_SUBNETS = {"Prod-App": "192.168.20", "Prod-Web": "192.168.10"}


def lab(
    *,
    start: datetime | None = None,
    rate: float = 0.0,
    points: int = 4,
    interval: timedelta = timedelta(hours=1),
    since_last_sync: timedelta = timedelta(minutes=20),
    seed: int = 0,
    recovery_point_limit: int | None = None,
) -> MemoryBackend:
    """A memory backend holding the lab, its history already played.

    The clock is a :class:`~vmfailover.clock.VirtualClock` that starts at ``start`` (default: now
    minus the history's length, so the lab's "now" is the real now) and flows at ``rate`` times
    real time (0: only when advanced). Each VM is replicated to site B and synced ``points``
    times, ``interval`` apart, with its workload writing in between; after the last sync the
    workload runs for ``since_last_sync`` more, so an unplanned failover loses that much.
    ``recovery_point_limit`` caps the points a replica holds, as vSphere (32) and Hyper-V (24) do;
    it must leave room for ``points``.

    ``points`` is 0 to 1,000 and ``interval`` more than 0 and at most a day; ``since_last_sync`` is
    at most a day. The history is played block by block, so it is at most a week long.
    """
    clock = _history_clock(start, points, interval, since_last_sync)
    backend = MemoryBackend(clock=clock, seed=seed, recovery_point_limit=recovery_point_limit)

    backend.add_site("site-a", "Production")
    backend.add_site("site-b", "Disaster recovery")
    for site, letter, cluster in (("site-a", "a", "prod-cluster"), ("site-b", "b", "dr-cluster")):
        datastore = f"ds-{letter}1"
        backend.add_datastore(datastore, site, capacity_bytes=20 << 40)
        networks = (
            ("Prod-App", "Prod-Web")
            if site == "site-a"
            else ("DR-App", "DR-Web", "Test-App", "Test-Web")
        )
        for network in networks:
            backend.add_network(network, site, isolated=network.startswith("Test-"))
        for number in (1, 2, 3):
            backend.add_host(
                f"esx-{letter}{number}",
                site,
                cluster=cluster,
                cpu_cores=48,
                memory_mb=393_216,
                datastores=(datastore,),
                networks=networks,
            )

    for index, (name, spec) in enumerate(LAB_VMS.items(), start=1):
        network, octet, os_family, boot, disk_gib, write_rate, memory, host = spec
        subnet = _SUBNETS[network]
        nic = Nic(
            mac=f"00:50:56:0a:00:{index:02x}",
            network=network,
            ip_configs=(
                IPConfig(
                    f"{subnet}.{octet}/24",
                    gateway=f"{subnet}.1",
                    dns=("192.168.20.11", "192.168.20.12"),
                    dns_suffixes=("corp.example.com",),
                ),
            ),
            label="Network adapter 1",
        )
        vm = VM(
            id=f"vm-{index:03d}",
            name=name,
            host=host,
            power_state=PowerState.ON,
            nics=(nic,),
            cpu=4 if memory >= 8192 else 2,
            memory_mb=memory,
            guest_os=os_family,
            datastore="ds-a1",
            disk_bytes=disk_gib * 1024 * BLOCK_SIZE,
            tags=frozenset({_tier(name)}),
        )
        backend.add_vm(vm, boot_seconds=boot, write_rate=write_rate)

    sources = list(backend.inventory().vms)
    targets = ("esx-b1", "esx-b2", "esx-b3")
    replicas = [
        backend.create_replica(
            vm.id, targets[i % len(targets)], "ds-b1", network_map=LAB_NETWORK_MAP
        )
        for i, vm in enumerate(sources)
    ]
    _play_history(backend, [r.id for r in replicas], points, interval, since_last_sync)
    clock.set_rate(rate)
    return backend


def _history_clock(
    start: datetime | None, points: int, interval: timedelta, since_last_sync: timedelta
) -> VirtualClock:
    """A virtual clock at ``start``, or far enough back that the history ends now."""
    history = _history(points, interval, since_last_sync)
    origin = start if start is not None else datetime.now(UTC).replace(microsecond=0) - history
    return VirtualClock(origin)


def _play_history(
    backend: MemoryBackend,
    replicas: list[str],
    points: int,
    interval: timedelta,
    since_last_sync: timedelta,
) -> None:
    """Sync every replica ``points`` times, ``interval`` apart, the workload writing between."""
    for number in range(points):
        if number:
            backend.run_workload(interval.total_seconds())
        for replica in replicas:
            backend.sync(replica)
    backend.run_workload(since_last_sync.total_seconds())


_LONGEST_STEP = timedelta(days=1)
_LONGEST_HISTORY = timedelta(days=7)


def _history(points: object, interval: object, since_last_sync: object) -> timedelta:
    """The lab history's length; each argument is checked, and named when it is wrong."""
    findings = []
    if isinstance(points, bool) or not isinstance(points, int) or not 0 <= points <= 1000:
        findings.append(
            Finding("lab points", f"must be a whole number from 0 to 1,000, got {points!r}")
        )
    for name, span, least in (("interval", interval, 1), ("since_last_sync", since_last_sync, 0)):
        if not isinstance(span, timedelta) or not least <= span.total_seconds() <= 86_400:
            shortest = "more than 0" if least else "from 0"
            findings.append(
                Finding(f"lab {name}", f"must be a timedelta {shortest} to a day, got {span!r}")
            )
    if findings:
        raise ValidationError(findings)
    assert isinstance(points, int)
    assert isinstance(interval, timedelta)
    assert isinstance(since_last_sync, timedelta)
    history = interval * max(points - 1, 0) + since_last_sync
    if history > _LONGEST_HISTORY:
        raise ValidationError.of(
            "lab",
            f"a history of {history} is longer than a week",
            "use fewer points or a shorter interval",
        )
    return history


def _tier(name: str) -> str:
    return {"dc": "directory", "db": "database", "ap": "application", "we": "web"}.get(
        name[:2], "infrastructure"
    )


# --- the scaled lab -----------------------------------------------------------------------------

SCALED_VMS_PER_HOST = 30
"""VMs per host in :func:`scaled_lab`: with its VM sizes, 2 vCPU per core and 70% of memory."""

SCALED_HOSTS_PER_DATASTORE = 16
"""Hosts sharing one datastore in :func:`scaled_lab`."""

SCALED_NETWORK_MAP: Mapping[str, str] = {
    "Prod-Web": "DR-Web",
    "Prod-App": "DR-App",
    "Prod-DB": "DR-DB",
    "Prod-Infra": "DR-Infra",
}
""":func:`scaled_lab`'s production networks of site A -> their counterparts at site B."""

# tier: (network, /12 subnet's first address, vCPU, memory MB, guest OS)
_SCALED_TIERS: tuple[tuple[str, str, int, int, GuestOS], ...] = (
    ("web", "Prod-Web", 2, 4096, GuestOS.LINUX),
    ("app", "Prod-App", 4, 8192, GuestOS.LINUX),
    ("db", "Prod-DB", 8, 32768, GuestOS.LINUX),
    ("infra", "Prod-Infra", 2, 4096, GuestOS.WINDOWS),
)
_SCALED_SUBNET_BITS = 20  # each tier's network is a /12: room for a million VMs per tier
_SCALED_MAX_VMS = 1_000_000
_SCALED_DISK_BLOCKS = 4


def scaled_lab(
    vms: int,
    *,
    points: int = 2,
    interval: timedelta = timedelta(hours=1),
    since_last_sync: timedelta = timedelta(minutes=20),
    boot_seconds: float = 30.0,
    start: datetime | None = None,
    seed: int = 0,
) -> MemoryBackend:
    """A memory backend holding ``vms`` generated VMs on site A, each replicated to site B.

    Site A runs the VMs, :data:`SCALED_VMS_PER_HOST` per host (64 cores, 512 GiB each),
    :data:`SCALED_HOSTS_PER_DATASTORE` hosts per datastore, in four tiers taking turns (web 2
    vCPU/4 GiB, app 4/8, db 8/32, infra 2/4), each tier on its own production network with a
    static address. Site B has as many hosts and datastores, the networks of
    :data:`SCALED_NETWORK_MAP` and isolated ``Test-*`` ones. VM ``i`` (from 1) has the id
    ``vm-{i:07d}``; its replica lives on the site-B host with the same number as its own.

    History is played as in :func:`lab`: ``points`` syncs ``interval`` apart, the workload writing
    about four blocks an hour per VM, then ``since_last_sync`` more. Disks are four blocks, so
    100,000 VMs with their replicas and points take about half a gigabyte. Every guest takes
    ``boot_seconds`` to become ready. The clock is virtual and moves only when advanced.
    """
    if isinstance(vms, bool) or not isinstance(vms, int) or not 1 <= vms <= _SCALED_MAX_VMS:
        raise ValidationError.of(
            "scaled_lab vms", f"must be a whole number from 1 to {_SCALED_MAX_VMS:,}, got {vms!r}"
        )
    clock = _history_clock(start, points, interval, since_last_sync)
    backend = MemoryBackend(clock=clock, seed=seed)
    hosts = math.ceil(vms / SCALED_VMS_PER_HOST)
    backend.add_site("site-a", "Production")
    backend.add_site("site-b", "Disaster recovery")
    for site, letter, networks in (
        ("site-a", "a", tuple(SCALED_NETWORK_MAP)),
        ("site-b", "b", (*SCALED_NETWORK_MAP.values(), *_test_networks())),
    ):
        for network in networks:
            backend.add_network(network, site, isolated=network.startswith("Test-"))
        for number in range(math.ceil(hosts / SCALED_HOSTS_PER_DATASTORE)):
            backend.add_datastore(f"ds-{letter}{number + 1:04d}", site, capacity_bytes=64 << 40)
        for number in range(hosts):
            backend.add_host(
                f"esx-{letter}{number + 1:05d}",
                site,
                cluster=f"{site}-cluster-{number // 32 + 1:03d}",
                cpu_cores=64,
                memory_mb=524_288,
                datastores=(_scaled_datastore(letter, number),),
                networks=networks,
            )

    # Values every VM of a tier shares are built once: a 100,000-VM lab is mostly small objects.
    subnets = [_scaled_subnet(index) for index in range(len(_SCALED_TIERS))]
    gateways = [subnet.network_address + 1 for subnet in subnets]
    tags = [frozenset({tier[0]}) for tier in _SCALED_TIERS]
    dns = (subnets[3].network_address + 11, subnets[3].network_address + 12)
    write_rate = _SCALED_DISK_BLOCKS / 3600
    for number in range(vms):
        kind = number % len(_SCALED_TIERS)
        tier, network, cpu, memory, guest_os = _SCALED_TIERS[kind]
        subnet = subnets[kind]
        host_number = number // SCALED_VMS_PER_HOST
        config = IPConfig(
            ipaddress.IPv4Interface((int(subnet.network_address) + number + 10, subnet.prefixlen)),
            gateway=gateways[kind],
            dns=dns,
        )
        vm = VM(
            id=f"vm-{number + 1:07d}",
            name=f"{tier}-{number + 1:07d}",
            host=f"esx-a{host_number + 1:05d}",
            power_state=PowerState.ON,
            nics=(Nic(_scaled_mac(number), network, (config,), label="Network adapter 1"),),
            cpu=cpu,
            memory_mb=memory,
            guest_os=guest_os,
            datastore=_scaled_datastore("a", host_number),
            disk_bytes=_SCALED_DISK_BLOCKS * BLOCK_SIZE,
            tags=tags[kind],
        )
        backend.add_vm(vm, boot_seconds=boot_seconds, write_rate=write_rate)
        backend.create_replica(
            vm.id,
            f"esx-b{host_number + 1:05d}",
            _scaled_datastore("b", host_number),
            network_map=SCALED_NETWORK_MAP,
        )
    replicas = [f"replica-vm-{number + 1:07d}" for number in range(vms)]
    _play_history(backend, replicas, points, interval, since_last_sync)
    return backend


def _test_networks() -> tuple[str, ...]:
    return tuple(name.replace("Prod-", "Test-") for name in SCALED_NETWORK_MAP)


def _scaled_datastore(letter: str, host_number: int) -> str:
    return f"ds-{letter}{host_number // SCALED_HOSTS_PER_DATASTORE + 1:04d}"


def _scaled_subnet(tier: int) -> ipaddress.IPv4Network:
    """Tier ``tier``'s network: 10.16.0.0/12, 10.32.0.0/12, ..."""
    return ipaddress.IPv4Network(((10 << 24) | ((tier + 1) << _SCALED_SUBNET_BITS), 12))


def _scaled_mac(number: int) -> str:
    low = number + 1
    return f"00:50:57:{low >> 16 & 0xFF:02x}:{low >> 8 & 0xFF:02x}:{low & 0xFF:02x}"
