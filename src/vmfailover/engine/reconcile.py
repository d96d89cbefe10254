"""Reconciliation: what a journaled intent without an outcome did, read from the backend.

A crash between an intent and its outcome leaves the call's fate unknown: it may not have acted,
acted halfway, or acted fully with only the outcome lost. Before a resumed run repeats such a
call it reads the backend's state, per the protocol's idempotency notes
(:mod:`vmfailover.backends.base`):

============================  ==================================================================
call                          reconciliation before it is repeated
============================  ==================================================================
``power_on``                  read the VM's power: on means done (never powered on twice)
``shutdown_guest``            read the source's power: off means done
``power_off``                 read the power: off means done
``sync``                      not idempotent: list the replica's recovery points; one made after
                              the newest point the run saw just before the sync (recorded with
                              the intent, so no clocks are compared) is the sync's point (done);
                              none: sync again
``connect_nic``               read the VM's NIC: on that network means done
``revert``                    idempotent for the same point: repeated, unless the replica VM
                              already runs (it is started only after its revert: done)
``set_guest_ip``              idempotent while the VM is off (applied at its next boot, not
                              readable before): repeated; if the VM runs it was started after
                              its address was set: done
``create_test_copy``          idempotent per key (the run id): repeated, returns the same copy
``remove_test_copy``          idempotent: repeated
``delete_recovery_point``     idempotent: repeated
``create_replica``            idempotent (returns the VM's replica on that host): repeated
``reverse_replication``       idempotent (returns the reverse replica): repeated
plan step                     cannot be read: the step runs again (steps must be repeatable)
============================  ==================================================================

Before any reading, the journal itself may answer: a VM's calls are made one after another, so
an intent without an outcome that a *later* call of the same VM outlived (that later call has an
outcome) had acted. A read that fails (the host does not answer) decides nothing: the call is
repeated, and fails or succeeds as it would have.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from vmfailover.errors import VMFailoverError

if TYPE_CHECKING:
    from vmfailover.backends.base import Backend
    from vmfailover.engine.replay import CallRecord
    from vmfailover.model import RecoveryPoint

__all__ = ["RECONCILERS", "RESULTLESS", "Verdict", "reconcile"]

RESULTLESS = frozenset(
    {"revert", "connect_nic", "set_guest_ip", "power_on", "shutdown_guest", "power_off"}
)
"""Calls that return nothing, so knowing that they acted is all a resumed run needs."""


@attrs.frozen
class Verdict:
    """``done``: the call had acted (``result`` is what it returned); otherwise repeat it."""

    done: bool
    result: object = None
    reason: str = ""


REPEAT = Verdict(False, reason="idempotent: repeated")


Read = Callable[..., Any]
"""How a reconciler calls the backend: ``read(backend.readiness, vm_id)``, with the runner's
retries."""


def _powered(read: Read, backend: Backend, vm_id: str) -> bool:
    return bool(read(backend.readiness, vm_id).powered_on)


def _power_on(read: Read, backend: Backend, record: CallRecord) -> Verdict:
    if _powered(read, backend, str(record.args[0])):
        return Verdict(True, reason="the VM is powered on")
    return Verdict(False, reason="the VM is off: powering it on")


def _powered_off(read: Read, backend: Backend, record: CallRecord) -> Verdict:
    if not _powered(read, backend, str(record.args[0])):
        return Verdict(True, reason="the VM is off")
    return Verdict(False, reason="the VM still runs: stopping it again")


def _sync(read: Read, backend: Backend, record: CallRecord) -> Verdict:
    replica = str(record.args[0])
    points = list(read(backend.recovery_points, replica))
    made = _made_since(points, record)
    if made:
        return Verdict(True, made[0], reason=f"recovery point {made[0].id} was made by the sync")
    return Verdict(False, reason="no recovery point since the intent: syncing again")


def _made_since(points: list[RecoveryPoint], record: CallRecord) -> list[RecoveryPoint]:
    """The points (oldest first) made after the newest one the run saw just before the sync.

    The intent's context names that point: the points listed after it are new, and if it is
    gone (retention deleted it), those the backend's clock dates later are. A journal written
    before intents held a context only has the intent's time on our clock to go by.
    """
    if "newest_point" not in record.context:
        return [p for p in points if p.created_at >= record.at]
    newest = record.context["newest_point"]
    if newest is None:  # the replica had no point before the sync
        return points
    ids = [p.id for p in points]
    if newest in ids:
        return points[ids.index(newest) + 1 :]
    newest_at = record.context.get("newest_at")
    if isinstance(newest_at, datetime):
        return [p for p in points if p.created_at > newest_at]
    return [p for p in points if p.created_at >= record.at]


def _before_power_on(read: Read, backend: Backend, record: CallRecord) -> Verdict:
    """A call the VM must be off for (its address, a revert): if the VM runs, the run had
    already powered it on, which it does only after this call succeeded."""
    vm_id = str(record.args[0])
    if record.operation == "revert":
        vm_id = read(backend.inventory).replica(vm_id).replica_vm
    if _powered(read, backend, vm_id):
        return Verdict(True, reason="the VM was powered on after it, so it had acted")
    return Verdict(False, reason="idempotent while the VM is off: repeated")


def _connect_nic(read: Read, backend: Backend, record: CallRecord) -> Verdict:
    vm_id, mac, network = (str(arg) for arg in record.args[:3])
    vm = read(backend.inventory).vm(vm_id)
    if any(nic.mac == mac and nic.network == network for nic in vm.nics):
        return Verdict(True, reason=f"the NIC is on {network}")
    return Verdict(False, reason="the NIC is elsewhere: connecting it")


RECONCILERS: dict[str, Callable[[Read, Backend, CallRecord], Verdict]] = {
    "power_on": _power_on,
    "shutdown_guest": _powered_off,
    "power_off": _powered_off,
    "sync": _sync,
    "connect_nic": _connect_nic,
    "set_guest_ip": _before_power_on,
    "revert": _before_power_on,
}
"""Calls whose fate is read from the backend; every other journaled call is repeated."""


def reconcile(read: Read, backend: Backend, record: CallRecord) -> Verdict:
    """What ``record``'s call (an intent without an outcome) did, as far as the backend tells."""
    reader = RECONCILERS.get(record.operation)
    if reader is None:
        return REPEAT
    try:
        return reader(read, backend, record)
    except VMFailoverError as error:
        return Verdict(False, reason=f"its state could not be read ({error}): repeated")
