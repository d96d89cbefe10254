"""A bandwidth-limited replication job on the vSphere backend, against the simulated vCenter.

The reference data mover (``FullCopyMover``) pays the job's token bucket for each disk's whole
provisioned size, in chunks of at most ``CHUNK`` bytes, before that disk's copy task starts. The
backend and the job share a virtual clock that stands still, so the only time that passes is the
bucket's waiting: what a sync paid, and how long it took in virtual seconds, are exact.

The VM has three disks: the simulator's 1 MiB one, 64 MiB, and 3.5 MiB (its last chunk a half).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from pyVmomi import vim

from vmfailover import Bandwidth, ReplicationJob, RetentionPolicy, Schedule, TokenBucket
from vmfailover.backends.vsphere import VSphereBackend
from vmfailover.backends.vsphere.movers import CHUNK
from vmfailover.clock import VirtualClock
from vmfailover.engine.replication_results import JobOutcome, SyncOutcome
from vmfailover.testing.vcsim import VCSim, VCSimInventory
from vmfailover.testing.vcsim.fixtures import TEMPLATE_VM
from vmfailover.testing.vcsim.scene import SceneBuilder

MiB = 1 << 20
EXTRA_DISKS = (("data", 64 * MiB), ("log", 3 * MiB + MiB // 2))
NETWORK = {"DC0_DVPG0": "DC1_DVPG0"}

_names = itertools.count(1)


@attrs.frozen
class Lab:
    backend: VSphereBackend
    clock: VirtualClock
    vm: str  # the source VM's name
    capacities: tuple[int, ...]  # its disks' sizes in bytes, in device order, as vCenter has them

    def job(self, **kwargs: Any) -> ReplicationJob:
        options: dict[str, Any] = {
            "name": f"job-{self.vm}",
            "vms": [self.vm],
            "target_host": "DC1_C0_H0",
            "target_datastore": "site-b/LocalDS_0",
            "schedule": Schedule(every="1h"),
            "retention": RetentionPolicy(last=4),
            "rpo": "2h",
            "network": NETWORK,
            "backend": self.backend,
        }
        options.update(kwargs)
        return ReplicationJob(**options)

    def replica(self) -> str:
        """A replica of the VM at site-b, created directly (no job)."""
        inventory = self.backend.inventory()
        return self.backend.create_replica(
            inventory.vm(self.vm).id, "DC1_C0_H0", "site-b/LocalDS_0", network_map=NETWORK
        ).id


def disk_sizes(builder: SceneBuilder, vm_name: str) -> tuple[int, ...]:
    devices = builder.vm(vm_name).config.hardware.device
    return tuple(
        int(d.capacityInKB) * 1024 for d in devices if isinstance(d, vim.vm.device.VirtualDisk)
    )


def three_disk_vm(sim: VCSim, source: str = TEMPLATE_VM) -> tuple[str, tuple[int, ...]]:
    name = f"bandwidth-{next(_names)}"
    with SceneBuilder(sim) as builder:
        builder.clone_vm(source, name, host="DC0_C0_H0")
        for label, size in EXTRA_DISKS:
            builder.add_disk(name, label, size)
        capacities = disk_sizes(builder, name)
    assert len(capacities) == 3
    return name, capacities


def backend_for(sim: VCSim, clock: VirtualClock) -> VSphereBackend:
    return VSphereBackend(
        [sim.vcenter("site-a", datacenter="DC0"), sim.vcenter("site-b", datacenter="DC1")],
        clock=clock,
    )


@pytest.fixture
def lab(vcsim_session: VCSim) -> Iterator[Lab]:
    name, capacities = three_disk_vm(vcsim_session)
    clock = VirtualClock()  # stands still: only the bucket's waits move it
    backend = backend_for(vcsim_session, clock)
    yield Lab(backend, clock, name, capacities)
    backend.close()


def chunks_of(capacities: tuple[int, ...]) -> list[int]:
    """What paying each disk on its own, in chunks of at most CHUNK, pays: disk by disk."""
    chunks = []
    for size in capacities:
        whole, rest = divmod(size, CHUNK)
        chunks += [CHUNK] * whole + ([rest] if rest else [])
    return chunks


# "256KiB/s" is a limit smaller than one chunk: each 1 MiB chunk waits 4 s once the burst (1 MiB,
# the least a bucket holds) is spent.
LIMITS = ["10MB/s", "256KiB/s"]


@pytest.mark.parametrize("limit", LIMITS)
def test_a_limited_job_pays_every_disk_and_keeps_to_the_limit(lab: Lab, limit: str) -> None:
    total = sum(lab.capacities)
    bandwidth = Bandwidth.parse(limit)
    rate, burst = bandwidth.bytes_per_second, bandwidth.burst_bytes
    job = lab.job(bandwidth=limit)
    bucket = job.token_bucket
    assert bucket is not None

    for run in (1, 2):  # the second run syncs a replica that exists: a full copy again
        started = lab.clock.monotonic()
        result = job.run()
        elapsed = lab.clock.monotonic() - started
        assert result.outcome is JobOutcome.SUCCEEDED, result
        synced = result.vm(lab.vm)
        assert synced.replica_created is (run == 1)
        assert synced.bytes_moved == total  # the whole provisioned size of the three disks
        assert result.notes == () and synced.warnings == ()  # enforced: nothing to warn about
        assert bucket.consumed == run * total  # every byte moved was paid for first
        # The bucket starts each sync full (an hour refills it): it lets one burst through at
        # once, then exactly the rate. So the sync took the shortfall's time, and over the sync
        # the bytes paid stayed within rate x elapsed + burst, the documented bound.
        assert elapsed == pytest.approx((total - burst) / rate)
        assert total <= rate * elapsed + burst + 1e-6 * total
        assert result.duration_seconds == pytest.approx(elapsed, abs=1e-3)
        assert synced.point_time is not None
        assert (synced.point_time - result.started_at).total_seconds() == pytest.approx(
            elapsed, abs=1e-3
        )  # the point is made after the data moved, not before
        lab.clock.advance(3600)
    assert bucket.waited == pytest.approx(2 * (total - burst) / rate)


def test_an_unlimited_job_pays_nothing_and_waits_for_nothing(lab: Lab) -> None:
    job = lab.job()
    assert job.token_bucket is None
    started = lab.clock.monotonic()
    result = job.run()
    assert result.outcome is JobOutcome.SUCCEEDED, result
    assert result.bytes_moved == sum(lab.capacities)
    assert lab.clock.monotonic() == started  # no bucket, no wait: vCenter's speed
    assert result.bandwidth is None and result.notes == ()


@attrs.define
class Recorder:
    """The job's throttle as the mover sees it: a token bucket, each payment noted with the
    virtual instant it was granted (when its bytes may move)."""

    bucket: TokenBucket
    clock: VirtualClock
    paid: list[tuple[int, float]] = attrs.field(factory=list)

    def consume(self, nbytes: int) -> None:
        self.bucket.consume(nbytes)
        self.paid.append((nbytes, self.clock.monotonic()))


@pytest.mark.parametrize("limit", LIMITS)
def test_each_disk_is_paid_on_its_own_in_chunks_and_no_window_exceeds_the_limit(
    lab: Lab, limit: str
) -> None:
    replica = lab.replica()
    bandwidth = Bandwidth.parse(limit)
    recorder = Recorder(TokenBucket(bandwidth, lab.clock), lab.clock)
    point = lab.backend.sync(replica, throttle=recorder)
    sizes = [nbytes for nbytes, _ in recorder.paid]
    assert point.size_bytes == sum(sizes) == sum(lab.capacities)
    # Disk by disk: the 3.5 MiB disk ends with its own half chunk, not merged into another's.
    assert sizes == chunks_of(lab.capacities)
    assert max(sizes) <= CHUNK
    # Over every window between two grants, what was granted stays within rate x w + burst.
    rate, burst = bandwidth.bytes_per_second, bandwidth.burst_bytes
    times = [at for _, at in recorder.paid]
    for first in range(len(sizes)):
        granted = 0
        for last in range(first, len(sizes)):
            granted += sizes[last]
            window = times[last] - times[first]
            assert granted <= rate * window + burst + 1e-6, (first, last, granted, window)


# --- a limit far too low -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_tasks_sim() -> Iterator[VCSim]:
    """A simulator whose tasks run for 200 ms, as real ones take time, so the order in which a
    sync's tasks ran (and whether one started before another ended) shows in their times."""
    inventory = VCSimInventory(datacenters=2, clusters=1, cluster_hosts=1, vms=1)
    with VCSim(inventory, task_delay=200) as sim:
        yield sim


def task_times(builder: SceneBuilder) -> list[dict[str, Any]]:
    """The simulator's recent tasks, oldest first: what ran on what, when."""
    content = builder.content
    paths = ["info.descriptionId", "info.state", "info.startTime", "info.completeTime"]
    # Read as paths: a disk copy's task names the VirtualDiskManager as its entity, which
    # pyVmomi refuses when it reads the whole TaskInfo.
    spec = vim.PropertyCollector.FilterSpec(
        objectSet=[vim.PropertyCollector.ObjectSpec(obj=t) for t in content.taskManager.recentTask],
        propSet=[vim.PropertyCollector.PropertySpec(type=vim.Task, pathSet=paths)],
    )
    tasks = [
        {prop.name.removeprefix("info."): prop.val for prop in found.propSet}
        for found in content.propertyCollector.RetrieveContents([spec])
    ]
    return sorted(tasks, key=lambda task: task["startTime"])


def test_a_limit_too_low_fails_the_vm_clearly_after_its_started_copies_end(
    slow_tasks_sim: VCSim,
) -> None:
    name, capacities = three_disk_vm(slow_tasks_sim, source="DC0_C0_RP0_VM0")
    clock = VirtualClock()
    with backend_for(slow_tasks_sim, clock) as backend:
        lab = Lab(backend, clock, name, capacities)
        # 100 B/s: the 1 MiB burst pays for the first disk; the next chunk would wait 10,486 s,
        # past the bucket's hour, and so would any retry's: the sync fails at once, for good.
        job = lab.job(bandwidth="100B/s")
        result = job.run()
        assert result.outcome is JobOutcome.FAILED
        failed = result.vm(name)
        assert failed.outcome is SyncOutcome.FAILED
        assert failed.reason is not None
        assert (
            "bandwidth limit 100 B/s: a chunk of 1048576 bytes takes 10486 s at this limit, "
            "longer than 3600 s: raise the limit or move smaller chunks"
        ) in failed.reason
        # Its calls: the inventory, the replica, its points (room for one more) and one sync: no
        # retry (with the retries of a transient error it made 8).
        assert failed.attempts == 4
        assert failed.point_id is None
        assert failed.replica_id is not None
        assert backend.recovery_points(failed.replica_id) == ()
        bucket = job.token_bucket
        assert bucket is not None and bucket.consumed == capacities[0]  # the first disk only
    with SceneBuilder(slow_tasks_sim) as builder:
        assert builder.vm(name).snapshot is None  # every sync's freeze was released
        tasks = task_times(builder)
    copies = [t for t in tasks if t["descriptionId"] == "VirtualDiskManager.copyVirtualDisk"]
    assert len(copies) == 1  # the first disk's, started before the second disk's wait failed
    copy = copies[0]
    assert copy["state"] == "success"
    # The source's freeze is released only after the copy that reads it has ended.
    release = next(
        t
        for t in tasks
        if t["descriptionId"] == "VirtualMachine.removeSnapshot"
        and t["startTime"] >= copy["startTime"]
    )
    assert release["startTime"] >= copy["completeTime"], (copy, release)
