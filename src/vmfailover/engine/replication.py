"""Replication jobs: which VMs replicate where, how often, how fast, and how long points stay.

A :class:`ReplicationJob` is checked when it is built (the schedule, the RPO, the bandwidth limit,
and the retention policy against the backend's recovery point cap), so a policy that cannot fit
is refused on day one, not in month three. One run (:meth:`ReplicationJob.run`) creates replicas
where missing, syncs each VM to make a recovery point, then applies the retention policy and
deletes what it removes. VMs are independent: one VM's failure is recorded in the result and the
others go on. Transient backend errors are retried with backoff (tenacity) on the job's clock.

When a job runs is the schedule's business (:mod:`vmfailover.policy.schedule`); running many jobs
on time is the :class:`~vmfailover.engine.scheduler.Scheduler`'s.
"""

from __future__ import annotations

import inspect
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

import attrs
import tenacity

from vmfailover.backends.base import Backend
from vmfailover.clock import Clock, SystemClock, full_clock
from vmfailover.engine.journal import Journal
from vmfailover.engine.replication_events import (
    JobFinished,
    JobStarted,
    ReplicationSubscriber,
    RPOChanged,
    Subscribers,
)
from vmfailover.engine.replication_results import (
    JobResult,
    RemovedPoint,
    SyncOutcome,
    VMSyncResult,
)
from vmfailover.engine.runner import RetryPolicy
from vmfailover.engine.throttle import TokenBucket
from vmfailover.errors import (
    ConflictError,
    Finding,
    NotFoundError,
    TransientBackendError,
    ValidationError,
    VMFailoverError,
)
from vmfailover.model import Consistency, RecoveryPoint, aware_utc
from vmfailover.policy.bandwidth import Bandwidth
from vmfailover.policy.netmap import NetworkMapping
from vmfailover.policy.retention import RetentionPolicy
from vmfailover.policy.rpo import RPOState
from vmfailover.policy.schedule import Schedule, format_elapsed, parse_elapsed

__all__ = ["ReplicationJob"]

_T = TypeVar("_T")

_REMOVED_REASON = "kept by no rule of the retention policy"

_log = logging.getLogger("vmfailover.replication")


class _CountingThrottle:
    """Passes consume calls on to the job's bucket and counts what one sync paid for."""

    def __init__(self, bucket: TokenBucket) -> None:
        self._bucket = bucket
        self.paid = 0

    def consume(self, nbytes: int) -> None:
        self._bucket.consume(nbytes)
        self.paid += nbytes


@attrs.define
class _Replica:
    """What the job knows of one VM's replica (looked up once, then reused)."""

    vm_id: str
    replica_id: str
    created: bool = False


class ReplicationJob:
    """Replicate ``vms`` to ``target_host`` / ``target_datastore`` on ``schedule``.

    ``retention`` is the :class:`RetentionPolicy` applied after each sync; ``rpo`` the recovery
    point objective (``"15m"``, a timedelta) the VMs are measured against; ``network`` maps source
    networks to target networks for replicas the job creates (a :class:`NetworkMapping`, whose
    production table is used, or a plain mapping); ``application_consistent`` asks for
    application-consistent points; ``bandwidth`` (``"50MB/s"``) limits what the job's syncs move;
    ``priority`` (1 first, 5 last) orders jobs due at the same time.

    ``backend`` is the backend the job replicates on; building the job checks the retention
    policy against its recovery point cap. ``clock`` defaults to the backend's. ``history`` is
    how many run results the job keeps in memory for RPO compliance; a ``journal`` (a
    :class:`~vmfailover.engine.journal.Journal`) records every run durably, before
    :meth:`run` returns, and keeps them all (:meth:`Journal.replication_runs`).
    """

    def __init__(
        self,
        name: str,
        vms: Iterable[str],
        target_host: str,
        target_datastore: str,
        schedule: Schedule | Mapping[str, Any],
        retention: RetentionPolicy,
        rpo: str | timedelta | float,
        network: NetworkMapping | Mapping[str, str] | None = None,
        application_consistent: bool = False,
        bandwidth: str | float | Bandwidth | None = None,
        priority: int = 3,
        *,
        backend: Backend,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        history: int = 4096,
        journal: Journal | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError.of("ReplicationJob name", f"must be a non-empty string: {name!r}")
        self.name = name
        owner = f"job {name!r}"
        findings: list[Finding] = []

        def field(item: str, parse: Callable[[], _T]) -> _T | None:
            try:
                return parse()
            except ValidationError as error:
                findings.extend(
                    Finding(
                        f"{owner}: {_field_item(item, finding.item)}",
                        finding.message,
                        finding.severity,
                        finding.hint,
                    )
                    for finding in error.findings
                )
                return None

        self.vms: tuple[str, ...] = field("vms", lambda: _vm_names(vms)) or ()
        self.target_host: str = field("target_host", lambda: _text(target_host)) or ""
        self.target_datastore: str = (
            field("target_datastore", lambda: _text(target_datastore)) or ""
        )
        try:
            parsed_schedule: Schedule | None = Schedule.of(schedule, owner)
        except ValidationError as error:
            findings.extend(error.findings)
            parsed_schedule = None
        parsed_retention = field("retention", lambda: _retention(retention))
        parsed_rpo = field("rpo", lambda: parse_elapsed(rpo, "value"))
        self.network: Mapping[str, str] = field("network", lambda: _network(network)) or {}
        self.application_consistent: bool = bool(
            field("application_consistent", lambda: _flag(application_consistent))
        )
        self.bandwidth: Bandwidth | None = field(
            "bandwidth", lambda: None if bandwidth is None else Bandwidth.parse(bandwidth, "value")
        )
        self.priority: int = field("priority", lambda: _priority(priority)) or 3
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            findings.append(Finding(f"{owner}: history", f"must be a count >= 1, got {history!r}"))
        given_backend: object = backend
        if not isinstance(given_backend, Backend):
            findings.append(Finding(f"{owner}: backend", f"{backend!r} is not a backend"))
        if clock is not None:
            try:
                full_clock(clock)
            except ValidationError as error:
                findings.extend(attrs.evolve(f, item=f"{owner}: clock") for f in error.findings)
        given_retry: object = retry
        if given_retry is not None and not isinstance(given_retry, RetryPolicy):
            findings.append(Finding(f"{owner}: retry", f"{retry!r} is not a RetryPolicy"))
        given_journal: object = journal
        if given_journal is not None and not isinstance(given_journal, Journal):
            findings.append(
                Finding(
                    f"{owner}: journal",
                    f"{journal!r:.80} is not a journal",
                    hint="open one with SQLiteJournal(path)",
                )
            )
        if findings:
            raise ValidationError(findings)
        assert parsed_schedule is not None
        assert parsed_retention is not None
        assert parsed_rpo is not None
        self.schedule: Schedule = parsed_schedule
        self.retention: RetentionPolicy = parsed_retention
        self.rpo: timedelta = parsed_rpo
        self.backend: Backend = backend
        self.clock: Clock = clock or getattr(backend, "clock", None) or SystemClock()
        self.retry = retry or RetryPolicy()
        self.journal: Journal | None = journal
        self._limit = self._call(backend.recovery_point_limit)
        self._check_limit(owner)
        self._bucket = None if self.bandwidth is None else TokenBucket(self.bandwidth, self.clock)
        # A backend's own word that its syncs cannot honour a throttle (backends.base): its
        # points may report no size, so comparing paid with moved bytes would not show it.
        self._unthrottled = getattr(backend, "hypervisor_moves_data", False) is True
        self._run_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._enabled = True
        self._last_run: datetime | None = None
        self._next_due: datetime | None = None
        self._history: deque[JobResult] = deque(maxlen=history)
        self._memory_since: datetime = self.clock.now()  # the in-memory history starts here
        self._journaled: tuple[datetime, datetime, tuple[JobResult, ...]] | None = None
        self._replicas: dict[str, _Replica] = {}
        self._rpo_states: dict[str, RPOState] = {}
        self._subscribers = Subscribers()

    def _check_limit(self, owner: str) -> None:
        if self._limit is None:
            return
        try:
            self.retention.check(self._limit)
        except ValidationError as error:
            hint = (
                f"the {self.backend.name} backend holds at most {self._limit} recovery points "
                "per replica"
            )
            raise ValidationError(
                Finding(
                    f"{owner}: retention rule {finding.item}",
                    finding.message,
                    finding.severity,
                    f"{finding.hint}; {hint}" if finding.hint else hint,
                )
                for finding in error.findings
            ) from None

    def __repr__(self) -> str:
        limit = f", bandwidth {self.bandwidth}" if self.bandwidth else ""
        return (
            f"ReplicationJob({self.name!r}, {len(self.vms)} VMs -> {self.target_host}, "
            f"{self.schedule}, rpo {format_elapsed(self.rpo)}{limit})"
        )

    # --- state -----------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self._enabled

    def disable(self) -> None:
        """Stop the job from being due (a run in progress finishes)."""
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def running(self) -> bool:
        return self._run_lock.locked()

    @property
    def token_bucket(self) -> TokenBucket | None:
        """The bucket the job's bandwidth limit hands its syncs (None without a limit): its
        ``consumed`` bytes and ``waited`` seconds say what the syncs paid for and waited so far."""
        return self._bucket

    @property
    def last_run(self) -> datetime | None:
        """When the last run started (``None``: never)."""
        return self._last_run

    @property
    def history(self) -> tuple[JobResult, ...]:
        """The results of the most recent runs, oldest first."""
        with self._state_lock:
            return tuple(self._history)

    def results_since(self, instant: datetime) -> Iterator[JobResult]:
        """Results of runs that finished at or after ``instant``, newest first."""
        with self._state_lock:
            recent = list(self._history)
        for result in reversed(recent):
            if result.finished_at < instant:
                return
            yield result

    def results_for_rpo(self, since: datetime) -> list[JobResult]:
        """Runs that finished at or after ``since``, for RPO compliance: those in memory, and,
        with a journal, the earlier ones it holds (a run made before this process started, or
        one the in-memory history no longer holds). Oldest first."""
        recent = list(self.results_since(since))
        recent.reverse()
        journal = self.journal
        with self._state_lock:
            memory_since = self._memory_since
        if journal is None or since >= memory_since:
            return recent
        journaled = self._journaled
        if journaled is None or journaled[0] > since or journaled[1] != memory_since:
            # Runs before memory_since never change: read them once for as far back as asked.
            try:
                earlier = tuple(
                    r
                    for r in journal.replication_runs(self.name, since=since)
                    if r.finished_at < memory_since
                )
            except Exception as error:  # compliance is then measured from what memory holds
                _log.warning("job %r: journal history unreadable: %s", self.name, error)
                return recent
            journaled = self._journaled = (since, memory_since, earlier)
        known = {result.run_id for result in recent}
        older = [r for r in journaled[2] if r.finished_at >= since and r.run_id not in known]
        return older + recent

    def due(self, now: datetime) -> bool:
        """Whether the job should run at ``now``: enabled, and a slot has passed since it last
        ran. Pure: reads no clock."""
        if not self._enabled:
            return False
        if self._last_run is None:
            return True
        return self._next_due is not None and self._next_due <= now

    def next_due(self, now: datetime) -> datetime | None:
        """When the job is next due: ``now`` if it is due, ``None`` if disabled or never again."""
        if not self._enabled:
            return None
        if self._last_run is None:
            return now
        if self._next_due is None:
            return None
        return max(self._next_due, now)

    def subscribe(self, callback: ReplicationSubscriber) -> Callable[[], None]:
        """Call ``callback`` with this job's events; returns a function that unsubscribes."""
        return self._subscribers.add(callback)

    # --- running ---------------------------------------------------------------------------------

    def run(self, now: datetime | None = None) -> JobResult:
        """One pass: replicate every VM, apply retention, and return what happened.

        ``now`` is the instant the run counts as started (the clock's time by default); the
        next run is due at the first slot after it, so a job that missed several slots runs once.
        Raises :class:`ConflictError` if the job is already running.
        """
        if not self._run_lock.acquire(blocking=False):
            raise ConflictError(f"job {self.name!r} is already running")
        try:
            started = self.clock.now() if now is None else aware_utc(now, "now")
            self._subscribers.emit(JobStarted(self.name, self.vms, started))
            results = [self._replicate(vm, started) for vm in self.vms]
            finished = max(self.clock.now(), started)
            result = JobResult(
                job=self.name,
                started_at=started,
                finished_at=finished,
                vms=tuple(results),
                schedule=str(self.schedule),
                retention=str(self.retention),
                bandwidth=None if self.bandwidth is None else str(self.bandwidth),
                notes=self._notes(results),
                run_id=f"repl-{started:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}",
            )
            result = self._record(result)
            with self._state_lock:
                self._last_run = started
                self._next_due = self.schedule.next_after(started)
                if len(self._history) == self._history.maxlen:
                    self._memory_since = self._history[0].finished_at
                self._history.append(result)
            self._subscribers.emit(JobFinished(self.name, result.outcome, finished, result))
            return result
        finally:
            self._run_lock.release()

    def _record(self, result: JobResult) -> JobResult:
        """Store the run in the journal, if any. The points exist whatever the journal says, so
        a journal that cannot store the run does not undo it: the result says so in a note."""
        journal = self.journal
        if journal is None:
            return result
        try:
            journal.record_replication(result)
        except Exception as error:  # a full disk, a closed journal, a lost database server
            _log.warning("job %r: run %s not journaled: %s", self.name, result.run_id, error)
            note = f"not recorded in the journal {journal!r}: {type(error).__name__}: {error}"
            return attrs.evolve(result, notes=(*result.notes, note))
        return result

    def _count_as_run(self, started: datetime) -> None:
        """A run that raised (a bug) still moves the job on to its next slot."""
        with self._state_lock:
            self._last_run = started
            self._next_due = self.schedule.next_after(started)

    def _notes(self, results: list[VMSyncResult]) -> tuple[str, ...]:
        unenforced = [result.vm for result in results if _UNENFORCED in result.warnings]
        if not unenforced or self.bandwidth is None:
            return ()
        return (
            f"bandwidth limit {self.bandwidth} not enforced by us for {', '.join(unenforced)}: "
            f"the {self.backend.name} backend's hypervisor moves the data",
        )

    def _replicate(self, vm: str, now: datetime) -> VMSyncResult:
        """Sync one VM and apply retention; every failure ends up in the result, never raised."""
        started = self.clock.now()
        replica: _Replica | None = None
        created = False
        attempts = [0]
        try:
            replica = self._replica(vm, attempts)
            created, replica.created = replica.created, False
            if self._limit is not None:
                self._make_room(replica.replica_id, now, attempts)
            throttle = None if self._bucket is None else _CountingThrottle(self._bucket)
            point = self._sync(replica.replica_id, throttle, attempts)
            warnings = []
            if throttle is not None and (self._unthrottled or throttle.paid < point.size_bytes):
                warnings.append(_UNENFORCED)
            kept, removed, retention_warnings = self._apply_retention(
                replica.replica_id, point, now, attempts
            )
            warnings.extend(retention_warnings)
            return VMSyncResult(
                vm=vm,
                outcome=SyncOutcome.SYNCED,
                started_at=started,
                finished_at=self.clock.now(),
                vm_id=replica.vm_id,
                replica_id=replica.replica_id,
                replica_created=created,
                point_id=point.id,
                point_time=point.created_at,
                bytes_moved=point.size_bytes,
                kept=kept,
                removed=removed,
                attempts=attempts[0],
                warnings=tuple(warnings),
            )
        except VMFailoverError as error:
            reason = str(error)
        except Exception as error:  # a backend bug must not stop the other VMs
            reason = f"unexpected {type(error).__name__}: {error}"
        if replica is not None and not created:
            self._replicas.pop(vm, None)  # look it up afresh next time: it may have moved
        return VMSyncResult(
            vm=vm,
            outcome=SyncOutcome.FAILED,
            started_at=started,
            finished_at=self.clock.now(),
            vm_id=None if replica is None else replica.vm_id,
            replica_id=None if replica is None else replica.replica_id,
            replica_created=created,
            attempts=attempts[0],
            reason=reason,
        )

    def _replica(self, vm: str, attempts: list[int]) -> _Replica:
        known = self._replicas.get(vm)
        if known is not None:
            return known
        inventory = self._call(self.backend.inventory, attempts=attempts)
        source = inventory.vm(vm)
        try:
            existing = inventory.replica_of(source.id)
        except NotFoundError:
            replica = self._call(
                self.backend.create_replica,
                source.id,
                self.target_host,
                self.target_datastore,
                network_map=dict(self.network),
                attempts=attempts,
            )
            found = _Replica(source.id, replica.id, created=True)
        else:
            found = _Replica(source.id, existing.id)
        self._replicas[vm] = found
        return found

    def _sync(
        self, replica_id: str, throttle: _CountingThrottle | None, attempts: list[int]
    ) -> RecoveryPoint:
        consistency = Consistency.APPLICATION if self.application_consistent else Consistency.CRASH
        if throttle is None:  # backends that predate throttles still sync unlimited jobs
            return self._call(
                self.backend.sync, replica_id, consistency=consistency, attempts=attempts
            )
        return self._call(
            self.backend.sync,
            replica_id,
            consistency=consistency,
            throttle=throttle,
            attempts=attempts,
        )

    def _make_room(self, replica_id: str, now: datetime, attempts: list[int]) -> None:
        """At the backend's cap, delete what retention will remove once the next point exists."""
        assert self._limit is not None
        points = self._call(self.backend.recovery_points, replica_id, attempts=attempts)
        if len(points) < self._limit:
            return
        upcoming = RecoveryPoint(id="(next sync)", replica=replica_id, created_at=now)
        decision = self.retention.apply([*points, upcoming], now)
        for point in decision.remove:
            if point is not upcoming and len(points) > 1:
                self._call(self.backend.delete_recovery_point, point.id, attempts=attempts)

    def _apply_retention(
        self, replica_id: str, made: RecoveryPoint, now: datetime, attempts: list[int]
    ) -> tuple[int, tuple[RemovedPoint, ...], list[str]]:
        """Delete what the policy removes; never a pinned point, the newest or the only one."""
        points = self._call(self.backend.recovery_points, replica_id, attempts=attempts)
        at = max(now, made.created_at)
        decision = self.retention.apply(points, at)
        newest = max(points, key=_created_at) if points else None
        removed: list[RemovedPoint] = []
        warnings: list[str] = []
        remaining = len(points)
        for point in decision.remove:
            if point is newest or point.id == made.id or point.pinned_at(at) or remaining <= 1:
                continue
            try:
                self._call(self.backend.delete_recovery_point, point.id, attempts=attempts)
            except VMFailoverError as error:
                warnings.append(f"could not delete recovery point {point.id}: {error}")
                continue
            remaining -= 1
            removed.append(RemovedPoint(point.id, point.created_at, _REMOVED_REASON))
        return remaining, tuple(removed), warnings

    def _call(
        self, fn: Callable[..., _T], *args: object, attempts: list[int] | None = None, **kw: Any
    ) -> _T:
        """Call the backend, retrying transient errors per the retry policy on the job's clock."""
        retry = self.retry

        def counted() -> _T:
            if attempts is not None:
                attempts[0] += 1
            return fn(*args, **kw)

        try:
            return counted()  # the everyday case, without the retry machinery
        except TransientBackendError:
            if retry.attempts <= 1:
                raise
        self.clock.sleep(retry.initial_wait)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientBackendError),
            stop=tenacity.stop_after_attempt(retry.attempts - 1),
            wait=tenacity.wait_exponential(multiplier=2 * retry.initial_wait, max=retry.max_wait)
            + tenacity.wait_random(0, retry.initial_wait),
            sleep=self.clock.sleep,
            reraise=True,
        )
        return retrying(counted)

    # --- RPO state (the memory behind one event per change) --------------------------------------

    def _observe_rpo(
        self, vm: str, state: RPOState, age: timedelta | None, at: datetime
    ) -> RPOChanged | None:
        with self._state_lock:
            previous = self._rpo_states.get(vm)
            self._rpo_states[vm] = state
        if previous == state or (previous is None and state is RPOState.COMPLIANT):
            return None
        event = RPOChanged(
            vm=vm,
            job=self.name,
            previous=previous,
            current=state,
            age_seconds=None if age is None else age.total_seconds(),
            target_seconds=self.rpo.total_seconds(),
            at=at,
        )
        self._subscribers.emit(event)
        return event

    def _known_replica(self, vm: str) -> str | None:
        known = self._replicas.get(vm)
        return None if known is None else known.replica_id


_UNENFORCED = "bandwidth limit not enforced: the hypervisor moves the data"


def _field_item(field: str, found: str) -> str:
    """The item a finding about a job's field names: ``vms[2]``, ``retention.daily``, ``rpo``."""
    if found == "value":
        return field
    if found.startswith(field):
        return found
    return f"{field}.{found}"


def _created_at(point: RecoveryPoint) -> datetime:
    return point.created_at


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.of("value", f"must be a non-empty string, got {value!r}")
    return value


def _vm_names(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError.of(
            "value", f"expected a list of VM names or ids, got {value!r}", "e.g. ['db01', 'app01']"
        )
    names = tuple(value)
    if not names:
        raise ValidationError.of("value", "is empty", "a job replicates at least one VM")
    findings = []
    seen: set[object] = set()
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            findings.append(Finding(f"vms[{index}]", f"{name!r} is not a VM name or id"))
        elif name in seen:
            findings.append(Finding(f"vms[{index}]", f"{name!r} is listed twice"))
        else:
            seen.add(name)
    if findings:
        raise ValidationError(findings)
    return names


def _retention(value: object) -> RetentionPolicy:
    if isinstance(value, RetentionPolicy):
        return value
    if isinstance(value, Mapping):
        fields = inspect.signature(RetentionPolicy).parameters
        unknown = sorted((key for key in value if key not in fields), key=repr)
        if unknown:
            raise ValidationError.of(
                "value", f"RetentionPolicy has no {unknown[0]!r}", "e.g. {'last': 4}"
            )
        return RetentionPolicy(**value)
    raise ValidationError.of(
        "value", f"expected a RetentionPolicy, got {value!r}", "e.g. RetentionPolicy(last=4)"
    )


def _network(value: object) -> Mapping[str, str]:
    if value is None:
        return {}
    if isinstance(value, NetworkMapping):
        return dict(value.production)
    return dict(NetworkMapping(production=value).production)  # type: ignore[arg-type]


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError.of("value", f"must be True or False, got {value!r}")
    return value


def _priority(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise ValidationError.of("value", f"must be a whole number from 1 (first) to 5: {value!r}")
    return value
