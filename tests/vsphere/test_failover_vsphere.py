"""A regular failover of a small plan, end to end: the runner, the vSphere backend, the simulator.

Four protected VMs at site-a (DC0) with replicas at site-b (DC1), started in dependency order
after the protected site is lost. How the site is lost decides what fencing allows:

* its hosts stop answering but vCenter cannot say they lost power: the sources may still run, so
  the runner refuses until ``force=True`` (the operator's word that the site is fenced);
* its hosts are reported powered off: nothing can split the brain, the failover just runs;
* its vCenter does not answer at all: the replicas' records name the sources and their hosts,
  which are then as unknown as hosts that stopped answering, so the runner asks for ``force``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import attrs
import pytest
from pyVmomi import vim

from vmfailover import Runner
from vmfailover.backends.vsphere import VSphereBackend
from vmfailover.engine.results import Outcome, RunReport, RunResult
from vmfailover.errors import ValidationError
from vmfailover.model import PowerState, ReplicaState
from vmfailover.policy.sequencer import StartOrder
from vmfailover.testing.vcsim import VCSim, VCSimInventory
from vmfailover.testing.vcsim.scene import SceneBuilder, _done

SOURCE_HOSTS = ("DC0_C0_H0", "DC0_C0_H1")
DB, APP, WEB, MONITOR = (f"DC0_C0_RP0_VM{n}" for n in range(4))


@attrs.frozen
class Protected:
    sim: VCSim
    backend: VSphereBackend
    replica_vms: dict[str, str]  # source name -> replica VM id


def plan() -> StartOrder:
    """The database first, the application on it, the web tier on that; monitoring on the db."""
    order = StartOrder()
    order.add(DB)
    order.add(APP, after=DB)
    order.add(WEB, after=APP)
    order.add(MONITOR, after=DB)
    return order


def backend_for(sim: VCSim) -> VSphereBackend:
    return VSphereBackend(
        [sim.vcenter("site-a", datacenter="DC0"), sim.vcenter("site-b", datacenter="DC1")]
    )


@pytest.fixture
def protected() -> Iterator[Protected]:
    inventory = VCSimInventory(datacenters=2, clusters=1, cluster_hosts=2, vms=4)
    with VCSim(inventory) as sim:
        with SceneBuilder(sim) as scene:
            scene.add_standard_portgroup("DC1", "DR-Net")
        backend = backend_for(sim)
        sources = {vm.name: vm for vm in backend.inventory().vms if vm.id.startswith("site-a:")}
        replica_vms = {}
        for index, name in enumerate((DB, APP, WEB, MONITOR)):
            replica = backend.create_replica(
                sources[name].id,
                f"DC1_C0_H{index % 2}",
                "site-b/LocalDS_0",
                network_map={"DC0_DVPG0": "DR-Net"},
            )
            backend.sync(replica.id)
            replica_vms[name] = replica.replica_vm
        with SceneBuilder(sim) as scene:
            # each guest keeps its static address, which its tools report once it runs
            for index, vm_id in enumerate(replica_vms.values()):
                vm = vim.VirtualMachine(vm_id.partition(":")[2], scene.instance._stub)
                address = vim.option.OptionValue(
                    key="SET.guest.ipAddress", value=f"192.168.50.{10 + index}"
                )
                _done(vm.ReconfigVM_Task(vim.vm.ConfigSpec(extraConfig=[address])))
        yield Protected(sim, backend, replica_vms)
        backend.close()


def runner_for(backend: VSphereBackend) -> Runner:
    return Runner(backend, readiness_timeout=30, poll_interval=0.2)


def assert_failed_over(protected: Protected, report: RunReport) -> None:
    assert report.result is RunResult.SUCCEEDED, report
    results = {r.vm: r for r in report.vms}
    assert {r.outcome for r in results.values()} == {Outcome.READY}
    # dependents started only once what they depend on was ready
    for dependent, dependency in ((APP, DB), (WEB, APP), (MONITOR, DB)):
        started, ready = results[dependent].started_at, results[dependency].ready_at
        assert started is not None and ready is not None and started >= ready
    inventory = backend_for(protected.sim).inventory()
    for name, vm_id in protected.replica_vms.items():
        replica_vm = inventory.vm(vm_id)
        assert replica_vm.power_state is PowerState.ON, name
        assert replica_vm.host.startswith("DC1_"), name
        assert [nic.network for nic in replica_vm.nics] == ["DR-Net"], name
        assert results[name].replica_vm_id == vm_id
    states = {r.replica_vm: r.state for r in inventory.replicas}
    assert {states[vm_id] for vm_id in protected.replica_vms.values()} == {ReplicaState.FAILED_OVER}


def test_hosts_that_stop_answering_need_force(protected: Protected) -> None:
    for host in SOURCE_HOSTS:
        protected.sim.fail_host(host, power_off=False)
    runner = runner_for(protected.backend)
    with pytest.raises(ValidationError) as refused:
        runner.failover(plan(), kind="regular")
    findings = {f.item: f.message for f in refused.value.findings}
    assert set(findings) == {f"VM {name!r}" for name in (DB, APP, WEB, MONITOR)}
    assert all("not known to be powered off" in message for message in findings.values())
    # nothing was touched by the refused run
    assert all(
        vm.power_state is PowerState.OFF
        for vm in protected.backend.inventory().vms
        if vm.id in protected.replica_vms.values()
    )

    report = runner.failover(plan(), kind="regular", force=True)
    assert_failed_over(protected, report)
    assert len(report.decisions) == 4
    assert all("force=True" in decision for decision in report.decisions)


def test_a_site_reported_powered_off_fails_over_without_force(protected: Protected) -> None:
    for host in SOURCE_HOSTS:
        protected.sim.fail_host(host, power_off=True)
    report = runner_for(protected.backend).failover(plan(), kind="regular")
    assert_failed_over(protected, report)
    assert report.decisions == ()


def closed_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return int(listener.getsockname()[1])


def test_an_unreachable_source_vcenter_is_fenced_like_a_lost_host(protected: Protected) -> None:
    sim = protected.sim
    unreachable = attrs.evolve(
        sim.vcenter("site-a", datacenter="DC0"), port=closed_port(), timeout=5.0
    )
    backend = VSphereBackend([unreachable, sim.vcenter("site-b", datacenter="DC1")])
    try:
        inventory = backend.inventory()
        source = inventory.vm(DB)
        assert source.power_state is PowerState.ON  # last known, and nobody can vouch otherwise
        assert not inventory.host(source.host).available
        runner = runner_for(backend)
        with pytest.raises(ValidationError, match="not known to be powered off"):
            runner.failover(plan(), kind="regular")
        report = runner.failover(plan(), kind="regular", force=True)
        assert_failed_over(protected, report)
    finally:
        backend.close()
