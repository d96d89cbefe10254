"""The RPO, measured: per VM, the age of its newest usable recovery point against its target.

:func:`rpo_status` reads the recovery points from the backend (the truth, whatever made them),
classifies each VM (:mod:`vmfailover.policy.rpo`), and computes the fraction of a window during
which the VM met its RPO from the points that exist and the points its job made and has since
deleted (the job's history, reaching back through its journal when it has one, so a restarted
process measures the same). Given jobs, it also tells each job's subscribers when a VM's state
changes: one :class:`~vmfailover.engine.replication_events.RPOChanged` per change, however often
the status is checked, because the job remembers the last state it reported.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from vmfailover._jsonable import jsonable_fields
from vmfailover._render import html_table, text_table
from vmfailover.backends.base import Backend
from vmfailover.clock import SystemClock
from vmfailover.engine.replication import ReplicationJob
from vmfailover.engine.replication_events import RPOChanged
from vmfailover.engine.replication_results import SyncOutcome
from vmfailover.errors import (
    Finding,
    NotFoundError,
    TransientBackendError,
    ValidationError,
    VMFailoverError,
)
from vmfailover.model import Inventory, RecoveryPoint, aware_utc
from vmfailover.policy.rpo import RPOState, classify_rpo, rpo_compliance
from vmfailover.policy.schedule import format_elapsed, parse_elapsed

__all__ = ["RPOEntry", "RPOReport", "rpo_status"]


@attrs.frozen
class RPOEntry:
    """One VM against its RPO at the report's instant.

    ``compliance`` is the fraction of the report's window during which the RPO was met;
    ``reason`` says why a VM has no point (no replica, not found, points unreadable).
    """

    vm: str
    job: str | None
    target_seconds: float
    state: RPOState
    newest_point: str | None = None
    newest_point_time: datetime | None = None
    age_seconds: float | None = None
    compliance: float | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return jsonable_fields(self)


@attrs.frozen
class RPOReport:
    """Every VM's RPO state at ``at``, and what changed since the last check (``events``)."""

    at: datetime
    window_seconds: float
    entries: tuple[RPOEntry, ...]
    events: tuple[RPOChanged, ...] = ()

    def entry(self, vm: str, job: str | None = None) -> RPOEntry:
        for entry in self.entries:
            if entry.vm == vm and (job is None or entry.job == job):
                return entry
        raise NotFoundError(f"the RPO report has no VM {vm!r}")

    def count(self, state: RPOState | str) -> int:
        return sum(1 for entry in self.entries if entry.state == state)

    @property
    def compliant(self) -> bool:
        """Every VM meets its RPO right now."""
        return all(entry.state is RPOState.COMPLIANT for entry in self.entries)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "window_seconds": self.window_seconds,
            "entries": [entry.as_dict() for entry in self.entries],
        }

    _HEADERS = ("VM", "job", "RPO", "newest point", "age", "state", "met")

    def table(self) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        """The table's headers and rows, as text: for renderers of our own (the command line's
        rich tables)."""
        return self._HEADERS, self._rows()

    def _rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for entry in self.entries:
            newest = entry.newest_point_time
            rows.append(
                (
                    entry.vm,
                    entry.job or "-",
                    format_elapsed(timedelta(seconds=entry.target_seconds)),
                    f"{newest:%Y-%m-%d %H:%M:%S}" if newest else (entry.reason or "-"),
                    "-" if entry.age_seconds is None else _age(entry.age_seconds),
                    entry.state.value,
                    "-" if entry.compliance is None else f"{entry.compliance:.1%}",
                )
            )
        return rows

    def summary(self) -> str:
        counts = ", ".join(
            f"{self.count(state)} {state.value}" for state in RPOState if self.count(state)
        )
        window = format_elapsed(timedelta(seconds=self.window_seconds))
        return (
            f"RPO at {self.at:%Y-%m-%d %H:%M:%S} UTC: {counts or 'no VMs'} "
            f"(met: share of the last {window})"
        )

    def __str__(self) -> str:
        return text_table(self._HEADERS, self._rows(), title=self.summary())

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.summary())}</p>" + html_table(self._HEADERS, self._rows())


@attrs.frozen
class _Target:
    vm: str
    job: ReplicationJob | None
    target: timedelta


def rpo_status(
    backend: Backend,
    jobs_or_vms: ReplicationJob | Iterable[ReplicationJob] | Mapping[str, str | timedelta],
    now: datetime | None = None,
    *,
    window: str | timedelta = "1d",
) -> RPOReport:
    """Measure every VM's RPO at ``now`` (the backend's clock by default).

    ``jobs_or_vms`` is a job, a list of jobs (each VM against its job's ``rpo``; jobs hear of
    state changes), or a mapping of VM name or id to RPO target (``{"db01": "15m"}``). ``window``
    is the span over which ``compliance`` is measured, ending at ``now``.
    """
    if not isinstance(backend, Backend):
        raise ValidationError.of(
            "rpo_status backend",
            f"{backend!r} is not a backend",
            "open one by name with vmfailover.backends.open_backend('memory')",
        )
    clock = getattr(backend, "clock", None) or SystemClock()
    at = clock.now() if now is None else aware_utc(now, "now")
    span = parse_elapsed(window, "window")
    targets = _targets(backend, jobs_or_vms)
    reader = _PointReader(backend)
    entries: list[RPOEntry] = []
    events: list[RPOChanged] = []
    history = _History(at - span)
    for target in targets:
        entry, points = reader.measure(target, at)
        if points is not None:
            times = [point.created_at for point in points if point.created_at <= at]
            if target.job is not None:
                times.extend(history.point_times(target.job, target.vm, target.target))
            compliance = rpo_compliance(times, target.target, at - span, at)
            entry = attrs.evolve(entry, compliance=compliance)
        entries.append(entry)
        if target.job is not None and points is not None:
            age = None if entry.age_seconds is None else timedelta(seconds=entry.age_seconds)
            event = target.job._observe_rpo(target.vm, entry.state, age, at)
            if event is not None:
                events.append(event)
    return RPOReport(at, span.total_seconds(), tuple(entries), tuple(events))


def _targets(
    backend: Backend,
    jobs_or_vms: ReplicationJob | Iterable[ReplicationJob] | Mapping[str, str | timedelta],
) -> list[_Target]:
    if isinstance(jobs_or_vms, ReplicationJob):
        jobs_or_vms = [jobs_or_vms]
    if isinstance(jobs_or_vms, Mapping):
        return [
            _Target(vm, None, parse_elapsed(target, f"rpo of VM {vm!r}"))
            for vm, target in jobs_or_vms.items()
        ]
    given: object = jobs_or_vms
    if isinstance(given, str) or not isinstance(given, Iterable):
        raise ValidationError.of(
            "jobs_or_vms",
            f"expected replication jobs or a mapping of VM to RPO, got {jobs_or_vms!r}",
            "e.g. rpo_status(backend, [job]) or rpo_status(backend, {'db01': '15m'})",
        )
    targets: list[_Target] = []
    findings: list[Finding] = []
    for job in given:
        if not isinstance(job, ReplicationJob):
            findings.append(Finding(f"{job!r}", "is not a ReplicationJob"))
        elif job.backend is not backend:
            findings.append(
                Finding(f"job {job.name!r}", f"replicates on another backend than {backend!r}")
            )
        else:
            targets.extend(_Target(vm, job, job.rpo) for vm in job.vms)
    if findings:
        raise ValidationError(findings)
    return targets


class _PointReader:
    """Reads each VM's recovery points, resolving replicas through one inventory at most."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._inventory: Inventory | None = None

    def measure(self, target: _Target, at: datetime) -> tuple[RPOEntry, list[RecoveryPoint] | None]:
        """The VM's entry without compliance, and its points (``None`` when unreadable)."""
        base = RPOEntry(
            vm=target.vm,
            job=None if target.job is None else target.job.name,
            target_seconds=target.target.total_seconds(),
            state=RPOState.UNPROTECTED,
        )
        try:
            replica_id = self._replica_id(target)
            if replica_id is None:
                return attrs.evolve(base, reason="no replica"), []
            points = list(self._read(self._backend.recovery_points, replica_id))
        except NotFoundError as error:
            return attrs.evolve(base, reason=str(error)), []
        except VMFailoverError as error:
            return attrs.evolve(base, reason=f"recovery points unreadable: {error}"), None
        usable = [point for point in points if point.created_at <= at]
        if not usable:
            return attrs.evolve(base, reason="no recovery point"), points
        newest = max(usable, key=lambda point: point.created_at)
        age = at - newest.created_at
        entry = attrs.evolve(
            base,
            state=classify_rpo(age, target.target),
            newest_point=newest.id,
            newest_point_time=newest.created_at,
            age_seconds=age.total_seconds(),
        )
        return entry, points

    def _replica_id(self, target: _Target) -> str | None:
        if target.job is not None:
            known = target.job._known_replica(target.vm)
            if known is not None:
                return known
        if self._inventory is None:
            self._inventory = self._read(self._backend.inventory)
        vm = self._inventory.vm(target.vm)
        try:
            return self._inventory.replica_of(vm.id).id
        except NotFoundError:
            return None

    def _read(self, fn: Any, *args: object) -> Any:
        """Call the backend; a transient error is tried twice more at once (a read is cheap)."""
        for attempt in range(3):
            try:
                return fn(*args)
            except TransientBackendError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


class _History:
    """The points each job made (including those since deleted), from its run results."""

    def __init__(self, window_start: datetime) -> None:
        self._start = window_start
        self._by_job: dict[str, dict[str, list[datetime]]] = {}

    def point_times(self, job: ReplicationJob, vm: str, target: timedelta) -> list[datetime]:
        found = self._by_job.get(job.name)
        if found is None:
            found = {}
            # A point made up to one target before the window still covers part of it.
            for result in job.results_for_rpo(self._start - target):
                for synced in result.vms:
                    if synced.outcome is SyncOutcome.SYNCED and synced.point_time is not None:
                        found.setdefault(synced.vm, []).append(synced.point_time)
            self._by_job[job.name] = found
        return found.get(vm, [])


def _age(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
