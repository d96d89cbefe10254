"""The pre-flight: hold a plan against the facts of one moment and find every problem.

:func:`gather` reads the facts from a backend (its inventory, the recovery points of the plan's
replicas, the point limit); it makes no call that changes anything. :func:`resolve` is pure: from
the plan and the facts it derives, for a failover of one kind, each VM's work and every finding
(blocking or warning), each naming the VM, NIC, rule, step or network it is about. The check
(:func:`check`) and the compiler (:func:`~vmfailover.plan.compiled.compile_plan`) share it, so a
plan that passes the check compiles, and compiles into what the check looked at.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from vmfailover import _render
from vmfailover.errors import Finding, Findings, NotFoundError, Severity, ValidationError
from vmfailover.model import (
    VM,
    FailoverKind,
    GuestOS,
    Host,
    Inventory,
    IPAddress,
    Network,
    PowerState,
    RecoveryPoint,
    Replica,
    ReplicaState,
    as_enum,
    aware_utc,
)
from vmfailover.plan.compiled import NicChange, VMRecovery
from vmfailover.plan.plan import FailoverPlan, PowerOffSource
from vmfailover.plan.steps import StepScope
from vmfailover.policy.fencing import fence_reason
from vmfailover.policy.points import choose_point
from vmfailover.policy.reip import ReIPAction, ReIPEntry, ReIPRules, addresses_in_use
from vmfailover.policy.sequencer import StartOrder

if TYPE_CHECKING:
    from vmfailover.backends.base import Backend

__all__ = ["Facts", "Resolution", "check", "gather", "plan_vm", "resolve"]

#: vCPUs per physical core a target host may carry before the check warns.
CPU_OVERCOMMIT = 4.0


@attrs.frozen
class Facts:
    """What a plan is checked against: one inventory, the replicas' points, the point limit and
    the current instant."""

    inventory: Inventory
    points: Mapping[str, tuple[RecoveryPoint, ...]]
    now: datetime
    point_limit: int | None = None

    @classmethod
    def of(
        cls,
        inventory: Inventory,
        points: Mapping[str, Iterable[RecoveryPoint]],
        *,
        now: datetime,
        point_limit: int | None = None,
    ) -> Facts:
        if not isinstance(inventory, Inventory):
            raise ValidationError.of("inventory", f"expected an Inventory, got {inventory!r}")
        if not isinstance(points, Mapping):
            raise ValidationError.of(
                "points", f"must map replica ids to recovery points, got {points!r}"
            )
        table: dict[str, tuple[RecoveryPoint, ...]] = {}
        for replica, items in points.items():
            found = tuple(items) if isinstance(items, Iterable) else (items,)
            if not all(isinstance(p, RecoveryPoint) for p in found):
                raise ValidationError.of(
                    f"points of replica {replica!r}", "must all be RecoveryPoint objects"
                )
            table[replica] = found
        if point_limit is not None and (
            isinstance(point_limit, bool) or not isinstance(point_limit, int) or point_limit < 1
        ):
            raise ValidationError.of(
                "point_limit", f"must be a whole number >= 1 or None, got {point_limit!r}"
            )
        return cls(inventory, MappingProxyType(table), aware_utc(now, "now"), point_limit)


def plan_vm(inventory: Inventory, key: str) -> VM:
    """The VM a plan names by ``key``: the VM with that id, else the VM with that name.

    A name VMs at several sites share names the one of them that is a replication source, when
    exactly one is: a Hyper-V replica carries its source's name (and so may a replica made by
    other tools), and a plan names the VMs it protects. Otherwise the name is ambiguous and
    :class:`~vmfailover.errors.NotFoundError` says so, naming the sites.
    """
    try:
        return inventory.vm(key)
    except NotFoundError:
        namesakes = inventory.vms_named(key)
        if len(namesakes) < 2:
            raise
    sources = [vm for vm in namesakes if inventory.is_replicated(vm.id)]
    if len(sources) == 1:
        return sources[0]
    sites = ", ".join(sorted(inventory.site_of(vm) for vm in namesakes))
    which = (
        "none of them is a replication source"
        if not sources
        else f"{len(sources)} of them are replication sources"
    )
    raise NotFoundError(
        f"the name {key!r} is ambiguous (VMs at sites {sites}) and {which}; use the id"
    )


def replicas_of(plan: FailoverPlan, inventory: Inventory) -> list[str]:
    """The ids of the replicas of the plan's VMs that the inventory knows (in plan order)."""
    found: dict[str, None] = {}
    for key in plan.vms:
        with contextlib.suppress(NotFoundError):
            found[inventory.replica_of(plan_vm(inventory, key).id).id] = None
    return list(found)


def gather(
    plan: FailoverPlan,
    backend: Backend,
    *,
    now: datetime | None = None,
    call: Callable[..., Any] | None = None,
    each: Callable[[Callable[[str], Any], list[str]], Iterable[Any]] | None = None,
) -> Facts:
    """Read what :func:`resolve` needs from ``backend``; read-only calls only.

    ``call(fn, *args)``, if given, makes each call (a runner passes its retrying caller), and
    ``each(fn, items)`` maps ``fn`` over items (a runner passes a bounded pool's ``map``, so the
    points of many replicas are read at once).
    """
    do: Callable[..., Any] = call if call is not None else (lambda fn, *args: fn(*args))
    over = each if each is not None else (lambda fn, items: [fn(item) for item in items])
    inventory = do(backend.inventory)
    replicas = replicas_of(plan, inventory)
    read = over(lambda replica: tuple(do(backend.recovery_points, replica)), replicas)
    points = dict(zip(replicas, read, strict=True))
    if now is None:
        clock = getattr(backend, "clock", None)
        now = clock.now() if clock is not None else datetime.now(UTC)
    return Facts.of(inventory, points, now=now, point_limit=do(backend.recovery_point_limit))


def check(
    plan: FailoverPlan, facts: Facts, kind: FailoverKind | str, *, force: bool = False
) -> Findings:
    """Every problem a failover of ``kind`` of ``plan`` would meet, blocking ones first."""
    findings = resolve(plan, facts, kind, force=force).findings
    return Findings(sorted(findings, key=lambda f: f.severity is not Severity.ERROR))


@attrs.frozen
class Resolution:
    """What :func:`resolve` found: each VM's work, the complete order, findings, decisions."""

    kind: FailoverKind
    order: StartOrder
    vms: tuple[VMRecovery, ...]
    findings: tuple[Finding, ...]
    decisions: tuple[str, ...]


def _force(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError.of("force", f"must be True or False, got {value!r}")
    return value


def resolve(
    plan: FailoverPlan, facts: Facts, kind: FailoverKind | str, *, force: bool = False
) -> Resolution:
    """Resolve ``plan`` for a failover of ``kind`` against ``facts``: pure and deterministic."""
    if not isinstance(plan, FailoverPlan):
        raise ValidationError.of("plan", f"expected a FailoverPlan, got {plan!r}")
    kind = as_enum(FailoverKind, kind, "kind")
    force = _force(force)
    return _Resolver(plan, facts, kind, force).run()


@attrs.define
class _Target:
    name: str
    source: VM
    replica: Replica
    replica_vm: VM
    site: str
    point: RecoveryPoint | None = None
    accepted_risk: str | None = None


class _Resolver:
    """One resolution: walks the plan's VMs, collecting findings as it goes."""

    def __init__(self, plan: FailoverPlan, facts: Facts, kind: FailoverKind, force: bool) -> None:
        self.plan = plan
        self.facts = facts
        self.inventory = facts.inventory
        self.kind = kind
        self.force = force
        self.power_off = plan.power_off(kind)
        self.findings: list[Finding] = []
        self.decisions: list[str] = []

    def error(self, item: str, message: str, hint: str | None = None) -> None:
        self.findings.append(Finding(item, message, Severity.ERROR, hint))

    def warn(self, item: str, message: str, hint: str | None = None) -> None:
        self.findings.append(Finding(item, message, Severity.WARNING, hint))

    def run(self) -> Resolution:
        order = self._order()
        targets = [t for t in (self._target(name) for name in self._distinct()) if t is not None]
        nic_changes = self._networks(targets)
        address_changes = self._addresses(targets)
        self._capacity(targets)
        self._steps(order)
        vms = []
        for target in targets:
            changes = _merge(
                target.replica_vm,
                nic_changes.get(target.name, {}),
                address_changes.get(target.name, {}),
            )
            if any(c.changes_address for c in changes) and target.source.guest_os is GuestOS.OTHER:
                self.error(
                    f"VM {target.name!r}",
                    "re-IP changes its addresses, but its guest OS cannot be customized",
                    "re-address it by a step inside the guest, or leave it out of the rules",
                )
            expected = tuple(
                config.address.ip for change in changes for config in (change.ip_configs or ())
            )
            vms.append(
                VMRecovery(
                    name=target.name,
                    source=target.source,
                    replica=target.replica,
                    replica_vm=target.replica_vm,
                    target_site=target.site,
                    point=target.point,
                    power_off=self.power_off,
                    nics=changes,
                    expected_addresses=expected,
                    entry=order.entry(target.name),
                    accepted_risk=target.accepted_risk,
                )
            )
        return Resolution(self.kind, order, tuple(vms), tuple(self.findings), tuple(self.decisions))

    # --- VMs, replicas, points, fencing ------------------------------------------------------

    def _distinct(self) -> list[str]:
        """The plan's VM keys, without keys naming a VM another key already names."""
        seen: dict[str, str] = {}
        keep = []
        for key in self.plan.vms:
            try:
                vm = plan_vm(self.inventory, key)
            except NotFoundError as error:
                self.error(f"VM {key!r}", str(error), "check the name, or use the VM's id")
                continue
            if vm.id in seen:
                self.error(
                    f"VM {key!r}",
                    f"names the same VM ({vm.id}) as {seen[vm.id]!r}",
                    "list each VM once",
                )
                continue
            seen[vm.id] = key
            keep.append(key)
        return keep

    def _target(self, key: str) -> _Target | None:
        item = f"VM {key!r}"
        source = plan_vm(self.inventory, key)
        try:
            replica = self.inventory.replica_of(source.id)
            replica_vm = self.inventory.vm(replica.replica_vm)
            site = self.inventory.host(replica.target_host).site
        except NotFoundError as error:
            self.error(item, str(error), "create a replica (a replication job) first")
            return None
        target = _Target(key, source, replica, replica_vm, site)
        allowed = {
            FailoverKind.TEST: (ReplicaState.READY,),
            FailoverKind.PLANNED: (ReplicaState.READY,),
            FailoverKind.REGULAR: (ReplicaState.READY, ReplicaState.FAILED_OVER),
        }[self.kind]
        if replica.state not in allowed:
            self.error(
                item,
                f"its replica {replica.id!r} is {_words(replica.state)}; a {self.kind.value} "
                f"failover needs it {' or '.join(_words(s) for s in allowed)}",
                _state_hint(replica.state),
            )
            return None
        host = self.inventory.host(replica.target_host)
        if not host.available:
            self.error(
                item,
                f"its replica's host {host.name!r} is {_host_words(host)}",
                "bring the host back or move the replica",
            )
            return None
        if not self._point(target):
            return None
        if self.kind is not FailoverKind.TEST and not self._fence(target):
            return None
        return target

    def _point(self, target: _Target) -> bool:
        item = f"VM {target.name!r}"
        points = self.facts.points.get(target.replica.id)
        if points is None:
            self.error(item, f"the recovery points of replica {target.replica.id!r} are unknown")
            return False
        if self.kind is FailoverKind.PLANNED:
            limit = self.facts.point_limit
            if limit is not None and len(points) >= limit:
                self.error(
                    item,
                    f"replica {target.replica.id!r} holds {len(points)} recovery points, the "
                    "backend's limit: the final sync has no room",
                    "apply retention (delete a point) before a planned failover",
                )
                return False
            return True
        choice = self.plan.point_choice(target.name)
        point = choose_point(points, choice)
        if point is None:
            what = choice.isoformat() if isinstance(choice, datetime) else choice
            self.error(
                item,
                f"no recovery point of replica {target.replica.id!r} matches {what!r} "
                f"({len(points)} points)",
                "pick another recovery_point, or sync the replica",
            )
            return False
        target.point = point
        age = (self.facts.now - point.created_at).total_seconds()
        if self.plan.rpo is not None and age > self.plan.rpo:
            self.warn(
                item,
                f"its recovery point is {_render.format_duration(age)} old, beyond the plan's "
                f"RPO of {_render.format_duration(self.plan.rpo)}",
                "the report will flag the RPO as missed",
            )
        return True

    def _fence(self, target: _Target) -> bool:
        """Whether the replica may start as far as the source is concerned (split brain)."""
        item = f"VM {target.name!r}"
        if target.replica_vm.power_state is PowerState.ON:
            self.error(
                item,
                f"its replica VM {target.replica_vm.name!r} is already running",
                "undo the earlier failover, or leave this VM out",
            )
            return False
        source, host = target.source, self.inventory.host(target.source.host)
        running = source.power_state is PowerState.ON
        may_shut_down = self.power_off in (
            PowerOffSource.GRACEFUL,
            PowerOffSource.GRACEFUL_THEN_FORCE,
        )
        if self.kind is FailoverKind.PLANNED:
            if not host.available:
                self.error(
                    item,
                    f"a planned failover needs the source, but its host {host.name!r} is "
                    f"{_host_words(host)}",
                    "run a regular failover when the source site is lost",
                )
                return False
            if running and not may_shut_down:
                self.error(
                    item,
                    f"the source is running and power_off_source is {self.power_off.value!r}",
                    "shut it down first, or use power_off_source='graceful'",
                )
                return False
            return True
        if running and host.available and may_shut_down:
            return True  # the run shuts the source down before the replica starts
        reason = fence_reason(self.inventory, source, target.replica)
        if reason is None:
            return True
        if self.force:
            target.accepted_risk = reason
            self.decisions.append(f"{item}: {reason}; started anyway because force=True")
            return True
        self.error(
            item,
            reason,
            "shut the source down (or run a planned failover), set power_off_source="
            "'graceful', or pass force=True if you know it is fenced",
        )
        return False

    # --- networks ----------------------------------------------------------------------------

    def _networks(self, targets: list[_Target]) -> dict[str, dict[str, str]]:
        """Per VM, MAC -> target network name, where the NIC must move."""
        moves: dict[str, dict[str, str]] = {}
        mapping = self.plan.network
        for target in targets:
            replica_nics = {nic.mac: nic for nic in target.replica_vm.nics}
            if mapping is None:
                if self.kind is FailoverKind.TEST:
                    for nic in target.replica_vm.nics:
                        network = self._network(target.site, nic.network)
                        if network is None or not network.isolated:
                            self.error(
                                f"VM {target.name!r} NIC {nic.mac}",
                                f"a test copy would come up on {nic.network!r}, which is not "
                                "isolated",
                                "give the plan a NetworkMapping with test targets",
                            )
                continue
            findings = mapping.check(
                self.inventory, [target.source], self.kind, target_site=target.site
            )
            for finding in findings:
                item = finding.item.replace(f"VM {target.source.name!r}", f"VM {target.name!r}")
                self.findings.append(attrs.evolve(finding, item=item))
            if any(f.blocking for f in findings):
                continue
            moves[target.name] = {}
            for nic in target.source.nics:
                wanted = mapping.target(nic.network, self.kind)
                current = replica_nics.get(nic.mac)
                if current is None:
                    self.error(
                        f"VM {target.name!r} NIC {nic.mac}",
                        f"its replica VM {target.replica_vm.name!r} has no NIC with this MAC",
                    )
                elif current.network != wanted or self.kind is FailoverKind.TEST:
                    moves[target.name][nic.mac] = wanted
        return moves

    def _network(self, site: str, name: str) -> Network | None:
        try:
            return self.inventory.network(site, name)
        except NotFoundError:
            return None

    # --- addresses ---------------------------------------------------------------------------

    def _addresses(self, targets: list[_Target]) -> dict[str, dict[str, ReIPEntry]]:
        """Per VM, MAC -> re-IP entry, for NICs whose configuration changes."""
        rules = self.plan.rules(self.kind)
        overrides = self.plan.reip_overrides if self.kind is not FailoverKind.TEST else ()
        if rules is None and not overrides:
            return {}
        rules = rules if rules is not None else ReIPRules(())
        by_site: dict[str, list[_Target]] = defaultdict(list)
        for target in targets:
            by_site[target.site].append(target)
        changes: dict[str, dict[str, ReIPEntry]] = {}
        names = {target.source.id: target.name for target in targets}
        for site, group in by_site.items():
            in_use: Mapping[IPAddress, str] = {}
            if self.kind is not FailoverKind.TEST:  # test copies sit on isolated networks
                in_use = addresses_in_use(self.inventory, site, exclude=[t.source for t in targets])
            plan = rules.plan([t.source for t in group], overrides, in_use)
            for finding in plan.findings:
                self.findings.append(_renamed(finding, names, self.inventory))
            for entry in plan.entries:
                if entry.changed:
                    changes.setdefault(names[entry.vm_id], {})[entry.mac] = entry
                elif entry.action is ReIPAction.NONE and len(rules):
                    self.warn(
                        f"VM {names[entry.vm_id]!r} NIC {entry.mac}",
                        "its addresses are unknown (its guest does not report them): the re-IP "
                        "rules have nothing to translate, and it keeps what it boots with",
                        "give the NIC a re-IP override, or check the guest's integration tools",
                    )
        return changes

    # --- capacity ----------------------------------------------------------------------------

    def _capacity(self, targets: list[_Target]) -> None:
        """Target hosts must hold the VMs that will run there, beside what already runs."""
        arriving: dict[str, list[_Target]] = defaultdict(list)
        for target in targets:
            arriving[target.replica.target_host].append(target)
        leaving = {t.replica_vm.id for t in targets}
        running_on: dict[str, list[VM]] = defaultdict(list)  # one pass, not one per host
        for vm in self.inventory.vms:
            if vm.host in arriving and vm.power_state is PowerState.ON and vm.id not in leaving:
                running_on[vm.host].append(vm)
        for host_name, group in sorted(arriving.items()):
            host = self.inventory.host(host_name)
            running = running_on[host_name]
            memory = sum(vm.memory_mb for vm in running) + sum(
                t.replica_vm.memory_mb for t in group
            )
            cpus = sum(vm.cpu for vm in running) + sum(t.replica_vm.cpu for t in group)
            item = f"host {host_name!r}"
            names = ", ".join(repr(t.name) for t in group)
            if memory > host.memory_mb:
                self.error(
                    item,
                    f"needs {memory} MB of memory for {names} and what runs there, but has "
                    f"{host.memory_mb} MB",
                    "move some replicas to other hosts, or fail over fewer VMs",
                )
            for target in group:
                if target.replica_vm.cpu > host.cpu_cores:
                    self.error(
                        f"VM {target.name!r}",
                        f"has {target.replica_vm.cpu} vCPUs, more than the {host.cpu_cores} "
                        f"cores of its target host {host_name!r}",
                    )
            if cpus > host.cpu_cores * CPU_OVERCOMMIT:
                self.warn(
                    item,
                    f"would run {cpus} vCPUs on {host.cpu_cores} cores (more than "
                    f"{CPU_OVERCOMMIT:g} per core)",
                    "expect slow boots; spread the replicas over more hosts",
                )

    # --- order and steps ---------------------------------------------------------------------

    def _order(self) -> StartOrder:
        order = self.plan.start_order()
        self.findings.extend(order.validate())
        if self.plan.order is not None:
            missing = [name for name in self.plan.vms if name not in self.plan.order]
            if missing:
                self.warn(
                    "start order",
                    f"does not name {', '.join(repr(n) for n in missing)}: they start with no "
                    "dependencies",
                )
        return order

    def _steps(self, order: StartOrder) -> None:
        groups = {entry.group for entry in order if entry.group is not None}
        for item in self.plan.steps_for(self.kind):
            if item.scope is StepScope.GROUP and item.group not in groups:
                self.error(
                    f"{type(item).__name__.lower()} {item.name!r}",
                    f"names group {item.group}, which no VM of the start order is in",
                )


def _merge(
    replica_vm: VM, moves: Mapping[str, str], entries: Mapping[str, ReIPEntry]
) -> tuple[NicChange, ...]:
    changes = []
    for nic in replica_vm.nics:
        entry = entries.get(nic.mac)
        network = moves.get(nic.mac)
        if entry is None and network is None:
            continue
        changes.append(
            NicChange(
                mac=nic.mac,
                network=network,
                ip_configs=None if entry is None or entry.new_dhcp else entry.new,
                dhcp=entry is not None and entry.new_dhcp,
            )
        )
    return tuple(changes)


def _renamed(finding: Finding, names: Mapping[str, str], inventory: Inventory) -> Finding:
    """A re-IP finding speaks of source VMs by name; the plan may know them by id."""
    for vm_id, plan_name in names.items():
        vm_name = inventory.vm(vm_id).name
        if plan_name != vm_name and f"VM {vm_name!r}" in finding.item:
            return attrs.evolve(
                finding, item=finding.item.replace(f"VM {vm_name!r}", f"VM {plan_name!r}")
            )
    return finding


def _words(state: ReplicaState) -> str:
    return state.value.replace("_", " ")


def _host_words(host: Host) -> str:
    power = "powered off" if host.power is PowerState.OFF else "powered on"
    return f"{host.connection.value.replace('_', ' ')} and {power}"


def _state_hint(state: ReplicaState) -> str | None:
    return {
        ReplicaState.INITIALIZING: "wait for its first sync",
        ReplicaState.TEST_FAILOVER: "clean up the running test failover first",
        ReplicaState.FAILED_OVER: "undo or commit the earlier failover first",
        ReplicaState.COMMITTED: "it was failed over for good; fail back instead",
        ReplicaState.REVERSED: "it replicates the other way now",
        ReplicaState.ERROR: "repair the replication",
    }.get(state)
