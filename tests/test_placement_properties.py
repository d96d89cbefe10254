"""Placement against an exhaustive reference on small clusters.

The reference tries every assignment of every VM to every host (or to none) and keeps the valid
ones; the best by restart priority (as many highest-priority VMs as possible, then the next
priority, ...) is what :func:`place` must find. Every answer is also checked against the rules
directly: no host over capacity, anti-affinity and affinity kept, datastores and networks
reachable, unavailable hosts unused, every VM either placed or reported.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from hypothesis import assume, given
from hypothesis import strategies as st

from vmfailover.errors import ValidationError
from vmfailover.model import VM, ConnectionState, Host, Nic, PowerState
from vmfailover.policy.cluster import ClusterPolicy, RestartPriority
from vmfailover.policy.placement import Placement, place

DATASTORES = ("ds1", "ds2")
NETWORKS = ("net1", "net2")


@st.composite
def clusters(
    draw: st.DrawFn, max_hosts: int = 3, max_vms: int = 6
) -> tuple[list[VM], list[Host], list[VM], ClusterPolicy]:
    host_count = draw(st.integers(1, max_hosts))
    hosts = [
        Host(
            f"h{h}",
            "site",
            cpu_cores=draw(st.integers(1, 4)),
            memory_mb=1024 * draw(st.integers(1, 5)),
            datastores=draw(st.sets(st.sampled_from(DATASTORES))),
            networks=draw(st.sets(st.sampled_from(NETWORKS))),
            connection=draw(
                st.sampled_from([ConnectionState.CONNECTED] * 5 + [ConnectionState.DISCONNECTED])
            ),
        )
        for h in range(host_count)
    ]

    def a_vm(name: str, host: str, power: PowerState) -> VM:
        networks = draw(st.sets(st.sampled_from(NETWORKS), max_size=2))
        return VM(
            id=f"id-{name}",
            name=name,
            host=host,
            power_state=power,
            cpu=draw(st.integers(1, 3)),
            memory_mb=1024 * draw(st.integers(1, 3)),
            datastore=draw(st.sampled_from((None, *DATASTORES))),
            nics=[Nic(f"00:50:56:00:00:{n:02x}", net) for n, net in enumerate(sorted(networks))],
        )

    vms = [
        a_vm(f"v{i}", "failed-host", PowerState.OFF) for i in range(draw(st.integers(0, max_vms)))
    ]
    running = [
        a_vm(
            f"r{i}",
            draw(st.sampled_from([h.name for h in hosts])),
            draw(st.sampled_from([PowerState.ON, PowerState.ON, PowerState.OFF])),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    names = [vm.name for vm in vms + running]
    anti: list[set[str]] = []
    together: list[set[str]] = []
    if len(names) >= 2:
        rule_sets = st.sets(st.sampled_from(names), min_size=2, max_size=4)
        anti = draw(st.lists(rule_sets, max_size=2))
        together = draw(st.lists(rule_sets, max_size=2))
    priorities = {
        vm.name: draw(st.sampled_from(list(RestartPriority))) for vm in vms if draw(st.booleans())
    }
    try:
        policy = ClusterPolicy(
            anti_affinity=anti,
            affinity=together,
            restart_priority=priorities,
            vcpus_per_core=draw(st.sampled_from([1.0, 1.0, 1.5, 2.0])),
        )
    except ValidationError:
        assume(False)
        raise
    return vms, hosts, running, policy


def _valid(
    assignment: Sequence[int | None],
    vms: Sequence[VM],
    hosts: Sequence[Host],
    running: Sequence[VM],
    policy: ClusterPolicy,
) -> bool:
    """Whether assigning ``vms[i]`` to ``hosts[assignment[i]]`` (None: not placed) keeps every
    rule."""
    index = {host.name: h for h, host in enumerate(hosts)}
    live = [
        (vm, index[vm.host])
        for vm in running
        if vm.power_state is PowerState.ON and vm.host in index and hosts[index[vm.host]].available
    ]
    cpu = [policy.cpu_capacity(host) for host in hosts]
    memory = [float(host.memory_mb) for host in hosts]
    for vm, h in live:
        cpu[h] -= vm.cpu
        memory[h] -= vm.memory_mb
    for vm, h in zip(vms, assignment, strict=True):
        if h is None:
            continue
        host = hosts[h]
        if policy.priority_of(vm) is RestartPriority.DISABLED or not host.available:
            return False
        if vm.datastore is not None and vm.datastore not in host.datastores:
            return False
        if any(nic.network not in host.networks for nic in vm.nics):
            return False
        cpu[h] -= vm.cpu
        memory[h] -= vm.memory_mb
    touched = {h for h in assignment if h is not None}
    if any(cpu[h] < 0 or memory[h] < 0 for h in touched):
        return False
    for members in policy.anti_affinity:
        for i, (vm, h) in enumerate(zip(vms, assignment, strict=True)):
            if h is None or not _member(members, vm):
                continue
            if any(_member(members, other) and hh == h for other, hh in live):
                return False
            if any(
                _member(members, other) and hh == h
                for other, hh in zip(vms[i + 1 :], assignment[i + 1 :], strict=True)
            ):
                return False
    for members in policy.affinity:
        movable = [
            h
            for vm, h in zip(vms, assignment, strict=True)
            if _member(members, vm) and policy.priority_of(vm) is not RestartPriority.DISABLED
        ]
        if None in movable and any(h is not None for h in movable):
            return False  # a set moves together or not at all
        placed = {h for h in movable if h is not None}
        pinned = {h for vm, h in live if _member(members, vm)}
        if len(placed | (pinned if placed else set())) > 1:
            return False
    return True


def _member(members: frozenset[str], vm: VM) -> bool:
    return vm.id in members or vm.name in members


def _score(vms: Sequence[VM], placed: Sequence[bool], policy: ClusterPolicy) -> tuple[int, ...]:
    counts = [0] * 6
    for vm, is_placed in zip(vms, placed, strict=True):
        if is_placed:
            counts[5 - policy.priority_of(vm).rank] += 1
    return tuple(counts)


def _best(
    vms: Sequence[VM], hosts: Sequence[Host], running: Sequence[VM], policy: ClusterPolicy
) -> tuple[int, ...]:
    best = _score(vms, [False] * len(vms), policy)
    for assignment in itertools.product([None, *range(len(hosts))], repeat=len(vms)):
        score = _score(vms, [h is not None for h in assignment], policy)
        if score > best and _valid(assignment, vms, hosts, running, policy):
            best = score
    return best


def _assignment(placement: Placement, vms: Sequence[VM], hosts: Sequence[Host]) -> list[int | None]:
    index = {host.name: h for h, host in enumerate(hosts)}
    where = placement.assignments
    return [index[where[vm.id]] if vm.id in where else None for vm in vms]


@given(clusters())
def test_placement_keeps_every_rule_and_is_as_good_as_exhaustive_search(
    case: tuple[list[VM], list[Host], list[VM], ClusterPolicy],
) -> None:
    vms, hosts, running, policy = case
    placement = place(vms, hosts, policy, running=running)

    reported = [entry.vm for entry in placement.placed] + [entry.vm for entry in placement.unplaced]
    assert sorted(reported) == sorted(vm.id for vm in vms), "every VM placed or reported, once"
    assignment = _assignment(placement, vms, hosts)
    assert _valid(assignment, vms, hosts, running, policy)
    for load in placement.hosts:
        if load.placed:
            assert load.cpu_used <= load.cpu_capacity, load
            assert load.memory_used_mb <= load.memory_capacity_mb, load

    assert placement.proven, "small clusters are always searched to the end"
    best = _best(vms, hosts, running, policy)
    got = _score(vms, [h is not None for h in assignment], policy)
    assert got == best
    if sum(best) == sum(1 for vm in vms if policy.priority_of(vm) is not RestartPriority.DISABLED):
        assert all(entry.reason.value == "restart_disabled" for entry in placement.unplaced), (
            "whenever a placement of every VM exists, every VM is placed"
        )


@given(clusters(max_hosts=5, max_vms=12))
def test_larger_placements_keep_every_rule(
    case: tuple[list[VM], list[Host], list[VM], ClusterPolicy],
) -> None:
    vms, hosts, running, policy = case
    placement = place(vms, hosts, policy, running=running)
    assert _valid(_assignment(placement, vms, hosts), vms, hosts, running, policy)
    assert len(placement.placed) + len(placement.unplaced) == len(vms)


@given(clusters())
def test_placement_is_deterministic(
    case: tuple[list[VM], list[Host], list[VM], ClusterPolicy],
) -> None:
    vms, hosts, running, policy = case
    assert place(vms, hosts, policy, running=running) == place(vms, hosts, policy, running=running)
