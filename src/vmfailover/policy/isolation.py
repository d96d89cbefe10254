"""Which VMs of an isolated host may restart elsewhere: the decision behind the isolation response.

A host cut off from the management network but still running (a *partitioned* host, see
:mod:`vmfailover.policy.host_health`) applies its cluster's
:class:`~vmfailover.policy.cluster.IsolationResponse` itself, as vSphere HA's host agent does:
with ``power_off`` or ``shutdown`` it stops its VMs, which releases the locks on their disks, and
a second vantage point (datastore heartbeating, another management path) then sees them powered
off. Only that evidence lets the survivors restart a VM: restarting a VM that still runs starts
it twice (two copies writing one disk). So :func:`isolation_restarts` restarts exactly the VMs
the evidence shows powered off, never one it shows running (or suspended), never one it has no
word on, and nothing at all when the response is ``leave_powered_on``.

Pure: no I/O, no clock; the same inputs give the same verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from vmfailover.errors import ValidationError
from vmfailover.model import PowerState, as_enum, as_items
from vmfailover.policy.cluster import IsolationResponse

__all__ = ["IsolationVerdict", "isolation_restarts", "vm_power_table"]


@attrs.frozen
class IsolationVerdict:
    """What the isolation response allows for the VMs last seen running on a partitioned host.

    ``restart``: seen powered off, the response stops VMs: they may restart elsewhere.
    ``running``: seen powered on or suspended: they still hold their disks; never restarted.
    ``unseen``: the evidence does not mention them: not restarted (no evidence, no restart).
    ``held``: seen powered off, but the response is ``leave_powered_on``: the host did not stop
    them, so their being off is no isolation response; not restarted. All hold VM ids, sorted.
    """

    response: IsolationResponse
    restart: tuple[str, ...] = ()
    running: tuple[str, ...] = ()
    unseen: tuple[str, ...] = ()
    held: tuple[str, ...] = ()

    @property
    def acts(self) -> bool:
        """The response stops VMs (``power_off`` or ``shutdown``)."""
        return self.response is not IsolationResponse.LEAVE_POWERED_ON

    def __str__(self) -> str:
        parts = [f"isolation response {self.response.value}"]
        for label, ids in (
            ("powered off, restart", self.restart),
            ("still running, never restarted", self.running),
            ("not seen by the witness, not restarted", self.unseen),
            ("powered off, but left alone (leave_powered_on)", self.held),
        ):
            if ids:
                parts.append(f"{label}: {', '.join(ids)}")
        return "; ".join(parts)


def vm_power_table(value: object, item: str) -> tuple[tuple[str, PowerState], ...]:
    """A mapping of VM id -> power state (a :class:`PowerState` or its value) as sorted pairs;
    ValidationError naming ``item`` and the VM for anything else."""
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        value = dict(value)  # the stored form handed back
    if not isinstance(value, Mapping):
        raise ValidationError.of(item, f"must map VM ids to power states, got {value!r}")
    pairs: list[tuple[str, PowerState]] = []
    for vm, state in value.items():
        if not isinstance(vm, str) or not vm:
            raise ValidationError.of(item, f"keys must be VM ids, got {vm!r}")
        pairs.append((vm, as_enum(PowerState, state, f"{item} of VM {vm!r}")))
    return tuple(sorted(pairs))


def isolation_restarts(
    response: IsolationResponse | str,
    lost_vms: Iterable[str],
    vm_power: Mapping[str, PowerState | str] | None,
) -> IsolationVerdict:
    """Which of ``lost_vms`` (ids of the VMs last seen running on the partitioned host) may
    restart, given the cluster's isolation ``response`` and ``vm_power``, the power states a
    second vantage point sees (VM id -> state; None when there is no such evidence)."""
    chosen = as_enum(IsolationResponse, response, "isolation response")
    lost = sorted(set(as_items(lost_vms, str, "isolation_restarts lost_vms", "a VM id")))
    seen = dict(vm_power_table({} if vm_power is None else vm_power, "isolation evidence"))
    off = [vm for vm in lost if seen.get(vm) is PowerState.OFF]
    running = tuple(vm for vm in lost if vm in seen and seen[vm] is not PowerState.OFF)
    unseen = tuple(vm for vm in lost if vm not in seen)
    if chosen is IsolationResponse.LEAVE_POWERED_ON:
        return IsolationVerdict(chosen, running=running, unseen=unseen, held=tuple(off))
    return IsolationVerdict(chosen, restart=tuple(off), running=running, unseen=unseen)
