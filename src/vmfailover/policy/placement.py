"""Where the VMs of a failed host restart: a pure placement function.

:func:`place` chooses a surviving host for every VM it is given, respecting

- CPU and memory capacity (the VMs already running on each host count; CPU as vCPUs against
  ``cpu_cores * policy.vcpus_per_core``),
- anti-affinity (members of a set never share a host, the running VMs included) and affinity
  (members of a set share one host; a running member pins the others to its host),
- the shared datastores each host reaches (``VM.datastore`` must be one of ``Host.datastores``)
  and the networks it has (every NIC's network must be one of ``Host.networks``).

Nothing is dropped: a VM that cannot be placed is reported with the reason (no capacity, no host
reaches its datastore, a network missing, anti-affinity, affinity, no host at all, restart
disabled) and a sentence naming what stands in the way.

Restart priority decides who gets capacity first: the result is lexicographically best by
priority (as many ``highest`` VMs as possible, then as many ``high`` ones, and so on).

How: affinity sets are merged into units that move together; units are placed most constrained
first (highest priority, then fewest eligible hosts, then largest) on the eligible host whose free
CPU and memory best match the unit's shape (the dot-product heuristic of vector packing, which
keeps each host's free CPU and memory in proportion, so what is left stays usable; plain best fit
strands CPU on some hosts and memory on others). A unit that fits nowhere triggers a bounded
repair: move one VM this placement put on a host elsewhere to make room or to lift an
anti-affinity conflict. If VMs remain unplaced, a
branch-and-bound search looks for a better placement within a budget of host checks
(:data:`SEARCH_BUDGET`; it is skipped when a single descent through every unit would exceed it);
when it finishes inside the budget the result is proven best (``Placement.proven``), which is
always the case for small clusters. Cost: O(V log V + V*H) for
the heuristic (V VMs, H hosts; eligibility is computed once per distinct datastore and network
need), plus the bounded repair and search.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import attrs

from vmfailover._render import listing
from vmfailover.errors import Finding, NotFoundError, ValidationError
from vmfailover.model import VM, Host, PowerState
from vmfailover.policy.cluster import ClusterPolicy, RestartPriority

__all__ = [
    "REPAIR_BUDGET",
    "SEARCH_BUDGET",
    "HostLoad",
    "PlacedVM",
    "Placement",
    "UnplacedReason",
    "UnplacedVM",
    "place",
]

SEARCH_BUDGET: Final = 200_000
"""Host checks the exact search may spend before it settles for the best placement found."""

REPAIR_BUDGET: Final = 200_000
"""Host checks the repair step may spend over one placement."""

_REPAIR_HOSTS: Final = 16
_REPAIR_MOVERS: Final = 8


class UnplacedReason(enum.StrEnum):
    """Why a VM was not placed."""

    NO_CAPACITY = "no_capacity"
    NO_DATASTORE = "no_datastore"
    NO_NETWORK = "no_network"
    ANTI_AFFINITY = "anti_affinity"
    AFFINITY = "affinity"
    NO_HOST = "no_host"
    RESTART_DISABLED = "restart_disabled"


@attrs.frozen
class PlacedVM:
    """A VM and the host it restarts on."""

    vm: str
    name: str
    host: str
    priority: RestartPriority


@attrs.frozen
class UnplacedVM:
    """A VM that cannot restart, why (``reason``) and what stands in the way (``detail``)."""

    vm: str
    name: str
    reason: UnplacedReason
    detail: str
    priority: RestartPriority

    def __str__(self) -> str:
        return f"VM {self.name!r}: {self.detail}"


@attrs.frozen
class HostLoad:
    """A candidate host after placement: capacity, what is used (running VMs included), and
    which VMs this placement put there."""

    host: str
    cpu_capacity: float
    cpu_used: int
    memory_capacity_mb: int
    memory_used_mb: int
    placed: tuple[str, ...]


@attrs.frozen
class Placement:
    """The answer of :func:`place`.

    ``placed`` is in restart order (priority first); ``unplaced`` names every VM that could not
    be placed, with the reason. ``proven`` is True when every VM was placed or the search proved
    that no placement restarts more VMs (priority by priority); False when the search ran out of
    budget first, so a better placement might exist.
    """

    placed: tuple[PlacedVM, ...]
    unplaced: tuple[UnplacedVM, ...]
    hosts: tuple[HostLoad, ...]
    proven: bool

    @property
    def complete(self) -> bool:
        """Every VM has a host."""
        return not self.unplaced

    @property
    def assignments(self) -> dict[str, str]:
        """VM id -> host name, for the placed VMs."""
        return {entry.vm: entry.host for entry in self.placed}

    def host_of(self, vm: str) -> str:
        """The host VM ``vm`` (id or name) restarts on; NotFoundError if it was not placed."""
        for entry in self.placed:
            if vm in (entry.vm, entry.name):
                return entry.host
        for missing in self.unplaced:
            if vm in (missing.vm, missing.name):
                raise NotFoundError(f"VM {missing.name!r} was not placed: {missing.detail}")
        raise NotFoundError(f"VM {vm!r} was not part of this placement")

    @property
    def cpu_used(self) -> int:
        return sum(host.cpu_used for host in self.hosts)

    @property
    def cpu_capacity(self) -> float:
        return sum(host.cpu_capacity for host in self.hosts)

    @property
    def memory_used_mb(self) -> int:
        return sum(host.memory_used_mb for host in self.hosts)

    @property
    def memory_capacity_mb(self) -> int:
        return sum(host.memory_capacity_mb for host in self.hosts)

    def __str__(self) -> str:
        lines = [f"{len(self.placed)} placed, {len(self.unplaced)} not placed"]
        lines.extend(f"  {entry.name} -> {entry.host}" for entry in self.placed)
        lines.extend(f"  {entry} [{entry.reason.value}]" for entry in self.unplaced)
        return "\n".join(lines)


# --- input ----------------------------------------------------------------------------------------


def _checked(
    vms: Iterable[VM], hosts: Iterable[Host], running: Iterable[VM], policy: object
) -> tuple[tuple[VM, ...], tuple[Host, ...], tuple[VM, ...]]:
    findings: list[Finding] = []
    if not isinstance(policy, ClusterPolicy):
        findings.append(Finding("place policy", f"must be a ClusterPolicy, got {policy!r}"))

    def items(value: Iterable[object], kind: type, what: str) -> list[object]:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            findings.append(Finding(f"place {what}", f"must be a list, got {value!r}"))
            return []
        found = list(value)
        for position, item in enumerate(found):
            if not isinstance(item, kind):
                findings.append(
                    Finding(f"place {what}[{position}]", f"must be a {kind.__name__}, got {item!r}")
                )
        return [item for item in found if isinstance(item, kind)]

    vm_list = items(vms, VM, "vms")
    host_list = items(hosts, Host, "hosts")
    running_list = items(running, VM, "running")
    seen: dict[str, str] = {}
    for what, group in (("vms", vm_list), ("running", running_list)):
        for vm in group:
            assert isinstance(vm, VM)
            if vm.id in seen:
                findings.append(
                    Finding(f"VM {vm.name!r}", f"id {vm.id!r} appears twice (in {seen[vm.id]})")
                )
            seen[vm.id] = what
    names: set[str] = set()
    for host in host_list:
        assert isinstance(host, Host)
        if host.name in names:
            findings.append(Finding(f"host {host.name!r}", "appears twice in hosts"))
        names.add(host.name)
    if findings:
        raise ValidationError(findings)
    return (
        tuple(vm for vm in vm_list if isinstance(vm, VM)),
        tuple(host for host in host_list if isinstance(host, Host)),
        tuple(vm for vm in running_list if isinstance(vm, VM)),
    )


# --- the problem, by index ----------------------------------------------------------------------


@attrs.define(eq=False)
class _Unit:
    """VMs that move together (one VM, or an affinity set) and what they need of a host."""

    members: list[int]
    cpu: int = 0
    memory: int = 0
    anti: frozenset[int] = frozenset()
    tier: int = 0
    counts: tuple[int, ...] = (0,) * 6  # members per priority, highest first (see score)
    datastores: frozenset[str] = frozenset()
    networks: frozenset[str] = frozenset()
    pins: frozenset[int] = frozenset()
    eligible: tuple[int, ...] = ()
    blocked: tuple[UnplacedReason, str] | None = None


class _Finder:
    """Union-find over VM positions, for affinity sets."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def root(self, item: int) -> int:
        parent = self.parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def join(self, first: int, second: int) -> None:
        a, b = self.root(first), self.root(second)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def _matches(names: frozenset[str], vm: VM) -> bool:
    return vm.id in names or vm.name in names


def _indexer(vms: Sequence[VM], named: frozenset[str]) -> Callable[[frozenset[str]], list[int]]:
    """A function from a rule's VM names (ids or names) to the positions of those VMs.

    Only VMs whose id or name is in ``named`` (every name the rules use) are indexed.
    """
    table: dict[str, set[int]] = {}
    for position, vm in enumerate(vms):
        if vm.id in named:
            table.setdefault(vm.id, set()).add(position)
        if vm.name in named:
            table.setdefault(vm.name, set()).add(position)

    def matching(names: frozenset[str]) -> list[int]:
        return sorted({position for name in names for position in table.get(name, ())})

    return matching


def _listing(names: Sequence[str]) -> str:
    return listing(names, 4)


class _Problem:
    """The placement problem in index form, and its mutable state while solving."""

    def __init__(
        self,
        vms: tuple[VM, ...],
        hosts: tuple[Host, ...],
        running: tuple[VM, ...],
        policy: ClusterPolicy,
    ) -> None:
        self.vms = vms
        self.policy = policy
        self.all_hosts = hosts
        self.hosts = tuple(host for host in hosts if host.available)
        host_index = {host.name: position for position, host in enumerate(self.hosts)}
        self.cpu_cap = [policy.cpu_capacity(host) for host in self.hosts]
        self.mem_cap = [host.memory_mb for host in self.hosts]
        self.cpu_weight = [1.0 / (cap * cap) for cap in self.cpu_cap]
        self.mem_weight = [1.0 / (cap * cap) for cap in self.mem_cap]
        self.free_cpu = list(self.cpu_cap)
        self.free_mem = [float(m) for m in self.mem_cap]
        self.running_cpu = [0] * len(self.hosts)
        self.running_mem = [0] * len(self.hosts)
        # anti-affinity set -> count per host, running VMs included
        self.host_anti: list[dict[int, int]] = [{} for _ in self.hosts]
        self.running_anti: list[dict[int, list[str]]] = [{} for _ in self.hosts]
        self.priorities = [policy.priority_of(vm) for vm in vms]

        live = [
            (vm, host_index[vm.host])
            for vm in running
            if vm.power_state is PowerState.ON and vm.host in host_index
        ]
        for vm, h in live:
            self.free_cpu[h] -= vm.cpu
            self.free_mem[h] -= vm.memory_mb
            self.running_cpu[h] += vm.cpu
            self.running_mem[h] += vm.memory_mb
        self.live = live
        named = frozenset().union(*policy.anti_affinity, *policy.affinity)
        self.live_matching = _indexer([vm for vm, _ in live], named)
        self.matching = _indexer(vms, named)
        for set_index, members in enumerate(policy.anti_affinity):
            for position in self.live_matching(members):
                vm, h = live[position]
                self.host_anti[h][set_index] = self.host_anti[h].get(set_index, 0) + 1
                self.running_anti[h].setdefault(set_index, []).append(vm.name)

        self.disabled = [p is RestartPriority.DISABLED for p in self.priorities]
        self.units = self._units()
        self.assign: list[int | None] = [None] * len(self.units)
        self.on_host: list[set[int]] = [set() for _ in self.hosts]
        pinned = {h for unit in self.units for h in unit.pins}
        # Hosts of one class are interchangeable for every unit (the search uses this).
        self.host_class = [
            (frozenset(host.datastores), frozenset(host.networks), h if h in pinned else -1)
            for h, host in enumerate(self.hosts)
        ]

    # --- building units ---------------------------------------------------------------------------

    def _units(self) -> list[_Unit]:
        vms, policy, live = self.vms, self.policy, self.live
        finder = _Finder(len(vms))
        pins: dict[int, set[int]] = {}
        partners: dict[int, set[str]] = {}
        for members in policy.affinity:
            inside = [i for i in self.matching(members) if not self.disabled[i]]
            for other in inside[1:]:
                finder.join(inside[0], other)
            pinned = {(live[k][0].name, live[k][1]) for k in self.live_matching(members)}
            for i in inside:
                pins.setdefault(i, set()).update(h for _, h in pinned)
                partners.setdefault(i, set()).update(name for name, _ in pinned)
        anti_of: list[set[int]] = [set() for _ in vms]
        for set_index, members in enumerate(policy.anti_affinity):
            for i in self.matching(members):
                anti_of[i].add(set_index)

        groups: dict[int, list[int]] = {}
        for i in range(len(vms)):
            if not self.disabled[i]:
                groups.setdefault(finder.root(i), []).append(i)
        units: list[_Unit] = []
        eligible_cache: dict[tuple[frozenset[str], frozenset[str]], tuple[int, ...]] = {}
        for group in groups.values():
            unit = _Unit(members=group)
            unit.cpu = sum(vms[i].cpu for i in group)
            unit.memory = sum(vms[i].memory_mb for i in group)
            unit.tier = max(self.priorities[i].rank for i in group)
            counts = [0] * 6
            for i in group:
                counts[5 - self.priorities[i].rank] += 1
            unit.counts = tuple(counts)
            unit.datastores = frozenset(ds for i in group if (ds := vms[i].datastore) is not None)
            unit.networks = frozenset(nic.network for i in group for nic in vms[i].nics)
            unit.anti = frozenset(s for i in group for s in anti_of[i])
            unit.pins = frozenset(h for i in group for h in pins.get(i, ()))
            key = (unit.datastores, unit.networks)
            if key not in eligible_cache:
                eligible_cache[key] = tuple(
                    h
                    for h, host in enumerate(self.hosts)
                    if unit.datastores.issubset(host.datastores)
                    and unit.networks.issubset(host.networks)
                )
            eligible = eligible_cache[key]
            if unit.pins:
                eligible = tuple(h for h in eligible if h in unit.pins)
            unit.eligible = eligible
            unit.blocked = self._blocked(unit, anti_of, partners)
            units.append(unit)
        return units

    def _blocked(
        self, unit: _Unit, anti_of: list[set[int]], partners: dict[int, set[str]]
    ) -> tuple[UnplacedReason, str] | None:
        """Why no host can ever take this unit, independent of load; None if some host could."""
        vms, hosts = self.vms, self.hosts
        together = [vms[i].name for i in unit.members]
        group = f"with its affinity partners {_listing(together)}, " if len(together) > 1 else ""
        seen: dict[int, str] = {}
        for i in unit.members:
            for s in anti_of[i]:
                if s in seen:
                    return (
                        UnplacedReason.AFFINITY,
                        f"affinity rules keep {seen[s]!r} and {vms[i].name!r} together, "
                        f"but anti-affinity set {s + 1} keeps them apart",
                    )
                seen[s] = vms[i].name
        if len(unit.pins) > 1:
            names = sorted({n for i in unit.members for n in partners.get(i, ())})
            where = sorted(hosts[h].name for h in unit.pins)
            return (
                UnplacedReason.AFFINITY,
                f"its affinity partners {_listing(names)} run on different hosts "
                f"({_listing(where)})",
            )
        if not hosts:
            reason = "no candidate host is available" if self.all_hosts else "no candidate host"
            return (UnplacedReason.NO_HOST, reason)
        if unit.eligible:
            return None
        if unit.pins:
            (h,) = unit.pins
            names = sorted({n for i in unit.members for n in partners.get(i, ())})
            return (
                UnplacedReason.AFFINITY,
                f"must run with {_listing(names)} on {hosts[h].name!r}, which lacks "
                f"{self._lacks(unit, hosts[h])}",
            )
        reaching = [host for host in hosts if unit.datastores.issubset(host.datastores)]
        if not reaching:
            nowhere = sorted(
                ds for ds in unit.datastores if not any(ds in host.datastores for host in hosts)
            )
            if nowhere:
                what = (
                    f"datastore {_listing(nowhere)}"
                    if len(nowhere) == 1
                    else (f"datastores {_listing(nowhere)}")
                )
                return (UnplacedReason.NO_DATASTORE, f"{group}no surviving host reaches {what}")
            return (
                UnplacedReason.NO_DATASTORE,
                f"{group}no surviving host reaches all of the datastores "
                f"{_listing(sorted(unit.datastores))}",
            )
        missing = sorted(
            net for net in unit.networks if not any(net in host.networks for host in reaching)
        )
        hosts_meant = (
            "no surviving host"
            if not unit.datastores
            else (f"no surviving host that reaches {_listing(sorted(unit.datastores))}")
        )
        if missing:
            label = "network" if len(missing) == 1 else "networks"
            return (
                UnplacedReason.NO_NETWORK,
                f"{group}{hosts_meant} has {label} {_listing(missing)}",
            )
        return (
            UnplacedReason.NO_NETWORK,
            f"{group}{hosts_meant} has all of the networks {_listing(sorted(unit.networks))}",
        )

    def _lacks(self, unit: _Unit, host: Host) -> str:
        gone = sorted(unit.datastores - set(host.datastores)) + sorted(
            unit.networks - set(host.networks)
        )
        return _listing(gone)

    # --- state changes ----------------------------------------------------------------------------

    def fits(self, u: int, h: int) -> bool:
        unit = self.units[u]
        if self.free_cpu[h] < unit.cpu or self.free_mem[h] < unit.memory:
            return False
        counts = self.host_anti[h]
        return not any(counts.get(s) for s in unit.anti)

    def put(self, u: int, h: int) -> None:
        unit = self.units[u]
        self.assign[u] = h
        self.free_cpu[h] -= unit.cpu
        self.free_mem[h] -= unit.memory
        counts = self.host_anti[h]
        for s in unit.anti:
            counts[s] = counts.get(s, 0) + 1
        self.on_host[h].add(u)

    def take(self, u: int) -> int:
        h = self.assign[u]
        assert h is not None
        unit = self.units[u]
        self.assign[u] = None
        self.free_cpu[h] += unit.cpu
        self.free_mem[h] += unit.memory
        counts = self.host_anti[h]
        for s in unit.anti:
            counts[s] -= 1
        self.on_host[h].discard(u)
        return h

    def alignment(self, u: int, h: int) -> float:
        """How well the host's free CPU and memory match the unit's shape (higher is better).

        The dot product of the unit's demand and the host's free capacity, both as shares of
        the host's capacity: it favours hosts with room in the dimensions the unit needs, so
        the free CPU and memory left on each host stay in proportion and remain usable (the
        "dot product" heuristic for vector packing).
        """
        unit = self.units[u]
        return (
            unit.cpu * self.free_cpu[h] * self.cpu_weight[h]
            + unit.memory * self.free_mem[h] * self.mem_weight[h]
        )

    def score(self) -> tuple[int, ...]:
        """VMs placed per restart priority, highest first (compared lexicographically).

        Each VM counts at its own priority, also when an affinity set moves it with VMs of a
        higher one (the set is ordered by its highest priority, but scored member by member).
        """
        counts = [0] * 6
        for u, unit in enumerate(self.units):
            if self.assign[u] is not None:
                for tier, count in enumerate(unit.counts):
                    counts[tier] += count
        return tuple(counts)

    # --- solving ----------------------------------------------------------------------------------

    def order(self) -> list[int]:
        """Most constrained first: priority, then fewest eligible hosts, then largest share."""
        hosts = max(len(self.hosts), 1)
        cpu_mean = sum(self.cpu_cap) / hosts or 1.0
        mem_mean = sum(self.mem_cap) / hosts or 1.0
        candidates = [u for u, unit in enumerate(self.units) if unit.blocked is None]

        def key(u: int) -> tuple[int, int, float]:
            unit = self.units[u]
            share = max(unit.cpu / cpu_mean, unit.memory / mem_mean)
            return (-unit.tier, len(unit.eligible), -share)

        return sorted(candidates, key=key)

    def greedy(self, order: list[int]) -> None:
        """Each unit, in ``order``, on the eligible host it fits best (:meth:`alignment`).

        The same test as :meth:`fits` and the same score as :meth:`alignment`, written out
        because this loop runs V*H times.
        """
        budget = [REPAIR_BUDGET]
        free_cpu, free_mem, host_anti = self.free_cpu, self.free_mem, self.host_anti
        cpu_weight, mem_weight = self.cpu_weight, self.mem_weight
        for u in order:
            unit = self.units[u]
            cpu, memory, anti = unit.cpu, unit.memory, unit.anti
            best, best_score = -1, -1.0
            for h in unit.eligible:
                room_cpu, room_mem = free_cpu[h], free_mem[h]
                if room_cpu < cpu or room_mem < memory:
                    continue
                if anti:
                    counts = host_anti[h]
                    if any(counts.get(s) for s in anti):
                        continue
                score = cpu * room_cpu * cpu_weight[h] + memory * room_mem * mem_weight[h]
                if score > best_score:
                    best, best_score = h, score
            if best >= 0:
                self.put(u, best)
            elif budget[0] > 0:
                self.repair(u, budget)

    def repair(self, u: int, budget: list[int]) -> bool:
        """Make room for unit ``u`` by moving one unit this placement put somewhere else."""
        unit = self.units[u]
        hosts = sorted(
            unit.eligible,
            key=lambda h: (
                -(self.free_cpu[h] / self.cpu_cap[h] + self.free_mem[h] / self.mem_cap[h])
            ),
        )[:_REPAIR_HOSTS]
        for h in hosts:
            conflicting = [w for w in self.on_host[h] if self.units[w].anti & unit.anti]
            if len(conflicting) > 1:
                continue
            movers = (
                conflicting
                or sorted(
                    self.on_host[h],
                    key=lambda w: (
                        self.units[w].cpu / self.cpu_cap[h] + self.units[w].memory / self.mem_cap[h]
                    ),
                )[:_REPAIR_MOVERS]
            )
            for w in movers:
                budget[0] -= 1
                self.take(w)
                if self.fits(u, h):
                    for h2 in self.units[w].eligible:
                        budget[0] -= 1
                        if h2 != h and self.fits(w, h2):
                            self.put(w, h2)
                            self.put(u, h)
                            return True
                self.put(w, h)
                if budget[0] <= 0:
                    return False
        return False

    def search(self, order: list[int]) -> bool:
        """Branch and bound for a lexicographically better placement; True when it finished.

        Places the units in ``order``; at each unit tries every host it fits (best match first,
        skipping a host in the same state as one already tried), then leaving it out, and prunes
        a branch that cannot beat the best placement found. Stops once everything is placed.
        The stack is explicit, so the depth (one level per unit) is not bounded by recursion.
        """
        units = self.units
        n = len(order)
        if all(self.assign[u] is not None for u in order):
            return True
        if sum(len(units[u].eligible) for u in order) > SEARCH_BUDGET:
            return False  # one descent alone would exhaust the budget: nothing to gain
        weights = [units[u].counts for u in order]
        rest = [[0] * 6 for _ in range(n + 1)]
        for position in range(n - 1, -1, -1):
            after = zip(rest[position + 1], weights[position], strict=True)
            rest[position] = [a + b for a, b in after]
        best = list(self.score())
        best_assign = list(self.assign)
        for u in order:
            if self.assign[u] is not None:
                self.take(u)
        current = [0] * 6
        budget = [SEARCH_BUDGET]
        frames: list[_Frame] = [self._frame(order[0], budget)]
        depth = 0
        finished = True
        while depth >= 0:
            if budget[0] <= 0:
                finished = False
                break
            if depth == n:
                if current > best:
                    best, best_assign = list(current), list(self.assign)
                    if best == rest[0]:
                        break
                depth -= 1
                continue
            frame = frames[-1]
            u = order[depth]
            if frame.placed:
                self.take(u)
                current = [a - b for a, b in zip(current, weights[depth], strict=True)]
                frame.placed = False
            if frame.hosts:
                self.put(u, frame.hosts.pop())
                frame.placed = True
                current = [a + b for a, b in zip(current, weights[depth], strict=True)]
            elif frame.may_skip:
                frame.may_skip = False
            else:
                frames.pop()
                depth -= 1
                continue
            if _better(current, rest[depth + 1], best):
                depth += 1
                if depth < n:
                    frames.append(self._frame(order[depth], budget))
        for u in order:
            if self.assign[u] is not None:
                self.take(u)
        for u, h in enumerate(best_assign):
            if h is not None:
                self.put(u, h)
        return finished

    def _frame(self, u: int, budget: list[int]) -> _Frame:
        """The hosts unit ``u`` fits now, one per distinct host state, best one last."""
        candidates: list[tuple[float, int]] = []
        seen: set[tuple[object, ...]] = set()
        for h in self.units[u].eligible:
            budget[0] -= 1
            if self.fits(u, h):
                state = (
                    self.host_class[h],
                    self.free_cpu[h],
                    self.free_mem[h],
                    frozenset(s for s, count in self.host_anti[h].items() if count),
                )
                if state not in seen:
                    seen.add(state)
                    candidates.append((self.alignment(u, h), -h))
        candidates.sort()
        return _Frame([-h for _, h in candidates])


@attrs.define(eq=False)
class _Frame:
    """One level of the search: hosts still to try (popped from the end), then leaving out."""

    hosts: list[int]
    may_skip: bool = True
    placed: bool = False


def _better(current: list[int], rest: list[int], best: list[int]) -> bool:
    """Whether placing everything left could still beat ``best``."""
    return [a + b for a, b in zip(current, rest, strict=True)] > best


# --- the answer -----------------------------------------------------------------------------------


def place(
    vms: Iterable[VM],
    hosts: Iterable[Host],
    policy: ClusterPolicy | None = None,
    *,
    running: Iterable[VM] = (),
) -> Placement:
    """Choose a host among ``hosts`` for every VM of ``vms``; see the module docstring.

    ``hosts`` are the candidates (the survivors); those not available (powered off or not
    connected) are never chosen. ``running`` are the VMs already on them: the powered-on ones
    count toward each host's load and toward anti-affinity and affinity. Pure and deterministic:
    the same input gives the same placement.
    """
    policy = ClusterPolicy() if policy is None else policy
    vm_tuple, host_tuple, running_tuple = _checked(vms, hosts, running, policy)
    problem = _Problem(vm_tuple, host_tuple, running_tuple, policy)
    order = problem.order()
    problem.greedy(order)
    proven = problem.search(order)
    return _answer(problem, proven)


def _answer(problem: _Problem, proven: bool) -> Placement:
    vms, hosts = problem.vms, problem.hosts
    unit_of: dict[int, int] = {}
    for u, unit in enumerate(problem.units):
        for i in unit.members:
            unit_of[i] = u
    placed_units = sorted(
        (u for u, h in enumerate(problem.assign) if h is not None),
        key=lambda u: (-problem.units[u].tier, min(problem.units[u].members)),
    )
    placed = tuple(
        PlacedVM(vms[i].id, vms[i].name, hosts[h].name, problem.priorities[i])
        for u in placed_units
        if (h := problem.assign[u]) is not None
        for i in sorted(problem.units[u].members)
    )
    unplaced: list[UnplacedVM] = []
    for i, vm in enumerate(vms):
        priority = problem.priorities[i]
        if problem.disabled[i]:
            unplaced.append(
                UnplacedVM(
                    vm.id,
                    vm.name,
                    UnplacedReason.RESTART_DISABLED,
                    "its restart priority is 'disabled'",
                    priority,
                )
            )
            continue
        u = unit_of[i]
        if problem.assign[u] is None:
            reason, detail = _why(problem, u)
            unplaced.append(UnplacedVM(vm.id, vm.name, reason, detail, priority))
    loads = []
    for h, host in enumerate(hosts):
        mine = [vms[i].id for u in sorted(problem.on_host[h]) for i in problem.units[u].members]
        loads.append(
            HostLoad(
                host=host.name,
                cpu_capacity=problem.cpu_cap[h],
                cpu_used=problem.running_cpu[h]
                + sum(problem.units[u].cpu for u in problem.on_host[h]),
                memory_capacity_mb=problem.mem_cap[h],
                memory_used_mb=problem.running_mem[h]
                + sum(problem.units[u].memory for u in problem.on_host[h]),
                placed=tuple(mine),
            )
        )
    return Placement(placed=placed, unplaced=tuple(unplaced), hosts=tuple(loads), proven=proven)


def _why(problem: _Problem, u: int) -> tuple[UnplacedReason, str]:
    """The reason a unit stayed unplaced, in terms of the final state of the hosts."""
    unit = problem.units[u]
    if unit.blocked is not None:
        return unit.blocked
    vms, hosts = problem.vms, problem.hosts
    names = [vms[i].name for i in unit.members]
    group = len(names) > 1
    roomy = [
        h
        for h in unit.eligible
        if problem.free_cpu[h] >= unit.cpu and problem.free_mem[h] >= unit.memory
    ]
    if roomy:
        blockers: list[str] = []
        for h in roomy:
            present = sorted(
                {
                    vms[i].name
                    for w in problem.on_host[h]
                    if problem.units[w].anti & unit.anti
                    for i in problem.units[w].members
                    if any(_matches(problem.policy.anti_affinity[s], vms[i]) for s in unit.anti)
                }
                | {name for s in unit.anti for name in problem.running_anti[h].get(s, ())}
            )
            blockers.append(f"{hosts[h].name} ({', '.join(present)})")
        return (
            UnplacedReason.ANTI_AFFINITY,
            "every host with room for it runs a member of its anti-affinity set: "
            + listing(blockers, 4, quoted=False),
        )
    need = f"needs {unit.cpu} vCPU and {unit.memory} MB"
    if group:
        need = f"with its affinity partners {_listing(names)} {need}"
        largest = max(unit.members, key=lambda i: (vms[i].memory_mb, vms[i].cpu))
        alone = vms[largest]
        if any(
            problem.free_cpu[h] >= alone.cpu and problem.free_mem[h] >= alone.memory_mb
            for h in unit.eligible
        ):
            return (
                UnplacedReason.AFFINITY,
                f"{need} on one host; no eligible host has that much free",
            )
    most = max(
        unit.eligible,
        key=lambda h: min(
            problem.free_cpu[h] / max(unit.cpu, 1), problem.free_mem[h] / max(unit.memory, 1)
        ),
    )
    detail = (
        f"{need}; the most free on an eligible host is "
        f"{max(problem.free_cpu[most], 0):.10g} vCPU and {max(problem.free_mem[most], 0):.10g} MB "
        f"({hosts[most].name})"
    )
    outranked = any(
        problem.assign[w] is not None and problem.units[w].tier > unit.tier
        for w in range(len(problem.units))
    )
    if outranked:
        detail += "; VMs of higher restart priority were placed first"
    return (UnplacedReason.NO_CAPACITY, detail)
