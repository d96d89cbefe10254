"""Placement of 10,000 VMs on 200 hosts with 500 anti-affinity sets, against first fit.

The cluster: 200 hosts of three sizes in four storage groups (a VM on a group's datastore can only
run on that group's 50 hosts; a fifth of the VMs use a datastore every host reaches), half of the
hosts carry a DMZ network a tenth of the VMs need, CPU may be overcommitted 4:1. The 10,000 VMs
are general purpose, compute heavy and memory heavy (1 to 16 vCPUs, 2 to 96 GiB); 500
anti-affinity sets of 2 to 8 VMs keep members of one service apart; a tenth of the VMs have a
higher restart priority.

The baseline is plain first fit, in the same process on the same input: each VM, in input order,
on the first host where it fits and breaks no rule. For both: time, VMs placed, and the fraction
of memory and CPU capacity used, and their ratios (times are the best of three interleaved runs),
for three loads:

- ``fits``: the VMs ask for about 95 % of the memory and 98 % of the CPU, so a placement of all
  of them exists (place finds one). First fit strands capacity in fragments and leaves VMs out.
- ``over``: the VMs ask for about 101 % of the memory: not everything fits, and what counts is
  how much of the capacity ends up used (and how many VMs, highest priority first).
- ``failover``: 8,500 of the ``fits`` VMs run (about 80 % of the memory, 83 % of the CPU); the
  two busiest hosts fail and their VMs are re-placed on the other 198 hosts among the running
  VMs (what a host failover asks). Every VM must be placed: the survivors have the room.

Targets, and why:

- ``fits``: every VM placed. A feasible placement exists, so leaving a VM down is a miss.
- ``over``: at least as many VMs and at least as much memory capacity used as first fit: a
  heuristic that loses to first fit on a full cluster leaves VMs down the naive approach starts.
- Time: at most 10 s for 10,000 VMs and 1 s for a failover's re-placement. A host failover
  decides placement before it starts any VM, and HA restarts are expected within a minute or
  two, so the decision must be a small part of that on a slow, shared machine. First fit's time
  is printed as the floor (one pass), not as a target: it is not an acceptable answer.

Run from the worktree root: ``python benchmarks/bench_placement.py``.
"""

from __future__ import annotations

import gc
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import attrs
from _smoke import SMOKE, announce, exit_code, sized

from vmfailover.model import VM, Host, Nic, PowerState
from vmfailover.policy.cluster import ClusterPolicy, RestartPriority
from vmfailover.policy.placement import Placement, place

HOSTS = sized(200, 6)
VMS = sized(10_000, 24)
SETS = sized(500, 3)
GROUPS = 4
VCPUS_PER_CORE = 4.0

MAX_SECONDS = 10.0
MAX_FAILOVER_SECONDS = 1.0

T = TypeVar("T")
U = TypeVar("U")


REPEATS = sized(3, 1)


def timed(action: Callable[[], T]) -> tuple[float, T]:
    gc.collect()
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def best_of(first: Callable[[], T], second: Callable[[], U]) -> tuple[float, T, float, U]:
    """Each action's best time of a few runs, interleaved so machine load hits both alike."""
    first_times, second_times = [], []
    for _ in range(REPEATS):
        seconds, first_result = timed(first)
        first_times.append(seconds)
        seconds, second_result = timed(second)
        second_times.append(seconds)
    return min(first_times), first_result, min(second_times), second_result


def make_cluster(
    memory_load: float = 0.95, seed: int = 7
) -> tuple[list[VM], list[Host], ClusterPolicy]:
    rng = random.Random(seed)
    sizes = ((32, 256), (48, 384), (64, 512))
    hosts = []
    for number in range(HOSTS):
        cores, gib = sizes[number % 3]
        group = number % GROUPS
        networks = ["prod", "backup"] + (["dmz"] if group % 2 == 0 else [])
        hosts.append(
            Host(
                f"esx{number:03d}",
                "site",
                cluster="big",
                cpu_cores=cores,
                memory_mb=gib * 1024,
                datastores=(f"ds-group{group}", "ds-shared"),
                networks=networks,
            )
        )
    capacity_mb = sum(host.memory_mb for host in hosts)

    # vCPUs and GiB: general purpose, compute heavy (build agents) and memory heavy (databases)
    shapes = [(1, 2), (2, 4), (2, 8), (4, 16), (8, 32), (8, 8), (16, 16), (2, 32), (4, 96)]
    weights = [14, 18, 20, 16, 8, 8, 4, 8, 4]
    drawn = rng.choices(shapes, weights, k=VMS)
    raw_mb = sum(gib * 1024 for _, gib in drawn)
    scale = memory_load * capacity_mb / raw_mb
    vms = []
    for number, (cpu, gib) in enumerate(drawn):
        memory = max(512, int(gib * 1024 * scale) // 256 * 256)
        dmz = rng.random() < 0.1
        group = rng.randrange(0, GROUPS, 2) if dmz else rng.randrange(GROUPS)
        datastore = "ds-shared" if rng.random() < 0.2 else f"ds-group{group}"
        network = "dmz" if dmz else "prod"
        vms.append(
            VM(
                id=f"vm-{number}",
                name=f"vm{number:05d}",
                host="esx-failed",
                cpu=cpu,
                memory_mb=memory,
                datastore=datastore,
                nics=[
                    Nic(
                        f"00:50:56:{number >> 16:02x}:{(number >> 8) & 255:02x}:{number & 255:02x}",
                        network,
                    )
                ],
            )
        )
    anti = []
    for _ in range(SETS):
        size = rng.randint(2, 8)
        anti.append({vm.name for vm in rng.sample(vms, size)})
    priority = {vm.name: RestartPriority.HIGH for vm in rng.sample(vms, VMS // 10)}
    policy = ClusterPolicy(
        anti_affinity=anti, restart_priority=priority, vcpus_per_core=VCPUS_PER_CORE
    )
    return vms, hosts, policy


def first_fit(vms: Sequence[VM], hosts: Sequence[Host], policy: ClusterPolicy) -> dict[str, str]:
    """Each VM, in input order, on the first host where it fits and breaks no rule."""
    free_cpu = [policy.cpu_capacity(host) for host in hosts]
    free_mem = [host.memory_mb for host in hosts]
    sets_of: dict[str, list[int]] = {}
    for index, members in enumerate(policy.anti_affinity):
        for name in members:
            sets_of.setdefault(name, []).append(index)
    present: list[set[int]] = [set() for _ in hosts]
    stores = [set(host.datastores) for host in hosts]
    nets = [set(host.networks) for host in hosts]
    assignment: dict[str, str] = {}
    for vm in vms:
        mine = sets_of.get(vm.name, ())
        needs = {nic.network for nic in vm.nics}
        for h, host in enumerate(hosts):
            if (
                free_cpu[h] >= vm.cpu
                and free_mem[h] >= vm.memory_mb
                and vm.datastore in stores[h]
                and needs <= nets[h]
                and not any(s in present[h] for s in mine)
            ):
                free_cpu[h] -= vm.cpu
                free_mem[h] -= vm.memory_mb
                present[h].update(mine)
                assignment[vm.id] = host.name
                break
    return assignment


def used(
    assignment: dict[str, str], vms: Sequence[VM], hosts: Sequence[Host], policy: ClusterPolicy
) -> tuple[float, float]:
    """Fractions of memory and CPU capacity the placed VMs use."""
    by_id = {vm.id: vm for vm in vms}
    memory = sum(by_id[vm].memory_mb for vm in assignment) / sum(h.memory_mb for h in hosts)
    cpu = sum(by_id[vm].cpu for vm in assignment) / sum(policy.cpu_capacity(h) for h in hosts)
    return memory, cpu


def failover(policy: ClusterPolicy) -> tuple[float, Placement, int]:
    """The first 85 % of the VMs run; the two busiest hosts fail; re-place their VMs."""
    vms, hosts, _ = make_cluster()
    vms = vms[: int(VMS * 0.85)]
    placement = place(vms, hosts, policy)
    loads = sorted(placement.hosts, key=lambda load: -load.memory_used_mb)
    failed = {loads[0].host, loads[1].host}
    where = placement.assignments
    running = [
        attrs.evolve(vm, host=where[vm.id], power_state=PowerState.ON)
        for vm in vms
        if vm.id in where and where[vm.id] not in failed
    ]
    victims = [vm for vm in vms if where.get(vm.id) in failed]
    survivors = [host for host in hosts if host.name not in failed]
    seconds, result = timed(lambda: place(victims, survivors, policy, running=running))
    return seconds, result, len(victims)


def compare(label: str, memory_load: float) -> tuple[float, int, int, float, float, Placement]:
    vms, hosts, policy = make_cluster(memory_load=memory_load)
    ff_seconds, ff, seconds, placement = best_of(
        lambda: first_fit(vms, hosts, policy), lambda: place(vms, hosts, policy)
    )
    ff_memory, ff_cpu = used(ff, vms, hosts, policy)
    memory, cpu = used(placement.assignments, vms, hosts, policy)
    placed = len(placement.placed)
    asked_memory = sum(vm.memory_mb for vm in vms) / sum(h.memory_mb for h in hosts)
    asked_cpu = sum(vm.cpu for vm in vms) / sum(policy.cpu_capacity(h) for h in hosts)
    print(
        f"\n{label}: {VMS:,} VMs on {HOSTS} hosts, {SETS} anti-affinity sets; they ask for "
        f"{asked_memory:.1%} of the memory and {asked_cpu:.1%} of the CPU"
    )
    print(f"{'':12}{'seconds':>9}{'placed':>9}{'memory used':>13}{'CPU used':>10}")
    print(f"{'first fit':12}{ff_seconds:9.2f}{len(ff):9,}{ff_memory:13.2%}{ff_cpu:10.2%}")
    print(f"{'place':12}{seconds:9.2f}{placed:9,}{memory:13.2%}{cpu:10.2%}")
    print(
        f"place / first fit: time {seconds / ff_seconds:.1f}x, VMs placed "
        f"{placed / max(len(ff), 1):.4f}, memory used {memory / ff_memory:.4f}, CPU used "
        f"{cpu / ff_cpu:.4f}; proven best: {placement.proven}"
    )
    reasons: dict[str, int] = {}
    for entry in placement.unplaced:
        reasons[entry.reason.value] = reasons.get(entry.reason.value, 0) + 1
    print(f"not placed, by reason: {reasons or 'none'}")
    return seconds, placed, len(ff), memory, ff_memory, placement


def main() -> int:
    announce()
    misses = []
    seconds, placed, _, _, _, _ = compare("fits", 0.95)
    if placed < VMS:
        misses.append(f"fits: placed {placed:,} of {VMS:,}")
    if seconds > MAX_SECONDS:
        misses.append(f"fits: took {seconds:.2f} s > {MAX_SECONDS} s")
    seconds, placed, ff_placed, memory, ff_memory, _ = compare("over", 1.01)
    if placed < ff_placed:
        misses.append(f"over: placed {placed:,} < first fit's {ff_placed:,}")
    if memory < ff_memory:
        misses.append(f"over: memory used {memory:.2%} < first fit's {ff_memory:.2%}")
    if seconds > MAX_SECONDS:
        misses.append(f"over: took {seconds:.2f} s > {MAX_SECONDS} s")

    _, _, policy = make_cluster()
    fo_seconds, fo, victims = failover(policy)
    print(
        f"\nfailover: the 2 busiest of {HOSTS} hosts fail; {victims} VMs re-placed "
        f"among the running ones in {fo_seconds * 1000:.0f} ms: {len(fo.placed)} placed, "
        f"{len(fo.unplaced)} not placed"
    )
    if fo.unplaced:
        misses.append(f"failover: {len(fo.unplaced)} VMs not placed")
    if fo_seconds > MAX_FAILOVER_SECONDS:
        misses.append(f"failover: took {fo_seconds:.2f} s > {MAX_FAILOVER_SECONDS} s")
    for miss in () if SMOKE else misses:
        print(f"MISSED: {miss}")
    return exit_code(not misses)


if __name__ == "__main__":
    raise SystemExit(main())
