"""``FencedBackend``: any backend, whose mutating calls first prove the lease is still ours.

Wraps a :class:`~vmfailover.backends.base.Backend`. Reads (``inventory``, ``recovery_points``,
``recovery_point_limit``, ``readiness`` and the optional ``data_loss_blocks``) pass straight
through (or ask an optional read fence that reads no store); every call that changes something
asks the fence (a :class:`~vmfailover.engine.lease_keeper.LeaseKeeper`) first, and does not
happen when the fence says the lease is lost (:class:`~vmfailover.engine.lease.LeaseLostError`)
or cannot say (:class:`~vmfailover.engine.lease.LeaseUnavailableError`, transient: the runner's
retry asks again). So an orchestrator that was paused past its lease and woke after another took
over changes nothing: its next mutating call is refused before it reaches the hypervisor.

What fencing cannot do with a hypervisor that knows nothing of tokens: a call that passed its
check and was then paused *before its request left the process* goes out when the process wakes.
The keeper's check ends with a local deadline test right before the call, so that gap is the
time from that test to the request being sent; the new holder reconciles against the backend's
state before it acts, which every mutating call's idempotency note allows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vmfailover.backends.base import CHANGING_CALLS, Backend, Readiness, Throttle
from vmfailover.engine.lease_keeper import Fence
from vmfailover.errors import ValidationError
from vmfailover.model import Consistency, Inventory, IPConfig, RecoveryPoint, Replica

__all__ = ["MUTATING_OPERATIONS", "FencedBackend"]

#: The protocol's calls that change something (one list, in the protocol): each is fenced.
MUTATING_OPERATIONS = CHANGING_CALLS

#: Attributes of the wrapped backend besides the protocol that are safe to pass through: its
#: clock (the runner reads it) and read-only optional capabilities.
_PASSED_THROUGH = frozenset(
    {"clock", "data_loss_blocks", "block_size", "guest_ips_at_test_copy", "hypervisor_moves_data"}
)


class FencedBackend:
    """``backend`` with every mutating call fenced by ``fence.check()``.

    ``read_fence`` (optional) is asked before every read: give it a check that reads no store
    (:meth:`~vmfailover.engine.lease_keeper.LeaseKeeper.check_local`), so a holder that woke
    after losing its lease stops reading too, at no cost per read while it holds the lease.
    """

    def __init__(
        self, backend: Backend, fence: Fence, *, read_fence: Callable[[], None] | None = None
    ) -> None:
        if not isinstance(backend, Backend):
            raise ValidationError.of("fenced backend", f"needs a Backend, got {backend!r}")
        if not callable(getattr(fence, "check", None)):
            raise ValidationError.of("fenced backend", f"needs a fence with check(), got {fence!r}")
        if read_fence is not None and not callable(read_fence):
            raise ValidationError.of(
                "fenced backend", f"read_fence must be callable, got {read_fence!r}"
            )
        self.inner = backend
        self.fence = fence
        self.read_fence = read_fence
        self.name = backend.name

    def __repr__(self) -> str:
        return f"FencedBackend({self.inner!r}, {self.fence!r})"

    def __getattr__(self, attribute: str) -> Any:
        if attribute in _PASSED_THROUGH:
            return getattr(self.inner, attribute)
        raise AttributeError(
            f"FencedBackend passes through the backend protocol only, not {attribute!r}: "
            "use .inner for the wrapped backend's own methods"
        )

    # --- reads ---------------------------------------------------------------------------------

    def _reading(self) -> None:
        if self.read_fence is not None:
            self.read_fence()

    def inventory(self) -> Inventory:
        self._reading()
        return self.inner.inventory()

    def recovery_points(self, replica_id: str) -> tuple[RecoveryPoint, ...]:
        self._reading()
        return self.inner.recovery_points(replica_id)

    def recovery_point_limit(self) -> int | None:
        self._reading()
        return self.inner.recovery_point_limit()

    def readiness(self, vm_id: str) -> Readiness:
        self._reading()
        return self.inner.readiness(vm_id)

    # --- changes: fenced -----------------------------------------------------------------------

    def create_replica(
        self,
        vm_id: str,
        target_host: str,
        target_datastore: str,
        *,
        network_map: Mapping[str, str] | None = None,
    ) -> Replica:
        self.fence.check()
        return self.inner.create_replica(
            vm_id, target_host, target_datastore, network_map=network_map
        )

    def sync(
        self,
        replica_id: str,
        *,
        consistency: Consistency = Consistency.CRASH,
        tags: Sequence[str] = (),
        throttle: Throttle | None = None,
    ) -> RecoveryPoint:
        self.fence.check()
        return self.inner.sync(replica_id, consistency=consistency, tags=tags, throttle=throttle)

    def delete_recovery_point(self, point_id: str) -> None:
        self.fence.check()
        self.inner.delete_recovery_point(point_id)

    def revert(self, replica_id: str, point_id: str) -> None:
        self.fence.check()
        self.inner.revert(replica_id, point_id)

    def connect_nic(self, vm_id: str, mac: str, network: str) -> None:
        self.fence.check()
        self.inner.connect_nic(vm_id, mac, network)

    def set_guest_ip(self, vm_id: str, mac: str, configs: Sequence[IPConfig] | None) -> None:
        self.fence.check()
        self.inner.set_guest_ip(vm_id, mac, configs)

    def power_on(self, vm_id: str) -> None:
        self.fence.check()
        self.inner.power_on(vm_id)

    def shutdown_guest(self, vm_id: str, timeout: float) -> None:
        self.fence.check()
        self.inner.shutdown_guest(vm_id, timeout)

    def power_off(self, vm_id: str) -> None:
        self.fence.check()
        self.inner.power_off(vm_id)

    def create_test_copy(self, replica_id: str, point_id: str, key: str, **options: object) -> str:
        """Fenced; ``options`` (a backend's optional ``guest_ips``) are handed on as given."""
        self.fence.check()
        create: Any = self.inner.create_test_copy
        return str(create(replica_id, point_id, key, **options))

    def remove_test_copy(self, vm_id: str) -> None:
        self.fence.check()
        self.inner.remove_test_copy(vm_id)

    def restart_on_host(self, vm_id: str, host: str) -> None:
        self.fence.check()
        self.inner.restart_on_host(vm_id, host)

    def migrate_vm(self, vm_id: str, host: str) -> None:
        self.fence.check()
        self.inner.migrate_vm(vm_id, host)

    def commit_failover(self, replica_id: str) -> None:
        self.fence.check()
        self.inner.commit_failover(replica_id)

    def undo_failover(self, replica_id: str) -> None:
        self.fence.check()
        self.inner.undo_failover(replica_id)

    def reverse_replication(self, replica_id: str) -> Replica:
        self.fence.check()
        return self.inner.reverse_replication(replica_id)
