"""Benchmark the clean-point search: boots, rounds and virtual time against a newest-first scan.

Run from the worktree root: ``python benchmarks/bench_clean_point.py``. The lab is built with 200
recovery points per replica, and each of its 12 VMs is damaged from its own seeded random moment
(a VM's damage stays in every later point). Each test boot plus its check takes a seeded random
30-120 s of virtual time, fixed per point, so the two strategies pay the same for the same point.
For parallel 1, 4 and 8, every VM is searched twice in the same process: by bisection (the
default) and by the newest-first scan (``assume_monotone=False``, the same parallelism), the way
people search by hand today.

Printed per parallelism: boots, rounds and virtual time of both, summed over the 12 VMs, the
worst VM's boots and rounds against the bounds, and scan / bisection. The script exits non-zero
when a search misses a bound (``ceil(log2(201)) = 8`` boots one at a time, ``ceil(log_(m+1)(201))``
rounds of m), when the two strategies disagree, or when either misses the newest good point.
"""

from __future__ import annotations

import math
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

try:
    import vmfailover  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _smoke import SMOKE, announce, exit_code, judged, sized

from vmfailover import BootedCopy, CleanPointResult, find_clean_point
from vmfailover.backends.memory import MemoryBackend
from vmfailover.policy.clean_point import ceil_log
from vmfailover.testing import LAB_TEST_NETWORK_MAP, LAB_VMS, lab

SEED = 20261207
POINTS = sized(200, 6)
#: A point every half hour: 200 points span 100 hours (the lab plays at most a week of history).
INTERVAL = timedelta(minutes=30)
#: Virtual seconds one boot plus its check takes, drawn per point.
COST_RANGE = (30.0, 120.0)
PARALLELISM = sized((1, 4, 8), (1, 4))


def build() -> tuple[MemoryBackend, dict[str, int], dict[str, float]]:
    """The lab with damage at seeded moments; each VM's first damaged point; each point's cost."""
    rng = random.Random(SEED)
    backend = lab(points=POINTS, interval=INTERVAL)
    inventory = backend.inventory()
    first_damaged: dict[str, int] = {}
    costs: dict[str, float] = {}
    for name in LAB_VMS:
        replica = inventory.replica_of(name)
        points = backend.recovery_points(replica.id)
        start, end = points[0].created_at, points[-1].created_at
        moment = start + (end - start) * rng.random()
        backend.damage(inventory.vm(name).id, since=moment)
        first_damaged[name] = next(i for i, p in enumerate(points) if p.created_at >= moment)
        costs.update({p.id: rng.uniform(*COST_RANGE) for p in points})
        backend.set_boot(replica.replica_vm, seconds=0)  # the cost is paid in the check below
    return backend, first_damaged, costs


def search(
    backend: MemoryBackend, name: str, costs: dict[str, float], parallel: int, monotone: bool
) -> CleanPointResult:
    def check(copy: BootedCopy) -> bool:
        backend.clock.sleep(costs[copy.point.id])  # boot and check, in virtual time
        return not backend.damaged(copy.vm_id)

    return find_clean_point(
        backend,
        name,
        check,
        parallel=parallel,
        assume_monotone=monotone,
        network=LAB_TEST_NETWORK_MAP,
    )


def main() -> int:
    announce()
    started = time.perf_counter()
    backend, first_damaged, costs = build()
    print(
        f"lab: {len(LAB_VMS)} VMs x {POINTS} points, damage at seeded moments "
        f"(first damaged point: {sorted(first_damaged.values())}), built in "
        f"{time.perf_counter() - started:.1f} s"
    )
    boot_bound = math.ceil(math.log2(POINTS + 1))
    failures: list[str] = []  # bounds missed, and wrong answers
    wrong: list[str] = []  # wrong answers only: a failure whatever the size
    header = (
        f"{'parallel':>8}  {'strategy':<8}  {'boots':>6}  {'rounds':>6}  {'virtual time':>12}  "
        f"{'worst VM boots/rounds':>21}  {'bound':>11}"
    )
    print(header)
    print("-" * len(header))
    for parallel in PARALLELISM:
        round_bound = ceil_log(parallel + 1, POINTS + 1)
        totals: dict[str, list[float]] = {}
        for strategy, monotone in (("bisect", True), ("scan", False)):
            boots = rounds = seconds = 0.0
            worst = (0, 0)
            for name, damaged_from in first_damaged.items():
                result = search(backend, name, costs, parallel, monotone)
                group = result.groups[0]
                expected = damaged_from - 1 if damaged_from else None
                found = group.candidates.index(group.clean) if group.clean else None
                if found != expected:
                    wrong.append(f"{strategy} p={parallel} {name}: {found} != {expected}")
                    failures.append(wrong[-1])
                if not result.cleanup.restored:
                    wrong.append(f"{strategy} p={parallel} {name}: {result.cleanup.summary()}")
                    failures.append(wrong[-1])
                if monotone and group.rounds > round_bound:
                    failures.append(f"p={parallel} {name}: {group.rounds} > {round_bound} rounds")
                if monotone and parallel == 1 and group.boots > boot_bound:
                    failures.append(f"p=1 {name}: {group.boots} > {boot_bound} boots")
                boots += group.boots
                rounds += group.rounds
                seconds += group.seconds
                worst = max(worst, (group.boots, group.rounds))
            totals[strategy] = [boots, rounds, seconds]
            bound = f"{round_bound} rounds" if monotone else "-"
            if monotone and parallel == 1:
                bound = f"{boot_bound} boots"
            print(
                f"{parallel:>8}  {strategy:<8}  {boots:>6.0f}  {rounds:>6.0f}  "
                f"{seconds / 3600:>10.1f} h  {f'{worst[0]}/{worst[1]}':>21}  {bound:>11}"
            )
        scan, bisect = totals["scan"], totals["bisect"]
        print(
            f"{'':>8}  scan / bisect: boots {scan[0] / bisect[0]:.1f}x, rounds "
            f"{scan[1] / bisect[1]:.1f}x, virtual time {scan[2] / bisect[2]:.1f}x"
        )
    print(f"(ran in {time.perf_counter() - started:.1f} s real time)")
    for failure in wrong if SMOKE else failures:
        print(f"MISS: {failure}")
    print(judged(not failures, missed=f"MISS: {len(failures)} problems"))
    return exit_code(not failures, checks_passed=not wrong)


if __name__ == "__main__":
    sys.exit(main())
