"""The scheduler: runs many replication jobs on time, on a bounded pool of threads.

Each tick (:meth:`Scheduler.run_pending`) starts every job that is due and not already running,
most important first (``priority`` 1 before 5), on at most ``max_parallel`` threads. A job never
runs twice at once, and a job that missed slots while the scheduler was down runs once, then
follows its schedule again. :meth:`Scheduler.run_forever` ticks until :meth:`Scheduler.stop` (or
``until``), sleeping on the clock in bounded waits, and checks the RPO of every job's VMs every
``rpo_check`` so that breaches are reported as they happen, one event per change.

On a :class:`~vmfailover.clock.VirtualClock` standing still (``rate=0``), ``run_forever`` is a
deterministic simulation: each tick waits for its jobs, then time jumps to the next slot, so two
weeks of 15-minute replication take seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from datetime import datetime, timedelta

from vmfailover.clock import Clock, SystemClock, VirtualClock
from vmfailover.engine._named_members import named_members
from vmfailover.engine.journal import Journal
from vmfailover.engine.replication import ReplicationJob
from vmfailover.engine.replication_events import ReplicationSubscriber
from vmfailover.engine.replication_results import JobResult
from vmfailover.engine.rpo import RPOReport, rpo_status
from vmfailover.errors import ConflictError, Finding, ValidationError
from vmfailover.model import aware_utc, is_finite_number
from vmfailover.policy.schedule import parse_elapsed

__all__ = ["Scheduler"]


class Scheduler:
    """Drives ``jobs`` on time. ``max_parallel`` bounds the jobs running at once.

    ``clock`` defaults to the first job's; ``max_idle`` bounds one wait in the clock's seconds
    (so a wall-clock jump is noticed); ``rpo_check`` is how often :meth:`run_forever` measures
    the RPO (``None``: never). With a ``journal``, every job's runs are recorded in it: jobs
    built without one are given it; a job built with another journal is refused.
    """

    def __init__(
        self,
        jobs: Iterable[ReplicationJob],
        *,
        max_parallel: int = 4,
        clock: Clock | None = None,
        max_idle: float = 60.0,
        rpo_check: str | timedelta | None = "5m",
        journal: Journal | None = None,
    ) -> None:
        job_list, findings = named_members(
            jobs,
            ReplicationJob,
            owner="Scheduler",
            parameter="jobs",
            noun="job",
            place="the scheduler",
        )
        if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
            findings.append(Finding("Scheduler max_parallel", f"must be >= 1: {max_parallel!r}"))
        if not is_finite_number(max_idle) or not max_idle > 0:
            findings.append(Finding("Scheduler max_idle", f"must be > 0 seconds: {max_idle!r}"))
        given_journal: object = journal
        if given_journal is not None and not isinstance(given_journal, Journal):
            findings.append(
                Finding(
                    "Scheduler journal",
                    f"{journal!r:.80} is not a journal",
                    hint="open one with SQLiteJournal(path)",
                )
            )
        elif journal is not None:
            findings.extend(
                Finding(
                    f"job {job.name!r}",
                    f"records its runs in {job.journal!r}, not the scheduler's {journal!r}",
                    hint="give the job and the scheduler the same journal, or the job none",
                )
                for job in job_list
                if job.journal is not None and job.journal is not journal
            )
        if findings:
            raise ValidationError(findings)
        if journal is not None:
            for job in job_list:
                job.journal = journal
        self.jobs: tuple[ReplicationJob, ...] = tuple(
            sorted(job_list, key=lambda job: (job.priority, job.name))
        )
        self.clock: Clock = clock or (self.jobs[0].clock if self.jobs else SystemClock())
        self.max_parallel = max_parallel
        self.journal = journal
        self.max_idle = float(max_idle)
        self.rpo_check = None if rpo_check is None else parse_elapsed(rpo_check, "rpo_check")
        self._pool = ThreadPoolExecutor(max_parallel, thread_name_prefix="vmfailover-scheduler")
        self._running: dict[str, Future[JobResult | None]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._last_rpo_check: datetime | None = None
        self._closed = False
        self.errors: list[str] = []
        """Jobs that raised instead of returning a result (a bug): what they raised."""

    def __repr__(self) -> str:
        return f"Scheduler({len(self.jobs)} jobs, max_parallel={self.max_parallel})"

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(self, callback: ReplicationSubscriber) -> Callable[[], None]:
        """Subscribe to every job's events; returns a function that unsubscribes."""
        removers = [job.subscribe(callback) for job in self.jobs]

        def unsubscribe() -> None:
            for remove in removers:
                remove()

        return unsubscribe

    # --- ticks -----------------------------------------------------------------------------------

    def due(self, now: datetime) -> list[ReplicationJob]:
        """The jobs due at ``now`` and not running, in the order they would start."""
        with self._lock:
            return [job for job in self.jobs if job.name not in self._running and job.due(now)]

    def run_pending(
        self, now: datetime | None = None, *, wait: bool = True, timeout: float | None = None
    ) -> tuple[JobResult, ...]:
        """Start every job due at ``now`` (the clock's time by default).

        With ``wait=True`` (the default) wait for them, up to ``timeout`` seconds of real time
        (``None``: as long as they take; each job's own waits are bounded), and return their
        results in start order; with ``wait=False`` return at once (an empty tuple).
        """
        if self._closed:
            raise ConflictError("the scheduler is closed")
        at = self.clock.now() if now is None else aware_utc(now, "now")
        started: list[Future[JobResult | None]] = []
        with self._lock:
            for job in self.jobs:
                if job.name in self._running or not job.due(at):
                    continue
                future = self._pool.submit(self._run_job, job, None if now is None else at)
                self._running[job.name] = future
                started.append(future)
        if not wait or not started:
            return ()
        _, pending = wait_for(started, timeout=timeout)
        if pending:
            raise TimeoutError(f"{len(pending)} jobs still running after {timeout} s")
        return tuple(result for future in started if (result := future.result()) is not None)

    def _run_job(self, job: ReplicationJob, now: datetime | None) -> JobResult | None:
        try:
            return job.run(now)
        except ConflictError:
            return None  # started by someone else (job.run called directly): it is running
        except Exception as error:  # a bug: recorded, never the end of the scheduler
            with self._lock:
                self.errors.append(f"job {job.name!r}: {type(error).__name__}: {error}")
            job._count_as_run(self.clock.now() if now is None else now)  # retried at its next slot
            return None
        finally:
            with self._lock:
                self._running.pop(job.name, None)
            self._wake.set()

    # --- running until stopped -------------------------------------------------------------------

    def run_forever(self, *, until: datetime | None = None) -> None:
        """Tick until :meth:`stop` is called (from another thread or a subscriber) or the clock
        reaches ``until``. Returns with jobs possibly still running; :meth:`close` waits for
        them."""
        end = None if until is None else aware_utc(until, "until")
        simulated = isinstance(self.clock, VirtualClock) and self.clock.rate == 0
        self._stop.clear()
        while not self._stop.is_set():
            self._wake.clear()
            now = self.clock.now()
            if end is not None and now >= end:
                return
            self.run_pending(now, wait=simulated)
            self._check_rpo(self.clock.now())
            now = self.clock.now()
            wake = self._next_wake(now, end)
            if wake is None:
                return  # nothing will ever be due again and no end to wait for
            self._pause(max((wake - now).total_seconds(), 0.0), simulated)

    def _next_wake(self, now: datetime, end: datetime | None) -> datetime | None:
        candidates = [end] if end is not None else []
        with self._lock:
            running = bool(self._running)
        for job in self.jobs:
            following = job.next_due(now)
            if following is not None:
                candidates.append(following)
        if self.rpo_check is not None and self._last_rpo_check is not None:
            candidates.append(self._last_rpo_check + self.rpo_check)
        if not candidates:
            return now + timedelta(seconds=self.max_idle) if running else None
        return min(candidates)

    def _pause(self, seconds: float, simulated: bool) -> None:
        """Wait on the clock, at most ``max_idle`` of its seconds; stop and job ends wake us."""
        if simulated:
            # Virtual time standing still: jump, unless that would skip a due job (seconds=0).
            self.clock.sleep(seconds)
            return
        seconds = min(seconds, self.max_idle)
        if isinstance(self.clock, SystemClock):
            self._wake.wait(seconds)
        elif isinstance(self.clock, VirtualClock):
            self._wake.wait(seconds / self.clock.rate)
        else:
            self.clock.sleep(min(seconds, 1.0))  # an unknown clock: short slices, then re-check

    def _check_rpo(self, now: datetime) -> None:
        if self.rpo_check is None:
            return
        if self._last_rpo_check is not None and now < self._last_rpo_check + self.rpo_check:
            return
        self._last_rpo_check = now
        self.rpo_status(now)

    def stop(self) -> None:
        """Make :meth:`run_forever` return (running jobs finish)."""
        self._stop.set()
        self._wake.set()

    def close(self, timeout: float | None = 3600.0) -> None:
        """Stop, wait up to ``timeout`` real seconds for running jobs, and release the pool."""
        self.stop()
        with self._lock:
            running = list(self._running.values())
        if running:
            wait_for(running, timeout=timeout)
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- RPO -------------------------------------------------------------------------------------

    def rpo_status(
        self, now: datetime | None = None, *, window: str | timedelta = "1d"
    ) -> RPOReport:
        """The RPO of every job's VMs (jobs on several backends are measured on each)."""
        at = self.clock.now() if now is None else aware_utc(now, "now")
        by_backend: dict[int, list[ReplicationJob]] = {}
        for job in self.jobs:
            by_backend.setdefault(id(job.backend), []).append(job)
        reports = [
            rpo_status(jobs[0].backend, jobs, at, window=window) for jobs in by_backend.values()
        ]
        if len(reports) == 1:
            return reports[0]
        return RPOReport(
            at,
            parse_elapsed(window, "window").total_seconds(),
            tuple(entry for report in reports for entry in report.entries),
            tuple(event for report in reports for event in report.events),
        )
