"""Benchmark of the vSphere backend against govmomi's simulated vCenter: SOAP round trips.

Counts the round trips the simulator serves (at its HTTP layer, through the launcher's hook):

* **inventory** of 100 and of 1,000 VMs: the count must not grow with the number of VMs;
* **a regular failover of 100 VMs** through the protocol calls the runner makes for each VM
  (``inventory`` once, ``recovery_points``, ``revert``, ``power_on``, ``readiness`` until ready;
  ``connect_nic`` and ``set_guest_ip`` for one VM in four, as a plan with network mapping and
  re-IP does), on a pool of eight threads as the runner's default ``max_parallel``;

and runs a **naive reference** on the same simulator, the way a first pyVmomi script does it:
attribute reads (one round trip each) in loops, and a polling loop per task. It prints calls per
VM for both, and the ratios of calls and wall time.

Targets (exit status 1 when missed): inventory of 1,000 VMs costs no more round trips than of
100; the failover costs at most 6 round trips per VM.

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

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from vmfailover.backends.vsphere import VSphereBackend
from vmfailover.backends.vsphere.guest import customization_spec
from vmfailover.model import GuestOS, IPConfig, Replica
from vmfailover.testing.vcsim import VCSim, VCSimInventory
from vmfailover.testing.vcsim.scene import SceneBuilder

TARGET_CALLS_PER_VM = 6.0
FAILOVER_VMS = 100
RE_IP_EVERY = 4  # one VM in four gets a NIC moved and a new guest address
THREADS = 8  # the runner's default max_parallel
POLL_SECONDS = 0.05  # between readiness checks
READY_TIMEOUT = 60.0


def backend_for(sim: VCSim) -> VSphereBackend:
    return VSphereBackend(
        [sim.vcenter("site-a", datacenter="DC0"), sim.vcenter("site-b", datacenter="DC1")]
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
    for total in (100, 1000):
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
            if total == 100:
                naive_trips, naive_seconds = naive_inventory_counted(sim)
                print(
                    f"  naive attribute reads:  {naive_trips:5d} round trips, "
                    f"{naive_seconds * 1000:7.1f} ms  (ratio: {naive_trips / round_trips:.0f}x "
                    f"calls, {naive_seconds / seconds:.1f}x time)"
                )
            backend.close()
    ok = counts[1000] <= counts[100]
    print(
        f"inventory round trips 100 -> 1,000 VMs: {counts[100]} -> {counts[1000]} "
        f"({'OK' if ok else 'MISSED: grows with the count'})"
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
    """100 protected VMs at site-a, each with a replica (one recovery point) at site-b."""

    def __init__(self, sim: VCSim) -> None:
        self.sim = sim
        with SceneBuilder(sim) as builder:
            builder.add_standard_portgroup("DC1", "DR-Net")
            builder.add_standard_portgroup("DC1", "DR-Spare")
            names = sorted(
                vm.name
                for vm in builder.datacenter("DC0").vmFolder.childEntity
                if isinstance(vm, vim.VirtualMachine)
            )[:FAILOVER_VMS]
            for name in names[::RE_IP_EVERY]:
                builder.set_guest_id(name, "otherLinux64Guest")
        backend = backend_for(sim)
        sources = {vm.name: vm for vm in backend.inventory().vms if vm.id.startswith("site-a:")}
        hosts = ["DC1_C0_H0", "DC1_C0_H1"]

        # one clone at a time: concurrent CloneVM_Task calls can crash this simulator version
        self.replicas = [
            backend.create_replica(
                sources[name].id,
                hosts[index % 2],
                "site-b/LocalDS_0",
                network_map={"DC0_DVPG0": "DR-Net"},
            )
            for index, name in enumerate(names)
        ]
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda replica: backend.sync(replica.id), self.replicas))
        inventory = backend.inventory()
        self.macs = {r.replica_vm: inventory.vm(r.replica_vm).nics[0].mac for r in self.replicas}
        self.re_ip = {r.replica_vm for r in self.replicas[::RE_IP_EVERY]}
        backend.close()

    def address(self, replica_vm: str) -> IPConfig:
        index = sorted(self.re_ip).index(replica_vm)
        return IPConfig(f"10.20.{index // 200}.{index % 200 + 10}/16", gateway="10.20.0.1")

    def power_off_replicas(self) -> None:
        backend = backend_for(self.sim)
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(backend.power_off, (r.replica_vm for r in self.replicas)))
        backend.close()


# --- the failover, the runner's way through the backend -----------------------------------------


def backend_failover(scene: Scene, network: str) -> Callable[[], None]:
    backend = backend_for(scene.sim)
    log_in(backend)

    def run() -> None:
        inventory = backend.inventory()  # the runner's pre-flight
        points = {}
        for replica in scene.replicas:
            assert inventory.replica(replica.id).replica_vm == replica.replica_vm
            points[replica.id] = backend.recovery_points(replica.id)[-1].id

        def prepare(replica: Replica) -> None:
            backend.revert(replica.id, points[replica.id])
            vm = replica.replica_vm
            if vm in scene.re_ip:
                backend.connect_nic(vm, scene.macs[vm], network)
                backend.set_guest_ip(vm, scene.macs[vm], [scene.address(vm)])

        def boot(replica: Replica) -> None:
            vm = replica.replica_vm
            backend.power_on(vm)
            deadline = time.monotonic() + READY_TIMEOUT
            while True:
                readiness = backend.readiness(vm)
                # VMs that keep their address report none in the simulator: their plan's probe
                # is the tools heartbeat
                if readiness.ready or (vm not in scene.re_ip and readiness.heartbeat):
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{vm} not ready")
                time.sleep(POLL_SECONDS)

        run_on_pool(prepare, scene.replicas)
        run_on_pool(boot, scene.replicas)

    return run


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


def bench_failover() -> bool:
    inventory = VCSimInventory(datacenters=2, clusters=1, cluster_hosts=2, vms=FAILOVER_VMS)
    with VCSim(inventory) as sim:
        began = time.perf_counter()
        scene = Scene(sim)
        print(
            f"\nfailover scene: {len(scene.replicas)} replicas, {len(scene.re_ip)} re-addressed "
            f"(set up in {time.perf_counter() - began:.1f} s); {THREADS} threads"
        )
        ours, our_seconds = counted(sim, backend_failover(scene, "DR-Spare"))
        scene.power_off_replicas()
        naive, naive_seconds = counted(sim, naive_failover(scene, "DR-Net"))
    vms = len(scene.replicas)
    per_vm = ours / vms
    print(f"vmfailover backend: {ours:5d} round trips, {per_vm:5.2f} per VM, {our_seconds:6.2f} s")
    print(
        f"naive reference:    {naive:5d} round trips, {naive / vms:5.2f} per VM, "
        f"{naive_seconds:6.2f} s"
    )
    print(f"ratio naive / ours: {naive / ours:.1f}x calls, {naive_seconds / our_seconds:.1f}x time")
    ok = per_vm <= TARGET_CALLS_PER_VM
    print(
        f"calls per VM {per_vm:.2f} (target <= {TARGET_CALLS_PER_VM:g}): {'OK' if ok else 'MISSED'}"
    )
    return ok


def main() -> int:
    ok = bench_inventory()
    ok = bench_failover() and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
