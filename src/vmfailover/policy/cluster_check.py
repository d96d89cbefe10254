"""Is a failover cluster ready to lose a host? A pure check over an inventory snapshot.

:func:`check_cluster` reports, as findings in the terms an administrator knows, what would make a
host failover fail or go wrong:

- a datastore some hosts cannot reach (its VMs cannot restart there), a network missing on some
  hosts (same), both as errors when VMs use them;
- hosts of different CPU families or feature levels (VMs restart across them, but cannot move
  live, so moving them back needs a shutdown);
- admission control that cannot survive ``reserve_hosts`` failures at the current load (N+1
  math, per the policy's ``capacity`` or ``slots`` rule), and, placement by placement, the VMs
  that would not restart if a host (or ``reserve_hosts`` hosts) failed now;
- a single management network path or a single storage path (no redundancy);
- rules that cannot hold: an anti-affinity set larger than the hosts left after the tolerated
  failures, rules naming VMs the cluster does not have, rules broken right now.

Errors make a failover fail for some VMs; warnings make it slower or riskier. Nothing here reads a
clock or does I/O: give it an inventory (``backend.inventory()``) and it answers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from vmfailover._render import listing
from vmfailover.errors import Finding, Severity, ValidationError
from vmfailover.model import VM, Host, Inventory, PowerState
from vmfailover.policy.cluster import AdmissionControl, Cluster, ClusterPolicy, RestartPriority
from vmfailover.policy.placement import UnplacedReason, place

__all__ = ["FAILURE_SCENARIOS", "check_cluster"]

FAILURE_SCENARIOS = 256
"""At most this many host-failure combinations are placed one by one (every single host of a
cluster of up to 256, every pair of up to 23); beyond, the check places the loss of the
``reserve_hosts`` hosts carrying the most memory, the likely worst case for capacity. A check of
200 hosts running 8,500 VMs places 200 failures in about 4 s."""

WARNING = Severity.WARNING


def check_cluster(
    inventory: Inventory, cluster: Cluster, policy: ClusterPolicy | None = None
) -> list[Finding]:
    """Everything that makes a host failover of ``cluster`` unsafe; empty when nothing does.

    Each finding names the cluster, a host, a datastore, a network, a rule or a VM. Errors
    (``finding.blocking``) mean some VMs would not restart; warnings mean a riskier or slower
    failover. ``policy`` defaults to ``ClusterPolicy()`` (N+1, capacity admission).
    """
    _check_types(inventory, cluster, policy)
    policy = ClusterPolicy() if policy is None else policy
    hosts = cluster.members(inventory)
    vms = cluster.vms(inventory)
    label = f"cluster {cluster.name!r}"
    findings: list[Finding] = []
    findings += _size(label, hosts, policy)
    findings += _reach(label, hosts, vms)
    findings += _cpus(label, hosts)
    findings += _admission(label, hosts, vms, policy)
    findings += _failures(hosts, vms, policy)
    findings += _redundancy(hosts)
    findings += _rules(label, hosts, vms, policy)
    return findings


def _check_types(inventory: object, cluster: object, policy: object) -> None:
    findings: list[Finding] = []
    for what, value, kind in (
        ("inventory", inventory, Inventory),
        ("cluster", cluster, Cluster),
        ("policy", policy, ClusterPolicy | None),
    ):
        if not isinstance(value, kind):
            name = getattr(kind, "__name__", "ClusterPolicy")
            findings.append(Finding(f"check_cluster {what}", f"must be a {name}, got {value!r}"))
    if findings:
        raise ValidationError(findings)


def _datastores_of_host(host: Host) -> Sequence[str]:
    return host.datastores


def _networks_of_host(host: Host) -> Sequence[str]:
    return host.networks


def _datastores_of_vm(vm: VM) -> Sequence[str]:
    return () if vm.datastore is None else (vm.datastore,)


def _networks_of_vm(vm: VM) -> Sequence[str]:
    return tuple(nic.network for nic in vm.nics)


def _names(items: Iterable[str]) -> str:
    return listing(sorted(items))


def _running(vms: Iterable[VM]) -> list[VM]:
    return [vm for vm in vms if vm.power_state is PowerState.ON]


def _size(label: str, hosts: Sequence[Host], policy: ClusterPolicy) -> list[Finding]:
    findings: list[Finding] = []
    if len(hosts) < 2:
        findings.append(
            Finding(
                label,
                f"has {len(hosts)} host: there is no other host to restart its VMs on",
                hint="add hosts to the cluster",
            )
        )
    for host in hosts:
        if not host.available:
            findings.append(
                Finding(
                    f"host {host.name!r}",
                    f"is {host.connection.value} (power {host.power.value}): the cluster runs on "
                    f"{sum(h.available for h in hosts)} of {len(hosts)} hosts now",
                    WARNING,
                    hint="bring it back or remove it from the cluster",
                )
            )
    return findings


def _reach(label: str, hosts: Sequence[Host], vms: Sequence[VM]) -> list[Finding]:
    """Datastores and networks some hosts of the cluster lack."""
    findings: list[Finding] = []
    for what, has, needs in (
        ("datastore", _datastores_of_host, _datastores_of_vm),
        ("network", _networks_of_host, _networks_of_vm),
    ):
        users: dict[str, set[str]] = {}
        for vm in vms:
            for name in needs(vm):
                users.setdefault(name, set()).add(vm.name)
        known = {name for host in hosts for name in has(host)} | set(users)
        for name in sorted(known):
            lacking = [host.name for host in hosts if name not in has(host)]
            if not lacking:
                continue
            reaching = len(hosts) - len(lacking)
            verb = "reached by" if what == "datastore" else "present on"
            where = f"{verb} {reaching} of {len(hosts)} hosts (not on {_names(lacking)})"
            if name not in users:
                findings.append(Finding(f"{what} {name!r}", where, WARNING))
                continue
            consequence = (
                "its VMs cannot restart on any other host"
                if reaching <= 1
                else "its VMs cannot restart on the hosts without it"
            )
            findings.append(
                Finding(
                    f"{what} {name!r}",
                    f"{where}: {consequence} ({_names(users[name])})",
                    hint=f"give every host of {label} access to it"
                    if what == "datastore"
                    else f"add the network to every host of {label}",
                )
            )
    return findings


def _cpus(label: str, hosts: Sequence[Host]) -> list[Finding]:
    findings: list[Finding] = []
    families: dict[str, list[str]] = {}
    levels: dict[tuple[str | None, str], list[str]] = {}
    unknown = [host.name for host in hosts if host.cpu_family is None]
    for host in hosts:
        if host.cpu_family is not None:
            families.setdefault(host.cpu_family, []).append(host.name)
        if host.cpu_feature_level is not None:
            levels.setdefault((host.cpu_family, host.cpu_feature_level), []).append(host.name)
    listing = "; ".join(f"{family}: {_names(names)}" for family, names in sorted(families.items()))
    if len(families) > 1:
        findings.append(
            Finding(
                label,
                f"has hosts of different CPU families ({listing}): VMs restart across them "
                "(a cold boot), but cannot move live between them, so moving them back needs a "
                "shutdown",
                WARNING,
                hint="keep one CPU family per cluster",
            )
        )
    elif families and unknown:
        findings.append(
            Finding(
                label,
                f"does not know the CPU family of {_names(unknown)}: whether VMs can move live "
                "between all hosts is unknown",
                WARNING,
            )
        )
    per_family: dict[str | None, list[str]] = {}
    for (family, level), names in sorted(levels.items(), key=lambda item: str(item[0])):
        per_family.setdefault(family, []).append(f"{level}: {_names(names)}")
    for family, described in per_family.items():
        if len(described) > 1:
            of_family = "" if family is None else f" ({family})"
            findings.append(
                Finding(
                    label,
                    f"has hosts of different CPU feature levels{of_family} "
                    f"({'; '.join(described)}): VMs started on a newer host cannot move live to "
                    "an older one",
                    WARNING,
                    hint="set one baseline for the cluster (vSphere EVC mode, Hyper-V processor "
                    "compatibility)",
                )
            )
    return findings


def _admission(
    label: str, hosts: Sequence[Host], vms: Sequence[VM], policy: ClusterPolicy
) -> list[Finding]:
    """The N+k math of the policy's admission control at the current load."""
    reserve = policy.reserve_hosts
    available = [host for host in hosts if host.available]
    running = _running(vms)
    if policy.admission is AdmissionControl.NONE:
        return [
            Finding(
                label,
                "has admission control off: nothing keeps room for a host failure",
                WARNING,
                hint="use admission='capacity' or 'slots'",
            )
        ]
    if reserve == 0:
        return []
    if reserve >= len(available):
        return [
            Finding(
                label,
                f"cannot tolerate {reserve} host failure{'s' if reserve > 1 else ''} with "
                f"{len(available)} available host{'s' if len(available) != 1 else ''}",
                hint="add hosts or lower reserve_hosts",
            )
        ]
    plural = "s" if reserve > 1 else ""
    if policy.admission is AdmissionControl.CAPACITY:
        need_cpu = sum(vm.cpu for vm in running)
        need_mem = sum(vm.memory_mb for vm in running)
        cpu_caps = sorted((policy.cpu_capacity(host) for host in available), reverse=True)
        mem_caps = sorted((host.memory_mb for host in available), reverse=True)
        left_cpu, left_mem = sum(cpu_caps[reserve:]), sum(mem_caps[reserve:])
        if need_cpu > left_cpu or need_mem > left_mem:
            return [
                Finding(
                    label,
                    f"admission control (capacity) cannot survive {reserve} host failure{plural}: "
                    f"the running VMs need {need_cpu} vCPU and {need_mem} MB; after losing the "
                    f"{reserve} largest host{plural}, {left_cpu:.10g} vCPU and {left_mem} MB "
                    "remain",
                    hint="add capacity, power off VMs, allow more vCPUs per core or lower "
                    "reserve_hosts",
                )
            ]
        return []
    if not running:
        return []
    slot_cpu = max(vm.cpu for vm in running)
    slot_mem = max(vm.memory_mb for vm in running)
    slots = sorted(
        (
            min(int(policy.cpu_capacity(host) // slot_cpu), host.memory_mb // slot_mem)
            for host in available
        ),
        reverse=True,
    )
    left = sum(slots[reserve:])
    if len(running) > left:
        return [
            Finding(
                label,
                f"admission control (slots) cannot survive {reserve} host failure{plural}: a slot "
                f"is {slot_cpu} vCPU and {slot_mem} MB (the largest running VM), {len(running)} "
                f"running VMs need as many slots, and after losing the {reserve} host{plural} "
                f"with the most slots, {left} remain",
                hint="add capacity, power off VMs, or use admission='capacity' when a few large "
                "VMs make the slots large",
            )
        ]
    return []


def _failures(hosts: Sequence[Host], vms: Sequence[VM], policy: ClusterPolicy) -> list[Finding]:
    """Place the running VMs of each tolerated failure on the rest; report who would not restart."""
    reserve = policy.reserve_hosts
    available = [host for host in hosts if host.available]
    if reserve == 0 or reserve >= len(available):
        return []
    running = _running(vms)
    scenarios: Iterable[tuple[Host, ...]]
    combinations = _combinations(len(available), reserve)
    if combinations <= FAILURE_SCENARIOS:
        scenarios = itertools.combinations(available, reserve)
    else:
        load: dict[str, int] = {}
        for vm in running:
            load[vm.host] = load.get(vm.host, 0) + vm.memory_mb
        busiest = sorted(available, key=lambda host: (-load.get(host.name, 0), host.name))
        scenarios = [tuple(busiest[:reserve])]
    findings: list[Finding] = []
    for failed in scenarios:
        lost = {host.name for host in failed}
        victims = [vm for vm in running if vm.host in lost]
        if not victims:
            continue
        survivors = [host for host in available if host.name not in lost]
        placement = place(
            victims, survivors, policy, running=[vm for vm in running if vm.host not in lost]
        )
        stranded = [
            entry
            for entry in placement.unplaced
            if entry.reason is not UnplacedReason.RESTART_DISABLED
        ]
        if not stranded:
            continue
        shown = "; ".join(f"{entry.name!r} ({entry.detail})" for entry in stranded[:3])
        if len(stranded) > 3:
            shown += f"; and {len(stranded) - 3} more"
        item = (
            f"host {failed[0].name!r}"
            if len(failed) == 1
            else f"hosts {_names(host.name for host in failed)}"
        )
        findings.append(
            Finding(
                item,
                f"if {'it fails' if len(failed) == 1 else 'they fail'}, {len(stranded)} of "
                f"{len(victims)} running VMs cannot restart on the others: {shown}",
                hint="add capacity, relax the rules named, or set a restart priority so that "
                "the VMs that matter go first",
            )
        )
    return findings


def _combinations(n: int, k: int) -> int:
    count = 1
    for step in range(k):
        count = count * (n - step) // (step + 1)
        if count > FAILURE_SCENARIOS:
            return count
    return count


def _redundancy(hosts: Sequence[Host]) -> list[Finding]:
    findings: list[Finding] = []
    for host in hosts:
        if host.management_paths == 1:
            findings.append(
                Finding(
                    f"host {host.name!r}",
                    "has a single management network path: one failed NIC, cable or switch port "
                    "cuts it off, which without a witness looks like a host failure",
                    WARNING,
                    hint="add a second management uplink (a second cluster network on Hyper-V) "
                    "or configure a witness",
                )
            )
        if host.storage_paths == 1:
            findings.append(
                Finding(
                    f"host {host.name!r}",
                    "has a single storage path: one failed link cuts it off its datastores and "
                    "stops its VMs",
                    WARNING,
                    hint="configure multipathing (two HBAs or storage NICs, two switches)",
                )
            )
    return findings


def _rules(
    label: str, hosts: Sequence[Host], vms: Sequence[VM], policy: ClusterPolicy
) -> list[Finding]:
    """Rules that name unknown VMs, cannot hold after the tolerated failures, or are broken now."""
    findings: list[Finding] = []
    known = {vm.id for vm in vms} | {vm.name for vm in vms}
    left = sum(host.available for host in hosts) - policy.reserve_hosts
    running = _running(vms)
    for field, sets in (("anti_affinity", policy.anti_affinity), ("affinity", policy.affinity)):
        for position, members in enumerate(sets, start=1):
            item = f"ClusterPolicy {field} set {position}"
            strangers = members - known
            if strangers:
                findings.append(
                    Finding(
                        item,
                        f"names {_names(strangers)}, not a VM of {label}",
                        WARNING,
                        hint="check the spelling, or drop VMs that left the cluster",
                    )
                )
            inside = [vm for vm in running if vm.id in members or vm.name in members]
            hosts_of: dict[str, list[str]] = {}
            for vm in inside:
                hosts_of.setdefault(vm.host, []).append(vm.name)
            if field == "anti_affinity":
                size = len(members & known)
                if size > left:
                    findings.append(
                        Finding(
                            item,
                            f"keeps {size} VMs apart, but after losing {policy.reserve_hosts} of "
                            f"{len(hosts)} hosts only {max(left, 0)} remain",
                            hint="add hosts or split the set",
                        )
                    )
                for host, names in sorted(hosts_of.items()):
                    if len(names) > 1:
                        findings.append(
                            Finding(
                                item,
                                f"is broken now: {_names(names)} run together on {host!r}",
                                WARNING,
                                hint="move one of them to another host",
                            )
                        )
            elif len(hosts_of) > 1:
                spread = "; ".join(f"{host}: {_names(n)}" for host, n in sorted(hosts_of.items()))
                findings.append(
                    Finding(
                        item,
                        f"is broken now: its VMs run on different hosts ({spread})",
                        WARNING,
                        hint="move them onto one host",
                    )
                )
    unknown = {vm for vm, _ in policy.restart_priority} - known
    if unknown:
        findings.append(
            Finding(
                "ClusterPolicy restart_priority",
                f"names {_names(unknown)}, not a VM of {label}",
                WARNING,
            )
        )
    disabled = [vm.name for vm in running if policy.priority_of(vm) is RestartPriority.DISABLED]
    if disabled:
        findings.append(
            Finding(
                label,
                f"will not restart {_names(disabled)} after a host failure (restart priority "
                "'disabled')",
                WARNING,
            )
        )
    return findings
