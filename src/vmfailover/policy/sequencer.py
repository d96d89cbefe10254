"""The start order of a failover, and the sans-IO state machine that walks it.

A :class:`StartOrder` describes which VMs wait for which (``after``), SRM-style priority groups,
limited resources (a host, a datastore) with capacities, an overall parallelism limit, readiness
probes, timeouts and per-VM failure policies. It is plain data a plan can load, save and diff.

A :class:`Sequencer` walks one start order. It never sleeps and never calls a backend: it is told
that a VM became ready, failed or timed out, and answers which VMs may start now. Each VM starts the
moment everything it needs is ready (nothing waits for a whole "wave" unless barrier groups ask for
it); when a limit forces a choice, the VM with the longest remaining path to the end of the graph
starts first, because that is what shortens the recovery time. The real runner and the simulator
drive the same machine, so a predicted RTO and a measured one come from the same decisions.

Like h11's ``_state.py``, the per-VM life is written as data: :data:`TRANSITIONS` maps a state and
an event to the next state, and every event not in the table raises
:class:`~vmfailover.errors.ConflictError` naming the event, the VM and its state.

Cost: building a sequencer is linear in VMs plus dependencies; each event costs the dependencies
it touches plus heap operations, so a whole run is O((V + E) log V). Nothing rescans all VMs per
event (only :meth:`Sequencer.cancel` and an ``abort`` policy touch every pending VM, once).
"""

from __future__ import annotations

import enum
import heapq
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Final, NoReturn

import attrs

from vmfailover._render import in_words
from vmfailover.errors import (
    ConflictError,
    Finding,
    NotFoundError,
    Severity,
    ValidationError,
)
from vmfailover.model import as_enum, is_finite_number
from vmfailover.policy.probes import PROBE_TYPES, Probe

__all__ = [
    "TRANSITIONS",
    "CompiledOrder",
    "Event",
    "FailurePolicy",
    "GroupMode",
    "Sequencer",
    "StartEntry",
    "StartOrder",
    "VMState",
]


class GroupMode(enum.StrEnum):
    """How priority groups act.

    ``priority``: groups only order the queue when a limit forces a choice (group 1 first); a VM
    still starts as soon as its own dependencies are ready. ``barrier``: SRM's behaviour, group N+1
    starts only after every VM of the earlier groups is ready or has failed.
    """

    PRIORITY = "priority"
    BARRIER = "barrier"


class FailurePolicy(enum.StrEnum):
    """What a VM's failure (or timeout) does to the rest of the run.

    ``abort``: start nothing new; pending VMs end cancelled. ``skip_dependents``: every VM that
    needs it, directly or not, is skipped. ``continue``: dependents start anyway, with a warning.
    """

    ABORT = "abort"
    SKIP_DEPENDENTS = "skip_dependents"
    CONTINUE = "continue"


class VMState(enum.StrEnum):
    """Where one VM is in a run. Every state but PENDING and STARTING is final."""

    PENDING = "pending"
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self not in (VMState.PENDING, VMState.STARTING)


class Event(enum.StrEnum):
    """What can happen to one VM. The value is the call (or cause) that delivers it."""

    START = "take_startable"
    READY = "mark_ready"
    FAIL = "mark_failed"
    TIME_OUT = "mark_timed_out"
    SKIP = "skip"
    CANCEL = "cancel"
    WITHDRAW = "withdraw"


#: The per-VM state machine: state -> event -> next state. Anything missing is illegal.
TRANSITIONS: Final[Mapping[VMState, Mapping[Event, VMState]]] = {
    VMState.PENDING: {
        Event.START: VMState.STARTING,
        Event.SKIP: VMState.SKIPPED,
        Event.CANCEL: VMState.CANCELLED,
    },
    VMState.STARTING: {
        Event.READY: VMState.READY,
        Event.FAIL: VMState.FAILED,
        Event.TIME_OUT: VMState.TIMED_OUT,
        Event.WITHDRAW: VMState.CANCELLED,
    },
    VMState.READY: {},
    VMState.FAILED: {},
    VMState.TIMED_OUT: {},
    VMState.SKIPPED: {},
    VMState.CANCELLED: {},
}


@attrs.frozen
class StartEntry:
    """One VM of a start order, as added. Built by :meth:`StartOrder.add`, which checks it."""

    name: str
    after: tuple[str, ...] = ()
    group: int | None = None
    probe: Probe | None = None
    timeout: float | None = None
    on_failure: FailurePolicy = FailurePolicy.SKIP_DEPENDENTS
    resources: tuple[str, ...] = ()


def _names(value: object, what: str, item: str, findings: list[Finding]) -> tuple[str, ...]:
    """A tuple of distinct non-empty names from a string or an iterable of strings."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        findings.append(Finding(item, f"{what} must be a name or a list of names, got {value!r}"))
        return ()
    names: dict[str, None] = {}
    for name in value:
        if not isinstance(name, str) or not name.strip():
            findings.append(Finding(item, f"{what} must hold non-empty names, got {name!r}"))
        else:
            names[name] = None
    return tuple(names)


def _positive_number(value: object) -> bool:
    return is_finite_number(value) and value > 0


def _positive_int(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value > 0


def _group_label(group: int | None) -> str:
    return "no group" if group is None else f"group {group}"


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    if len(names) > limit:
        shown += f" and {len(names) - limit} more"
    return shown


class StartOrder:
    """The start order of a failover: dependencies, groups, limits, probes and failure policies.

    ``max_parallel`` caps how many VMs start at once (``None``: no cap). ``groups`` is
    ``"priority"`` (default) or ``"barrier"``, see :class:`GroupMode`. A VM without a group sorts
    after every numbered group.

    The order is a builder: :meth:`add` and :meth:`limit` refuse bad values at once; graph-wide
    problems (cycles, unknown names, contradicting groups, resources without a capacity) are
    reported together by :meth:`validate`. A :class:`Sequencer` takes a snapshot, so changing the
    order later does not change a running sequencer.
    """

    def __init__(
        self, max_parallel: int | None = None, groups: GroupMode | str = GroupMode.PRIORITY
    ) -> None:
        findings: list[Finding] = []
        if max_parallel is not None and not _positive_int(max_parallel):
            findings.append(
                Finding(
                    "StartOrder max_parallel",
                    f"must be a whole number >= 1 or None, got {max_parallel!r}",
                    hint="use None for no overall limit",
                )
            )
        try:
            mode = as_enum(GroupMode, groups, "StartOrder", field="groups")
        except ValidationError as error:
            mode = GroupMode.PRIORITY
            findings.extend(error.findings)
        if findings:
            raise ValidationError(findings)
        self._max_parallel = max_parallel
        self._groups = mode
        self._entries: dict[str, StartEntry] = {}
        self._limits: dict[str, int] = {}

    @property
    def max_parallel(self) -> int | None:
        return self._max_parallel

    @property
    def groups(self) -> GroupMode:
        return self._groups

    @property
    def vms(self) -> tuple[str, ...]:
        """The VMs in the order they were added."""
        return tuple(self._entries)

    @property
    def limits(self) -> Mapping[str, int]:
        """Resource name -> capacity (a copy)."""
        return dict(self._limits)

    def entry(self, name: str) -> StartEntry:
        """The frozen entry of VM ``name``; NotFoundError if it was never added."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise NotFoundError(f"VM {name!r} is not in the start order") from None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[StartEntry]:
        return iter(self._entries.values())

    def __repr__(self) -> str:
        return (
            f"StartOrder({len(self._entries)} VMs, max_parallel={self._max_parallel!r}, "
            f"groups={self._groups.value!r}, limits={self._limits!r})"
        )

    def add(
        self,
        vm: str,
        after: Iterable[str] | str = (),
        group: int | None = None,
        probe: Probe | None = None,
        timeout: float | None = None,
        on_failure: FailurePolicy | str = FailurePolicy.SKIP_DEPENDENTS,
        resources: Iterable[str] | str = (),
    ) -> StartEntry:
        """Add VM ``vm``, which starts once every VM in ``after`` is ready.

        ``timeout`` (seconds, > 0) bounds start-to-ready; ``resources`` are limited resources the
        start holds one unit of until the VM is ready or has failed. Every problem with the
        arguments is reported at once in one ValidationError naming the VM.
        """
        if not isinstance(vm, str) or not vm.strip():
            raise ValidationError.of(
                "StartOrder.add", f"a VM name must be a non-empty string, got {vm!r}"
            )
        item = f"VM {vm!r}"
        if vm in self._entries:
            raise ValidationError.of(
                item,
                "is already in the start order",
                "add each VM once, with all its dependencies in one after=",
            )
        findings: list[Finding] = []
        after_names = _names(after, "after", item, findings)
        resource_names = _names(resources, "resources", item, findings)
        if group is not None and not _positive_int(group):
            findings.append(
                Finding(item, f"group must be a whole number >= 1 or None, got {group!r}")
            )
        if probe is not None and not isinstance(probe, PROBE_TYPES):
            findings.append(
                Finding(
                    item,
                    f"probe must be a readiness probe, got {probe!r}",
                    hint="use PoweredOn(), ToolsHeartbeat(), IPAssigned(), TCPPort(port), "
                    "HTTPStatus(url) or CallableProbe(fn)",
                )
            )
        if timeout is not None and not _positive_number(timeout):
            findings.append(
                Finding(
                    item,
                    f"timeout must be a number of seconds > 0, got {timeout!r}",
                    hint="leave it out for no start-to-ready limit",
                )
            )
        try:
            policy = as_enum(FailurePolicy, on_failure, item, field="on_failure")
        except ValidationError as error:
            policy = FailurePolicy.SKIP_DEPENDENTS
            findings.extend(error.findings)
        if findings:
            raise ValidationError(findings)
        entry = StartEntry(
            name=vm,
            after=after_names,
            group=group,
            probe=probe,
            timeout=None if timeout is None else float(timeout),
            on_failure=policy,
            resources=resource_names,
        )
        self._entries[vm] = entry
        return entry

    def limit(self, resource: str, capacity: int) -> None:
        """Let at most ``capacity`` (>= 1) starting VMs hold ``resource`` at once.

        Setting a limit again replaces it.
        """
        if not isinstance(resource, str) or not resource.strip():
            raise ValidationError.of(
                "StartOrder.limit", f"a resource name must be a non-empty string, got {resource!r}"
            )
        if not _positive_int(capacity):
            raise ValidationError.of(
                f"resource {resource!r}",
                f"capacity must be a whole number >= 1, got {capacity!r}",
                "a resource nothing may use should not be named by any VM",
            )
        self._limits[resource] = capacity

    def validate(self) -> list[Finding]:
        """Every graph-wide problem, blocking ones (``severity == "error"``) and warnings.

        Reports: VMs in ``after`` that were never added; dependency cycles, each naming every VM
        of the cycle in order (each waits for the next); with barrier groups, a VM waiting for a VM
        of a later group (neither could ever start); resources used without a capacity. With
        priority groups, a VM waiting for a later group is only a warning: the dependency wins.
        """
        return _analyse(self).findings

    def compile(
        self, *, weights: Mapping[str, float] | None = None, workers: int | None = None
    ) -> CompiledOrder:
        """Check the order and compile it for stepping; ValidationError if it cannot run.

        ``weights`` maps VMs to their expected start-to-ready seconds; they only sharpen the
        critical-path priority (1 per VM otherwise). ``workers`` is how many VMs the driver can
        start at once (the runner's worker threads): a limit that exists must be one the
        sequencer knows, or VMs would queue for a thread first come, first served instead of
        critical path first. The compiled order enforces the smaller of ``workers`` and
        :attr:`max_parallel`. Changing this order later does not change the compiled one.
        """
        return _compile(self, weights, workers)


def _group_ranks(entries: list[StartEntry]) -> list[int]:
    """Per VM, the dense rank of its group (numbered groups ascending, then no group)."""
    numbered = sorted({e.group for e in entries if e.group is not None})
    rank_of: dict[int | None, int] = {group: index for index, group in enumerate(numbered)}
    rank_of[None] = len(numbered)
    return [rank_of[e.group] for e in entries]


@attrs.frozen(eq=False)
class _Graph:
    """A start order's graph by position, with every finding about it (one pass, shared)."""

    names: tuple[str, ...]
    index: dict[str, int]
    deps: list[tuple[int, ...]]
    dependents: list[list[int]]
    topological: list[int]
    rank: list[int]
    findings: list[Finding]


def _group_finding(order: StartOrder, entry: StartEntry, dep: StartEntry) -> Finding:
    item = f"VM {entry.name!r}"
    mine, theirs = _group_label(entry.group), _group_label(dep.group)
    if order.groups is GroupMode.BARRIER:
        return Finding(
            item,
            f"is in {mine} but waits for {dep.name!r} in {theirs}, which only starts after "
            f"{mine} is done: neither can ever start",
            hint=f"move {dep.name!r} to an earlier group, {entry.name!r} to a later one, "
            "or use groups='priority'",
        )
    return Finding(
        item,
        f"is in {mine} but waits for {dep.name!r} in {theirs}; the dependency wins over the group",
        Severity.WARNING,
        hint="put dependencies in the same or an earlier group",
    )


def _analyse(order: StartOrder) -> _Graph:
    """Index the order, find unknown names, contradicting groups, cycles and unlimited resources.

    Linear in VMs plus dependencies; the cycle search only runs on what a topological sort could
    not place.
    """
    entries = list(order)
    names = order.vms
    index = {name: position for position, name in enumerate(names)}
    rank = _group_ranks(entries)
    findings: list[Finding] = []
    deps: list[tuple[int, ...]] = []
    dependents: list[list[int]] = [[] for _ in names]
    lookup = index.get
    for position, entry in enumerate(entries):
        found = tuple(map(lookup, entry.after))
        if None in found:
            for dep_name, dep_position in zip(entry.after, found, strict=True):
                if dep_position is None:
                    findings.append(
                        Finding(
                            f"VM {entry.name!r}",
                            f"waits for {dep_name!r}, which is not in the start order",
                            hint=f"add {dep_name!r} to the order or remove it from after",
                        )
                    )
        known = tuple(dep for dep in found if dep is not None)
        own_rank = rank[position]
        for dep in known:
            dependents[dep].append(position)
            if rank[dep] > own_rank:
                findings.append(_group_finding(order, entry, entries[dep]))
        deps.append(known)
    # Kahn's algorithm places everything that is not on or behind a cycle.
    remaining = [len(needed) for needed in deps]
    topological = [position for position, count in enumerate(remaining) if count == 0]
    for position in topological:
        for waiter in dependents[position]:
            remaining[waiter] -= 1
            if remaining[waiter] == 0:
                topological.append(waiter)
    if len(topological) < len(names):
        left = [position for position, count in enumerate(remaining) if count > 0]
        waits_for = {names[p]: [names[dep] for dep in deps[p]] for p in left}
        findings.extend(_cycle_findings([names[p] for p in left], waits_for))
    limits = order.limits
    users: dict[str, list[str]] = {}
    for entry in entries:
        for resource in entry.resources:
            if resource not in limits:
                users.setdefault(resource, []).append(entry.name)
    for resource, user_names in users.items():
        findings.append(
            Finding(
                f"resource {resource!r}",
                f"is used by VM {_listing(user_names)} but has no capacity",
                hint=f"set one with order.limit({resource!r}, n)",
            )
        )
    return _Graph(names, index, deps, dependents, topological, rank, findings)


def _cycle_findings(left: list[str], waits_for: Mapping[str, list[str]]) -> list[Finding]:
    """One finding per strongly connected tangle of VMs, naming one cycle through it in order.

    ``left`` are the VMs a topological sort could not place: on a cycle or behind one.
    """
    findings = []
    for component in _strong_components(left, waits_for):
        members = set(component)
        if len(component) == 1 and component[0] not in waits_for[component[0]]:
            continue
        if len(component) == 1:
            findings.append(
                Finding(
                    f"VM {component[0]!r}",
                    "waits for itself, so it can never start",
                    hint="remove it from its own after",
                )
            )
            continue
        cycle = _one_cycle(component[0], members, waits_for)
        ring = " -> ".join(repr(name) for name in [*cycle, cycle[0]])
        message = "form a dependency cycle (each waits for the next), so none of them can start"
        if len(members) > len(cycle):
            others = sorted(members - set(cycle))
            message += f"; tangled with {_listing(others)}"
        findings.append(Finding(f"VMs {ring}", message, hint="remove one of these dependencies"))
    return findings


def _strong_components(nodes: list[str], edges: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iterative (orders can hold 100,000 VMs)."""
    inside = set(nodes)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter(edges[root])))
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in inside:
                    continue
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(edges[succ])))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                order = {name: position for position, name in enumerate(nodes)}
                component.sort(key=order.__getitem__)
                components.append(component)
    return components


def _one_cycle(start: str, members: set[str], edges: Mapping[str, list[str]]) -> list[str]:
    """The shortest cycle through ``start`` inside ``members``, in wait-for order."""
    parent: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        node = queue.popleft()
        for succ in edges[node]:
            if succ not in members:
                continue
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                path.reverse()
                return path
            if succ not in seen:
                seen.add(succ)
                parent[succ] = node
                queue.append(succ)
    return [start]  # pragma: no cover - a strong component always has a cycle through start


@attrs.frozen(eq=False, repr=False)
class CompiledOrder:
    """A :class:`StartOrder` compiled once for stepping: checked, indexed and prioritised.

    Built by :meth:`StartOrder.compile`, which refuses an order that cannot run. Every VM has a
    *position*, its index in :attr:`names` (the order VMs were added); all per-VM tuples here are
    indexed by it. Compiling is linear in VMs plus dependencies plus one sort; a
    :class:`Sequencer` over a compiled order only copies a few lists, so a driver that walks the
    same order many times (the simulator's Monte Carlo runs) compiles once.

    ``max_parallel`` is the overall limit the sequencer enforces: the smaller of the order's own
    ``max_parallel`` and the driver's ``workers`` (None when neither limits). ``priority`` is
    each VM's critical-path priority, its longest remaining path to the end of the graph under
    the weights given (1 per VM without weights). ``best_first`` is the order the sequencer
    prefers VMs in when several may start: earlier group, then longer remaining path, then the
    order they were added.
    """

    order: StartOrder
    names: tuple[str, ...]
    index: Mapping[str, int]
    deps: tuple[tuple[int, ...], ...]
    dependents: tuple[tuple[int, ...], ...]
    topological: tuple[int, ...]
    policy: tuple[FailurePolicy, ...]
    timeout: tuple[float | None, ...]
    resource_names: tuple[str, ...]
    capacity: tuple[int, ...]
    uses: tuple[tuple[int, ...], ...]
    priority: tuple[float, ...]
    max_parallel: int | None
    workers: int | None
    warnings: tuple[Finding, ...]
    # What only the sequencer reads: group ranks, heap keys and the best-first permutation.
    _indegree: tuple[int, ...]
    _rank: tuple[int, ...]
    _rank_sizes: tuple[int, ...]
    _barrier: bool
    _key: tuple[int, ...]
    _by_key: tuple[int, ...]
    _stride: int

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return (
            f"CompiledOrder({len(self.names)} VMs, max_parallel={self.max_parallel!r}, "
            f"workers={self.workers!r}, resources={len(self.resource_names)})"
        )

    @property
    def best_first(self) -> tuple[str, ...]:
        """Every VM, in the order the sequencer prefers them when a limit forces a choice."""
        names = self.names
        return tuple(names[position] for position in self._by_key)


def _weights(index: Mapping[str, int], weights: Mapping[str, float] | None) -> list[float]:
    """Per position the VM's weight (1 when not given); every bad weight reported at once."""
    weight = [1.0] * len(index)
    if weights is None:
        return weight
    if not isinstance(weights, Mapping):
        raise ValidationError.of("weights", f"must map VM names to seconds >= 0, got {weights!r}")
    bad: list[Finding] = []
    for name, value in weights.items():
        position = index.get(name) if isinstance(name, str) else None
        if position is None:
            bad.append(Finding(f"weight for {name!r}", "names a VM not in the start order"))
        elif not is_finite_number(value) or value < 0:
            bad.append(Finding(f"weight for {name!r}", f"must be a number >= 0, got {value!r}"))
        else:
            weight[position] = float(value)
    if bad:
        raise ValidationError(bad)
    return weight


def _compile(
    order: StartOrder, weights: Mapping[str, float] | None, workers: int | None
) -> CompiledOrder:
    if workers is not None and not _positive_int(workers):
        raise ValidationError.of(
            "workers",
            f"must be a whole number >= 1 or None, got {workers!r}",
            "it is how many VMs the driver can start at once, for example Runner.max_parallel",
        )
    graph = _analyse(order)
    blocking = [finding for finding in graph.findings if finding.blocking]
    if blocking:
        raise ValidationError(blocking)
    entries = list(order)
    names = graph.names
    weight = _weights(graph.index, weights)
    deps = tuple(graph.deps)
    frozen_dependents = tuple(map(tuple, graph.dependents))
    topological = tuple(graph.topological)
    priority = _critical_path_priorities(topological, frozen_dependents, weight)
    rank = tuple(graph.rank)
    rank_sizes = [0] * (max(rank, default=-1) + 1)
    for value in rank:
        rank_sizes[value] += 1
    limits = order.limits
    resource_names = tuple(limits)
    resource_index = {name: position for position, name in enumerate(resource_names)}
    no_resources: tuple[int, ...] = ()
    uses = tuple(
        tuple(resource_index[r] for r in entry.resources) if entry.resources else no_resources
        for entry in entries
    )
    key, by_key = _heap_keys(rank, priority)
    limit = order.max_parallel
    if workers is not None and (limit is None or workers < limit):
        limit = workers
    return CompiledOrder(
        order=order,
        names=names,
        index=graph.index,
        deps=deps,
        dependents=frozen_dependents,
        topological=topological,
        policy=tuple(entry.on_failure for entry in entries),
        timeout=tuple(entry.timeout for entry in entries),
        resource_names=resource_names,
        capacity=tuple(limits[name] for name in resource_names),
        uses=uses,
        priority=priority,
        max_parallel=limit,
        workers=workers,
        warnings=tuple(finding for finding in graph.findings if not finding.blocking),
        indegree=tuple(map(len, deps)),
        rank=rank,
        rank_sizes=tuple(rank_sizes),
        barrier=order.groups is GroupMode.BARRIER,
        key=key,
        by_key=by_key,
        stride=len(resource_names) + 1,
    )


def _critical_path_priorities(
    topological: Iterable[int], dependents: tuple[tuple[int, ...], ...], weight: list[float]
) -> tuple[float, ...]:
    """Longest remaining path (own weight included) from each VM to the end of the graph."""
    priority = [0.0] * len(weight)
    for position in reversed(list(topological)):
        tail = 0.0
        for waiter in dependents[position]:
            if priority[waiter] > tail:
                tail = priority[waiter]
        priority[position] = weight[position] + tail
    return tuple(priority)


def _heap_keys(
    rank: tuple[int, ...], priority: tuple[float, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Each VM's place in best-first order, and the VM at each place.

    Best first: earlier group, then longer remaining path, then the order VMs were added. Ranking
    once lets the heaps hold plain integers instead of tuples.
    """
    by_key = sorted(range(len(rank)), key=lambda position: (rank[position], -priority[position]))
    key = [0] * len(rank)
    for place, position in enumerate(by_key):
        key[position] = place
    return tuple(key), tuple(by_key)


_PENDING = VMState.PENDING
_STARTING = VMState.STARTING
_NO_MARKER = -1


class Sequencer:
    """Walks one start order: told what happened, answers what may start.

    ``Sequencer(order)`` compiles ``order`` (a :class:`StartOrder`) with ``weights`` and
    ``workers`` as :meth:`StartOrder.compile` does, raising ValidationError (the blocking
    findings of ``order.validate()``) if it cannot run; ``Sequencer(compiled)`` starts a fresh
    walk of an already :class:`CompiledOrder` at the cost of a few list copies. Validation
    warnings are in :attr:`warnings`.

    Two ways to speak to it, one machine underneath. By name, for drivers that deal in VMs (the
    runner): :meth:`take_startable`, :meth:`mark_ready`, :meth:`mark_failed`,
    :meth:`mark_timed_out`. By position (an index into :attr:`CompiledOrder.names`), for drivers
    that step many VMs or many runs and should not pay for name lookups (the simulator):
    :meth:`take_startable_positions`, :meth:`mark_ready_at`, :meth:`mark_failed_at`,
    :meth:`mark_timed_out_at`, :meth:`state_at`. Both check every event against
    :data:`TRANSITIONS` and raise ConflictError for an illegal one.

    Promises, whatever the sequence of events: no VM starts before every VM in its ``after`` is
    ready (or has failed under ``continue``); with barrier groups no VM starts before every VM of
    the earlier groups is final; no resource and no overall limit (the order's ``max_parallel``
    or the driver's ``workers``) is ever exceeded; and after :meth:`take_startable` returns,
    nothing that could start has been left waiting.
    """

    def __init__(
        self,
        order: StartOrder | CompiledOrder,
        *,
        weights: Mapping[str, float] | None = None,
        workers: int | None = None,
    ) -> None:
        if isinstance(order, CompiledOrder):
            if weights is not None or workers is not None:
                raise ValidationError.of(
                    "Sequencer",
                    "weights and workers belong to compiling; a compiled order already has them",
                    "compile the order again: order.compile(weights=..., workers=...)",
                )
            compiled = order
        elif isinstance(order, StartOrder):
            compiled = _compile(order, weights, workers)
        else:
            raise ValidationError.of(
                "Sequencer", f"needs a StartOrder or a CompiledOrder, got {order!r}"
            )
        self._compiled = compiled
        count = len(compiled.names)
        self._states: list[VMState] = [_PENDING] * count
        self._indegree = list(compiled._indegree)
        self._reasons: dict[int, str] = {}
        self._failed_deps: dict[int, list[int]] = {}
        self._warnings: list[Finding] = list(compiled.warnings)
        self._running: set[int] = set()
        self._pending = count
        self._stopped = False
        # Heap items are ints: a VM's best-first place times ``stride``, plus 1 + the resource
        # whose freed unit the item stands for (0: the VM itself is eligible).
        self._heap: list[int] = []
        self._parked: list[list[int]] = [[] for _ in compiled.capacity]
        self._marked = [False] * len(compiled.capacity)
        self._used = [0] * len(compiled.capacity)
        self._rank_left = list(compiled._rank_sizes)
        self._open_rank = 0
        self._held: list[list[int]] = [[] for _ in compiled._rank_sizes]
        for position in range(count):
            if compiled._indegree[position] == 0:
                self._eligible(position)

    # -- queries ---------------------------------------------------------------------------

    @property
    def compiled(self) -> CompiledOrder:
        """The compiled order this sequencer walks (positions index its ``names``)."""
        return self._compiled

    @property
    def order(self) -> StartOrder:
        return self._compiled.order

    @property
    def finished(self) -> bool:
        """Nothing is starting and nothing more can ever start."""
        return not self._running and self._pending == 0

    @property
    def warnings(self) -> list[Finding]:
        """Warnings so far: validation warnings, dependents started despite a failure, ..."""
        return list(self._warnings)

    @property
    def starting(self) -> tuple[str, ...]:
        """The VMs started and not yet ready, failed or timed out."""
        names = self._compiled.names
        return tuple(names[position] for position in sorted(self._running))

    @property
    def states(self) -> dict[str, VMState]:
        """Every VM's state, in the order's order."""
        return dict(zip(self._compiled.names, self._states, strict=True))

    def state(self, name: str) -> VMState:
        return self._states[self._lookup(name)]

    def state_at(self, position: int) -> VMState:
        """The state of the VM at ``position``; NotFoundError for a position outside the order."""
        if type(position) is not int or not 0 <= position < len(self._states):
            raise NotFoundError(
                f"position {position!r} is not in the start order of {len(self._states)} VMs"
            )
        return self._states[position]

    def reason(self, name: str) -> str | None:
        """Why a VM is FAILED, TIMED_OUT, SKIPPED or CANCELLED; None otherwise."""
        return self._reasons.get(self._lookup(name))

    def priority(self, name: str) -> float:
        """The VM's critical-path priority: its longest remaining path to the end of the graph."""
        return self._compiled.priority[self._lookup(name)]

    def in_use(self, resource: str) -> int:
        """How many starting VMs hold ``resource`` now."""
        try:
            position = self._compiled.resource_names.index(resource)
        except ValueError:
            raise NotFoundError(f"resource {resource!r} has no limit in the start order") from None
        return self._used[position]

    def _lookup(self, name: str) -> int:
        try:
            return self._compiled.index[name]
        except (KeyError, TypeError):
            raise NotFoundError(f"VM {name!r} is not in the start order") from None

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for state in self._states:
            counts[state.value] = counts.get(state.value, 0) + 1
        return f"Sequencer({counts}, finished={self.finished})"

    # -- events by name --------------------------------------------------------------------

    def take_startable(self) -> list[str]:
        """The VMs that may start now, best first; each moves to STARTING.

        A started VM holds a parallel slot and one unit of each of its resources until it is
        marked ready, failed or timed out. Call this again after every event.
        """
        names = self._compiled.names
        return [names[position] for position in self.take_startable_positions()]

    def mark_ready(self, name: str) -> None:
        """VM ``name`` passed its readiness probe; VMs waiting only for it may start."""
        self._ready(self._event_target(name, Event.READY))

    def mark_failed(self, name: str, reason: str = "") -> None:
        """VM ``name`` failed to start; its failure policy decides what happens to the rest."""
        self._fail(self._event_target(name, Event.FAIL), Event.FAIL, str(reason))

    def mark_timed_out(self, name: str) -> None:
        """VM ``name`` was not ready within its timeout: a failure whose reason is the timeout."""
        self._fail(self._event_target(name, Event.TIME_OUT), Event.TIME_OUT, "")

    def cancel(self) -> None:
        """Start nothing new; every pending VM ends CANCELLED. Starting VMs still report back."""
        self._stop("cancelled: the run was cancelled")

    def withdraw(self, name: str, reason: str = "") -> None:
        """VM ``name`` was handed out but its driver did not start it after all (the run was
        cancelled in between): it ends CANCELLED, untouched, and frees what it held. Its
        failure policy does not apply: it did not fail."""
        position = self._event_target(name, Event.WITHDRAW)
        self._move(position, Event.WITHDRAW)
        self._reasons[position] = reason or "cancelled: the run was cancelled before it started"
        self._release(position)
        self._settled(position)
        self._stop("cancelled: the run was cancelled")

    def _event_target(self, name: str, event: Event) -> int:
        try:
            position = self._compiled.index[name]
        except (KeyError, TypeError):
            raise ConflictError(
                f"cannot {event.value} VM {name!r}: it is not in the start order"
            ) from None
        state = self._states[position]
        if event not in TRANSITIONS[state]:
            raise ConflictError(f"cannot {event.value} VM {name!r}: it is {in_words(state)}")
        return position

    # -- the same events by position -------------------------------------------------------

    def take_startable_positions(self) -> list[int]:
        """:meth:`take_startable`, answering positions instead of names (best first).

        The whole run's cost stays O((V + E) log V): each call costs what it starts plus the
        heap operations of VMs that became eligible or resources that freed a unit.
        """
        if self._stopped:
            return []
        return self._take()

    def mark_ready_at(self, position: int) -> None:
        """:meth:`mark_ready` for the VM at ``position``."""
        if type(position) is not int or not 0 <= position < len(self._states):
            self._refuse_position(position, Event.READY)
        self._ready(position)  # its first step checks the transition table

    def mark_failed_at(self, position: int, reason: str = "") -> None:
        """:meth:`mark_failed` for the VM at ``position``."""
        if type(position) is not int or not 0 <= position < len(self._states):
            self._refuse_position(position, Event.FAIL)
        self._fail(position, Event.FAIL, str(reason))

    def mark_timed_out_at(self, position: int) -> None:
        """:meth:`mark_timed_out` for the VM at ``position``."""
        if type(position) is not int or not 0 <= position < len(self._states):
            self._refuse_position(position, Event.TIME_OUT)
        self._fail(position, Event.TIME_OUT, "")

    def _refuse_position(self, position: object, event: Event) -> NoReturn:
        raise ConflictError(
            f"cannot {event.value} position {position!r}: the start order has "
            f"{len(self._states)} VMs (positions 0 to {len(self._states) - 1})"
        )

    # -- the machine -----------------------------------------------------------------------

    def _move(self, position: int, event: Event) -> None:
        """Apply ``event`` by the table; an event the table lacks changes nothing and raises."""
        state = self._states[position]
        try:
            self._states[position] = TRANSITIONS[state][event]
        except KeyError:
            name = self._compiled.names[position]
            raise ConflictError(
                f"cannot {event.value} VM {name!r}: it is {in_words(state)}"
            ) from None

    def _eligible(self, position: int) -> None:
        """Every dependency is settled: queue the VM, or hold it behind its barrier."""
        compiled = self._compiled
        rank = compiled._rank[position]
        if compiled._barrier and rank > self._open_rank:
            self._held[rank].append(position)
        else:
            heapq.heappush(self._heap, compiled._key[position] * compiled._stride)

    def _take(self) -> list[int]:
        compiled = self._compiled
        heap = self._heap
        parked = self._parked
        used = self._used
        capacity = compiled.capacity
        limit = compiled.max_parallel
        running = self._running
        stride = compiled._stride
        by_key = compiled._by_key
        started: list[int] = []
        while heap and (limit is None or len(running) < limit):
            place, slot = divmod(heapq.heappop(heap), stride)
            marker = slot - 1
            if marker != _NO_MARKER:
                # A resource freed a unit while VMs were parked on it: try its best one.
                self._marked[marker] = False
                if used[marker] >= capacity[marker] or not parked[marker]:
                    continue
                place = heapq.heappop(parked[marker])
            position = by_key[place]
            if self._states[position] is not _PENDING:
                continue
            blocked = _NO_MARKER
            for resource in compiled.uses[position]:
                if used[resource] >= capacity[resource]:
                    blocked = resource
                    break
            if blocked != _NO_MARKER:
                # Park it on a full resource; a release there will wake the best parked VM.
                heapq.heappush(parked[blocked], place)
            else:
                self._move(position, Event.START)
                self._pending -= 1
                running.add(position)
                for resource in compiled.uses[position]:
                    used[resource] += 1
                started.append(position)
                self._note_continued(position)
            if marker != _NO_MARKER:
                self._wake(marker)
        return started

    def _wake(self, resource: int) -> None:
        """Keep the promise: a resource with a free unit and parked VMs has a marker queued."""
        if (
            not self._marked[resource]
            and self._parked[resource]
            and self._used[resource] < self._compiled.capacity[resource]
        ):
            self._marked[resource] = True
            best = self._parked[resource][0]
            heapq.heappush(self._heap, best * self._compiled._stride + resource + 1)

    def _note_continued(self, position: int) -> None:
        failed = self._failed_deps.pop(position, None)
        if failed:
            names = self._compiled.names
            which = ", ".join(repr(names[dep]) for dep in failed)
            self._warnings.append(
                Finding(
                    f"VM {names[position]!r}",
                    f"started although {which} failed (on_failure='continue')",
                    Severity.WARNING,
                )
            )

    def _release(self, position: int) -> None:
        self._running.discard(position)
        used = self._used
        for resource in self._compiled.uses[position]:
            used[resource] -= 1
            self._wake(resource)

    def _settled(self, position: int) -> None:
        """The VM is final: count it off its group and open the next barrier if this was last."""
        rank = self._compiled._rank[position]
        self._rank_left[rank] -= 1
        if self._compiled._barrier and rank == self._open_rank and self._rank_left[rank] == 0:
            self._open_next_barrier()

    def _open_next_barrier(self) -> None:
        left = self._rank_left
        while self._open_rank < len(left) and left[self._open_rank] == 0:
            self._open_rank += 1
            if self._open_rank < len(left):
                held = self._held[self._open_rank]
                self._held[self._open_rank] = []
                for position in held:
                    if self._states[position] is _PENDING:
                        heapq.heappush(
                            self._heap, self._compiled._key[position] * self._compiled._stride
                        )

    def _ready(self, position: int) -> None:
        self._move(position, Event.READY)
        self._release(position)
        self._settled(position)
        self._satisfy_dependents(position)

    def _satisfy_dependents(self, position: int) -> None:
        indegree = self._indegree
        states = self._states
        for waiter in self._compiled.dependents[position]:
            indegree[waiter] -= 1
            if indegree[waiter] == 0 and states[waiter] is _PENDING:
                self._eligible(waiter)

    def _fail(self, position: int, event: Event, reason: str) -> None:
        compiled = self._compiled
        name = compiled.names[position]
        if event is Event.TIME_OUT:
            limit = compiled.timeout[position]
            reason = "timed out" if limit is None else f"timed out after {limit:g} s"
            what = "timed out"
        else:
            reason = reason or "failed"
            what = "failed"
        self._move(position, event)
        self._reasons[position] = reason
        self._release(position)
        self._settled(position)
        policy = compiled.policy[position]
        if policy is FailurePolicy.ABORT:
            self._stop(f"cancelled: {name} {what} and its on_failure is 'abort'")
        elif policy is FailurePolicy.CONTINUE:
            for waiter in compiled.dependents[position]:
                if self._states[waiter] is _PENDING:
                    self._failed_deps.setdefault(waiter, []).append(position)
            self._satisfy_dependents(position)
        else:
            self._skip_dependents(position, what)

    def _skip_dependents(self, root: int, what: str) -> None:
        """Skip every pending VM that needs ``root``, directly or through other skipped VMs."""
        compiled = self._compiled
        names = compiled.names
        states = self._states
        root_name = names[root]
        queue = deque([root])
        while queue:
            position = queue.popleft()
            if position == root:
                reason = f"skipped: depends on {root_name}, which {what}"
            else:
                reason = (
                    f"skipped: depends on {names[position]}, skipped because {root_name} {what}"
                )
            for waiter in compiled.dependents[position]:
                if states[waiter] is not _PENDING:
                    continue
                self._move(waiter, Event.SKIP)
                self._pending -= 1
                self._failed_deps.pop(waiter, None)
                self._reasons[waiter] = reason
                self._settled(waiter)
                queue.append(waiter)

    def _stop(self, reason: str) -> None:
        if self._stopped:
            return
        self._stopped = True
        for position, state in enumerate(self._states):
            if state is _PENDING:
                self._move(position, Event.CANCEL)
                self._reasons[position] = reason
                self._settled(position)
        self._pending = 0
        self._heap.clear()
        for parked in self._parked:
            parked.clear()
