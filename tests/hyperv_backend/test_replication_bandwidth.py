"""A bandwidth-limited replication job through the real Hyper-V backend, over real HTTP.

Hyper-V Replica moves the data itself, so the backend accepts the job's throttle and never calls
it. What a user must be told is that the limit was not enforced: in the run's notes, in each
VM's warnings, and in the journal's record of the run.
"""

from __future__ import annotations

from pathlib import Path

from vmfailover import FencedBackend, ReplicationJob, RetentionPolicy, Schedule, SQLiteJournal
from vmfailover.engine.replication_results import JobOutcome, SyncOutcome

from .conftest import World, add_vm

NOT_ENFORCED = (
    "bandwidth limit 50 MB/s not enforced by us for {vms}: "
    "the hyperv backend's hypervisor moves the data"
)


def job(world: World, vms: list[str], **kwargs: object) -> ReplicationJob:
    options: dict[str, object] = {
        "name": "tier1",
        "vms": vms,
        "target_host": "hv-b",
        "target_datastore": "hv-b-storage",
        "schedule": Schedule(every="15m"),
        "retention": RetentionPolicy(last=3),
        "rpo": "30m",
        "network": {"Prod": "DR-Prod"},
        "backend": world.backend,
    }
    options.update(kwargs)
    return ReplicationJob(**options)  # type: ignore[arg-type]


def test_a_limited_job_says_the_limit_is_not_enforced_and_pays_nothing(
    world: World, tmp_path: Path
) -> None:
    # On Hyper-V a replica carries its source's name, so the job names its VMs by id.
    db, app = add_vm(world, "db01"), add_vm(world, "app01")
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        limited = job(world, [db, app], bandwidth="50MB/s", journal=journal)
        first = limited.run()  # creates the replicas and makes their initial points
        world.write(db)
        world.wait(900)
        second = limited.run()  # a sync of replicas that already replicate

        for result in (first, second):
            assert result.outcome is JobOutcome.SUCCEEDED, result
            assert result.bandwidth == "50 MB/s"
            assert result.notes == (NOT_ENFORCED.format(vms=f"{db}, {app}"),)
            for vm in result.vms:
                assert vm.outcome is SyncOutcome.SYNCED
                assert vm.point_id is not None
                assert vm.warnings == (
                    "bandwidth limit not enforced: the hypervisor moves the data",
                ), vm
        assert [vm.replica_created for vm in first.vms] == [True, True]
        assert [vm.replica_created for vm in second.vms] == [False, False]

        bucket = limited.token_bucket
        assert bucket is not None
        assert (bucket.consumed, bucket.waited) == (0, 0.0)  # the throttle was never called

        recorded = journal.replication_runs("tier1")
        assert [run.run_id for run in recorded] == [first.run_id, second.run_id]
        for stored, returned in zip(recorded, (first, second), strict=True):
            assert stored.notes == returned.notes
            assert [vm.warnings for vm in stored.vms] == [vm.warnings for vm in returned.vms]
            assert "not enforced" in str(stored)  # the rendered run says it too


def test_an_unlimited_job_has_nothing_to_say_about_bandwidth(world: World) -> None:
    vm = add_vm(world, "web01")
    unlimited = job(world, [vm], name="tier2")
    result = unlimited.run()
    assert result.outcome is JobOutcome.SUCCEEDED, result
    assert result.bandwidth is None
    assert result.notes == ()
    assert result.vms[0].warnings == ()
    assert unlimited.token_bucket is None


class _Held:
    """A fence that always holds (the lease is ours): fencing is not what is tested here."""

    def check(self) -> None:
        return None


def test_through_a_fenced_backend_the_job_still_says_so(world: World) -> None:
    vm = add_vm(world, "dc01")
    fenced = FencedBackend(world.backend, _Held())
    result = job(world, [vm], bandwidth="50MB/s", backend=fenced).run()
    assert result.outcome is JobOutcome.SUCCEEDED, result
    assert result.notes == (NOT_ENFORCED.format(vms=vm),)
