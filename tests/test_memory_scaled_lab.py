"""The scaled lab: a generated two-site world of any size, as the benchmarks and tests use it."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from vmfailover import Runner
from vmfailover.backends.memory.lab import (
    SCALED_HOSTS_PER_DATASTORE,
    SCALED_VMS_PER_HOST,
)
from vmfailover.errors import ValidationError
from vmfailover.model import PowerState, ReplicaState
from vmfailover.testing import SCALED_NETWORK_MAP, scaled_lab

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_it_holds_the_vms_hosts_and_replicas_it_promises() -> None:
    count = 2 * SCALED_VMS_PER_HOST + 7
    backend = scaled_lab(count, points=3, start=START)
    inventory = backend.inventory()
    sources = inventory.vms_at("site-a")
    assert [vm.id for vm in sources] == [f"vm-{n:07d}" for n in range(1, count + 1)]
    assert all(vm.power_state is PowerState.ON for vm in sources)
    assert len({vm.name for vm in sources}) == count

    hosts = math.ceil(count / SCALED_VMS_PER_HOST)
    for site in ("site-a", "site-b"):
        assert len([h for h in inventory.hosts if h.site == site]) == hosts
        datastores = [d for d in inventory.datastores if d.site == site]
        assert len(datastores) == math.ceil(hosts / SCALED_HOSTS_PER_DATASTORE)

    for vm in sources:
        replica = inventory.replica_of(vm.id)
        assert replica.state is ReplicaState.READY
        replica_vm = inventory.vm(replica.replica_vm)
        assert inventory.site_of(replica_vm) == "site-b"
        assert replica_vm.host[-5:] == vm.host[-5:], "the replica lives on the twin host"
        assert [n.network for n in replica_vm.nics] == [
            SCALED_NETWORK_MAP[n.network] for n in vm.nics
        ]
        points = backend.recovery_points(replica.id)
        assert len(points) == 3
        assert points[-1].created_at == START + timedelta(hours=2)


def test_hosts_are_sized_for_their_vms() -> None:
    backend = scaled_lab(3 * SCALED_VMS_PER_HOST)
    inventory = backend.inventory()
    per_host = Counter(vm.host for vm in inventory.vms_at("site-a"))
    assert set(per_host.values()) == {SCALED_VMS_PER_HOST}
    for name in per_host:
        host = inventory.host(name)
        vms = [vm for vm in inventory.vms if vm.host == name]
        assert sum(vm.memory_mb for vm in vms) <= 0.75 * host.memory_mb
        assert sum(vm.cpu for vm in vms) <= 2 * host.cpu_cores
        for vm in vms:
            assert vm.datastore in host.datastores
            assert all(nic.network in host.networks for nic in vm.nics)


def test_every_vm_has_its_own_address_in_its_tiers_network() -> None:
    inventory = scaled_lab(400).inventory()
    sources = inventory.vms_at("site-a")
    addresses = [ip for vm in sources for nic in vm.nics for ip in nic.addresses]
    assert len(set(addresses)) == len(sources)
    for vm in sources:
        (nic,) = vm.nics
        (config,) = nic.ip_configs
        assert config.gateway is not None
        assert config.gateway in config.address.network
    networks = {nic.network for vm in sources for nic in vm.nics}
    assert networks == set(SCALED_NETWORK_MAP)


def test_the_history_is_played_with_writes_between_points() -> None:
    backend = scaled_lab(8, points=2)
    source = "vm-0000001"
    replica = backend.inventory().replica_of(source)
    first, second = backend.recovery_points(replica.id)
    assert first.size_bytes == backend.inventory().vm(source).disk_bytes, "the first copy is full"
    assert second.size_bytes > 0, "the workload wrote between the syncs"
    assert backend.blocks_differing(backend.disk(source), backend.point_disk(second.id)) > 0


def test_a_scaled_lab_fails_over() -> None:
    backend = scaled_lab(120, boot_seconds=5)
    backend.fail_site("site-a")
    sources = [vm.id for vm in backend.inventory().vms_at("site-a")]
    runner = Runner(backend, poll_interval=5, readiness_timeout=1e6)
    report = runner.failover(sources, kind="regular")
    assert report.result == "succeeded", report.summary()
    assert len(report.vms) == 120


@pytest.mark.parametrize("count", [0, -3, True, 2.5, "10", 1_000_001])
def test_a_size_it_cannot_build_is_refused(count: object) -> None:
    with pytest.raises(ValidationError, match="scaled_lab vms"):
        scaled_lab(count)  # type: ignore[arg-type]
