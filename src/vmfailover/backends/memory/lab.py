"""A ready two-site lab: a three-tier application on site A, replicated to site B.

Tests, the demo, the examples and the benchmarks all start from here, so they talk about the same
world: directory servers, databases, application and web servers on two networks and three hosts,
with replicas on site B holding a few hours of recovery points and a workload still writing.
"""

from __future__ import annotations

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
    "lab",
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
) -> MemoryBackend:
    """A memory backend holding the lab, its history already played.

    The clock is a :class:`~vmfailover.clock.VirtualClock` that starts at ``start`` (default: now
    minus the history's length, so the lab's "now" is the real now) and flows at ``rate`` times
    real time (0: only when advanced). Each VM is replicated to site B and synced ``points``
    times, ``interval`` apart, with its workload writing in between; after the last sync the
    workload runs for ``since_last_sync`` more, so an unplanned failover loses that much.

    ``points`` is 0 to 100 and ``interval`` more than 0 and at most a day; ``since_last_sync`` is
    at most a day. The history is played block by block, so it is at most a week long.
    """
    history = _history(points, interval, since_last_sync)
    origin = start if start is not None else datetime.now(UTC).replace(microsecond=0) - history
    clock = VirtualClock(origin)
    backend = MemoryBackend(clock=clock, seed=seed)

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
    for number in range(points):
        if number:
            backend.run_workload(interval.total_seconds())
        for replica in replicas:
            backend.sync(replica.id)
    backend.run_workload(since_last_sync.total_seconds())
    clock.set_rate(rate)
    return backend


_LONGEST_STEP = timedelta(days=1)
_LONGEST_HISTORY = timedelta(days=7)


def _history(points: object, interval: object, since_last_sync: object) -> timedelta:
    """The lab history's length; each argument is checked, and named when it is wrong."""
    findings = []
    if isinstance(points, bool) or not isinstance(points, int) or not 0 <= points <= 100:
        findings.append(
            Finding("lab points", f"must be a whole number from 0 to 100, got {points!r}")
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
