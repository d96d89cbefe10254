"""Does the simulator predict what the runner does? Measured RTO against simulated RTO.

Run from the worktree root: ``python benchmarks/bench_prediction.py``. A memory-backend lab of
40 VMs in a layered dependency graph (log-normal boot times) fails over with a
:class:`~vmfailover.Runner` of 4 workers, on a virtual clock flowing 200 times faster than real
time, and is told the expected boot times (``weights=``), as the simulation knows them. The same
start order is simulated with ``workers=runner.max_parallel``. Two orders: one without
``max_parallel`` (only the runner's workers limit, the case that used to start VMs first come,
first served on the runner's threads) and one capped below the workers.

Target: measured RTO / simulated RTO <= 1.05 for both (the runner polls readiness every second of
lab time and threads wake up late by a millisecond or two, so a small excess is expected). Also
printed, for information: the ratio to a simulation that does not know the runner's workers, and
a run whose runner is not told the boot times (it then weighs every VM alike).
"""

from __future__ import annotations

import math
import random
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

try:
    import vmfailover  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _smoke import announce, exit_code, judged, sized

from vmfailover.backends.memory import BLOCK_SIZE, MemoryBackend
from vmfailover.clock import VirtualClock
from vmfailover.engine.runner import RetryPolicy, Runner
from vmfailover.engine.simulate import simulate
from vmfailover.model import VM, IPConfig, Nic, PowerState
from vmfailover.policy.sequencer import StartOrder

SEED = 20261127
VMS = sized(40, 6)
LEVEL_WIDTH = sized(8, 3)
WORKERS = sized(4, 2)
CAPPED = sized(3, 1)
RATE = sized(200.0, 2000.0)
POLL_SECONDS = 1.0
REPEATS = sized(3, 1)
TARGET = 1.05


def scenario() -> tuple[dict[str, float], dict[str, tuple[str, ...]]]:
    """Boot seconds and dependencies of a layered graph: each VM needs 1-2 of the level before."""
    rng = random.Random(SEED)
    boots: dict[str, float] = {}
    after: dict[str, tuple[str, ...]] = {}
    previous: list[str] = []
    while len(boots) < VMS:
        level = [f"vm{len(boots) + i:03d}" for i in range(min(LEVEL_WIDTH, VMS - len(boots)))]
        for name in level:
            boots[name] = round(min(180.0, rng.lognormvariate(math.log(40), 0.5)), 1)
            count = rng.randint(1, 2) if previous else 0
            after[name] = tuple(sorted(set(rng.sample(previous, min(count, len(previous))))))
        previous = level
    return boots, after


def lab(boots: dict[str, float]) -> MemoryBackend:
    """Site A running every VM, each replicated to site B with one recovery point."""
    backend = MemoryBackend(clock=VirtualClock(datetime(2026, 11, 27, 8, 0, tzinfo=UTC)))
    for site, letter in (("site-a", "a"), ("site-b", "b")):
        backend.add_site(site)
        backend.add_datastore(f"ds-{letter}", site)
        backend.add_network("App", site)
        backend.add_host(f"host-{letter}", site, datastores=(f"ds-{letter}",), networks=("App",))
    for number, (name, boot) in enumerate(boots.items(), start=1):
        nic = Nic(
            mac=f"00:50:56:0b:{number // 256:02x}:{number % 256:02x}",
            network="App",
            ip_configs=(IPConfig(f"10.0.{number // 250}.{number % 250 + 1}/16"),),
        )
        vm = VM(
            id=f"vm-{number:03d}",
            name=name,
            host="host-a",
            power_state=PowerState.ON,
            nics=(nic,),
            datastore="ds-a",
            disk_bytes=8 * BLOCK_SIZE,
        )
        backend.add_vm(vm, boot_seconds=boot)
        replica = backend.create_replica(vm.id, "host-b", "ds-b")
        backend.sync(replica.id)
    backend.fail_site("site-a")
    return backend


def order_of(after: dict[str, tuple[str, ...]], max_parallel: int | None) -> StartOrder:
    order = StartOrder(max_parallel=max_parallel)
    for name, needs in after.items():
        order.add(name, after=needs)
    return order


def measured_rto(boots: dict[str, float], order: StartOrder, *, weighted: bool = True) -> float:
    backend = lab(boots)
    clock = backend.clock
    assert isinstance(clock, VirtualClock)
    clock.set_rate(RATE)
    runner = Runner(
        backend,
        max_parallel=WORKERS,
        poll_interval=POLL_SECONDS,
        retry=RetryPolicy(attempts=2, initial_wait=0.1, max_wait=0.1),
    )
    report = runner.failover(order, weights=boots if weighted else None)
    if report.result.value != "succeeded":
        raise SystemExit(f"the failover did not succeed:\n{report}")
    return report.rto_seconds


def main() -> int:
    announce()
    boots, after = scenario()
    print(
        f"{VMS} VMs in levels of {LEVEL_WIDTH}, boots {min(boots.values()):.0f}-"
        f"{max(boots.values()):.0f} s (median {statistics.median(boots.values()):.0f} s), "
        f"runner with {WORKERS} workers, lab clock at {RATE:g}x, readiness polled every "
        f"{POLL_SECONDS:g} s; median of {REPEATS} runs (target measured / simulated <= {TARGET})"
    )
    all_ok = True
    for label, cap in (("no max_parallel", None), (f"max_parallel={CAPPED}", CAPPED)):
        order = order_of(after, cap)
        predicted = simulate(order, boots, workers=WORKERS)
        unaware = simulate(order, boots)
        measured = statistics.median(measured_rto(boots, order) for _ in range(REPEATS))
        ratio = measured / predicted.rto
        ok = ratio <= TARGET
        all_ok &= ok
        print(
            f"  {label:>15}: measured {measured:7.1f} s, simulated with the runner's workers "
            f"{predicted.rto:7.1f} s: ratio {ratio:.3f}  {judged(ok)}"
        )
        unweighted = measured_rto(boots, order, weighted=False)
        print(
            f"  {'':>15}  (for information: simulated without the runner's workers "
            f"{unaware.rto:.1f} s, ratio {measured / unaware.rto:.3f}; one run without weights "
            f"{unweighted:.1f} s, ratio {unweighted / predicted.rto:.3f}; lower bound "
            f"{predicted.lower_bound:.1f} s)"
        )
    print(judged(all_ok, "ALL PASS", "SOME MISS"))
    return exit_code(all_ok)


if __name__ == "__main__":
    raise SystemExit(main())
