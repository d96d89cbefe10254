"""Replication at scale: a scheduler tick over 10,000 VMs in 200 jobs, and retention inside it.

1. A tick of the scheduler over 10,000 VMs in 200 jobs of 50, on the memory backend with zero
   latency: the time per VM of a tick where every job is due (sync, list points, retention), and
   the ratio of an idle tick (nothing due) to it. Target: idle / due <= 0.05.
2. Retention inside a tick: RetentionPolicy.apply on 10,000 replicas of 32 points each, in the
   order a backend lists them (oldest first), against sorting the same points newest first in
   the same process. Target: apply / sort <= 10 with a replication job's policy (last, hourly,
   daily and weekly counts, Europe/Berlin); also printed: every rule enabled, and shuffled
   points.

Run from the worktree root: ``python benchmarks/bench_replication.py``. Building the 10,000-VM
scene takes a while: the memory backend checks each new VM and replica against all others.
"""

from __future__ import annotations

import gc
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _smoke import announce, exit_code, judged, sized
from bench_retention import POLICY as EVERY_RULE

from vmfailover import (
    VM,
    MemoryBackend,
    Nic,
    RecoveryPoint,
    ReplicationJob,
    RetentionPolicy,
    Scheduler,
    VirtualClock,
)

VMS = sized(10_000, 20)
JOBS = sized(200, 4)
REPLICAS = sized(10_000, 10)
POINTS = 32
REPEATS = sized(5, 1)
#: Due ticks (each followed by an idle one) of which the best counts.
TICKS = sized(3, 1)
TICK_TARGET = 0.05
RETENTION_TARGET = 10.0
START = datetime(2026, 11, 2, tzinfo=UTC)
JOB_POLICY = RetentionPolicy(last=4, hourly=12, daily=7, weekly=4, tz="Europe/Berlin")


def timed(action: Callable[[], object]) -> float:
    gc.collect()
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def scene() -> MemoryBackend:
    backend = MemoryBackend(clock=VirtualClock(START), recovery_point_limit=32)
    for site, network in (("a", "Prod"), ("b", "DR")):
        backend.add_site(site)
        backend.add_datastore(f"ds-{site}", site, capacity_bytes=1 << 50)
        backend.add_network(network, site)
        for number in range(10):
            backend.add_host(
                f"h-{site}{number}", site, datastores=(f"ds-{site}",), networks=(network,)
            )
    for number in range(VMS):
        mac = f"00:50:56:{number >> 16 & 0xFF:02x}:{number >> 8 & 0xFF:02x}:{number & 0xFF:02x}"
        backend.add_vm(
            VM(
                id=f"vm-{number}",
                name=f"vm{number}",
                host=f"h-a{number % 10}",
                power_state="on",
                nics=(Nic(mac=mac, network="Prod"),),
                datastore="ds-a",
            )
        )
    return backend


def tick_benchmark() -> float:
    print(f"building {VMS:,} VMs in {JOBS} jobs ...", flush=True)
    built = time.perf_counter()
    backend = scene()
    per_job = VMS // JOBS
    jobs = [
        ReplicationJob(
            f"job-{number:03d}",
            [f"vm{k}" for k in range(number * per_job, (number + 1) * per_job)],
            f"h-b{number % 10}",
            "ds-b",
            {"every": "15m"},
            JOB_POLICY,
            "30m",
            network={"Prod": "DR"},
            backend=backend,
        )
        for number in range(JOBS)
    ]
    with Scheduler(jobs, max_parallel=4, rpo_check=None) as scheduler:
        first = scheduler.run_pending()  # creates the 10,000 replicas
        assert sum(result.points_created for result in first) == VMS
        print(f"scene and first tick (replicas created): {time.perf_counter() - built:.1f} s")
        due_times, idle_times = [], []
        for _ in range(TICKS):
            backend.clock.advance(15 * 60)
            ran: list[object] = []
            due_times.append(timed(lambda ran=ran: ran.extend(scheduler.run_pending())))
            assert len(ran) == JOBS
            backend.clock.advance(60)
            idle_times.append(timed(lambda ran=ran: ran.extend(scheduler.run_pending())))
            assert len(ran) == JOBS
    due, idle = min(due_times), min(idle_times)
    ratio = idle / due
    print(
        f"tick with every job due: {due:.2f} s, {due / VMS * 1e6:.0f} us per VM "
        f"(sync, list points, retention); idle tick: {idle * 1e3:.2f} ms "
        f"({idle / JOBS * 1e6:.1f} us per job)"
    )
    verdict = judged(ratio <= TICK_TARGET)
    print(f"{verdict}: idle tick / due tick = {ratio:.4f} (target <= {TICK_TARGET})")
    return ratio


def replicas(shuffled: bool) -> list[list[RecoveryPoint]]:
    rng = random.Random(7)
    now = START
    found = []
    for replica in range(REPLICAS):
        points = [
            RecoveryPoint(
                id=f"rp-{replica}-{number}",
                replica=f"replica-{replica}",
                created_at=now - timedelta(minutes=15 * number, seconds=rng.randrange(60)),
            )
            for number in reversed(range(POINTS))
        ]
        if shuffled:
            rng.shuffle(points)
        found.append(points)
    return found


def retention_benchmark() -> float:
    now = START
    key = attrgetter("created_at")
    target_ratio = 0.0
    for order in ("as listed (oldest first)", "shuffled"):
        sets = replicas(order == "shuffled")
        for label, policy in (("job policy", JOB_POLICY), ("every rule", EVERY_RULE)):
            sort_times, apply_times = [], []
            for _ in range(REPEATS):
                sort_times.append(
                    timed(lambda sets=sets: [sorted(p, key=key, reverse=True) for p in sets])
                )
                apply_times.append(
                    timed(lambda sets=sets, policy=policy: [policy.apply(p, now) for p in sets])
                )
            sort_time, apply_time = min(sort_times), min(apply_times)
            ratio = apply_time / sort_time
            print(
                f"retention, {label}, {REPLICAS:,} replicas of {POINTS} points {order}: "
                f"sort {sort_time / REPLICAS * 1e6:.1f} us, "
                f"apply {apply_time / REPLICAS * 1e6:.1f} us per replica, ratio {ratio:.1f}"
            )
            if label == "job policy" and order.startswith("as listed"):
                target_ratio = ratio
    verdict = judged(target_ratio <= RETENTION_TARGET)
    print(
        f"{verdict}: apply / sort = {target_ratio:.1f} with the job policy on points as listed "
        f"(target <= {RETENTION_TARGET})"
    )
    return target_ratio


def main() -> int:
    announce()
    retention = retention_benchmark()
    tick = tick_benchmark()
    return exit_code(tick <= TICK_TARGET and retention <= RETENTION_TARGET)


if __name__ == "__main__":
    sys.exit(main())
