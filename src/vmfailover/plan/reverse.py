"""A failover plan turned around, for the failback: from the recovered VMs back to the originals.

:func:`reverse_plan` derives it from what the failover really did (its :class:`CompiledPlan`),
not from the plan's rules read backwards, because a rule's inverse cannot know everything the
way back needs:

- **VMs**: each recovered VM (the failover's replica VM, by id: on Hyper-V a replica has its
  source's name) in the plan's order; its replica is now the reverse replica, and the original VM
  is where it runs again.
- **Order**: the same start order, entries renamed (the directory still comes first).
- **Networks**: each NIC goes back to the network its original was on: the mapping is the
  failover's, inverted per NIC. Two original networks that the failover mapped onto one recovery
  network cannot be told apart on the way back: that is refused, naming them (give
  ``failback(plan=...)`` a plan of your own).
- **Addresses**: every NIC the failover re-addressed gets the configuration it had before (as
  per-NIC overrides, gateway and DNS included), DHCP where it was DHCP; nothing else is touched.
- **Steps and approvals** that apply to planned failovers come along (VM steps renamed); a
  readiness probe that checks a fixed address the failover gave is pointed at the address the
  guest reports instead. Objectives, shutdown timeout and the commit policy stay.
"""

from __future__ import annotations

import attrs

from vmfailover.errors import Finding, NotFoundError, ValidationError
from vmfailover.model import FailoverKind
from vmfailover.plan.compiled import CompiledPlan, VMRecovery
from vmfailover.plan.plan import FailoverPlan, PowerOffSource
from vmfailover.plan.steps import Approval, Step
from vmfailover.policy.netmap import NetworkMapping
from vmfailover.policy.probes import TCPPort
from vmfailover.policy.reip import ReIPOverride
from vmfailover.policy.sequencer import StartOrder

__all__ = ["reverse_plan"]


def reverse_plan(plan: FailoverPlan, compiled: CompiledPlan) -> FailoverPlan:
    """The plan of the failback of a failover of ``plan`` that ran as ``compiled``.

    Raises :class:`ValidationError` naming every problem (see the module's description).
    """
    if not isinstance(plan, FailoverPlan) or not isinstance(compiled, CompiledPlan):
        raise ValidationError.of("reverse_plan", "needs the plan and the failover's CompiledPlan")
    if compiled.kind is FailoverKind.TEST:
        raise ValidationError.of(
            f"plan {plan.name!r}", "a test failover is cleaned up, not failed back"
        )
    keys = {vm.name: vm.replica_vm.id for vm in compiled.vms}
    findings: list[Finding] = []
    networks = _networks(compiled.vms, findings)
    overrides = [item for vm in compiled.vms for item in _addresses(vm, keys[vm.name], findings)]
    if findings:
        raise ValidationError(findings)
    power_off = plan.power_off_source
    keep = (PowerOffSource.GRACEFUL_THEN_FORCE, PowerOffSource.REQUIRE_OFF)
    return FailoverPlan(
        name=f"{plan.name} (failback)",
        vms=tuple(keys[vm.name] for vm in compiled.vms),
        order=_order(compiled, keys),
        network=NetworkMapping(production=networks) if networks else None,
        reip_overrides=tuple(overrides),
        power_off_source=power_off if power_off in keep else None,
        shutdown_timeout=plan.shutdown_timeout,
        rto=plan.rto,
        steps=tuple(_step(item, keys) for item in plan.steps_for(FailoverKind.PLANNED)),
        description=f"Failback of plan {plan.name!r}: the recovered VMs back to the originals.",
        auto_commit=plan.auto_commit,
        auto_undo=plan.auto_undo,
    )


def _networks(vms: tuple[VMRecovery, ...], findings: list[Finding]) -> dict[str, str]:
    """Recovery network -> original network, from where each NIC was and went."""
    table: dict[str, str] = {}
    seen: dict[str, str] = {}
    for vm in vms:
        moved = {change.mac: change.network for change in vm.nics if change.network}
        for nic in vm.replica_vm.nics:
            there = moved.get(nic.mac, nic.network)
            try:
                home = vm.source.nic(nic.mac).network
            except NotFoundError:
                findings.append(
                    Finding(f"VM {vm.name!r} NIC {nic.mac}", "its source has no NIC with this MAC")
                )
                continue
            earlier = table.setdefault(there, home)
            if earlier != home:
                findings.append(
                    Finding(
                        f"network {there!r}",
                        f"the failover put NICs of {earlier!r} ({seen[there]}) and of {home!r} "
                        f"(VM {vm.name!r}) on it: the way back cannot tell them apart",
                        hint="give failback(plan=...) a plan whose network mapping says where each "
                        "goes",
                    )
                )
            seen.setdefault(there, f"VM {vm.name!r}")
    return table


def _addresses(vm: VMRecovery, key: str, findings: list[Finding]) -> list[ReIPOverride]:
    """The configuration each re-addressed NIC had before the failover."""
    overrides = []
    for change in vm.nics:
        if not change.changes_address:
            continue
        try:
            nic = vm.source.nic(change.mac)
        except NotFoundError as error:
            findings.append(Finding(f"VM {vm.name!r} NIC {change.mac}", str(error)))
            continue
        if nic.dhcp:
            overrides.append(ReIPOverride(key, nic.mac, dhcp=True))
        elif nic.ip_configs:
            overrides.append(ReIPOverride(key, nic.mac, nic.ip_configs))
    return overrides


def _order(compiled: CompiledPlan, keys: dict[str, str]) -> StartOrder:
    source = compiled.order
    order = StartOrder(max_parallel=source.max_parallel, groups=source.groups)
    for resource, capacity in source.limits.items():
        order.limit(resource, capacity)
    addresses = {vm.name: {str(a) for a in vm.expected_addresses} for vm in compiled.vms}
    for entry in source:
        if entry.name not in keys:
            continue
        probe = entry.probe
        if isinstance(probe, TCPPort) and probe.address in addresses[entry.name]:
            probe = attrs.evolve(probe, address=None)  # the address the guest reports
        order.add(
            keys[entry.name],
            after=[keys[name] for name in entry.after if name in keys],
            group=entry.group,
            probe=probe,
            timeout=entry.timeout,
            on_failure=entry.on_failure,
            resources=entry.resources,
        )
    return order


def _step(item: Step | Approval, keys: dict[str, str]) -> Step | Approval:
    if item.vm is None or item.vm not in keys:
        return item
    return attrs.evolve(item, vm=keys[item.vm])
