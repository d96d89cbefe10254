"""Which run holds which VMs and replicas, so that two runs never act on the same ones.

Two failovers started at once on one backend would both pass their pre-flight and each revert
every replica. A run therefore claims the source VMs, replicas and replica VMs it will touch for
its duration (a test run until its cleanup), and a second run that touches any of them is refused
with a :class:`~vmfailover.errors.ConflictError` naming the run that holds them. Claims are per
backend object and per process; across processes the journal extends this.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from vmfailover._render import listing
from vmfailover.errors import ConflictError

if TYPE_CHECKING:
    from vmfailover.plan import CompiledPlan

__all__ = ["Claims", "claims_for", "touched_ids"]


class Claims:
    """The claims on one backend: object id -> the run that holds it."""

    def __init__(self) -> None:
        self._held: dict[str, str] = {}
        self._lock = threading.Lock()

    def claim(self, run_id: str, ids: Iterable[str]) -> None:
        """Claim every id for ``run_id``, or none of them (ConflictError naming the holders)."""
        wanted = list(dict.fromkeys(ids))
        with self._lock:
            taken = {
                key: self._held[key] for key in wanted if self._held.get(key, run_id) != run_id
            }
            if taken:
                holders = sorted(set(taken.values()))
                raise ConflictError(
                    f"run {holders[0]} holds {listing(sorted(taken))}"
                    + (f" (and runs {listing(holders[1:])} hold others)" if holders[1:] else "")
                    + f": run {run_id} cannot touch them until it ends"
                )
            for key in wanted:
                self._held[key] = run_id

    def release(self, run_id: str) -> None:
        with self._lock:
            for key in [k for k, holder in self._held.items() if holder == run_id]:
                del self._held[key]

    def holder(self, key: str) -> str | None:
        with self._lock:
            return self._held.get(key)


_registry: weakref.WeakKeyDictionary[object, Claims] = weakref.WeakKeyDictionary()
_by_id: dict[int, Claims] = {}
_registry_lock = threading.Lock()


def claims_for(backend: object) -> Claims:
    """The claims registry of ``backend`` (shared by every runner of that backend object)."""
    with _registry_lock:
        try:
            found = _registry.get(backend)
            if found is None:
                found = _registry[backend] = Claims()
        except TypeError:  # not weak-referenceable or not hashable: keep it by identity
            found = _by_id.setdefault(id(backend), Claims())
        return found


def touched_ids(compiled: CompiledPlan) -> list[str]:
    """What a run of ``compiled`` touches, so claims: each VM's source, replica and replica VM."""
    ids: list[str] = []
    for vm in compiled.vms:
        ids += [vm.source.id, vm.replica.id, vm.replica_vm.id]
    return ids
