"""What a client can observe of the guest (heartbeat, reported addresses, injected failover IP),
Hyper-V Replica's own replication schedule, and the point a planned failover's -Prepare sends."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta

import pytest

from vmfailover.errors import ValidationError
from vmfailover.testing.hyperv import FabricClock
from vmfailover.testing.hyperv._objects import cmd

from .conftest import HyperVPair, make_local_pair, ok, prop, text

NO = {"Confirm": False}


@pytest.fixture
def local() -> Iterator[HyperVPair]:
    with make_local_pair() as pair:
        for model in (pair.primary_model, pair.replica_model):
            model.add_switch("Prod")
        yield pair


def replicating(pair: HyperVPair, vm: str = "web01", **settings: object) -> None:
    ok(pair.primary.run(cmd("Enable-VMReplication", vm, "hv-b", 80, "Kerberos", **settings)))
    ok(pair.primary.run(cmd("Start-VMInitialReplication", vm)))


def points(pair: HyperVPair, vm: str = "web01") -> list[tuple[str, object]]:
    result = ok(pair.replica.run(cmd("Get-VMSnapshot", vm)))
    return [(text(o, "SnapshotType"), prop(o, "CreationTime")) for o in result.output]


def test_guest_reports_heartbeat_and_addresses_once_booted(hv_pair: HyperVPair) -> None:
    hv_pair.primary_model.add_switch("Prod")
    hv_pair.primary_model.add_vm("web01", switch="Prod", ip_addresses=["10.1.0.5"], boot_seconds=30)
    shell = hv_pair.primary
    vm = ok(shell.run(cmd("Get-VM", "web01"))).output[0]
    assert prop(vm, "Heartbeat") is None  # off: Hyper-V reports no heartbeat at all
    ok(shell.run(cmd("Start-VM", "web01")))
    vm = ok(shell.run(cmd("Get-VM", "web01"))).output[0]
    assert text(vm, "Heartbeat") == "NoContact"
    assert prop(ok(shell.run(cmd("Get-VMNetworkAdapter", "web01"))).output[0], "IPAddresses") == []
    hv_pair.fabric.advance(timedelta(seconds=30))
    vm = ok(shell.run(cmd("Get-VM", "web01"))).output[0]
    assert text(vm, "Heartbeat") == "OkApplicationsHealthy"
    adapter = ok(shell.run(cmd("Get-VMNetworkAdapter", "web01"))).output[0]
    assert prop(adapter, "IPAddresses") == ["10.1.0.5"]
    ok(shell.run(cmd("Stop-VM", "web01", TurnOff=None)))
    assert prop(ok(shell.run(cmd("Get-VM", "web01"))).output[0], "Heartbeat") is None


def test_failover_ip_is_injected_at_boot_and_replaces_the_guests_own(local: HyperVPair) -> None:
    local.primary_model.add_vm("web01", switch="Prod", state="Running", ip_addresses=["10.1.0.5"])
    replicating(local)
    local.primary_model.replicate("web01")
    ok(
        local.replica.run(
            cmd(
                "Set-VMNetworkAdapterFailoverConfiguration",
                "web01",
                IPv4Address="10.2.0.5",
                IPv4SubnetMask="255.255.0.0",
            )
        )
    )
    local.primary_model.set_state("web01", "Off")
    ok(local.replica.run(cmd("Start-VMFailover", "web01", **NO)))
    # set after the failover, before the boot: still what the guest gets
    ok(
        local.replica.run(
            cmd(
                "Set-VMNetworkAdapterFailoverConfiguration",
                "web01",
                IPv4Address="10.2.0.6",
                IPv4SubnetMask="255.255.0.0",
            )
        )
    )
    ok(local.replica.run(cmd("Start-VM", "web01")))
    adapter = ok(local.replica.run(cmd("Get-VMNetworkAdapter", "web01"))).output[0]
    assert prop(adapter, "IPAddresses") == ["10.2.0.6"]


def test_replica_without_failover_settings_keeps_the_guests_addresses(local: HyperVPair) -> None:
    local.primary_model.add_vm("web01", switch="Prod", state="Running", ip_addresses=["10.1.0.5"])
    replicating(local)
    local.primary_model.replicate("web01")
    local.primary_model.set_state("web01", "Off")
    ok(local.replica.run(cmd("Start-VMFailover", "web01", **NO)))
    ok(local.replica.run(cmd("Start-VM", "web01")))
    adapter = ok(local.replica.run(cmd("Get-VMNetworkAdapter", "web01"))).output[0]
    assert prop(adapter, "IPAddresses") == ["10.1.0.5"]


def test_no_cycles_run_unless_the_fabric_schedules_them(local: HyperVPair) -> None:
    local.primary_model.add_vm("web01", switch="Prod", state="Running")
    replicating(local, RecoveryHistory=4)
    local.fabric.advance(timedelta(hours=2))
    assert points(local) == []


def test_scheduled_cycles_follow_the_replication_frequency(local: HyperVPair) -> None:
    local.fabric.scheduled_replication = True
    local.primary_model.add_vm("web01", switch="Prod", state="Running")
    replicating(local, RecoveryHistory=3, ReplicationFrequencySec=300)
    started = local.primary_model.vm("web01").replication.last_replication_time  # type: ignore[union-attr]
    assert started is not None
    local.fabric.advance(timedelta(seconds=299))
    assert points(local) == []
    local.fabric.advance(timedelta(seconds=1))
    assert points(local) == [("Replica", started + timedelta(seconds=300))]
    local.fabric.advance(timedelta(seconds=900))
    found = points(local)
    assert [kind for kind, _ in found] == ["Replica"] * 3  # trimmed to RecoveryHistory
    assert [when for _, when in found] == [started + timedelta(seconds=s) for s in (600, 900, 1200)]


def test_scheduled_cycles_are_application_consistent_every_vss_period(local: HyperVPair) -> None:
    local.fabric.scheduled_replication = True
    local.primary_model.add_vm("web01", switch="Prod", state="Running")
    replicating(local, RecoveryHistory=24, ReplicationFrequencySec=900, VSSSnapshotFrequencyHour=1)
    local.fabric.advance(timedelta(hours=2))
    kinds = [kind for kind, _ in points(local)]
    assert len(kinds) == 8
    assert kinds.count("AppConsistentReplica") == 2
    assert kinds[0] == "AppConsistentReplica"
    assert kinds[4] == "AppConsistentReplica"


def test_a_prepared_primary_sends_no_more_cycles(local: HyperVPair) -> None:
    local.fabric.scheduled_replication = True
    local.primary_model.add_vm("web01", switch="Prod", state="Running")
    replicating(local, RecoveryHistory=24)
    ok(local.primary.run(cmd("Stop-VM", "web01")))
    ok(local.primary.run(cmd("Start-VMFailover", "web01", Prepare=None, **NO)))
    before = points(local)
    local.fabric.advance(timedelta(hours=1))
    assert points(local) == before


def test_prepare_sends_a_synced_recovery_point(local: HyperVPair) -> None:
    local.primary_model.add_vm("web01", switch="Prod", state="Running")
    replicating(local, RecoveryHistory=4)
    local.primary_model.replicate("web01")
    local.primary_model.write_data("web01", 5)
    ok(local.primary.run(cmd("Stop-VM", "web01")))
    ok(local.primary.run(cmd("Start-VMFailover", "web01", Prepare=None, **NO)))
    found = points(local)
    assert [kind for kind, _ in found] == ["Replica", "SyncedReplica"]
    synced = ok(local.replica.run(cmd("Get-VMSnapshot", "web01", SnapshotType="SyncedReplica")))
    ok(local.replica.run(cmd("Start-VMFailover", VMRecoverySnapshot=synced.output[0], **NO)))
    assert local.replica_model.vm("web01").data_version == 5
    health = ok(local.primary.run(cmd("Measure-VMReplication", "web01"))).output[0]
    assert text(health, "LastReplicationType") == "Planned"


def test_fabric_clock_is_the_fabrics_time() -> None:
    with make_local_pair() as pair:
        clock = FabricClock(pair.fabric)
        start = clock.now()
        clock.sleep(90)
        assert clock.now() - start == timedelta(seconds=90)
        assert clock.monotonic() == 90
        clock.sleep(0)
        for bad in (-1.0, math.nan):
            with pytest.raises(ValidationError):
                clock.sleep(bad)
