"""What happens to a memory-backend world from outside the management plane.

Workloads write to disks, hosts and whole sites lose power or their network and come back, and
guests boot slowly or never. Tests and the lab play these events; the engine never calls them.
Disk comparisons live here too, so "no data lost" is a fact a test can check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from types import MappingProxyType

import attrs

from vmfailover.backends.memory.store import (
    DAMAGE_BLOCK,
    Disk,
    MemoryStore,
    VMRecord,
    differing_blocks,
)
from vmfailover.clock import VirtualClock
from vmfailover.errors import ConflictError, ValidationError
from vmfailover.model import (
    ConnectionState,
    PowerState,
    as_flag,
    as_items,
    aware_utc,
    parse_seconds,
)

__all__ = ["WorldEvents"]

_REWRITES = 100  # writes per block of a disk after which every block is rewritten


class WorldEvents:
    """The world-events half of :class:`~vmfailover.backends.memory.MemoryBackend`."""

    _store: MemoryStore

    # --- disks -----------------------------------------------------------------------------------

    def write(self, vm_id: str, blocks: int | Iterable[int] = 1) -> tuple[int, ...]:
        """Write to a VM's disk: ``blocks`` random blocks, or the given block numbers.

        Returns the block numbers written. The VM must be running on an available host. More
        than a hundred times the disk's blocks are written as that many: after those, every
        block has been rewritten (but with odds below e**-100).
        """
        with self._store.lock:
            return self._write(self._store.vm(vm_id), blocks)

    def _write(self, record: VMRecord, blocks: int | Iterable[int]) -> tuple[int, ...]:
        store = self._store
        store.require_reachable(record)
        if not record.running:
            raise ConflictError(f"cannot write to VM {record.vm.name!r}: it is powered off")
        return self._write_blocks(record, blocks)

    def _write_blocks(self, record: VMRecord, blocks: int | Iterable[int]) -> tuple[int, ...]:
        store = self._store
        size = record.blocks
        if isinstance(blocks, int) and not isinstance(blocks, bool) and blocks >= 0:
            count = min(blocks, _REWRITES * size)
            chosen = tuple(store.rng.randrange(size) for _ in range(count))
        else:
            item = f"write to {record.vm.id!r} blocks"
            chosen = as_items(blocks, int, item, "a block number")
            if any(isinstance(b, bool) or not 0 <= b < size for b in chosen):
                raise ValidationError.of(item, f"block numbers run from 0 to {size - 1}")
        for block in chosen:
            record.disk[block] = store.next_version()
        return chosen

    def run_workload(self, seconds: float) -> None:
        """Let ``seconds`` pass: every running VM writes ``write_rate`` blocks per second.

        Guests on an isolated host keep writing (that is what makes split brain dangerous); only
        a host's power stops them. Advances the clock when it is a :class:`VirtualClock`.
        """
        seconds = parse_seconds(seconds, "run_workload seconds", allow_zero=True)
        store = self._store
        with store.lock:
            for record in store.writers():
                if record.running and store.host(record.vm.host).power is PowerState.ON:
                    count = int(record.write_rate * seconds)
                    if count:
                        self._write_blocks(record, count)
        if isinstance(store.clock, VirtualClock):
            store.clock.advance(seconds)

    def disk(self, vm_id: str) -> Disk:
        """A read-only copy of the VM's disk, for comparisons."""
        with self._store.lock:
            return MappingProxyType(dict(self._store.vm(vm_id).disk))

    def point_disk(self, point_id: str) -> Disk:
        """A recovery point's disk, read-only (it never changes)."""
        with self._store.lock:
            return MappingProxyType(self._store.point(point_id).disk)

    def data_loss_blocks(self, source_vm_id: str, point_id: str) -> int:
        """How many blocks of the source's disk differ from the recovery point: what a failover
        to that point loses (written after the point, or after the final sync)."""
        with self._store.lock:
            source = self._store.vm(source_vm_id).disk
            return len(differing_blocks(source, self._store.point(point_id).disk))

    def damage(self, vm_id: str, since: datetime | None = None) -> tuple[str, ...]:
        """A lab fault: the VM's disk is damaged (encrypted, corrupted) from ``since`` (default:
        now) on. The damage is in the source's disk and in every recovery point of its replica
        taken at or after ``since``, travels with later syncs, and is in any copy or failover of
        such a point (:meth:`damaged` tells). Returns the ids of the damaged points."""
        store = self._store
        with store.lock:
            record = store.vm(vm_id)
            now = store.clock.now()
            moment = now if since is None else aware_utc(since, "damage since")
            if moment > now:
                raise ValidationError.of("damage since", f"{moment} is in the future")
            record.disk[DAMAGE_BLOCK] = DAMAGE_BLOCK
            replica = store.replica_of(vm_id)
            hit: list[str] = []
            for point in store.points_of(replica.id) if replica is not None else ():
                if point.point.created_at >= moment:
                    assert replica is not None
                    target = store.vm(replica.replica_vm)
                    if target.disk == point.disk:
                        target.disk[DAMAGE_BLOCK] = DAMAGE_BLOCK
                    store.damage_point(point.point.id)
                    hit.append(point.point.id)
            return tuple(hit)

    def damaged(self, vm_id: str) -> bool:
        """Whether this VM's disk (a source, a replica VM, a test copy) carries damage."""
        with self._store.lock:
            return DAMAGE_BLOCK in self._store.vm(vm_id).disk

    def split_brains(self) -> tuple[str, ...]:
        """Every moment a VM was powered on while the VM at the other end of one of its replicas
        (either direction) ran: both copies of one machine alive at once. Recorded as the power
        changes, so a split brain that lasted an instant is caught too; empty when none was."""
        with self._store.lock:
            return tuple(self._store.split_brains)

    @staticmethod
    def blocks_differing(a: Disk, b: Disk) -> int:
        """How many blocks differ between two disks."""
        if not isinstance(a, Mapping) or not isinstance(b, Mapping):
            raise ValidationError.of("blocks_differing", "compares two disks (block -> version)")
        return len(differing_blocks(a, b))

    # --- guests ----------------------------------------------------------------------------------

    def set_boot(self, vm_id: str, *, seconds: float | None = None, boots: bool = True) -> None:
        """How long the guest takes to become ready; ``boots=False`` means it never does."""
        if seconds is not None:
            seconds = parse_seconds(seconds, f"set_boot {vm_id!r} seconds", allow_zero=True)
        as_flag(boots, f"set_boot {vm_id!r} boots")
        with self._store.lock:
            record = self._store.vm(vm_id)
            if seconds is not None:
                record.boot_seconds = seconds
            record.boots = boots

    # --- hosts and sites -------------------------------------------------------------------------

    def fail_host(self, name: str) -> None:
        """The host loses power: it stops answering and its VMs are off."""
        store = self._store
        with store.lock:
            self._change_host(name, power=PowerState.OFF, connection=ConnectionState.NOT_RESPONDING)
            for record in store.vms_on(name):
                store.set_power(record, PowerState.OFF)

    def isolate_host(
        self,
        name: str,
        response: str = "leave_powered_on",
        *,
        shutdown_timeout: float = 300.0,
    ) -> None:
        """The management network loses the host: nothing reaches it or its VMs, and the host's
        HA agent applies its isolation ``response`` (vSphere HA's; an ``IsolationResponse`` or
        its value).

        ``leave_powered_on`` (the default): the VMs keep running. ``power_off``: the agent powers
        them off at once. ``shutdown``: it shuts each guest down, which takes the VM's
        ``shutdown_seconds``; a guest that is slower than ``shutdown_timeout`` seconds (vSphere's
        ``das.isolationshutdowntimeout``, 300 s by default) or never shuts down (``set_boot(...,
        boots=False)``: a guest that hangs) is powered off once the timeout has passed. Stops
        that are due take effect on the next look at the world (the inventory, a VM); they are
        dropped if the host answers again first. A stopped VM no longer holds its disks, so the
        survivors may restart it.
        """
        chosen = _isolation_response(response)
        timeout = parse_seconds(shutdown_timeout, "isolate_host shutdown_timeout", allow_zero=True)
        store = self._store
        with store.lock:
            self._change_host(name, connection=ConnectionState.NOT_RESPONDING)
            if chosen == "leave_powered_on":
                return
            for record in store.vms_on(name):
                if not record.running:
                    continue
                if chosen == "power_off":
                    store.set_power(record, PowerState.OFF)
                    continue
                takes = record.shutdown_seconds if record.boots else float("inf")
                store.due_stops[record.vm.id] = (
                    name,
                    store.clock.monotonic() + min(takes, timeout),
                )
            store.settle_stops()  # a shutdown that takes no time is done now

    def restore_host(self, name: str) -> None:
        """Power and connection come back (VMs stay as they are: off after a power loss or an
        isolation response; an isolation shutdown not yet done is abandoned)."""
        with self._store.lock:
            self._change_host(name, power=PowerState.ON, connection=ConnectionState.CONNECTED)
            self._store.settle_stops()

    def _change_host(
        self, name: str, *, connection: ConnectionState, power: PowerState | None = None
    ) -> None:
        host = self._store.host(name)
        changed = attrs.evolve(
            host, connection=connection, power=host.power if power is None else power
        )
        self._store.replace_host(changed)

    def fail_site(self, site: str) -> None:
        """Every host of the site loses power (a disaster)."""
        self._each_host_at(site, self.fail_host)

    def isolate_site(self, site: str, response: str = "leave_powered_on") -> None:
        """The site is cut off but still running (the split-brain scenario); each host applies
        the isolation ``response`` as :meth:`isolate_host` does."""
        chosen = _isolation_response(response)
        self._each_host_at(site, lambda host: self.isolate_host(host, chosen))

    def _each_host_at(self, site: str, action: Callable[[str], None]) -> None:
        with self._store.lock:
            for host in self._store.hosts_at(site):
                action(host.name)


_ISOLATION_RESPONSES = ("leave_powered_on", "shutdown", "power_off")


def _isolation_response(value: object) -> str:
    """An isolation response's value (the backend does not import the policy's enum, whose
    members are these strings)."""
    if isinstance(value, str) and value.strip().lower() in _ISOLATION_RESPONSES:
        return value.strip().lower()
    allowed = ", ".join(repr(choice) for choice in _ISOLATION_RESPONSES)
    raise ValidationError.of("isolate_host response", f"{value!r} is not one of {allowed}")
