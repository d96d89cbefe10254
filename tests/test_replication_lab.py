"""The issue's done-when, on the lab's virtual clock: two weeks of a 15-minute job, an hour's stop,
and a VM that fails while the others go on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from vmfailover import (
    JobFinished,
    JobOutcome,
    JobResult,
    MemoryBackend,
    ReplicationEvent,
    ReplicationJob,
    RetentionPolicy,
    RPOChanged,
    RPOState,
    Scheduler,
    SyncOutcome,
    rpo_status,
)
from vmfailover.testing import lab

START = datetime(2024, 6, 3, tzinfo=UTC)  # a Monday
POLICY = RetentionPolicy(last=4, hourly=12, daily=7, weekly=2)
VMS = ["web01", "web02", "web03", "mon01"]  # the small disks of the lab: fast syncs


def _job(backend: MemoryBackend, **kwargs: object) -> ReplicationJob:
    options: dict[str, object] = {
        "schedule": {"every": "15m"},
        "retention": POLICY,
        "rpo": "20m",
        "backend": backend,
    }
    options.update(kwargs)
    return ReplicationJob("lab", VMS, "esx-b1", "ds-b1", **options)  # type: ignore[arg-type]


@attrs.frozen
class TwoWeeks:
    backend: MemoryBackend
    job: ReplicationJob
    events: list[ReplicationEvent]
    first_run: datetime
    initial: dict[str, list[datetime]]

    @property
    def runs(self) -> list[JobResult]:
        return [event.result for event in self.events if isinstance(event, JobFinished)]


@pytest.fixture(scope="module")
def two_weeks() -> TwoWeeks:
    backend = lab(start=START)
    first_run = backend.clock.now()
    inventory = backend.inventory()
    initial = {
        vm: [p.created_at for p in backend.recovery_points(inventory.replica_of(vm).id)]
        for vm in VMS
    }
    job = _job(backend)
    events: list[ReplicationEvent] = []
    job.subscribe(events.append)
    with Scheduler([job], rpo_check="5m") as scheduler:
        scheduler.run_forever(until=first_run + timedelta(days=14))
    return TwoWeeks(backend, job, events, first_run, initial)


def test_the_job_makes_exactly_the_points_its_schedule_implies(two_weeks: TwoWeeks) -> None:
    end = two_weeks.backend.clock.now()
    first_run = two_weeks.first_run
    expected = [first_run, *two_weeks.job.schedule.slots(first_run, end)]
    runs = two_weeks.runs
    assert [run.started_at for run in runs] == expected
    assert len(expected) == 14 * 96 + 1  # 03:20 on day one, then every quarter hour to 03:15
    for vm in VMS:
        assert [run.vm(vm).point_time for run in runs] == expected
    assert all(run.outcome is JobOutcome.SUCCEEDED for run in runs)


def test_retention_leaves_exactly_what_apply_says(two_weeks: TwoWeeks) -> None:
    backend = two_weeks.backend
    inventory = backend.inventory()
    for vm in VMS:
        held = set(two_weeks.initial[vm])
        everything = set(held)
        for run in two_weeks.runs:
            result = run.vm(vm)
            assert result.point_time is not None
            held.add(result.point_time)
            everything.add(result.point_time)
            # Run by run: what the job removed is exactly what apply removes.
            decision = POLICY.apply(sorted(held), max(run.started_at, result.point_time))
            assert {point.created_at for point in result.removed} == set(decision.remove)
            assert all(point.reason for point in result.removed)
            held = set(decision.keep)
            assert result.kept == len(held)
        remaining = backend.recovery_points(inventory.replica_of(vm).id)
        assert {point.created_at for point in remaining} == held
        assert len(remaining) <= POLICY.max_kept()  # type: ignore[operator]
        # And applying the policy once to every point the VM ever had leaves the same.
        assert set(POLICY.apply(sorted(everything), backend.clock.now()).keep) == held


def test_rpo_stays_compliant_for_two_weeks(two_weeks: TwoWeeks) -> None:
    assert not [event for event in two_weeks.events if isinstance(event, RPOChanged)]
    report = rpo_status(two_weeks.backend, [two_weeks.job])
    assert report.compliant
    assert {entry.compliance for entry in report.entries} == {1.0}
    assert "compliant" in str(report)
    assert "<table" in report._repr_html_()


def test_stopping_for_an_hour_moves_through_exceeded_and_severe_once_each() -> None:
    backend = lab(start=START)
    job = _job(backend, rpo="20m")
    changes: list[RPOChanged] = []
    job.subscribe(lambda event: changes.append(event) if isinstance(event, RPOChanged) else None)
    with Scheduler([job], rpo_check="1m") as scheduler:
        scheduler.run_forever(until=backend.clock.now() + timedelta(hours=2))
        assert not changes
        job.disable()
        stopped = backend.clock.now()
        scheduler.run_forever(until=stopped + timedelta(hours=1))
        assert [(c.previous, c.current) for c in changes if c.vm == "web01"] == [
            (RPOState.COMPLIANT, RPOState.EXCEEDED),
            (RPOState.EXCEEDED, RPOState.SEVERE),
        ]
        assert len(changes) == 2 * len(VMS)
        exceeded = next(c for c in changes if c.current is RPOState.EXCEEDED)
        assert exceeded.age_seconds == pytest.approx(20 * 60, abs=60)
        job.enable()
        scheduler.run_forever(until=backend.clock.now() + timedelta(minutes=10))
    assert [c.current for c in changes if c.vm == "web01"][-1] is RPOState.COMPLIANT
    assert len(changes) == 3 * len(VMS)


def test_a_failing_vm_does_not_block_the_others() -> None:
    backend = lab(start=START)
    web02 = backend.inventory().replica_of("web02")
    backend.faults.fail("sync", target=web02.id, transient=False, times=10**6)
    job = _job(backend)
    changes: list[RPOChanged] = []
    job.subscribe(lambda event: changes.append(event) if isinstance(event, RPOChanged) else None)
    with Scheduler([job], rpo_check="5m") as scheduler:
        scheduler.run_forever(until=backend.clock.now() + timedelta(hours=3))
    runs = job.history
    assert len(runs) == 12 + 1
    for run in runs:
        assert run.outcome is JobOutcome.PARTIAL
        assert run.vm("web02").outcome is SyncOutcome.FAILED
        assert "injected permanent failure" in (run.vm("web02").reason or "")
        assert all(r.outcome is SyncOutcome.SYNCED for r in run.vms if r.vm != "web02")
    assert {c.vm for c in changes} == {"web02"}
    assert changes[-1].current is RPOState.CRITICAL
    report = rpo_status(backend, job)
    assert report.entry("web02").state is RPOState.CRITICAL
    assert report.count(RPOState.COMPLIANT) == len(VMS) - 1
