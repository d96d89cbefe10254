"""Replication follows VMs that move between hosts of a cluster: VMs are keyed by stable id, so a
source VM moved (live, or restarted elsewhere by a host failover) between two syncs keeps its
replica and its next sync moves only the blocks that changed."""

from __future__ import annotations

import pytest

from vmfailover import (
    ClusterPolicy,
    MemoryBackend,
    ReplicationJob,
    RetentionPolicy,
    Runner,
    SyncOutcome,
)
from vmfailover.backends.memory import BLOCK_SIZE
from vmfailover.testing import lab


def job_for(backend: MemoryBackend, vm: str) -> ReplicationJob:
    return ReplicationJob(
        "follow",
        [vm],
        "esx-b1",
        "ds-b1",
        schedule={"every": "15m"},
        retention=RetentionPolicy(last=8),
        rpo="30m",
        backend=backend,
    )


@pytest.mark.parametrize("move", ["live", "host failure"])
def test_a_source_vm_that_moved_keeps_replicating_changed_blocks_only(move: str) -> None:
    backend = lab()
    db01 = backend.inventory().vm("db01")
    assert db01.host == "esx-a1"
    job = job_for(backend, "db01")
    first = job.run().vms[0]
    assert first.outcome is SyncOutcome.SYNCED
    replica = backend.inventory().replica_of(db01.id)
    assert first.replica_id == replica.id

    if move == "live":
        backend.migrate_vm(db01.id, "esx-a3")
    else:
        backend.fail_host("esx-a1")
        report = Runner(backend, poll_interval=2.0).host_failover(
            "prod-cluster", "esx-a1", ClusterPolicy(), vms=["db01"]
        )
        assert report.vm("db01").restarted
    moved = backend.inventory().vm(db01.id)
    assert moved.host == "esx-a3"
    written = set(backend.write(db01.id, [1, 2, 3, 2000]))

    second = job.run().vms[0]
    assert second.outcome is SyncOutcome.SYNCED
    assert (second.vm_id, second.replica_id) == (db01.id, replica.id)
    assert not second.replica_created, "no new replica: the same VM, on another host"
    assert second.bytes_moved == len(written) * BLOCK_SIZE, "changed blocks only, no full resync"
    assert second.bytes_moved < moved.disk_bytes // 100
    point = backend.recovery_points(replica.id)[-1]
    assert point.id == second.point_id
    assert backend.blocks_differing(backend.point_disk(point.id), backend.disk(db01.id)) == 0
