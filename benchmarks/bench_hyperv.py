"""Benchmark of the Hyper-V backend against simulated hosts over real HTTP (Basic, 127.0.0.1).

Measures:

* pipelines per VM for a regular failover of 50 VMs through the Runner (primary host declared
  down, replicas on hv-b): the inventory must take a constant number of pipelines whatever the
  number of VMs, and the failover at most 4 per VM (recovery points, revert, power on, one
  readiness check of a guest that is up at once);
* the time of one pipeline (``power_on`` of a running VM) on the backend's reused runspace pool
  against a pool opened and closed for each call (what a backend without pooling pays), and
  their ratio.

Exits non-zero when a target is missed. Run from the worktree root:
``python benchmarks/bench_hyperv.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vmfailover import Runner, StartOrder
from vmfailover.backends.hyperv import HostConnection, HyperVBackend
from vmfailover.engine.results import RunResult
from vmfailover.model import Credentials
from vmfailover.testing.hyperv import FabricClock, HyperVHost, ReplicationFabric

VMS = 50
#: Pipelines per VM for the failover, the inventory's excluded.
TARGET_PER_VM = 4.0
#: A pool opened per call must cost at least this many reused-pool pipelines. On the simulated
#: host a pool costs about three requests more (Create and its Receive, Delete on close) against
#: a pipeline's three, so about x2; a backend that lost its pooling would measure about x1.
#: (On Windows a runspace costs far more than on the simulator.)
TARGET_FRESH_RATIO = 1.4
#: ms per pipeline on the reused pool (client and server share this process and 2 cores).
TARGET_REUSED_MS = 60.0
#: Interleaved measurement rounds (the best of each kind counts).
ROUNDS = 15


def connection(host: HyperVHost, site: str) -> HostConnection:
    return HostConnection(
        host.name,
        site,
        address="127.0.0.1",
        port=host.port,
        tls=False,
        auth="basic",
        encryption="never",
        credentials=Credentials(host.username, host.password),
        operation_timeout=2,
        read_timeout=10,
    )


def per_call_ms(action: Callable[[], object], repeat: int) -> float:
    """One batch, in milliseconds per call."""
    started = time.perf_counter()
    for _ in range(repeat):
        action()
    return (time.perf_counter() - started) * 1000 / repeat


def replicated_vms(a: HyperVHost, count: int, first: int = 0) -> list[str]:
    """``count`` running VMs on hv-a replicating to hv-b, one recovery point each."""
    assert a.model is not None
    ids = []
    for index in range(first, first + count):
        record = a.model.add_vm(
            f"vm{index:03d}",
            switch="Prod",
            state="Running",
            ip_addresses=[f"10.1.{index // 200}.{index % 200 + 10}"],
        )
        a.model.enable_replication(
            record, replica_server="hv-b", port=80, auth_type="Kerberos", recovery_history=24
        )
        a.model.start_initial_replication(record)
        a.model.write_data(record.id)
        a.model.replicate(record.id)
        ids.append(f"hv-a/{record.id}")
    return ids


def failover_pipelines() -> tuple[int, int, float, bool]:
    """(inventory pipelines with 5 VMs, with 50, failover pipelines per VM, all ready)."""
    fabric = ReplicationFabric(scheduled_replication=True)
    with HyperVHost("hv-a", fabric=fabric) as a, HyperVHost("hv-b", fabric=fabric) as b:
        assert a.model is not None
        assert b.model is not None
        a.model.add_switch("Prod")
        b.model.add_switch("Prod")
        backend = HyperVBackend(
            [connection(a, "site-a"), connection(b, "site-b")], clock=FabricClock(fabric)
        )
        ids = replicated_vms(a, 5)
        before = backend.pipelines_sent
        backend.inventory()
        small = backend.pipelines_sent - before
        ids += replicated_vms(a, VMS - 5, first=5)
        before = backend.pipelines_sent
        backend.inventory()
        large = backend.pipelines_sent - before

        backend.declare_host_down("hv-a")
        order = StartOrder()
        for vm_id in ids:
            order.add(vm_id)
        runner = Runner(backend, max_parallel=8, poll_interval=5)
        before = backend.pipelines_sent
        report = runner.failover(order, kind="regular")
        total = backend.pipelines_sent - before
        inventory_part = len(backend.connections) - 1  # hv-a is declared down: not asked
        per_vm = (total - inventory_part) / VMS
        backend.close()
        return small, large, per_vm, report.result is RunResult.SUCCEEDED


def pipeline_times() -> tuple[float, float, float]:
    """(best ms per pipeline on the reused pool, best with a pool opened and closed per call,
    the median per-round ratio of the two)."""
    fabric = ReplicationFabric()
    with HyperVHost("hv-a", fabric=fabric) as a:
        assert a.model is not None
        record = a.model.add_vm("web01", state="Running", ip_addresses=["10.1.0.5"])
        vm_id = f"hv-a/{record.id}"
        backend = HyperVBackend([connection(a, "site-a")])
        # power_on of a running VM: one pipeline (Get-VM -Id | Start-VM) whose answer is
        # empty, so what is timed is the round trips, not the serialization of big objects.
        for _ in range(20):
            backend.power_on(vm_id)

        def fresh() -> None:
            with HyperVBackend([connection(a, "site-a")]) as once:
                once.power_on(vm_id)

        # Interleaved rounds: the machine is shared, and load that hits one measurement of a
        # round hits the other alike, so the ratio is taken per round (median of the rounds).
        reused_rounds, opened_rounds = [], []
        for _ in range(ROUNDS):
            reused_rounds.append(per_call_ms(lambda: backend.power_on(vm_id), 10))
            opened_rounds.append(per_call_ms(fresh, 3))
        backend.close()
    ratio = statistics.median(o / r for o, r in zip(opened_rounds, reused_rounds, strict=True))
    return min(reused_rounds), min(opened_rounds), ratio


def main() -> int:
    small, large, per_vm, ready = failover_pipelines()
    constant = small == large
    per_vm_ok = per_vm <= TARGET_PER_VM and ready
    print(
        f"inventory: {small} pipelines with 5 VMs, {large} with {VMS} "
        f"(constant: {'PASS' if constant else 'MISS'})"
    )
    print(
        f"failover of {VMS} VMs: {per_vm:.2f} pipelines per VM, all ready: {ready} "
        f"(target <= {TARGET_PER_VM:.0f}: {'PASS' if per_vm_ok else 'MISS'})"
    )
    reused, opened, ratio = pipeline_times()
    reused_ok = reused <= TARGET_REUSED_MS
    ratio_ok = ratio >= TARGET_FRESH_RATIO
    print(
        f"reused pool: {reused:6.2f} ms/pipeline (target <= {TARGET_REUSED_MS:.0f} ms: "
        f"{'PASS' if reused_ok else 'MISS'})"
    )
    print(
        f"pool per call: {opened:6.2f} ms/pipeline; x{ratio:.1f} the reused pool "
        "(median of interleaved rounds) "
        f"(target >= x{TARGET_FRESH_RATIO:.1f}: {'PASS' if ratio_ok else 'MISS'})"
    )
    ok = constant and per_vm_ok and reused_ok and ratio_ok
    print("PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
