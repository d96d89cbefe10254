"""Benchmark of the vSphere backend against govmomi's simulated vCenter: SOAP round trips.

Counts the round trips the simulator serves (at its HTTP layer, through the launcher's hook):

* **inventory** of 100 and of 1,000 VMs: the count must not grow with the number of VMs;
* **a regular failover of 100 VMs through the runner** (``Runner.failover(plan, kind="regular")``
  with its default eight workers): the pre-flight reads the inventory and every replica's
  recovery points; each VM is then reverted, powered on, awaited and, where re-IP gave it an
  address, verified. One VM in four has its NIC moved (its replica was seeded onto a staging
  port group) and a new guest address (a re-IP rule matches its source's address). Measured
  twice: after the protected site's hosts lost power (fencing needs nothing more), and with the
  sources shut down on hosts that still answer (the runner then checks each source once more
  before it reverts the replica);

and runs a **naive reference** on the same simulator, the way a first pyVmomi script does it:
attribute reads (one round trip each) in loops, and a polling loop per task. It prints calls per
VM for all, and the ratios of calls and wall time.

Targets (exit status 1 when missed): inventory of 1,000 VMs costs no more round trips than of
100; the regular failover after the protected site is lost (the case regular failover exists
for) costs at most 6 round trips per VM through the runner; every failover ends with every VM
ready and every new address reported by its guest. The variant whose source hosts still answer
pays one more read per VM on purpose (the source is checked once more just before its replica is
reverted, so a source that came back is never doubled); its count is printed for information.

Run from the worktree root: ``python benchmarks/bench_vsphere.py``. The simulator is built from
Debian's packages on first use (``vmfailover.testing.vcsim``).
"""

from __future__ import annotations

import ssl
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _smoke import announce, exit_code, judged, sized
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from vmfailover import (
    FailoverPlan,
    NetworkMapping,
    ReIPRule,
    ReIPRules,
    Runner,
    StartOrder,
    ToolsHeartbeat,
)
from vmfailover.backends.vsphere import VSphereBackend
from vmfailover.backends.vsphere.guest import customization_spec
from vmfailover.engine.results import Outcome, RunReport, RunResult
from vmfailover.model import GuestOS, IPConfig, Replica
from vmfailover.testing.vcsim import VCSim, VCSimInventory
from vmfailover.testing.vcsim.scene import SceneBuilder

TARGET_CALLS_PER_VM = 6.0
FAILOVER_VMS = sized(100, 4)
#: The two inventories compared: the larger must cost no more round trips than the smaller.
INVENTORY_VMS = sized((100, 1000), (4, 8))
RE_IP_EVERY = 4  # one VM in four gets a NIC moved and a new guest address
THREADS = 8  # the runner's default max_parallel
POLL_SECONDS = 0.05  # between the naive reference's readiness checks
READY_TIMEOUT = 60.0


def backend_for(sim: VCSim) -> VSphereBackend:
    return VSphereBackend(
        [
            sim.vcenter("site-a", datacenter="DC0"),
            sim.vcenter("site-b", datacenter="DC1", isolated_networks=["Test-Net"]),
        ]
    )


def counted(sim: VCSim, action: Callable[[], object]) -> tuple[int, float]:
    """(SOAP round trips, wall seconds) of ``action``."""
    sim.reset_soap_requests()
    began = time.perf_counter()
    action()
    seconds = time.perf_counter() - began
    return sim.soap_requests(), seconds


def log_in(backend: VSphereBackend) -> None:
    for site in backend.sites:
        _ = backend.connection(site).content


# --- inventory ---------------------------------------------------------------------------------


def naive_inventory(instance: Any) -> int:
    """What a first script does: walk a view, read each VM's attributes one by one."""
    content = instance.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    found = 0
    try:
        for vm in view.view:
            _ = (vm.name, vm.runtime.powerState, vm.runtime.host, vm.config.hardware.device)
            _ = (vm.config.extraConfig, vm.datastore, vm.guest.net)
            found += 1
    finally:
        view.DestroyView()
    return found


def naive_inventory_counted(sim: VCSim) -> tuple[int, float]:
    instance = connect(sim)
    try:
        return counted(sim, lambda: naive_inventory(instance))
    finally:
        Disconnect(instance)


def bench_inventory() -> bool:
    counts: dict[int, int] = {}
    small, large = INVENTORY_VMS
    for total in INVENTORY_VMS:
        inventory = VCSimInventory(datacenters=2, clusters=1, cluster_hosts=2, vms=total // 2)
        with VCSim(inventory) as sim:
            backend = backend_for(sim)
            log_in(backend)
            round_trips, seconds = counted(sim, backend.inventory)
            vms = len(backend.inventory().vms)
            counts[total] = round_trips
            print(
                f"inventory of {vms:5d} VMs: {round_trips:3d} round trips, {seconds * 1000:7.1f} ms"
            )
            if total == small:
                naive_trips, naive_seconds = naive_inventory_counted(sim)
                print(
                    f"  naive attribute reads:  {naive_trips:5d} round trips, "
                    f"{naive_seconds * 1000:7.1f} ms  (ratio: {naive_trips / round_trips:.0f}x "
                    f"calls, {naive_seconds / seconds:.1f}x time)"
                )
            backend.close()
    ok = counts[large] <= counts[small]
    print(
        f"inventory round trips {small:,} -> {large:,} VMs: {counts[small]} -> {counts[large]} "
        f"({judged(ok, 'OK', 'MISSED: grows with the count')})"
    )
    return ok


# --- the failover scene ------------------------------------------------------------------------


def connect(sim: VCSim) -> Any:
    credentials = sim.credentials
    return SmartConnect(
        host=sim.host,
        port=sim.port,
        user=credentials.username,
        pwd=credentials.secret.reveal(),
        sslContext=ssl.create_default_context(cafile=sim.ca_file),
    )


class Scene:
    """100 protected VMs at site-a, each with a replica (one recovery point) at site-b.

    One VM in four has a static address in 192.168.20.0/24, which the plan's re-IP rule moves
    to 10.20.0.0/24, and a replica seeded onto the staging port group ``DR-Spare``, which the
    plan's mapping moves to ``DR-Net``. The other guests keep their static addresses, which their
    tools report once they run.
    """

    def __init__(self, sim: VCSim) -> None:
        self.sim = sim
        with SceneBuilder(sim) as builder:
            builder.add_standard_portgroup("DC1", "DR-Net")
            builder.add_standard_portgroup("DC1", "DR-Spare")
            builder.add_standard_portgroup("DC1", "Test-Net")
            self.names = sorted(
                vm.name
                for vm in builder.datacenter("DC0").vmFolder.childEntity
                if isinstance(vm, vim.VirtualMachine)
            )[:FAILOVER_VMS]
            self.moved = set(self.names[::RE_IP_EVERY])
            for index, name in enumerate(sorted(self.moved)):
                builder.set_guest_id(name, "otherLinux64Guest")
                builder.address_guest(name, [f"192.168.20.{index + 10}/24"], "192.168.20.1")
        backend = backend_for(sim)
        sources = {vm.name: vm for vm in backend.inventory().vms if vm.id.startswith("site-a:")}
        self.source_hosts = sorted({sources[name].host for name in self.names})
        hosts = ["DC1_C0_H0", "DC1_C0_H1"]

        # one clone at a time: concurrent CloneVM_Task calls can crash this simulator version
        self.replicas = [
            backend.create_replica(
                sources[name].id,
                hosts[index % 2],
                "site-b/LocalDS_0",
                network_map={"DC0_DVPG0": "DR-Spare" if name in self.moved else "DR-Net"},
            )
            for index, name in enumerate(self.names)
        ]
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda replica: backend.sync(replica.id), self.replicas))
        inventory = backend.inventory()
        self.macs = {r.replica_vm: inventory.vm(r.replica_vm).nics[0].mac for r in self.replicas}
        moved_ids = {sources[name].id for name in self.moved}
        self.re_ip = {r.replica_vm for r in self.replicas if r.source_vm in moved_ids}
        backend.close()

    def plan(self) -> FailoverPlan:
        """Every VM on its own (no dependencies); the guests that keep their addresses are ready
        once their tools answer (the simulated guest reports no address it was not given)."""
        order = StartOrder()
        for name in self.names:
            order.add(name, probe=None if name in self.moved else ToolsHeartbeat())
        return FailoverPlan(
            "bench",
            self.names,
            order=order,
            network=NetworkMapping(
                production={"DC0_DVPG0": "DR-Net"}, test={"DC0_DVPG0": "Test-Net"}
            ),
            reip=ReIPRules([ReIPRule("192.168.20.*", "10.20.0.*", gateway="10.20.0.1")]),
            test_reip=ReIPRules([ReIPRule("192.168.20.*", "172.16.20.*")]),
        )

    def address(self, replica_vm: str) -> IPConfig:
        index = sorted(self.re_ip).index(replica_vm)
        return IPConfig(f"10.20.{index // 200}.{index % 200 + 10}/16", gateway="10.20.0.1")

    def lose_the_protected_site(self) -> None:
        for host in self.source_hosts:
            self.sim.fail_host(host, power_off=True)

    def shut_the_sources_down(self) -> None:
        backend = backend_for(self.sim)
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(backend.power_off, (r.source_vm for r in self.replicas)))
        backend.close()

    def power_off_replicas(self) -> None:
        backend = backend_for(self.sim)
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(backend.power_off, (r.replica_vm for r in self.replicas)))
        backend.close()


# --- the failover, through the runner -----------------------------------------------------------


def runner_failover(scene: Scene, reports: list[RunReport], kind: str) -> Callable[[], None]:
    backend = backend_for(scene.sim)
    log_in(backend)
    runner = Runner(backend, max_parallel=THREADS, readiness_timeout=READY_TIMEOUT)
    plan = scene.plan()

    def run() -> None:
        reports.append(runner.failover(plan, kind=kind))

    return run


def test_failover_and_cleanup(scene: Scene) -> tuple[int, int, bool]:
    """Round trips of a test failover through the runner, and of its cleanup; and whether every
    copy was ready and verified and the cleanup restored the inventory."""
    backend = backend_for(scene.sim)
    log_in(backend)
    runner = Runner(backend, max_parallel=THREADS, readiness_timeout=READY_TIMEOUT)
    sim = scene.sim
    sim.reset_soap_requests()
    run = runner.start(scene.plan(), kind="test")
    report = run.wait(READY_TIMEOUT * 10)
    test = sim.soap_requests()
    cleaned: list[RunReport] = []
    cleanup, _ = counted(sim, lambda: cleaned.append(runner.cleanup(run)))
    result = cleaned[0].cleanup
    ok = failed_over(report, scene) and result is not None and result.restored
    backend.close()
    return test, cleanup, ok


def failed_over(report: RunReport, scene: Scene) -> bool:
    """Every VM ready, and every re-addressed guest reporting its new address."""
    ready = all(r.outcome is Outcome.READY for r in report.vms)
    verified = [r for r in report.vms if r.addresses]
    return (
        report.result is RunResult.SUCCEEDED
        and ready
        and len(verified) == len(scene.re_ip)
        and all(r.addresses_verified for r in verified)
    )


def run_on_pool(step: Callable[[Replica], None], replicas: Iterable[Replica]) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(step, r) for r in replicas]:
            future.result()


# --- the naive reference -----------------------------------------------------------------------


def wait_polling(task: Any) -> Any:
    """A wait loop per task: read ``task.info`` until it is done (one round trip a look)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        info = task.info
        if info.state == vim.TaskInfo.State.success:
            return info.result
        if info.state == vim.TaskInfo.State.error:
            raise RuntimeError(str(info.error))
        if time.monotonic() > deadline:
            raise TimeoutError("task still running")
        time.sleep(POLL_SECONDS)


def naive_failover(scene: Scene, network: str) -> Callable[[], None]:
    instance = connect(scene.sim)
    content = instance.RetrieveContent()
    by_moref: dict[str, Any] = {}

    def vm_of(vm_id: str) -> Any:
        return by_moref[vm_id.partition(":")[2]]

    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    for vm in view.view:
        by_moref[vm._moId] = vm
    view.DestroyView()
    dc1 = next(dc for dc in content.rootFolder.childEntity if dc.name == "DC1")
    target = next(n for n in dc1.network if n.name == network)

    def run() -> None:
        points = {}
        for replica in scene.replicas:
            # the pre-flight: is the source fenced, is the replica off, which is its last point
            source = vm_of(replica.source_vm)
            if source.runtime.powerState == "poweredOn":
                _ = source.runtime.host.runtime.connectionState
            vm = vm_of(replica.replica_vm)
            if vm.runtime.powerState != "poweredOff":
                raise RuntimeError(f"{vm.name} is running")
            tree = vm.snapshot.rootSnapshotList
            while tree[0].childSnapshotList:
                tree = tree[0].childSnapshotList
            points[replica.id] = tree[0].snapshot

        def prepare(replica: Replica) -> None:
            vm = vm_of(replica.replica_vm)
            if vm.runtime.powerState != "poweredOff":
                raise RuntimeError("running")
            wait_polling(points[replica.id].RevertToSnapshot_Task(suppressPowerOn=True))
            marker = vim.option.OptionValue(key="vmfailover.replica.state", value="failed_over")
            wait_polling(vm.ReconfigVM_Task(vim.vm.ConfigSpec(extraConfig=[marker])))
            if replica.replica_vm in scene.re_ip:
                for device in vm.config.hardware.device:
                    if isinstance(device, vim.vm.device.VirtualEthernetCard):
                        device.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                            deviceName=network, network=target
                        )
                        edit = vim.vm.device.VirtualDeviceSpec(operation="edit", device=device)
                        spec = vim.vm.ConfigSpec(deviceChange=[edit])
                        wait_polling(vm.ReconfigVM_Task(spec))
                mac = scene.macs[replica.replica_vm]
                spec = customization_spec(
                    vm.name, GuestOS.LINUX, [mac], {mac: [scene.address(replica.replica_vm)]}
                )
                wait_polling(vm.CustomizeVM_Task(spec))

        def boot(replica: Replica) -> None:
            vm = vm_of(replica.replica_vm)
            if vm.runtime.powerState != "poweredOn":
                wait_polling(vm.PowerOnVM_Task())
            deadline = time.monotonic() + READY_TIMEOUT
            while True:
                on = vm.runtime.powerState == "poweredOn"
                tools = vm.guest.toolsRunningStatus == "guestToolsRunning"
                heartbeat = vm.guestHeartbeatStatus in ("green", "yellow")
                addresses = [a for nic in vm.guest.net or () for a in nic.ipAddress or ()]
                addressed = addresses or replica.replica_vm not in scene.re_ip
                if on and tools and heartbeat and addressed:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{vm.name} not ready")
                time.sleep(POLL_SECONDS)

        run_on_pool(prepare, scene.replicas)
        run_on_pool(boot, scene.replicas)

    return run


def bench_failover() -> tuple[bool, bool]:
    """(every target met, every failover complete: each VM ready and each address verified)."""
    ok = complete = True
    naive = naive_seconds = ours_first = our_first_seconds = 0.0
    for variant in ("after the protected site lost power", "sources shut down, hosts answer"):
        inventory = VCSimInventory(datacenters=2, clusters=1, cluster_hosts=2, vms=FAILOVER_VMS)
        with VCSim(inventory) as sim:
            began = time.perf_counter()
            scene = Scene(sim)
            print(
                f"\nregular failover {variant}: {len(scene.replicas)} replicas, "
                f"{len(scene.re_ip)} re-addressed and moved (set up in "
                f"{time.perf_counter() - began:.1f} s); runner with {THREADS} workers"
            )
            reports: list[RunReport] = []
            if variant.startswith("after"):
                test, cleanup, test_ok = test_failover_and_cleanup(scene)
                outcome = "copies ready and verified, inventory restored" if test_ok else "FAILED"
                print(
                    f"  (test failover first, no target: {test / len(scene.replicas):.2f} round "
                    f"trips per VM, cleanup {cleanup / len(scene.replicas):.2f} per VM; {outcome})"
                )
                complete = complete and test_ok
                scene.lose_the_protected_site()
            else:
                scene.shut_the_sources_down()
            ours, our_seconds = counted(sim, runner_failover(scene, reports, "regular"))
            vms = len(scene.replicas)
            per_vm = ours / vms
            done = failed_over(reports[0], scene)
            print(
                f"  through the runner: {ours:5d} round trips, {per_vm:5.2f} per VM, "
                f"{our_seconds:6.2f} s, {'every VM ready and verified' if done else 'FAILED'}"
            )
            if not done:
                print(reports[0])
            complete = complete and done
            if variant.startswith("after"):
                variant_ok = done and per_vm <= TARGET_CALLS_PER_VM
                print(
                    f"  calls per VM {per_vm:.2f} (target <= {TARGET_CALLS_PER_VM:g}): "
                    f"{judged(variant_ok, 'OK', 'MISSED')}"
                )
            else:
                variant_ok = done
                print(
                    f"  calls per VM {per_vm:.2f} (for information: the site-lost case plus the "
                    "split-brain check of each answering source before its revert)"
                )
            ok = ok and variant_ok
            if variant.startswith("after"):
                ours_first, our_first_seconds = ours, our_seconds
                scene.power_off_replicas()
                naive, naive_seconds = counted(sim, naive_failover(scene, "DR-Net"))
                print(
                    f"  naive reference:    {int(naive):5d} round trips, {naive / vms:5.2f} per "
                    f"VM, {naive_seconds:6.2f} s"
                )
                print(
                    f"  ratio naive / ours: {naive / ours_first:.1f}x calls, "
                    f"{naive_seconds / our_first_seconds:.1f}x time"
                )
    return ok, complete


def main() -> int:
    announce()
    inventory_ok = bench_inventory()
    failover_ok, complete = bench_failover()
    return exit_code(inventory_ok and failover_ok, checks_passed=complete)


if __name__ == "__main__":
    sys.exit(main())
