"""The scheduler: due jobs on a bounded pool, never one job twice at once, one catch-up run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from vmfailover import (
    JobStarted,
    MemoryBackend,
    RecoveryPoint,
    ReplicationEvent,
    ReplicationJob,
    RetentionPolicy,
    Scheduler,
    ValidationError,
    VirtualClock,
)
from vmfailover.testing import lab

START = datetime(2024, 6, 3, tzinfo=UTC)
SMALL = ("web01", "web02", "web03", "mon01")


def make_job(backend: object, name: str, vm: str, **kwargs: object) -> ReplicationJob:
    options: dict[str, object] = {
        "schedule": {"every": "15m"},
        "retention": RetentionPolicy(last=4),
        "rpo": "30m",
        "backend": backend,
    }
    options.update(kwargs)
    return ReplicationJob(name, [vm], "esx-b1", "ds-b1", **options)  # type: ignore[arg-type]


@attrs.define
class GatedBackend:
    """The lab, with syncs that wait for the test to open the gate (up to 10 s of real time)."""

    inner: MemoryBackend
    gate: threading.Event = attrs.field(factory=threading.Event)
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    running: int = 0
    most: int = 0
    name: str = "gated"

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def sync(self, replica_id: str, **kwargs: object) -> RecoveryPoint:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            assert self.gate.wait(10), "the test never opened the gate"
            return self.inner.sync(replica_id, **kwargs)  # type: ignore[arg-type]
        finally:
            with self.lock:
                self.running -= 1


def test_a_job_never_runs_twice_at_once_and_the_pool_is_bounded() -> None:
    backend = GatedBackend(lab(start=START))
    jobs = [make_job(backend, f"job-{vm}", vm) for vm in SMALL]
    with Scheduler(jobs, max_parallel=2) as scheduler:
        assert scheduler.run_pending(wait=False) == ()
        # Everything is due and nothing finished: a second tick starts nothing new.
        assert scheduler.due(backend.clock.now()) == []
        scheduler.run_pending(wait=False)
        backend.gate.set()
        scheduler.close(timeout=10)
    assert backend.most == 2
    assert all(len(job.history) == 1 for job in jobs)


def test_priorities_decide_who_starts_first() -> None:
    backend = lab(start=START)
    jobs = [
        make_job(backend, "later", "web01", priority=5),
        make_job(backend, "first", "web02", priority=1),
        make_job(backend, "middle", "web03"),
    ]
    started: list[str] = []
    with Scheduler(jobs, max_parallel=1) as scheduler:
        scheduler.subscribe(
            lambda event: started.append(event.job) if isinstance(event, JobStarted) else None
        )
        results = scheduler.run_pending()
    assert started == ["first", "middle", "later"]
    assert [result.job for result in results] == started


def test_after_downtime_a_job_catches_up_once() -> None:
    backend = lab(start=START)
    job = make_job(backend, "catch-up", "web01")
    with Scheduler([job]) as scheduler:
        assert len(scheduler.run_pending()) == 1
        backend.clock.advance(6 * 3600)  # the scheduler was down for six hours
        assert len(scheduler.run_pending()) == 1
        assert scheduler.run_pending() == ()
        now = backend.clock.now()
        assert job.next_due(now) == job.schedule.next_after(now)


def test_run_forever_stops_when_asked_by_a_subscriber() -> None:
    backend = lab(start=START)
    job = make_job(backend, "stoppable", "web01")
    with Scheduler([job], rpo_check=None) as scheduler:

        def stop_after_three(event: ReplicationEvent) -> None:
            if isinstance(event, JobStarted) and len(job.history) == 2:
                scheduler.stop()

        scheduler.subscribe(stop_after_three)
        scheduler.run_forever(until=backend.clock.now() + timedelta(days=1))
    assert len(job.history) == 3


def test_run_forever_in_flowing_time_waits_on_the_clock() -> None:
    """Real waits (time flows at 3,600x): runs follow the slots, never two in one slot.

    How late each run starts depends on the machine's load, so only the order is checked.
    """
    backend = lab(start=START)
    backend.clock.set_rate(3_600)
    job = make_job(backend, "flowing", "web01")
    with Scheduler([job], rpo_check="5m", max_idle=120) as scheduler:
        until = backend.clock.now() + timedelta(hours=1)
        thread = threading.Thread(target=scheduler.run_forever, kwargs={"until": until})
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive()
    starts = [result.started_at for result in job.history]
    assert len(starts) >= 2
    quarters = [
        start.replace(minute=start.minute // 15 * 15, second=0, microsecond=0)
        for start in starts[1:]
    ]
    assert len(set(quarters)) == len(quarters)
    assert starts == sorted(starts)


def test_a_job_that_raises_is_recorded_and_the_scheduler_goes_on() -> None:
    backend = lab(start=START)
    broken = make_job(backend, "broken", "web01")
    fine = make_job(backend, "fine", "web02")

    def bug(vm: str, now: datetime) -> object:
        raise RuntimeError("a bug")

    broken._replicate = bug  # type: ignore[method-assign,assignment]
    with Scheduler([broken, fine], rpo_check=None) as scheduler:
        scheduler.run_forever(until=backend.clock.now() + timedelta(hours=1))
    assert len(scheduler.errors) == 5
    assert "RuntimeError: a bug" in scheduler.errors[0]
    assert len(fine.history) == 5


def test_the_scheduler_refuses_what_it_cannot_run() -> None:
    backend = lab(start=START)
    job = make_job(backend, "twin", "web01")
    with pytest.raises(ValidationError, match="appears twice"):
        Scheduler([job, make_job(backend, "twin", "web02")])
    with pytest.raises(ValidationError, match="max_parallel"):
        Scheduler([job], max_parallel=0)
    with pytest.raises(ValidationError, match="not a ReplicationJob"):
        Scheduler([job, "job"])  # type: ignore[list-item]
    scheduler = Scheduler([job], clock=VirtualClock(START))
    scheduler.close()
    with pytest.raises(Exception, match="closed"):
        scheduler.run_pending()


def test_the_scheduler_measures_rpo_of_all_its_jobs() -> None:
    backend = lab(start=START)
    jobs = [make_job(backend, f"job-{vm}", vm) for vm in SMALL]
    with Scheduler(jobs) as scheduler:
        scheduler.run_pending()
        report = scheduler.rpo_status()
    assert sorted(entry.vm for entry in report.entries) == sorted(SMALL)
    assert report.compliant
