"""Host failover against the simulated vCenter: a host of a three-host cluster stops answering and
loses power (the launcher's hook), its VMs restart on the others in dependency order with
anti-affinity respected, and move back live once it returns."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest
from pyVmomi import vim

from vmfailover import ClusterPolicy, MoveBack, Outcome, PowerState, Runner, RunResult, StartOrder
from vmfailover.backends.vsphere import VSphereBackend
from vmfailover.testing.vcsim import VCSim, VCSimInventory
from vmfailover.testing.vcsim.scene import SceneBuilder, _done

CLUSTER = "DC0_C0"
WEB, DIRECTORY, DATABASE, APP = (f"DC0_C0_RP0_VM{n}" for n in range(4))
# The simulator puts VM0 on H2, VM1 on H0, VM2 and VM3 on H1.
FAILED = "DC0_C0_H1"


@attrs.frozen
class Lab:
    sim: VCSim
    backend: VSphereBackend


@pytest.fixture
def lab() -> Iterator[Lab]:
    with VCSim(VCSimInventory(datacenters=1, clusters=1, cluster_hosts=3, vms=4)) as sim:
        with SceneBuilder(sim) as scene:
            # each guest reports a static address once it runs, so it counts as ready
            for index, name in enumerate((WEB, DIRECTORY, DATABASE, APP)):
                address = vim.option.OptionValue(
                    key="SET.guest.ipAddress", value=f"192.168.60.{10 + index}"
                )
                vm = scene.vm(name)
                _done(vm.ReconfigVM_Task(vim.vm.ConfigSpec(extraConfig=[address])))
        backend = VSphereBackend([sim.vcenter("site-a", datacenter="DC0")])
        yield Lab(sim, backend)
        backend.close()


def test_a_failed_hosts_vms_restart_on_the_others_and_move_back(lab: Lab) -> None:
    backend = lab.backend
    before = {vm.name: vm.host for vm in backend.inventory().vms}
    assert (before[DATABASE], before[APP], before[DIRECTORY]) == (FAILED, FAILED, "DC0_C0_H0")
    order = StartOrder()
    order.add(DIRECTORY)
    order.add(DATABASE, after=DIRECTORY)
    order.add(APP, after=DATABASE)
    order.add(WEB, after=APP)
    # the database never shares a host with the directory; the simulator's hosts have 2 cores
    policy = ClusterPolicy(anti_affinity=[{DATABASE, DIRECTORY}], vcpus_per_core=4)
    runner = Runner(backend, readiness_timeout=30, poll_interval=0.2)

    lab.sim.fail_host(FAILED)  # not responding, powered off: its VMs are off
    report = runner.host_failover(CLUSTER, FAILED, policy, order)

    assert report.result is RunResult.SUCCEEDED, report
    assert {r.name for r in report.vms} == {DATABASE, APP}
    assert report.vm(DATABASE).to_host == "DC0_C0_H2", "anti-affinity: not with the directory"
    inventory = backend.inventory()
    for restart in report.vms:
        vm = inventory.vm(restart.vm)
        assert restart.outcome is Outcome.READY
        assert (vm.host, vm.power_state) == (restart.to_host, PowerState.ON)
        assert restart.downtime_seconds is not None and restart.downtime_seconds > 0
    database, app = report.vm(DATABASE), report.vm(APP)
    assert database.ready_at is not None and app.started_at is not None
    assert app.started_at >= database.ready_at, "the app waits for its database"
    assert [s.step for s in database.steps] == ["restart_on_host", "wait_ready"]

    lab.sim.restore_host(FAILED)
    back = runner.move_back(report)
    assert back.restored, back.differences
    assert {m.how for m in back.vms} == {MoveBack.LIVE}
    assert {vm.name: vm.host for vm in backend.inventory().vms} == before
