"""A failover cluster and the rules its host failover follows.

A failover cluster (a vSphere HA cluster, a Hyper-V failover cluster) protects against losing a
host: the VMs' files live on shared datastores, so when a host dies its VMs restart on the hosts
that survive. :class:`Cluster` names the hosts; :class:`ClusterPolicy` says how much capacity to
hold back for that (admission control), which VMs must never share a host (anti-affinity), which
must stay together (affinity), who restarts first (restart priority) and what a host cut off from
the management network should do with its VMs (isolation response).

Both are plain frozen values, checked when they are built: a bad value raises a
:class:`~vmfailover.errors.ValidationError` naming the field, the rule set and the VM.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import attrs

from vmfailover.errors import Finding, NotFoundError, ValidationError
from vmfailover.model import VM, Host, Inventory, as_instance, as_name, is_finite_number

__all__ = [
    "AdmissionControl",
    "Cluster",
    "ClusterPolicy",
    "IsolationResponse",
    "RestartPriority",
]


class AdmissionControl(enum.StrEnum):
    """How the cluster keeps room for host failures.

    ``capacity``: the CPU and memory of the running VMs must fit on the hosts left after losing
    the ``reserve_hosts`` largest ones (vSphere's "cluster resource percentage", computed from
    the failures to tolerate). ``slots``: vSphere's slot policy: a slot is as large as the
    largest running VM (vCPUs and memory), and the hosts left after losing the ``reserve_hosts``
    with the most slots must hold a slot for every running VM. ``none``: nothing is held back.
    """

    CAPACITY = "capacity"
    SLOTS = "slots"
    NONE = "none"


class RestartPriority(enum.StrEnum):
    """Who gets capacity first when the survivors cannot restart everything.

    vSphere HA's levels; Hyper-V's ``High``/``Medium``/``Low``/``No Auto Start`` map onto
    ``high``, ``medium``, ``low`` and ``disabled``. ``disabled`` VMs are never restarted.
    """

    HIGHEST = "highest"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    LOWEST = "lowest"
    DISABLED = "disabled"

    @property
    def rank(self) -> int:
        """Higher restarts first; ``disabled`` is 0."""
        return _RANKS[self]


_RANKS: Mapping[RestartPriority, int] = {
    RestartPriority.HIGHEST: 5,
    RestartPriority.HIGH: 4,
    RestartPriority.MEDIUM: 3,
    RestartPriority.LOW: 2,
    RestartPriority.LOWEST: 1,
    RestartPriority.DISABLED: 0,
}


class IsolationResponse(enum.StrEnum):
    """What a host cut off from the management network does with its VMs.

    ``leave_powered_on``: keep them running (the safe default when a witness can tell a partition
    from a failure). ``shutdown`` / ``power_off``: stop them so that the survivors may restart
    them (vSphere HA's isolation responses), once a witness sees them powered off
    (:func:`~vmfailover.policy.isolation.isolation_restarts`).
    """

    LEAVE_POWERED_ON = "leave_powered_on"
    SHUTDOWN = "shutdown"
    POWER_OFF = "power_off"


# --- converters: each names the field it checks -------------------------------------------------


_E = TypeVar("_E", bound=enum.StrEnum)


def _to_choice(enum_type: type[_E], field: str, value: object) -> _E:
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        try:
            return enum_type(value.strip().lower())
        except ValueError:
            pass
    allowed = ", ".join(repr(member.value) for member in enum_type)
    raise ValidationError.of(f"ClusterPolicy {field}", f"{value!r} is not one of {allowed}")


def _admission(value: object) -> AdmissionControl:
    return _to_choice(AdmissionControl, "admission", value)


def _default_priority(value: object) -> RestartPriority:
    return _to_choice(RestartPriority, "default_priority", value)


def _isolation_response(value: object) -> IsolationResponse:
    return _to_choice(IsolationResponse, "isolation_response", value)


def _reserve_hosts(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError.of(
            "ClusterPolicy reserve_hosts",
            f"must be a whole number of hosts >= 0, got {value!r}",
            "1 tolerates one host failure (N+1)",
        )
    return value


def _vcpus_per_core(value: object) -> float:
    if not is_finite_number(value) or value <= 0:
        raise ValidationError.of(
            "ClusterPolicy vcpus_per_core",
            f"must be a finite number > 0, got {value!r}",
            "1 means no CPU overcommitment; 4 allows four vCPUs per physical core",
        )
    return float(value)


def _vm_sets(field: str, value: object) -> tuple[frozenset[str], ...]:
    """A list of VM sets -> a tuple of frozensets; each set names at least two VMs."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError.of(
            f"ClusterPolicy {field}",
            f"must be a list of VM sets, got {value!r}",
            f'write {field}=[{{"dc01", "dc02"}}]',
        )
    findings: list[Finding] = []
    sets: list[frozenset[str]] = []
    for position, members in enumerate(value, start=1):
        item = f"ClusterPolicy {field} set {position}"
        if isinstance(members, str | bytes) or not isinstance(members, Iterable):
            findings.append(
                Finding(
                    item,
                    f"must be a set of VM names, got {members!r}",
                    hint=f'write {{"{members}", "..."}}' if isinstance(members, str) else None,
                )
            )
            continue
        names: set[str] = set()
        for member in members:
            if not isinstance(member, str) or not member.strip():
                findings.append(
                    Finding(item, f"VM names must be non-empty strings, got {member!r}")
                )
            else:
                names.add(member)
        if len(names) < 2 and not any(f.item == item for f in findings):
            findings.append(
                Finding(
                    item,
                    f"names {len(names)} VM{'s' if len(names) != 1 else ''}: a rule needs two",
                )
            )
        sets.append(frozenset(names))
    if findings:
        raise ValidationError(findings)
    return tuple(sets)


def _anti_affinity(value: object) -> tuple[frozenset[str], ...]:
    return _vm_sets("anti_affinity", value)


def _affinity(value: object) -> tuple[frozenset[str], ...]:
    return _vm_sets("affinity", value)


def _priorities(value: object) -> tuple[tuple[str, RestartPriority], ...]:
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        value = dict(value)  # the stored form, as attrs.evolve passes it back
    if not isinstance(value, Mapping):
        raise ValidationError.of(
            "ClusterPolicy restart_priority",
            f"must map VM names to priorities, got {value!r}",
            'write restart_priority={"db01": "high"}',
        )
    findings: list[Finding] = []
    pairs: list[tuple[str, RestartPriority]] = []
    for vm, priority in value.items():
        if not isinstance(vm, str) or not vm.strip():
            findings.append(
                Finding(
                    "ClusterPolicy restart_priority",
                    f"keys must be VM names or ids, got {vm!r}",
                )
            )
            continue
        try:
            pairs.append((vm, _to_choice(RestartPriority, "restart_priority", priority)))
        except ValidationError:
            allowed = ", ".join(repr(member.value) for member in RestartPriority)
            findings.append(
                Finding(
                    f"ClusterPolicy restart_priority of VM {vm!r}",
                    f"{priority!r} is not one of {allowed}",
                )
            )
    if findings:
        raise ValidationError(findings)
    return tuple(sorted(pairs))


@attrs.frozen
class ClusterPolicy:
    """How a cluster fails over the VMs of a failed host.

    ``anti_affinity`` and ``affinity`` are lists of VM sets (names or ids): the members of an
    anti-affinity set never share a host (the VMs already running included); the members of an
    affinity set always run on one host. Both are hard rules: a VM that cannot be placed without
    breaking one is reported, not placed. ``restart_priority`` maps VMs to a
    :class:`RestartPriority` (others get ``default_priority``); it is kept as sorted
    ``(VM, priority)`` pairs so that the policy stays hashable. ``vcpus_per_core`` is how far CPU
    may be overcommitted (1: a vCPU needs a physical core). ``isolation_response`` is what a host
    cut off from the management network does with its VMs: with ``power_off`` or ``shutdown``,
    a :class:`~vmfailover.engine.host_monitor.HostMonitor` restarts on the survivors the VMs its
    witness sees that host has stopped, and only those; with ``leave_powered_on`` nothing of a
    partitioned host is restarted.
    """

    admission: AdmissionControl = attrs.field(
        default=AdmissionControl.CAPACITY, converter=_admission
    )
    reserve_hosts: int = attrs.field(default=1, converter=_reserve_hosts)
    anti_affinity: tuple[frozenset[str], ...] = attrs.field(default=(), converter=_anti_affinity)
    affinity: tuple[frozenset[str], ...] = attrs.field(default=(), converter=_affinity)
    restart_priority: tuple[tuple[str, RestartPriority], ...] = attrs.field(
        factory=dict, converter=_priorities
    )
    default_priority: RestartPriority = attrs.field(
        default=RestartPriority.MEDIUM, converter=_default_priority
    )
    isolation_response: IsolationResponse = attrs.field(
        default=IsolationResponse.LEAVE_POWERED_ON,
        converter=_isolation_response,
    )
    vcpus_per_core: float = attrs.field(default=1.0, converter=_vcpus_per_core)
    _priority_table: dict[str, RestartPriority] = attrs.field(
        init=False, eq=False, hash=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_priority_table", dict(self.restart_priority))
        findings: list[Finding] = []
        for position, together in enumerate(self.affinity, start=1):
            for other, apart in enumerate(self.anti_affinity, start=1):
                both = sorted(together & apart)
                if len(both) >= 2:
                    findings.append(
                        Finding(
                            f"ClusterPolicy affinity set {position}",
                            f"keeps {', '.join(repr(n) for n in both)} together, but "
                            f"anti_affinity set {other} keeps them apart",
                            hint="remove them from one of the two rules",
                        )
                    )
        if findings:
            raise ValidationError(findings)

    def priority_of(self, vm: VM) -> RestartPriority:
        """The VM's restart priority (by id, then by name, else the default)."""
        vm = as_instance(vm, VM, "priority_of")
        table = self._priority_table
        return table.get(vm.id) or table.get(vm.name) or self.default_priority

    def cpu_capacity(self, host: Host) -> float:
        """How many vCPUs the host may run under this policy."""
        return as_instance(host, Host, "cpu_capacity").cpu_cores * self.vcpus_per_core


def _host_names(value: object) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError.of("Cluster hosts", f"must be a list of host names, got {value!r}")
    names: list[str] = []
    for name in value:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError.of(
                "Cluster hosts", f"host names must be non-empty strings, got {name!r}"
            )
        if name in names:
            raise ValidationError.of("Cluster hosts", f"names host {name!r} twice")
        names.append(name)
    return tuple(names)


def _cluster_name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.of("Cluster name", f"must be a non-empty string, got {value!r}")


@attrs.frozen
class Cluster:
    """A failover cluster: a name and the hosts that restart each other's VMs.

    :meth:`of` derives one from an inventory (the hosts whose ``Host.cluster`` is the name).
    """

    name: str = attrs.field(validator=_cluster_name)
    hosts: tuple[str, ...] = attrs.field(converter=_host_names)

    @classmethod
    def of(cls, inventory: Inventory, name: str) -> Cluster:
        """The cluster ``name`` of the inventory; NotFoundError if no host belongs to it."""
        inventory = as_instance(inventory, Inventory, "Cluster.of")
        name = as_name(name, "Cluster.of name")
        hosts = tuple(host.name for host in inventory.hosts if host.cluster == name)
        if not hosts:
            known = sorted({h.cluster for h in inventory.hosts if h.cluster is not None})
            listing = ", ".join(repr(c) for c in known) or "none"
            raise NotFoundError(f"no cluster {name!r} in the inventory (clusters: {listing})")
        return cls(name, hosts)

    @classmethod
    def all_of(cls, inventory: Inventory) -> tuple[Cluster, ...]:
        """Every cluster of the inventory, by name."""
        inventory = as_instance(inventory, Inventory, "Cluster.all_of")
        names = sorted({h.cluster for h in inventory.hosts if h.cluster is not None})
        return tuple(cls.of(inventory, name) for name in names)

    def members(self, inventory: Inventory) -> tuple[Host, ...]:
        """The cluster's hosts as the inventory has them; ValidationError naming missing ones."""
        inventory = as_instance(inventory, Inventory, f"cluster {self.name!r} members")
        missing = [name for name in self.hosts if name not in _host_table(inventory)]
        if missing:
            raise ValidationError(
                Finding(f"cluster {self.name!r}", f"host {name!r} is not in the inventory")
                for name in missing
            )
        return tuple(inventory.host(name) for name in self.hosts)

    def vms(self, inventory: Inventory) -> tuple[VM, ...]:
        """The VMs registered on the cluster's hosts."""
        inventory = as_instance(inventory, Inventory, f"cluster {self.name!r} vms")
        hosts = set(self.hosts)
        return tuple(vm for vm in inventory.vms if vm.host in hosts)


def _host_table(inventory: Inventory) -> set[str]:
    return {host.name for host in inventory.hosts}
