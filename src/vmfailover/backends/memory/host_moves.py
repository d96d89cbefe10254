"""The memory backend's host-failover primitives: restart a VM on another host, move one.

A failover cluster in the memory world: hosts of one site that reach the same datastore
(``Host.datastores``) and have the same networks (``Host.networks``). A VM's files live on its
datastore, so any host that reaches it can run the VM. What a real cluster's storage enforces is
modelled too: a running VM holds the lock on its disks, so a VM whose host is cut off the
management network but still runs it cannot be started anywhere else (the split brain that a
host failover must never cause). VMs of a host that lost its power are off, and may restart on
a survivor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmfailover.backends.base import host_lacks
from vmfailover.backends.memory.autosave import changes_world
from vmfailover.backends.memory.store import MemoryStore, VMRecord
from vmfailover.errors import ConflictError
from vmfailover.model import VM, Host, PowerState, ReplicaState

__all__ = ["HostMoves"]


class HostMoves:
    """The host-failover half of :class:`~vmfailover.backends.memory.MemoryBackend`."""

    _store: MemoryStore

    if TYPE_CHECKING:  # the protocol half's: every call passes the fault injector first

        def _enter(self, operation: str, target: str | None) -> None: ...

        def _world_changed(self) -> None: ...

    @changes_world
    def restart_on_host(self, vm_id: str, host: str) -> None:
        self._enter("restart_on_host", vm_id)
        store = self._store
        with store.lock:
            record = store.vm(vm_id)
            target = store.host(host)
            if record.vm.host == host and record.running:
                return
            if record.running:
                raise ConflictError(
                    f"VM {record.vm.name!r} still runs on host {record.vm.host!r}, which holds "
                    "the lock on its disks: starting it on another host would run it twice"
                )
            store.require_available(target, f"restarting VM {record.vm.name!r}")
            _require_reach(record.vm, target)
            _require_startable(store, record)
            store.move_vm(record, host)
            store.set_power(record, PowerState.ON)

    @changes_world
    def migrate_vm(self, vm_id: str, host: str) -> None:
        self._enter("migrate_vm", vm_id)
        store = self._store
        with store.lock:
            record = store.vm(vm_id)
            if record.vm.host == host:
                store.host(host)
                return
            store.require_reachable(record)
            source = store.host(record.vm.host)
            target = store.host(host)
            store.require_available(target, f"moving VM {record.vm.name!r}")
            _require_reach(record.vm, target)
            if record.running:
                _require_live_compatible(record, source, target)
            store.move_vm(record, host)  # live: power and boot time are kept


def _require_reach(vm: VM, host: Host) -> None:
    missing = host_lacks(vm, host)
    if missing:
        raise ConflictError(
            f"VM {vm.name!r} cannot run on host {host.name!r}: the host lacks {', '.join(missing)}"
        )


def _require_live_compatible(record: VMRecord, source: Host, target: Host) -> None:
    """A running VM moves live only between hosts of one CPU family and feature level."""
    for field, label in (("cpu_family", "CPU family"), ("cpu_feature_level", "CPU feature level")):
        mine, theirs = getattr(source, field), getattr(target, field)
        if mine is not None and theirs is not None and mine != theirs:
            raise ConflictError(
                f"VM {record.vm.name!r} cannot move live from {source.name!r} ({label} "
                f"{mine!r}) to {target.name!r} ({theirs!r}): shut it down to move it"
            )


def _require_startable(store: MemoryStore, record: VMRecord) -> None:
    for replica in store.replicas_into(record.vm.id):
        if replica.state in (ReplicaState.INITIALIZING, ReplicaState.READY):
            raise ConflictError(
                f"VM {record.vm.name!r} is the replica of {replica.source_vm!r} and has not been "
                "failed over: revert it to a recovery point first"
            )
