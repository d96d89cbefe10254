"""One plan, three kinds, end to end: the runner, the vSphere backend and the simulated vCenter.

Four protected VMs at site-a (DC0) with replicas at site-b (DC1): a database, an application on
it, a web tier on that (two NICs, one on a standard and one on a distributed port group) and
monitoring on the database. Production maps the distributed port group onto ``DR-App``
(distributed) and the standard ``VM Network`` onto ``DR-Net`` (standard); a test maps them onto
the isolated ``Test-App`` (distributed) and ``Test-Net`` (standard). Every guest has a static
address in ``192.168.10.0/24`` or ``192.168.20.0/24``, which production re-addresses into
``10.10``/``10.20`` and a test into ``172.16.10``/``172.16.20``.

What is checked is what vCenter shows afterwards, read by an administrator's own session: power
states, the port group each NIC is on, and the addresses the guests report in ``guest.net``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from pyVmomi import vim

from vmfailover import (
    FailoverPlan,
    NetworkMapping,
    ReIPRule,
    ReIPRules,
    RetryPolicy,
    Runner,
    StartOrder,
)
from vmfailover.backends.vsphere import VSphereBackend
from vmfailover.backends.vsphere.devices import nic_network
from vmfailover.engine.events import RunEvent, StepStarted, VMStep
from vmfailover.engine.results import Outcome, RunReport, RunResult
from vmfailover.model import PowerState, ReplicaState
from vmfailover.testing.vcsim import VCSim, VCSimInventory
from vmfailover.testing.vcsim.scene import SceneBuilder

DB, APP, WEB, MONITOR = (f"DC0_C0_RP0_VM{n}" for n in range(4))
VMS = (DB, APP, WEB, MONITOR)
SOURCE_HOSTS = ("DC0_C0_H0", "DC0_C0_H1")
ISOLATED = ("Test-Net", "Test-App")

# production address of each source NIC, in device order
ADDRESSES = {
    DB: ["192.168.20.11/24"],
    APP: ["192.168.20.12/24"],
    WEB: ["192.168.20.13/24", "192.168.10.13/24"],
    MONITOR: ["192.168.20.14/24"],
}


@attrs.frozen
class Protected:
    sim: VCSim
    backend: VSphereBackend
    replica_vms: dict[str, str]  # source name -> replica VM id
    source_vms: dict[str, str]  # source name -> source VM id


def backend_for(sim: VCSim) -> VSphereBackend:
    return VSphereBackend(
        [
            sim.vcenter("site-a", datacenter="DC0"),
            sim.vcenter("site-b", datacenter="DC1", isolated_networks=ISOLATED),
        ]
    )


def the_plan(**changes: Any) -> FailoverPlan:
    order = StartOrder()
    order.add(DB)
    order.add(APP, after=DB)
    order.add(WEB, after=APP)
    order.add(MONITOR, after=DB)
    plan = FailoverPlan(
        "shop",
        VMS,
        order=order,
        network=NetworkMapping(
            production={"DC0_DVPG0": "DR-App", "VM Network": "DR-Net"},
            test={"DC0_DVPG0": "Test-App", "VM Network": "Test-Net"},
        ),
        reip=ReIPRules(
            [
                ReIPRule("192.168.20.*", "10.20.0.*", gateway="10.20.0.1", dns=["10.20.0.2"]),
                ReIPRule("192.168.10.*", "10.10.0.*", gateway="10.10.0.1"),
            ]
        ),
        test_reip=ReIPRules(
            [
                ReIPRule("192.168.20.*", "172.16.20.*", gateway="172.16.20.1"),
                ReIPRule("192.168.10.*", "172.16.10.*"),
            ]
        ),
        shutdown_timeout=30,
    )
    return attrs.evolve(plan, **changes) if changes else plan


@pytest.fixture
def protected() -> Iterator[Protected]:
    with protected_scene() as scene:
        yield scene


@contextlib.contextmanager
def protected_scene(task_delay: int = 0) -> Iterator[Protected]:
    """The four VMs protected; tasks stay running ``task_delay`` ms (as vCenter's do)."""
    inventory = VCSimInventory(datacenters=2, clusters=1, cluster_hosts=2, vms=4)
    with VCSim(inventory, task_delay=task_delay) as sim:
        with SceneBuilder(sim) as scene:
            scene.add_standard_portgroup("DC1", "DR-Net")
            scene.add_distributed_portgroup("DC1", "DR-App")
            scene.add_standard_portgroup("DC1", "Test-Net")
            scene.add_distributed_portgroup("DC1", "Test-App")
            scene.add_nic(WEB, "DC0", "VM Network")
            for name in VMS:
                scene.set_guest_id(name, "otherLinux64Guest")
                scene.address_guest(name, ADDRESSES[name], gateway="192.168.20.1")
        backend = backend_for(sim)
        sources = {vm.name: vm for vm in backend.inventory().vms if vm.id.startswith("site-a:")}
        replica_vms = {}
        for index, name in enumerate(VMS):
            replica = backend.create_replica(
                sources[name].id,
                f"DC1_C0_H{index % 2}",
                "site-b/LocalDS_0",
                network_map={"DC0_DVPG0": "DR-App", "VM Network": "DR-Net"},
            )
            backend.sync(replica.id)
            replica_vms[name] = replica.replica_vm
        yield Protected(sim, backend, replica_vms, {n: sources[n].id for n in VMS})
        backend.close()


def runner_for(backend: VSphereBackend) -> Runner:
    return Runner(backend, readiness_timeout=30, poll_interval=0.2)


# --- what vCenter shows, read by an administrator ------------------------------------------------


@attrs.frozen
class Seen:
    power: str
    networks: list[str]  # the port group of each NIC, in device order
    addresses: set[str]  # what the guest reports in guest.net


def seen(sim: VCSim, vm_id: str) -> Seen:
    with SceneBuilder(sim) as admin:
        vm = vim.VirtualMachine(vm_id.partition(":")[2], admin.instance._stub)
        keys = {
            pg.key: pg.name
            for dc in ("DC0", "DC1")
            for pg in admin.datacenter(dc).network
            if isinstance(pg, vim.dvs.DistributedVirtualPortgroup)
        }
        networks = [
            nic_network(device, keys)
            for device in vm.config.hardware.device
            if isinstance(device, vim.vm.device.VirtualEthernetCard)
        ]
        addresses = {a for nic in vm.guest.net or () for a in nic.ipAddress or ()}
        return Seen(str(vm.runtime.powerState), networks, addresses)


def expected(name: str, network: dict[str, str], *, test: bool) -> tuple[list[str], set[str]]:
    """The port groups and addresses a recovered VM must show."""
    on = {"192.168.20": "DC0_DVPG0", "192.168.10": "VM Network"}
    prefixes = (
        {"192.168.20": "172.16.20", "192.168.10": "172.16.10"}
        if test
        else {"192.168.20": "10.20.0", "192.168.10": "10.10.0"}
    )
    networks, addresses = [], set()
    for address in ADDRESSES[name]:
        ip = str(ipaddress.ip_interface(address).ip)
        net, _, host = ip.rpartition(".")
        networks.append(network[on[net]])
        addresses.add(f"{prefixes[net]}.{host}")
    return networks, addresses


def reasons(report: RunReport) -> str:
    return "; ".join(f"{r.vm}: {r.outcome.value} {r.reason}" for r in report.vms)


def assert_succeeded(report: RunReport) -> None:
    assert report.result is RunResult.SUCCEEDED, reasons(report)
    results = {r.vm: r for r in report.vms}
    assert {r.outcome for r in results.values()} == {Outcome.READY}, reasons(report)
    assert all(r.addresses_verified for r in results.values()), reasons(report)
    for dependent, dependency in ((APP, DB), (WEB, APP), (MONITOR, DB)):
        started, ready = results[dependent].started_at, results[dependency].ready_at
        assert started is not None and ready is not None and started >= ready


# --- the three kinds ------------------------------------------------------------------------------


def test_a_test_failover_then_cleanup_then_the_planned_one(protected: Protected) -> None:
    sim, backend = protected.sim, protected.backend
    runner = runner_for(backend)
    plan = the_plan()
    before = {vm_id: seen(sim, vm_id) for vm_id in protected.replica_vms.values()}
    sources_before = {vm_id: seen(sim, vm_id) for vm_id in protected.source_vms.values()}

    run = runner.start(plan, kind="test")
    report = run.wait(timeout=120)
    assert_succeeded(report)
    test_map = {"DC0_DVPG0": "Test-App", "VM Network": "Test-Net"}
    copies = {}
    for result in report.vms:
        copy = result.runs_as
        assert copy is not None and copy not in protected.replica_vms.values()
        copies[result.vm] = copy
        networks, addresses = expected(result.vm, test_map, test=True)
        shown = seen(sim, copy)
        assert shown.power == "poweredOn", result.vm
        assert shown.networks == networks, result.vm
        assert shown.addresses == addresses, result.vm
    # production untouched while the test runs: sources on, replicas off and where they were
    for vm_id, was in sources_before.items():
        assert seen(sim, vm_id) == was
    for vm_id, was in before.items():
        assert seen(sim, vm_id) == was

    cleaned = runner.cleanup(run)
    assert cleaned.cleanup is not None
    assert cleaned.cleanup.restored, cleaned.cleanup
    assert set(cleaned.cleanup.removed) == set(copies.values())
    inventory = backend.inventory()
    assert not set(copies.values()) & {vm.id for vm in inventory.vms}
    states = {r.replica_vm: r.state for r in inventory.replicas}
    assert {states[v] for v in protected.replica_vms.values()} == {ReplicaState.READY}

    report = runner.failover(plan, kind="planned")
    assert_succeeded(report)
    production = {"DC0_DVPG0": "DR-App", "VM Network": "DR-Net"}
    for result in report.vms:
        assert result.data_loss_seconds == 0
        assert result.source == "shut down"
        assert result.runs_as == protected.replica_vms[result.vm]
        networks, addresses = expected(result.vm, production, test=False)
        shown = seen(sim, protected.replica_vms[result.vm])
        assert shown.power == "poweredOn", result.vm
        assert shown.networks == networks, result.vm
        assert shown.addresses == addresses, result.vm
    for name, vm_id in protected.source_vms.items():
        assert seen(sim, vm_id).power == "poweredOff", name
    inventory = backend.inventory()
    states = {r.replica_vm: r.state for r in inventory.replicas}
    assert {states[v] for v in protected.replica_vms.values()} == {ReplicaState.FAILED_OVER}


def test_a_regular_failover_after_the_protected_hosts_fail(protected: Protected) -> None:
    sim, backend = protected.sim, protected.backend
    for host in SOURCE_HOSTS:
        sim.fail_host(host, power_off=True)
    inventory = backend.inventory()
    for name, vm_id in protected.source_vms.items():
        source = inventory.vm(vm_id)
        assert source.power_state is PowerState.OFF, name
        assert not inventory.host(source.host).available, name

    report = runner_for(backend).failover(the_plan(), kind="regular")
    assert_succeeded(report)
    assert report.decisions == ()  # fencing saw the hosts down: nothing to force
    production = {"DC0_DVPG0": "DR-App", "VM Network": "DR-Net"}
    for result in report.vms:
        assert result.source == "its host was down at pre-flight"
        networks, addresses = expected(result.vm, production, test=False)
        shown = seen(sim, protected.replica_vms[result.vm])
        assert shown.power == "poweredOn", result.vm
        assert shown.networks == networks, result.vm
        assert shown.addresses == addresses, result.vm


# --- vCenter restarts during a run ----------------------------------------------------------


def restart_when(
    runner: Runner, vm: str, step: VMStep, action: Callable[[], None]
) -> list[BaseException]:
    """Call ``action`` on its own thread when ``vm`` starts ``step`` (once); its errors land in
    the list returned."""
    errors: list[BaseException] = []
    fired = threading.Event()

    def act() -> None:
        try:
            action()
        except BaseException as error:
            errors.append(error)

    def on_event(event: RunEvent) -> None:
        if (
            isinstance(event, StepStarted)
            and event.vm == vm
            and event.step is step
            and not fired.is_set()
        ):
            fired.set()
            threading.Thread(target=act, daemon=True).start()

    runner.subscribe(on_event)
    return errors


def test_a_vcenter_restart_mid_run_is_retried_after_logging_in_again() -> None:
    with protected_scene(task_delay=200) as protected:
        sim, backend = protected.sim, protected.backend
        for host in SOURCE_HOSTS:
            sim.fail_host(host, power_off=True)
        runner = Runner(
            backend,
            readiness_timeout=60,
            poll_interval=0.2,
            retry=RetryPolicy(attempts=8, initial_wait=0.2, max_wait=2.0),
        )
        logins = backend.connection("site-b").logins
        errors = restart_when(runner, APP, VMStep.REVERT, lambda: sim.restart(down=1.5))
        began = time.monotonic()
        run = runner.start(the_plan(), kind="regular")
        report = run.wait(timeout=180)
        assert time.monotonic() - began < 180
        assert not errors, errors
        assert_succeeded(report)
        assert backend.connection("site-b").logins > logins  # the session was lost, and renewed
        warnings = " ".join(report.warnings)
        assert "retrying" in warnings, report.warnings
        for result in report.vms:
            assert seen(sim, protected.replica_vms[result.vm]).power == "poweredOn"


def test_a_vcenter_that_does_not_come_back_fails_the_run_clearly() -> None:
    with protected_scene(task_delay=200) as protected:
        sim, backend = protected.sim, protected.backend
        for host in SOURCE_HOSTS:
            sim.fail_host(host, power_off=True)
        runner = Runner(
            backend,
            readiness_timeout=20,
            poll_interval=0.2,
            retry=RetryPolicy(attempts=3, initial_wait=0.2, max_wait=1.0),
        )
        restart_when(runner, APP, VMStep.REVERT, sim.stop)
        began = time.monotonic()
        run = runner.start(the_plan(), kind="regular")
        report = run.wait(timeout=180)
        assert time.monotonic() - began < 180
        results = {r.vm: r for r in report.vms}
        assert report.result in (RunResult.FAILED, RunResult.PARTIAL), reasons(report)
        assert results[DB].outcome is Outcome.READY  # done before the vCenter went away
        assert results[APP].outcome is not Outcome.READY
        assert "could not be reached" in (results[APP].reason or ""), reasons(report)
        assert results[WEB].outcome is Outcome.SKIPPED
