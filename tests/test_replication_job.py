"""Replication jobs: checked when built, one pass per run, every VM on its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from vmfailover import (
    VM,
    ConflictError,
    JobOutcome,
    JobStarted,
    MemoryBackend,
    NetworkMapping,
    Nic,
    RecoveryPoint,
    ReplicationEvent,
    ReplicationJob,
    RetentionPolicy,
    RetryPolicy,
    Schedule,
    SyncOutcome,
    ValidationError,
    VirtualClock,
)
from vmfailover.backends.memory import BLOCK_SIZE
from vmfailover.testing import lab

START = datetime(2024, 6, 3, tzinfo=UTC)
VMS = ("vm1", "vm2", "vm3")


def scene(limit: int | None = None) -> MemoryBackend:
    """Three running VMs at site a, no replicas yet; site b has a DR network."""
    backend = MemoryBackend(clock=VirtualClock(START), recovery_point_limit=limit)
    for site, network in (("a", "Prod"), ("b", "DR")):
        backend.add_site(site)
        backend.add_datastore(f"ds-{site}", site)
        backend.add_network(network, site)
        backend.add_host(f"h-{site}", site, datastores=(f"ds-{site}",), networks=(network,))
    for number, name in enumerate(VMS, start=1):
        vm = VM(
            id=name,
            name=name,
            host="h-a",
            power_state="on",
            nics=(Nic(mac=f"00:50:56:00:00:{number:02x}", network="Prod"),),
            datastore="ds-a",
            disk_bytes=8 * BLOCK_SIZE,
        )
        backend.add_vm(vm)
    return backend


def job(on: MemoryBackend, **kwargs: object) -> ReplicationJob:
    options: dict[str, object] = {
        "name": "tier1",
        "vms": VMS,
        "target_host": "h-b",
        "target_datastore": "ds-b",
        "schedule": Schedule(every="15m"),
        "retention": RetentionPolicy(last=3),
        "rpo": "30m",
        "network": {"Prod": "DR"},
        "backend": on,
    }
    options.update(kwargs)
    return ReplicationJob(**options)  # type: ignore[arg-type]


# --- building ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "item"),
    [
        ({"every": "0m"}, "job 'tier1': schedule.every"),
        ({"cron": "61 * * * *"}, "job 'tier1': schedule.cron"),
        ({"cron": "every day"}, "job 'tier1': schedule.cron"),
        ({"daily": "25:00"}, "job 'tier1': schedule.daily"),
        ("15m", "job 'tier1': schedule"),
    ],
)
def test_bad_schedules_name_the_job_and_the_field(schedule: object, item: str) -> None:
    with pytest.raises(ValidationError) as caught:
        job(scene(), schedule=schedule)
    assert [finding.item for finding in caught.value.findings] == [item]


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        job(
            scene(),
            vms=["vm1", "vm1", ""],
            rpo="0m",
            bandwidth="fast",
            priority=9,
            application_consistent="yes",
            target_host="",
        )
    items = [finding.item for finding in caught.value.findings]
    assert items == [
        "job 'tier1': vms[1]",
        "job 'tier1': vms[2]",
        "job 'tier1': target_host",
        "job 'tier1': rpo",
        "job 'tier1': application_consistent",
        "job 'tier1': bandwidth",
        "job 'tier1': priority",
    ]


def test_a_policy_that_can_exceed_the_backends_cap_is_refused_naming_the_rules() -> None:
    with pytest.raises(ValidationError) as caught:
        job(scene(limit=24), retention=RetentionPolicy(last=4, hourly=24, daily=7))
    items = [finding.item for finding in caught.value.findings]
    assert items == [
        "job 'tier1': retention rule hourly",
        "job 'tier1': retention rule daily",
        "job 'tier1': retention rule last",
    ]
    assert "over the limit of 24" in str(caught.value)
    assert "holds at most 24 recovery points" in str(caught.value)
    with pytest.raises(ValidationError, match="retention rule yearly"):
        job(scene(limit=24), retention=RetentionPolicy(yearly=-1))
    job(scene(limit=24), retention=RetentionPolicy(last=4, hourly=12, daily=7, weekly=4))


def test_a_job_needs_a_backend_and_says_what_it_is() -> None:
    with pytest.raises(ValidationError, match="is not a backend"):
        job(scene(), backend="memory")
    built = job(scene(), bandwidth="50MB/s")
    assert repr(built) == (
        "ReplicationJob('tier1', 3 VMs -> h-b, every 15m, rpo 30m, bandwidth 50 MB/s)"
    )


# --- one run -------------------------------------------------------------------------------------


def test_a_run_creates_replicas_with_mapped_networks_and_reports_each_vm() -> None:
    backend = scene()
    tier1 = job(backend, network=NetworkMapping(production={"Prod": "DR"}))
    result = tier1.run()
    assert result.outcome is JobOutcome.SUCCEEDED
    assert [r.vm for r in result.vms] == list(VMS)
    first = result.vm("vm1")
    assert first.outcome is SyncOutcome.SYNCED
    assert first.replica_created
    assert first.bytes_moved == 8 * BLOCK_SIZE
    assert first.kept == 1
    assert result.points_created == 3
    assert result.bytes_moved == 24 * BLOCK_SIZE
    replica = backend.inventory().replica_of("vm1")
    assert backend.inventory().vm(replica.replica_vm).nics[0].network == "DR"
    # The second run finds the replicas and moves only what changed.
    backend.write("vm1", [0, 1])
    again = tier1.run()
    assert not again.vm("vm1").replica_created
    assert again.vm("vm1").bytes_moved == 2 * BLOCK_SIZE
    assert again.vm("vm2").bytes_moved == 0
    json.loads(again.to_json())
    assert "tier1" in str(again)
    assert "<table" in again._repr_html_()


def test_retention_removes_what_the_policy_removes_with_the_reason() -> None:
    backend = scene()
    tier1 = job(backend, retention=RetentionPolicy(last=2))
    results = []
    for _ in range(4):
        results.append(tier1.run())
        backend.clock.advance(900)
    last = results[-1].vm("vm1")
    assert last.kept == 2
    assert [point.point_id for point in last.removed] == [results[1].vm("vm1").point_id]
    assert last.removed[0].reason == "kept by no rule of the retention policy"
    assert results[-1].points_removed == 3


def test_retention_never_removes_the_newest_or_only_point() -> None:
    backend = scene()
    tier1 = job(backend, retention=RetentionPolicy(tags=["keep"]))  # keeps no untagged point
    for _ in range(3):
        result = tier1.run()
        backend.clock.advance(900)
        assert result.vm("vm1").kept == 1
        assert result.vm("vm1").point_id is not None
    replica = backend.inventory().replica_of("vm1")
    assert [p.id for p in backend.recovery_points(replica.id)] == [result.vm("vm1").point_id]


@attrs.define
class PinningBackend:
    """The memory backend, with one recovery point reported as pinned (as a test failover would)."""

    inner: MemoryBackend
    pinned: set[str] = attrs.field(factory=set)
    name: str = "pinning"

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def recovery_points(self, replica_id: str) -> tuple[RecoveryPoint, ...]:
        until = START + timedelta(days=365)
        return tuple(
            attrs.evolve(point, pinned_until=until) if point.id in self.pinned else point
            for point in self.inner.recovery_points(replica_id)
        )


def test_retention_never_removes_a_pinned_point() -> None:
    inner = scene()
    backend = PinningBackend(inner)
    tier1 = job(backend, retention=RetentionPolicy(last=1))  # type: ignore[arg-type]
    first = tier1.run().vm("vm1").point_id
    assert first is not None
    backend.pinned.add(first)
    for _ in range(3):
        inner.clock.advance(900)
        result = tier1.run().vm("vm1")
    replica = inner.inventory().replica_of("vm1")
    assert {p.id for p in inner.recovery_points(replica.id)} == {first, result.point_id}


def test_at_the_backends_cap_the_job_makes_room_before_syncing() -> None:
    backend = scene(limit=3)
    tier1 = job(backend, retention=RetentionPolicy(last=3))
    for _ in range(6):
        result = tier1.run()
        backend.clock.advance(900)
        assert result.outcome is JobOutcome.SUCCEEDED, str(result)
        assert result.vm("vm1").kept <= 3


def test_transient_errors_are_retried_and_counted() -> None:
    backend = scene()
    tier1 = job(backend, retry=RetryPolicy(attempts=4, initial_wait=1, max_wait=5))
    tier1.run()
    backend.faults.fail("sync", target="replica-vm2", times=2)
    result = tier1.run()
    assert result.outcome is JobOutcome.SUCCEEDED
    assert result.vm("vm2").attempts == 3 + 1  # sync three times, then list the points
    assert result.vm("vm1").attempts == 2


def test_a_vm_that_keeps_failing_is_reported_and_the_others_go_on() -> None:
    backend = scene()
    tier1 = job(backend, vms=("vm1", "ghost", "vm2"), retry=RetryPolicy(attempts=2))
    backend.faults.fail("create_replica", target="vm1", times=5)
    result = tier1.run()
    assert result.outcome is JobOutcome.PARTIAL
    assert [r.outcome for r in result.vms] == [
        SyncOutcome.FAILED,
        SyncOutcome.FAILED,
        SyncOutcome.SYNCED,
    ]
    assert "injected transient failure" in (result.vm("vm1").reason or "")
    assert result.vm("vm1").attempts == 3  # inventory, then create_replica twice
    assert "no VM with id or name 'ghost'" in (result.vm("ghost").reason or "")
    assert "ghost" in str(result)


def test_a_job_never_runs_twice_at_once() -> None:
    backend = scene()
    tier1 = job(backend)
    refused: list[Exception] = []

    def run_again(event: ReplicationEvent) -> None:
        if isinstance(event, JobStarted):
            try:
                tier1.run()
            except ConflictError as error:
                refused.append(error)

    tier1.subscribe(run_again)
    tier1.run()
    assert len(refused) == 1
    assert "already running" in str(refused[0])
    assert not tier1.running


def test_a_subscriber_that_raises_changes_nothing() -> None:
    backend = scene()
    tier1 = job(backend)

    def broken(event: ReplicationEvent) -> None:
        raise RuntimeError("subscriber bug")

    tier1.subscribe(broken)
    assert tier1.run().outcome is JobOutcome.SUCCEEDED


def test_due_follows_the_schedule_and_catches_up_once() -> None:
    backend = scene()
    tier1 = job(backend)
    now = backend.clock.now()
    assert tier1.due(now)
    assert tier1.next_due(now) == now
    tier1.run(now)
    assert not tier1.due(now + timedelta(minutes=14))
    assert tier1.due(now + timedelta(minutes=15))
    later = now + timedelta(hours=5, minutes=3)
    assert tier1.due(later)
    tier1.run(later)
    assert tier1.next_due(later) == now + timedelta(hours=5, minutes=15)
    tier1.disable()
    assert not tier1.due(later + timedelta(days=1))
    assert tier1.next_due(later) is None
    tier1.enable()
    assert tier1.due(later + timedelta(days=1))


# --- bandwidth -----------------------------------------------------------------------------------


def _recorded_moves(limited: ReplicationJob) -> list[tuple[float, int]]:
    """Watch the job's token bucket: (clock time each chunk moves, bytes)."""
    bucket = limited._bucket
    assert bucket is not None
    moves: list[tuple[float, int]] = []
    consume = bucket.consume

    def watched(nbytes: int) -> None:
        consume(nbytes)
        moves.append((limited.clock.monotonic(), nbytes))

    bucket.consume = watched  # type: ignore[method-assign]
    return moves


def test_a_limited_job_moves_no_more_than_the_limit_times_any_window_plus_one_burst() -> None:
    backend = lab(start=START)
    limited = ReplicationJob(
        "limited",
        ["db01", "app01", "file01"],
        "esx-b1",
        "ds-b1",
        {"every": "15m"},
        RetentionPolicy(last=4),
        "1h",
        bandwidth="20MB/s",
        backend=backend,
    )
    moves = _recorded_moves(limited)
    result = limited.run()
    assert sum(size for _, size in moves) == result.bytes_moved > 500 * BLOCK_SIZE
    assert result.duration_seconds == pytest.approx(result.bytes_moved / 20e6, rel=0.05)
    rate, burst = 20e6, 20e6
    times = [at for at, _ in moves]
    sizes = [size for _, size in moves]
    prefix = [0]
    for size in sizes:
        prefix.append(prefix[-1] + size)
    for window in (0.0, 0.5, 1.0, 7.0, 60.0):
        j = 0
        for i, start in enumerate(times):  # every window that starts at a move
            while j < len(times) and times[j] <= start + window:
                j += 1
            assert prefix[j] - prefix[i] <= rate * window + burst
    assert not result.notes


def test_an_unlimited_job_is_not_slowed() -> None:
    backend = lab(start=START)
    unlimited = ReplicationJob(
        "unlimited",
        ["db01", "app01", "file01"],
        "esx-b1",
        "ds-b1",
        {"every": "15m"},
        RetentionPolicy(last=4),
        "1h",
        backend=backend,
    )
    result = unlimited.run()
    assert result.bytes_moved > 500 * BLOCK_SIZE
    assert result.duration_seconds == 0.0


@attrs.define
class HypervisorMovesTheData:
    """A backend whose hypervisor moves the bytes: it accepts a throttle and cannot honour it."""

    inner: MemoryBackend
    name: str = "hyperv-like"

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def sync(self, replica_id: str, *, throttle: object = None, **kwargs: object) -> RecoveryPoint:
        return self.inner.sync(replica_id, **kwargs)  # type: ignore[arg-type]


def test_where_the_hypervisor_moves_the_data_the_result_says_the_limit_is_not_enforced() -> None:
    backend = HypervisorMovesTheData(scene())
    tier1 = job(backend, bandwidth="50MB/s")  # type: ignore[arg-type]
    result = tier1.run()
    assert result.outcome is JobOutcome.SUCCEEDED
    assert result.notes == (
        "bandwidth limit 50 MB/s not enforced by us for vm1, vm2, vm3: "
        "the hyperv-like backend's hypervisor moves the data",
    )
    assert "not enforced" in result.vm("vm1").warnings[0]
