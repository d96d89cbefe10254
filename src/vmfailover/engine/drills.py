"""Recovery drills: a plan's test failover and cleanup, run on a schedule, with a history.

A :class:`Drill` is a plan, a schedule (as a replication job's), an optional ``max_duration`` and
how many results to ``keep``. :func:`run_drill` runs one drill now: it first asks
:func:`vmfailover.policy.drills.skip_reason` whether production (or a person's pending look)
stands in the way, from every run the runner's journal and the runner know; then it runs the plan
as a test failover, cleans it up and proves the inventory restored, and returns a
:class:`~vmfailover.engine.drill_results.DrillResult`. With a journal the test run is journaled as
any test run (``vmfailover report`` shows it).

A :class:`DrillDriver` runs many drills on a clock: each tick runs every due drill, one after the
other, so drills never overlap; a drill that missed slots while the driver was down runs once. On
a :class:`~vmfailover.clock.VirtualClock` standing still, :meth:`DrillDriver.run_forever` jumps
from slot to slot, so a month of nightly drills takes seconds.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from vmfailover.clock import Clock, SystemClock, VirtualClock, full_clock
from vmfailover.engine._named_members import named_members
from vmfailover.engine.drill_results import DrillResult, VMReadiness
from vmfailover.engine.journal import EntryKind, Journal
from vmfailover.engine.results import Outcome, RunReport, RunResult
from vmfailover.engine.run import Run
from vmfailover.engine.run_record import read_plan_vms
from vmfailover.engine.runner import Runner
from vmfailover.errors import ConflictError, Finding, ValidationError, VMFailoverError
from vmfailover.model import FailoverKind, aware_utc, is_finite_number
from vmfailover.plan import FailoverPlan
from vmfailover.policy.drills import (
    DrillOutcome,
    RunView,
    drill_due,
    settled,
    skip_reason,
)
from vmfailover.policy.schedule import Schedule, format_elapsed, parse_elapsed

__all__ = ["Drill", "DrillDriver", "run_drill"]

_POLL = 0.05
"""Real seconds between looks at a drill's run while a ``max_duration`` is watched."""


def _plan(value: object) -> FailoverPlan:
    if not isinstance(value, FailoverPlan):
        raise ValidationError.of("Drill plan", f"expected a FailoverPlan, got {value!r:.80}")
    return value


def _keep(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
        raise ValidationError.of(
            "Drill keep", f"must be a whole number from 1 to 100000, got {value!r}"
        )
    return value


def _expected(value: object) -> Mapping[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError.of(
            "Drill expected", f"expected VM name -> seconds, got {value!r:.80}"
        )
    findings = [
        Finding(f"Drill expected {name!r}", f"must be finite seconds >= 0, got {seconds!r}")
        for name, seconds in value.items()
        if not isinstance(name, str) or not is_finite_number(seconds) or seconds < 0
    ]
    if findings:
        raise ValidationError(findings)
    return {name: float(seconds) for name, seconds in value.items()}


@attrs.frozen(init=False)
class Drill:
    """A recovery drill of ``plan``: a test failover and its proven cleanup, on ``schedule``.

    ``schedule`` is a :class:`~vmfailover.policy.schedule.Schedule` or its mapping
    (``{"daily": "03:00", "tz": "Europe/Berlin"}``), or None for a drill run only on demand (the
    command line's ``vmfailover drill``, from cron). ``max_duration`` (``"30m"``, a timedelta or
    seconds) bounds the run plus its cleanup: a drill still running at that point is cancelled,
    cleaned up and reported failed. ``keep`` is how many results its history holds.
    ``expected`` (VM name -> start-to-ready seconds) feeds the RTO prediction; without it the
    last passed drill's measured times do.
    """

    plan: FailoverPlan
    schedule: Schedule | None
    max_duration: timedelta | None
    keep: int
    expected: Mapping[str, float] | None

    def __init__(
        self,
        plan: FailoverPlan,
        *,
        schedule: Schedule | Mapping[str, Any] | None = None,
        max_duration: str | timedelta | float | None = None,
        keep: int = 30,
        expected: Mapping[str, float] | None = None,
    ) -> None:
        findings: list[Finding] = []
        values: dict[str, Any] = {}
        owner = f"drill {getattr(plan, 'name', plan)!r}"
        for name, check in (
            ("plan", lambda: _plan(plan)),
            ("schedule", lambda: None if schedule is None else Schedule.of(schedule, owner)),
            (
                "max_duration",
                lambda: (
                    None
                    if max_duration is None
                    else parse_elapsed(max_duration, f"{owner}: max_duration")
                ),
            ),
            ("keep", lambda: _keep(keep)),
            ("expected", lambda: _expected(expected)),
        ):
            try:
                values[name] = check()
            except ValidationError as error:
                findings.extend(error.findings)
        if findings:
            raise ValidationError(findings)
        self.__attrs_init__(**values)

    @property
    def name(self) -> str:
        return self.plan.name

    def __str__(self) -> str:
        when = "on demand" if self.schedule is None else str(self.schedule)
        limit = ""
        if self.max_duration is not None:
            limit = f", at most {format_elapsed(self.max_duration)}"
        return f"drill of plan {self.name!r} {when}{limit}"


# --- one drill ----------------------------------------------------------------------------------


def known_runs(runner: Runner, extra: Iterable[Run] = ()) -> list[RunView]:
    """Every run the runner's journal and the runner know of, as the skip decision sees them.

    Settled runs (committed, undone, failed back, cleaned up) are left out without reading
    their records.
    """
    views: dict[str, RunView] = {}
    journal: Journal | None = runner.journal
    if journal is not None:
        for summary in journal.runs():
            if settled(summary.kind, summary.state):
                continue
            vms = read_plan_vms(journal.load(summary.run_id, kinds=(EntryKind.STATE,)).record)
            views[summary.run_id] = RunView(
                summary.run_id, summary.plan, summary.kind, summary.state, vms
            )
    with runner._runs_lock:
        live = list(runner._runs.values())
    for run in [*live, *extra]:
        views[run.id] = RunView(run.id, run.plan.name, run.kind, run.state.value, run.plan.vms)
    return list(views.values())


def _last_measured(runner: Runner, plan: str) -> Mapping[str, float] | None:
    """Start-to-ready seconds of the last succeeded, cleaned-up test run of ``plan`` in the
    runner's journal: the prediction's durations when nothing better is known."""
    if runner.journal is None:
        return None
    for summary in reversed(runner.journal.runs()):
        if (
            summary.kind is FailoverKind.TEST
            and summary.plan == plan
            and summary.state == "cleaned_up"
            and summary.result is RunResult.SUCCEEDED
        ):
            report = runner.journal.report(summary.run_id).report
            return None if report is None else _measured(report)
    return None


def _measured(report: RunReport) -> dict[str, float] | None:
    return {vm.vm: vm.seconds for vm in report.vms if vm.seconds is not None} or None


def run_drill(
    runner: Runner,
    drill: Drill,
    *,
    history: Iterable[DrillResult] = (),
    own_runs: Iterable[Run] = (),
) -> DrillResult:
    """Run ``drill`` now on ``runner``: skipped (with the reason) when production or a pending
    look stands in the way, else a test failover, its cleanup, and the verdict.

    ``history`` is the drill's earlier results, newest last (their measured times predict this
    one's RTO when the drill has no ``expected``); ``own_runs`` are the drill's earlier runs a
    driver holds (for a runner without a journal, which knows no runs of its own).
    """
    if not isinstance(runner, Runner):
        raise ValidationError.of("run_drill runner", f"expected a Runner, got {runner!r:.80}")
    if not isinstance(drill, Drill):
        raise ValidationError.of("run_drill drill", f"expected a Drill, got {drill!r:.80}")
    return _drill(runner, drill, tuple(history), tuple(own_runs))[0]


def _drill(
    runner: Runner, drill: Drill, history: tuple[DrillResult, ...], own_runs: tuple[Run, ...]
) -> tuple[DrillResult, Run | None]:
    """The drill's result and its test run (None when it did not start)."""
    clock = runner.clock
    started = clock.now()
    plan = drill.plan
    reason = skip_reason(plan.name, plan.vms, known_runs(runner, own_runs))
    if reason is not None:
        return _skipped(drill, started, clock.now(), reason), None
    weights = drill.expected or _from_history(history) or _last_measured(runner, plan.name)
    try:
        run = runner.start(plan, kind=FailoverKind.TEST, weights=weights)
    except ConflictError as error:  # another run claimed a VM between the check and the start
        return _skipped(drill, started, clock.now(), str(error)), None
    except ValidationError as error:
        refused = DrillResult(
            plan=plan.name,
            started_at=started,
            ended_at=clock.now(),
            result=DrillOutcome.FAILED,
            reason=f"the pre-flight refused the test failover: {error}",
            rto_target_seconds=plan.rto,
        )
        return refused, None
    return _finish(runner, drill, run, started), run


def _from_history(history: Iterable[DrillResult]) -> dict[str, float] | None:
    for result in reversed(tuple(history)):
        if result.passed and result.report is not None:
            return _measured(result.report)
    return None


def _skipped(drill: Drill, started: datetime, ended: datetime, reason: str) -> DrillResult:
    return DrillResult(
        plan=drill.name,
        started_at=started,
        ended_at=ended,
        result=DrillOutcome.SKIPPED,
        reason=reason,
        rto_target_seconds=drill.plan.rto,
    )


def _finish(runner: Runner, drill: Drill, run: Run, started: datetime) -> DrillResult:
    """Wait for the test run (cancelling it past ``max_duration``), clean it up, judge it."""
    problems: list[str] = []
    limit = drill.max_duration
    deadline = None if limit is None else started + limit
    if deadline is not None and limit is not None:
        while not run.done:
            if runner.clock.now() >= deadline:
                run.cancel()
                problems.append(
                    f"still running after max_duration {format_elapsed(limit)}: cancelled"
                )
                break
            try:
                run.wait(_POLL)
            except ConflictError:
                if run.done:
                    raise
    report: RunReport | None = None
    try:
        report = run.wait()
    except VMFailoverError as error:
        problems.append(f"the test run stopped: {error}")
    try:
        report = runner.cleanup(run)
    except VMFailoverError as error:
        problems.append(f"cleanup could not run: {error}")
    ended = runner.clock.now()
    cleanup = None if report is None else report.cleanup
    if report is not None:
        problems[:0] = _report_problems(report)
    if cleanup is None or not cleanup.restored:
        problems.append("the cleanup did not prove the inventory restored: a person must look")
    cancelled = any("max_duration" in problem for problem in problems)
    if limit is not None and ended - started > limit and not cancelled:
        problems.append(
            f"run and cleanup took {format_elapsed(ended - started)}, more than max_duration "
            f"{format_elapsed(limit)}"
        )
    return DrillResult(
        plan=drill.name,
        started_at=started,
        ended_at=ended,
        result=DrillOutcome.FAILED if problems else DrillOutcome.PASSED,
        reason="; ".join(problems),
        run_id=run.id,
        rto_seconds=None if report is None else report.rto_seconds,
        predicted_rto_seconds=None if report is None else report.predicted_rto_seconds,
        rto_target_seconds=drill.plan.rto,
        vms=() if report is None else _readiness(report),
        cleanup=cleanup,
        report=report,
    )


def _report_problems(report: RunReport) -> list[str]:
    problems = [
        f"{vm.vm} {vm.outcome.value.replace('_', ' ')}" + (f": {vm.reason}" if vm.reason else "")
        for vm in report.vms
        if vm.outcome is not Outcome.READY
    ]
    if report.rto_met is False and report.all_ready:
        problems.append(
            f"RTO {report.rto_seconds:g}s missed the plan's target {report.rto_target_seconds:g}s"
        )
    return problems


def _readiness(report: RunReport) -> tuple[VMReadiness, ...]:
    return tuple(
        VMReadiness(vm=vm.vm, outcome=vm.outcome.value, seconds=vm.seconds, reason=vm.reason)
        for vm in report.vms
    )


# --- many drills on a clock ---------------------------------------------------------------------


class DrillDriver:
    """Runs ``drills`` on ``runner`` when their schedules say, and keeps each one's history.

    ``clock`` defaults to the runner's. Drills without a schedule are never due here (run them
    with :func:`run_drill`). ``max_idle`` bounds one wait in the clock's seconds.
    """

    def __init__(
        self,
        runner: Runner,
        drills: Iterable[Drill],
        *,
        clock: Clock | None = None,
        max_idle: float = 60.0,
    ) -> None:
        if not isinstance(runner, Runner):
            raise ValidationError.of("DrillDriver runner", f"expected a Runner, got {runner!r:.80}")
        listed, findings = named_members(
            drills, Drill, owner="DrillDriver", parameter="drills", noun="drill", place="the driver"
        )
        if not is_finite_number(max_idle) or not max_idle > 0:
            findings.append(Finding("DrillDriver max_idle", f"must be > 0 seconds: {max_idle!r}"))
        if findings:
            raise ValidationError(findings)
        self.runner = runner
        self.drills: tuple[Drill, ...] = tuple(listed)
        self.clock: Clock = runner.clock if clock is None else full_clock(clock)
        self.max_idle = float(max_idle)
        self._history: dict[str, deque[DrillResult]] = {
            drill.name: deque(maxlen=drill.keep) for drill in self.drills
        }
        self._last_started: dict[str, datetime] = {}
        self._runs: dict[str, Run] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return f"DrillDriver({len(self.drills)} drills)"

    def history(self, plan: str) -> tuple[DrillResult, ...]:
        """The drill of ``plan``'s last results (at most its ``keep``), oldest first."""
        if plan not in self._history:
            raise ValidationError.of("history", f"no drill of plan {plan!r} in this driver")
        return tuple(self._history[plan])

    def due(self, now: datetime) -> list[Drill]:
        """The scheduled drills due at ``now``, in the order they would run."""
        at = aware_utc(now, "now")
        return [
            drill
            for drill in self.drills
            if drill.schedule is not None
            and drill_due(drill.schedule, self._last_started.get(drill.name), at)
        ]

    def run_pending(self, now: datetime | None = None) -> tuple[DrillResult, ...]:
        """Run every drill due at ``now`` (the clock's time by default), one after the other;
        their results, in order. A drill whose previous run is still going (another thread
        called this) is recorded skipped."""
        at = self.clock.now() if now is None else aware_utc(now, "now")
        results = []
        for drill in self.due(at):
            self._last_started[drill.name] = at
            with self._lock:
                overlapping = drill.name in self._running
                self._running.add(drill.name)
            try:
                if overlapping:
                    result = _skipped(
                        drill, at, at, "the previous drill of this plan is still running"
                    )
                else:
                    result = self._run(drill)
            finally:
                if not overlapping:
                    with self._lock:
                        self._running.discard(drill.name)
            self._history[drill.name].append(result)
            results.append(result)
        return tuple(results)

    def _run(self, drill: Drill) -> DrillResult:
        own = [run for name, run in self._runs.items() if name != drill.name]
        previous = self._runs.get(drill.name)
        result, run = _drill(
            self.runner,
            drill,
            tuple(self._history[drill.name]),
            (*own, *([previous] if previous is not None else [])),
        )
        if run is not None:
            self._runs[drill.name] = run
        return result

    def next_due(self, now: datetime) -> datetime | None:
        """When the next scheduled drill is due after ``now`` (None: never)."""
        at = aware_utc(now, "now")
        times = []
        for drill in self.drills:
            if drill.schedule is None:
                continue
            last = self._last_started.get(drill.name)
            times.append(at if last is None else drill.schedule.next_after(last))
        found = [moment for moment in times if moment is not None]
        return min(found) if found else None

    def run_forever(self, *, until: datetime | None = None) -> None:
        """Run drills on time until :meth:`stop` is called or the clock reaches ``until``."""
        end = None if until is None else aware_utc(until, "until")
        simulated = isinstance(self.clock, VirtualClock) and self.clock.rate == 0
        self._stop.clear()
        while not self._stop.is_set():
            now = self.clock.now()
            if end is not None and now >= end:
                return
            self.run_pending(now)
            now = self.clock.now()
            wake = self.next_due(now)
            if end is not None:
                wake = end if wake is None else min(wake, end)
            if wake is None:
                return
            seconds = max((wake - now).total_seconds(), 0.0)
            if simulated:
                self.clock.sleep(seconds)
            elif isinstance(self.clock, SystemClock):
                self._stop.wait(min(seconds, self.max_idle))
            else:
                self.clock.sleep(min(seconds, self.max_idle, 1.0))

    def stop(self) -> None:
        """Make :meth:`run_forever` return after the drill it is running, if any."""
        self._stop.set()
