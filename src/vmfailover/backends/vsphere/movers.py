"""How disk data moves from a source VM to its replica on each sync: the ``DataMover`` seam.

The backend freezes the source (a snapshot), hands the mover a :class:`TransferJob` naming the
frozen source disks and the replica's current disks, then records the recovery point as a
snapshot of the replica. A backup product that embeds vmfailover plugs in its own mover (changed
block tracking through VDDK, its proxies, its WAN acceleration); vmfailover ships one reference
mover, :class:`FullCopyMover`, whose cost is stated plainly below.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from vmfailover.backends.base import Throttle
from vmfailover.backends.vsphere.connection import VCenterConnection
from vmfailover.backends.vsphere.tasks import wait_for_tasks
from vmfailover.errors import PermanentBackendError

__all__ = ["CHUNK", "DataMover", "DiskPair", "FullCopyMover", "TransferJob", "pay"]

_log = logging.getLogger("vmfailover.backends.vsphere")


@attrs.frozen
class DiskPair:
    """A source disk (frozen by the sync's snapshot) and the replica disk it is copied onto."""

    source_file: str  # "[datastore] folder/disk.vmdk"
    replica_file: str
    capacity_bytes: int
    source_disk_key: int
    replica_disk_key: int


@attrs.frozen
class TransferJob:
    """One sync's data movement.

    ``source_snapshot`` freezes the source VM's disks for the transfer (the files in ``disks``
    are the ones it froze); ``replica_vm`` is powered off and is snapshotted after the transfer.
    Managed objects are bound to their connections. ``changed_since`` is the snapshot the
    previous sync froze the source with when the backend still has it (for changed-block
    queries), else None. ``throttle`` (a replication job's bandwidth limit) is paid before bytes
    move, in chunks of at most :data:`CHUNK` bytes.
    """

    source: VCenterConnection
    target: VCenterConnection
    source_vm: Any
    source_snapshot: Any
    source_datacenter: Any
    replica_vm: Any
    target_datacenter: Any
    disks: Sequence[DiskPair]
    what: str
    throttle: Throttle | None = None


@runtime_checkable
class DataMover(Protocol):
    """Moves a sync's data; returns how many bytes it moved (what the point reports as size)."""

    def transfer(self, job: TransferJob) -> int: ...


class FullCopyMover:
    """The reference mover: copy every source disk whole onto the replica's current disk.

    What it costs, honestly: every sync reads and writes the **whole provisioned size** of every
    disk (no changed-block tracking), through vCenter's ``CopyVirtualDisk_Task``, one task per
    disk, all awaited together. The replica's snapshot chain keeps each recovery point's copy,
    so every point costs a full disk of datastore space. It works only when source and target
    are managed by the **same vCenter** (VirtualDiskManager cannot copy between vCenters); a
    product that replicates between two vCenters plugs in a mover with a data path of its own.
    It is right for tests, labs and small VMs; it is not a replication engine for production.
    A bandwidth limit is honoured per disk: the whole disk is paid for (in chunks) before its copy
    task starts, so the average rate holds while each copy itself runs at vCenter's speed.
    """

    def transfer(self, job: TransferJob) -> int:
        if job.source is not job.target and not _same_vcenter(job.source, job.target):
            raise PermanentBackendError(
                f"{job.what}: FullCopyMover copies within one vCenter, but the source is on "
                f"{job.source.label} and the replica on {job.target.label}; give the backend "
                "a data_mover that moves data between vCenters"
            )
        manager = job.target.content.virtualDiskManager
        tasks: list[Any] = []
        whats: list[str] = []
        try:
            for pair in job.disks:
                what = f"{job.what}: copying {pair.source_file} onto {pair.replica_file}"
                if job.throttle is not None:
                    pay(job.throttle, pair.capacity_bytes)
                tasks.append(
                    job.target.invoke(
                        what,
                        manager.CopyVirtualDisk_Task,
                        sourceName=pair.source_file,
                        sourceDatacenter=job.source_datacenter,
                        destName=pair.replica_file,
                        destDatacenter=job.target_datacenter,
                        force=True,
                    )
                )
                whats.append(what)
        except BaseException:
            _let_copies_end(job, tasks, whats)
            raise
        for outcome in wait_for_tasks(job.target, tasks, whats):
            outcome.unwrap()
        return sum(pair.capacity_bytes for pair in job.disks)


CHUNK = 1 << 20
"""The most a mover pays a throttle for at once (a block)."""


def pay(throttle: Throttle, nbytes: int) -> None:
    """Pay ``throttle`` for ``nbytes`` in chunks, as a data path does before moving them."""
    left = nbytes
    while left > 0:
        chunk = min(CHUNK, left)
        throttle.consume(chunk)
        left -= chunk


def _let_copies_end(job: TransferJob, tasks: Sequence[Any], whats: Sequence[str]) -> None:
    """A later disk could not start (its bandwidth wait too long, vCenter refusing the copy):
    the copies already started read the source's frozen disks, so they must end before the
    caller releases the snapshot that froze them. What they did no longer matters; the error
    that stopped the transfer is the one reported."""
    if not tasks:
        return
    try:
        wait_for_tasks(job.target, tasks, whats)
    except Exception as error:  # a wait that fails too must not hide the first error
        _log.warning("%s: started copies not seen to end: %s", job.what, error)


def _same_vcenter(a: VCenterConnection, b: VCenterConnection) -> bool:
    return str(a.content.about.instanceUuid) == str(b.content.about.instanceUuid)
