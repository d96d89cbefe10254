"""One failover plan of three VMs (start order, network mapping, re-IP) run end to end through the
Runner against a primary and a replica simulated Hyper-V host over real HTTP: a test failover
and its cleanup, a planned failover, the failback, and regular failovers, the site answering and
lost. The plan names VMs by name: a Hyper-V replica carries its source's name, and the plan
check takes the replication source."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from vmfailover import FailoverPlan, NetworkMapping, ReIPRule, ReIPRules, Runner, StartOrder
from vmfailover.engine.results import Outcome, RunReport, RunResult
from vmfailover.errors import ValidationError
from vmfailover.model import IPConfig, PowerState, ReplicaState
from vmfailover.testing.hyperv import CmdletError

from .conftest import World, add_vm, guid_of, replicate

NAMES = ("dc01", "db01", "app01")
OCTETS = {"dc01": 11, "db01": 21, "app01": 31}


def plan(**changes: Any) -> FailoverPlan:
    order = StartOrder()
    order.add("dc01")
    order.add("db01", after=["dc01"])
    order.add("app01", after=["db01"])
    settings: dict[str, Any] = {
        "order": order,
        "network": NetworkMapping(production={"Prod": "DR-Prod"}, test={"Prod": "DR-Test"}),
        "reip": ReIPRules([ReIPRule("192.168.1.*", "10.20.1.*", gateway="10.20.1.1")]),
        "test_reip": ReIPRules([ReIPRule("192.168.1.*", "172.16.1.*")]),
        "rpo": "1h",
        "rto": "1h",
    }
    settings.update(changes)
    return FailoverPlan("crm", list(NAMES), **settings)


@pytest.fixture
def crm(world: World) -> tuple[World, dict[str, str]]:
    """dc01, db01 and app01 on hv-a (192.168.1.x/24, gateway .1), replicated to hv-b."""
    ids = {}
    for name in NAMES:
        ids[name] = add_vm(
            world,
            name,
            boot_seconds=30,
            ip_addresses=[f"192.168.1.{OCTETS[name]}/24"],
            gateway="192.168.1.1",
            dns=["192.168.1.11"],
        )
        replica = replicate(world, ids[name])
        world.write(ids[name])
        world.backend.sync(replica.id)
    return world, ids


def reported(world: World, vm_id: str) -> set[str]:
    return {str(a) for a in world.backend.readiness(vm_id).ip_addresses}


def by_name(report: RunReport) -> dict[str, Any]:
    return {vm.vm: vm for vm in report.vms}


def assert_in_order(report: RunReport) -> None:
    vms = by_name(report)
    assert vms["dc01"].ready_at <= vms["db01"].started_at
    assert vms["db01"].ready_at <= vms["app01"].started_at


def model_adapter(world: World, vm_id: str):  # type: ignore[no-untyped-def]
    host = world.a if vm_id.startswith("hv-a/") else world.b
    assert host.model is not None
    return host.model.vm(guid_of(vm_id)).adapters[0]


def test_the_inventory_reads_what_the_guests_report(crm: tuple[World, dict[str, str]]) -> None:
    world, ids = crm
    inventory = world.backend.inventory()
    dc = inventory.vm(ids["dc01"])
    assert dc.guest_os == "windows"
    assert dc.nics[0].ip_configs == (
        IPConfig("192.168.1.11/24", gateway="192.168.1.1", dns=["192.168.1.11"]),
    )
    replica_vm = inventory.vm(inventory.replica_of(ids["dc01"]).replica_vm)
    assert replica_vm.name == "dc01"  # off, its guest reports nothing
    assert replica_vm.guest_os == "other" and replica_vm.nics[0].ip_configs == ()


def test_test_failover_then_cleanup(crm: tuple[World, dict[str, str]]) -> None:
    world, ids = crm
    backend = world.backend
    inventory = backend.inventory()
    # An operator set dc01's failover address on its replica, for a real failover: the test
    # lends the replica the test addresses for a moment and gives these back.
    dc_replica = inventory.vm(inventory.replica_of(ids["dc01"]).replica_vm)
    backend.set_guest_ip(dc_replica.id, dc_replica.nics[0].mac, [IPConfig("10.99.0.11/24")])
    own = model_adapter(world, dc_replica.id).failover

    runner = Runner(backend, poll_interval=5)
    run = runner.start(plan(), kind="test")
    report = run.wait()
    assert report.result is RunResult.SUCCEEDED, report
    assert_in_order(report)
    for name in NAMES:
        vm = by_name(report)[name]
        assert vm.outcome is Outcome.READY and vm.addresses_verified, vm
        assert reported(world, vm.runs_as) == {f"172.16.1.{OCTETS[name]}"}
        assert backend.inventory().vm(vm.runs_as).nics[0].network == "DR-Test"
        assert reported(world, ids[name]) == {f"192.168.1.{OCTETS[name]}"}  # production runs on
    assert model_adapter(world, dc_replica.id).failover == own  # given back
    assert not model_adapter(
        world, inventory.vm(inventory.replica_of(ids["db01"]).replica_vm).id
    ).failover.ipv4_address

    cleaned = runner.cleanup(run)
    assert cleaned.cleanup is not None and cleaned.cleanup.restored, cleaned.cleanup
    after = backend.inventory()
    assert {vm.id for vm in after.vms} == {vm.id for vm in inventory.vms}
    assert all(r.state is ReplicaState.READY for r in after.replicas)


def model_vm(world: World, vm_id: str):  # type: ignore[no-untyped-def]
    host = world.a if vm_id.startswith("hv-a/") else world.b
    assert host.model is not None
    return host.model.vm(guid_of(vm_id))


def test_planned_failover_then_failback(crm: tuple[World, dict[str, str]]) -> None:
    world, ids = crm
    backend = world.backend
    for name in NAMES:
        world.write(ids[name])  # after the last recovery point: a planned failover keeps it
    runner = Runner(backend, poll_interval=5)

    report = runner.failover(plan(), kind="planned")
    assert report.result is RunResult.SUCCEEDED, report
    assert_in_order(report)
    inventory = backend.inventory()
    for name in NAMES:
        vm = by_name(report)[name]
        replica = inventory.replica_of(ids[name])
        assert vm.runs_as == replica.replica_vm and vm.addresses_verified, vm
        assert reported(world, replica.replica_vm) == {f"10.20.1.{OCTETS[name]}"}
        assert inventory.vm(replica.replica_vm).nics[0].ip_configs[0].gateway == (
            ipaddress.ip_address("10.20.1.1")
        )
        assert inventory.vm(ids[name]).power_state is PowerState.OFF
        assert model_vm(world, replica.replica_vm).data_version == 2  # nothing lost

    # Failback: replication reversed (the primitive), then the same names, planned, home again.
    for name in NAMES:
        backend.reverse_replication(inventory.replica_of(ids[name]).id)
        world.write(inventory.replica_of(ids[name]).replica_vm)  # production runs at site B
    home = plan(
        network=NetworkMapping(production={"DR-Prod": "Prod"}),
        reip=ReIPRules([ReIPRule("10.20.1.*", "192.168.1.*", gateway="192.168.1.1")]),
        test_reip=None,
    )
    assert not runner.validate(home, "planned").blocking
    back = runner.failover(home, kind="planned")
    assert back.result is RunResult.SUCCEEDED, back
    assert_in_order(back)
    for name in NAMES:
        assert by_name(back)[name].runs_as == ids[name]
        assert by_name(back)[name].addresses_verified
        assert reported(world, ids[name]) == {f"192.168.1.{OCTETS[name]}"}
        assert model_vm(world, ids[name]).data_version == 3
        reverse = backend.inventory().replica(ids[name])  # B replicated to A, failed over
        assert reverse.state is ReplicaState.FAILED_OVER
        again = backend.reverse_replication(reverse.id)  # and now A to B, as before
        assert (again.source_vm, again.target_host) == (ids[name], "hv-b")
    inventory = backend.inventory()
    for name in NAMES:
        assert inventory.vm(ids[name]).power_state is PowerState.ON
        assert inventory.replica_of(ids[name]).state is ReplicaState.READY
        assert inventory.vm(inventory.replica_of(ids[name]).replica_vm).power_state is (
            PowerState.OFF
        )


def test_regular_failover_with_the_site_answering(crm: tuple[World, dict[str, str]]) -> None:
    world, ids = crm
    for name in NAMES:
        world.write(ids[name])  # after the last recovery point: lost in a regular failover
    runner = Runner(world.backend, poll_interval=5)
    with pytest.raises(ValidationError, match="power_off_source"):
        runner.failover(plan(), kind="regular")  # the sources run: split brain
    report = runner.failover(plan(power_off_source="graceful"), kind="regular")
    assert report.result is RunResult.SUCCEEDED, report
    assert_in_order(report)
    inventory = world.backend.inventory()
    for name in NAMES:
        vm = by_name(report)[name]
        assert vm.source == "shut down" and vm.addresses_verified, vm
        assert [step.step for step in vm.steps][:3] == ["check_source", "shutdown_source", "revert"]
        assert reported(world, vm.runs_as) == {f"10.20.1.{OCTETS[name]}"}
        assert model_vm(world, vm.runs_as).data_version == 1  # the point's, not the source's 2
        assert inventory.vm(ids[name]).power_state is PowerState.OFF


def test_regular_failover_with_the_site_lost(crm: tuple[World, dict[str, str]]) -> None:
    """With the primary gone, its guests' addresses are unknown and re-IP rules have nothing to
    translate: the Hyper-V way is failover addresses set on the replicas ahead of the disaster,
    which Hyper-V injects as they boot."""
    world, ids = crm
    backend = world.backend
    inventory = backend.inventory()
    for name in NAMES:
        replica_vm = inventory.vm(inventory.replica_of(ids[name]).replica_vm)
        address = IPConfig(f"10.20.1.{OCTETS[name]}/24", gateway="10.20.1.1")
        backend.set_guest_ip(replica_vm.id, replica_vm.nics[0].mac, [address])
    world.a.stop()
    backend.declare_host_down("hv-a")

    report = Runner(backend, poll_interval=5).failover(plan(), kind="regular")
    assert report.result is RunResult.SUCCEEDED, report
    assert_in_order(report)
    for name in NAMES:
        vm = by_name(report)[name]
        assert vm.source == "its host was down at pre-flight"
        assert reported(world, vm.runs_as) == {f"10.20.1.{OCTETS[name]}"}


def test_a_host_whose_endpoint_cannot_read_the_guests_is_read_without_them(
    crm: tuple[World, dict[str, str]],
) -> None:
    """A constrained endpoint without Get-CimInstance: the inventory still comes, in one
    pipeline per host from then on; the guests' OS and addresses are unknown (other, none)."""
    world, ids = crm
    backend = world.backend
    world.a.faults.fail_next(
        "Get-CimInstance",
        CmdletError(
            "CommandNotFoundException",
            "The term 'Get-CimInstance' is not recognized as the name of a cmdlet.",
            category="ObjectNotFound",
            exception_type="System.Management.Automation.CommandNotFoundException",
            target="Get-CimInstance",
        ),
    )
    inventory = backend.inventory()
    assert inventory.vm(ids["dc01"]).guest_os == "other"
    assert inventory.vm(ids["dc01"]).nics[0].ip_configs == ()
    before = backend.pipelines_sent
    assert backend.inventory() == inventory
    assert backend.pipelines_sent - before == 2
    findings = Runner(backend).validate(plan(), "test")
    unknown = [f for f in findings.warnings if "addresses are unknown" in f.message]
    assert [f.item.split(" NIC ")[0] for f in unknown] == [f"VM {n!r}" for n in NAMES]


def test_planned_failover_then_the_runners_failback(crm: tuple[World, dict[str, str]]) -> None:
    """runner.failback on Hyper-V: commit (Complete-VMFailover), Set-VMReplication -Reverse, a
    planned failover home by the reversed plan (networks and addresses the other way), and the
    failback's commit hands replication back to its first direction."""
    world, ids = crm
    backend = world.backend
    runner = Runner(backend, poll_interval=5)
    run = runner.start(plan(), kind="planned", background=False)
    report = run.wait()
    assert report.result is RunResult.SUCCEEDED, report
    at_b, replica_vms = {}, {}
    for name in NAMES:
        replica_vms[name] = backend.inventory().replica_of(ids[name]).replica_vm
        world.write(replica_vms[name])  # production runs at site B
        at_b[name] = model_vm(world, replica_vms[name]).data_version

    home = runner.failback(run, background=False)
    back = home.wait()
    assert back.result is RunResult.SUCCEEDED, back
    assert back.failback is not None and back.failback.of_run == run.id
    inventory = backend.inventory()
    for name in NAMES:
        assert inventory.vm(ids[name]).power_state is PowerState.ON
        assert reported(world, ids[name]) == {f"192.168.1.{OCTETS[name]}"}
        assert model_vm(world, ids[name]).data_version == at_b[name], "B's last write came home"
        assert inventory.vm(replica_vms[name]).power_state is PowerState.OFF, "never both run"

    committed = runner.commit(home)
    assert committed.commit is not None
    inventory = backend.inventory()
    for name in NAMES:
        replica = inventory.replica_of(ids[name])
        assert (replica.source_vm, replica.target_host) == (ids[name], "hv-b")
        assert replica.replica_vm == replica_vms[name]
        assert replica.state is ReplicaState.READY
