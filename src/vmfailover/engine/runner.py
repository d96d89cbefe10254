"""The runner: checks a failover, then drives the sequencer against a backend.

Two phases, and the line between them matters. **Pre-flight** reads the inventory and the recovery
points and refuses the whole run, with every problem named, before anything is touched: a run that
cannot finish must not start. **Execution** reverts every replica to its chosen point on a bounded
thread pool, and powers VMs on in the order the :class:`~vmfailover.policy.sequencer.Sequencer`
allows, each the moment what it depends on is ready; the runner's boot threads are one of the
sequencer's limits, so no VM waits for a thread behind a less critical one. Transient backend
errors are retried with exponential backoff and jitter (tenacity); permanent ones fail the VM and
its failure policy decides what happens to the rest.

This first slice runs **regular** (unplanned) failovers: the source site is assumed lost. Planned
and test failovers, plans with network mapping and re-IP, and the journal that makes a run
resumable come next (see the roadmap); the seams are :meth:`Runner._preflight` (per kind checks) and
:meth:`_Execution._prepare` (per kind preparation).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import TypeVar

import attrs
import tenacity

from vmfailover._render import in_words
from vmfailover.backends.base import Backend
from vmfailover.clock import Clock, SystemClock
from vmfailover.engine.events import (
    RunEvent,
    RunFinished,
    RunStarted,
    RunWarning,
    Step,
    StepFinished,
    StepStarted,
    Subscriber,
    VMFailed,
    VMReady,
)
from vmfailover.engine.readiness import probe_passes
from vmfailover.engine.results import Outcome, RunReport, RunResult, VMResult
from vmfailover.errors import (
    ConflictError,
    Finding,
    NotFoundError,
    TransientBackendError,
    ValidationError,
    VMFailoverError,
)
from vmfailover.model import (
    VM,
    FailoverKind,
    RecoveryPoint,
    Replica,
    ReplicaState,
    as_enum,
)
from vmfailover.policy.fencing import fence_reason
from vmfailover.policy.points import PointChoice, choose_point
from vmfailover.policy.sequencer import (
    CompiledOrder,
    Sequencer,
    StartEntry,
    StartOrder,
    VMState,
)

__all__ = ["RetryPolicy", "Run", "Runner"]

_T = TypeVar("_T")


@attrs.frozen
class RetryPolicy:
    """How transient backend errors are retried: exponential backoff with jitter, bounded."""

    attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    initial_wait: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    max_wait: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))


@attrs.frozen
class _Target:
    """One VM of a run, resolved against the inventory during pre-flight."""

    name: str
    source: VM
    replica: Replica
    point: RecoveryPoint
    entry: StartEntry


@attrs.define
class _Progress:
    started_at: datetime | None = None
    powered_on_at: datetime | None = None
    ready_at: datetime | None = None
    reason: str | None = None


class Run:
    """A failover in progress. :meth:`wait` returns its report; :meth:`cancel` stops new starts."""

    def __init__(self, execution: _Execution) -> None:
        self._execution = execution
        self._thread: threading.Thread | None = None
        self._report: RunReport | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()

    @property
    def id(self) -> str:
        return self._execution.run_id

    def cancel(self) -> None:
        """Start nothing new; VMs already starting finish; the rest end ``cancelled``."""
        self._execution.cancelled.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> RunReport:
        """Block until the run ends and return its report (or raise what stopped it)."""
        if self._thread is None:
            self._run()
        elif not self._done.wait(timeout):
            raise TimeoutError(f"run {self.id} still running after {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._report is not None
        return self._report

    def _start_background(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"vmfailover-{self.id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._report = self._execution.execute()
        except BaseException as error:  # handed to wait(), which re-raises it
            self._error = error
        finally:
            self._done.set()


class Runner:
    """Runs failovers against one backend.

    ``max_parallel`` is how many VMs boot at once (power-on until ready or failed). The sequencer
    enforces it as a limit of its own, so when more VMs could start the ones on the critical path
    go first; ``simulate(order, durations, workers=runner.max_parallel)`` predicts a run of this
    runner. Reverts to the recovery points run ahead of the boots on as many threads again;
    ``readiness_timeout`` is the default time a VM gets from power-on to ready;
    ``poll_interval`` is how often readiness is checked, in the clock's seconds.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        clock: Clock | None = None,
        max_parallel: int = 8,
        retry: RetryPolicy | None = None,
        readiness_timeout: float = 600.0,
        poll_interval: float = 5.0,
    ) -> None:
        if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
            raise ValidationError.of(
                "Runner max_parallel", f"must be a whole number >= 1, got {max_parallel!r}"
            )
        if readiness_timeout <= 0 or poll_interval <= 0:
            raise ValidationError.of(
                "Runner", "readiness_timeout and poll_interval must be > 0 seconds"
            )
        self.backend = backend
        self.clock: Clock = clock or getattr(backend, "clock", None) or SystemClock()
        self.max_parallel = max_parallel
        self.retry = retry or RetryPolicy()
        self.readiness_timeout = readiness_timeout
        self.poll_interval = poll_interval
        self._subscribers: list[Subscriber] = []
        self._subscribers_lock = threading.Lock()
        self._retrying_cache: tuple[RetryPolicy, Clock, tenacity.Retrying] | None = None

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every event of every run; returns a function that unsubscribes.

        Calls are serialized (never two at once) but may come from worker threads.
        """
        with self._subscribers_lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._subscribers_lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def failover(
        self,
        vms: StartOrder | Iterable[str],
        *,
        kind: FailoverKind | str = FailoverKind.REGULAR,
        recovery_point: PointChoice = "latest",
        force: bool = False,
        rto: float | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> RunReport:
        """Check, then run a failover of ``vms`` (names or ids of source VMs) and report.

        Raises :class:`~vmfailover.errors.ValidationError` listing every blocking problem before
        anything is touched. ``force=True`` starts replicas even where the source still seems to
        run (the split-brain guard is overridden, and the report says so). ``weights`` maps VMs
        to their expected start-to-ready seconds: when more VMs could start than may, the longest
        remaining path under these weights goes first (under one per VM without them), as in
        ``simulate(order, durations, workers=runner.max_parallel)``, which weighs by the
        durations' means.
        """
        return self.start(
            vms,
            kind=kind,
            recovery_point=recovery_point,
            force=force,
            rto=rto,
            weights=weights,
            background=False,
        ).wait()

    def start(
        self,
        vms: StartOrder | Iterable[str],
        *,
        kind: FailoverKind | str = FailoverKind.REGULAR,
        recovery_point: PointChoice = "latest",
        force: bool = False,
        rto: float | None = None,
        weights: Mapping[str, float] | None = None,
        background: bool = True,
    ) -> Run:
        """Like :meth:`failover`, but returns the :class:`Run` at once (it runs in a thread)."""
        order = _as_order(vms)
        kind = as_enum(FailoverKind, kind, "kind")
        targets, decisions = self._preflight(order, kind, recovery_point, force)
        # The runner's threads are a limit, so the sequencer gets it (see _Execution.execute).
        compiled = order.compile(weights=weights, workers=self.max_parallel)
        run_id = f"run-{self.clock.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        execution = _Execution(self, run_id, kind, compiled, targets, decisions, rto)
        run = Run(execution)
        if background:
            run._start_background()
        return run

    # --- pre-flight ------------------------------------------------------------------------------

    def _preflight(
        self, order: StartOrder, kind: FailoverKind, choice: PointChoice, force: bool
    ) -> tuple[dict[str, _Target], list[str]]:
        if kind is not FailoverKind.REGULAR:
            raise ValidationError.of(
                f"kind {kind.value!r}",
                "this runner runs regular (unplanned) failovers so far",
                "planned and test failover arrive with failover plans",
            )
        findings = [f for f in order.validate() if f.blocking]
        if findings:
            raise ValidationError(findings)
        inventory = self._call(self.backend.inventory)
        targets: dict[str, _Target] = {}
        decisions: list[str] = []
        for name in order.vms:
            item = f"VM {name!r}"
            try:
                source = inventory.vm(name)
                replica = inventory.replica_of(source.id)
            except NotFoundError as error:
                findings.append(Finding(item, str(error)))
                continue
            if replica.state not in (ReplicaState.READY, ReplicaState.FAILED_OVER):
                findings.append(
                    Finding(item, f"its replica {replica.id!r} is {in_words(replica.state)}")
                )
                continue
            points = self._call(self.backend.recovery_points, replica.id)
            point = choose_point(points, choice)
            if point is None:
                findings.append(
                    Finding(item, f"no recovery point of replica {replica.id!r} matches {choice!r}")
                )
                continue
            fence = fence_reason(inventory, source, replica)
            if fence is not None:
                if force:
                    decisions.append(f"{item}: {fence}; started anyway because force=True")
                else:
                    findings.append(
                        Finding(
                            item,
                            fence,
                            hint="shut the source down (or run a planned failover), or pass "
                            "force=True if you know it is fenced",
                        )
                    )
                    continue
            targets[name] = _Target(name, source, replica, point, order.entry(name))
        if findings:
            raise ValidationError(findings)
        return targets, decisions

    # --- calls and events ------------------------------------------------------------------------

    def _call(
        self,
        fn: Callable[..., _T],
        *args: object,
        on_retry: Callable[[str], None] | None = None,
    ) -> _T:
        """Call the backend, retrying transient errors per the retry policy."""
        result: _T = self._retrying()(_attempt, fn, on_retry, *args)
        return result

    def _retrying(self) -> tenacity.Retrying:
        """One Retrying per retry policy and clock, shared by every call (it is thread-safe).

        tenacity keeps a call's state in a thread-local of its Retrying that points back to it,
        so a Retrying built per call became cyclic garbage (about 28 objects per VM) that only
        the garbage collector frees, in full passes over a heap as big as the inventory.
        """
        policy, clock = self.retry, self.clock
        cached = self._retrying_cache
        if cached is not None and cached[0] is policy and cached[1] is clock:
            return cached[2]
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientBackendError),
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=tenacity.wait_exponential(multiplier=policy.initial_wait, max=policy.max_wait)
            + tenacity.wait_random(0, policy.initial_wait),
            sleep=clock.sleep,
            before_sleep=self._before_retry_sleep,
            reraise=True,
        )
        self._retrying_cache = (policy, clock, retrying)
        return retrying

    def _before_retry_sleep(self, state: tenacity.RetryCallState) -> None:
        fn, on_retry = state.args[0], state.args[1]
        if on_retry is not None and state.outcome is not None:
            error = state.outcome.exception()
            on_retry(
                f"{getattr(fn, '__name__', 'call')}: {error} "
                f"(attempt {state.attempt_number} of {self.retry.attempts}, retrying)"
            )

    def _emit(self, event: RunEvent) -> None:
        with self._subscribers_lock:
            for callback in list(self._subscribers):
                callback(event)


def _attempt(fn: Callable[..., _T], on_retry: object, *args: object) -> _T:
    """One try of ``fn``; ``on_retry`` rides along for :meth:`Runner._before_retry_sleep`."""
    return fn(*args)


def _as_order(vms: StartOrder | Iterable[str]) -> StartOrder:
    if isinstance(vms, StartOrder):
        return vms
    if isinstance(vms, str):
        vms = (vms,)
    order = StartOrder()
    for name in vms:
        order.add(name)
    if not order.vms:
        raise ValidationError.of("failover", "no VMs given")
    return order


class _Abandoned(BaseException):
    """Raised in a worker whose run was abandoned; a BaseException so no handler records it."""


_OUTCOMES = {
    VMState.READY: Outcome.READY,
    VMState.FAILED: Outcome.FAILED,
    VMState.TIMED_OUT: Outcome.TIMED_OUT,
    VMState.SKIPPED: Outcome.SKIPPED,
    VMState.CANCELLED: Outcome.CANCELLED,
}


class _Execution:
    """One run's execution: the thread pools, the sequencer and what happened to each VM."""

    def __init__(
        self,
        runner: Runner,
        run_id: str,
        kind: FailoverKind,
        compiled: CompiledOrder,
        targets: dict[str, _Target],
        decisions: list[str],
        rto: float | None,
    ) -> None:
        self.runner = runner
        self.run_id = run_id
        self.kind = kind
        self.compiled = compiled
        self.targets = targets
        self.decisions = decisions
        self.warnings: list[str] = []
        self.rto = rto
        self.cancelled = threading.Event()
        self.progress = {name: _Progress() for name in targets}
        self._abandoned = threading.Event()
        self._lock = threading.Lock()

    @property
    def clock(self) -> Clock:
        return self.runner.clock

    def execute(self) -> RunReport:
        started_at = self.clock.now()
        self.runner._emit(RunStarted(self.run_id, self.kind, self.compiled.names, started_at))
        # The workers are a limit, so the sequencer enforces it: it hands out at most as many
        # boots as there are boot threads, critical path first, and no boot ever queues for a
        # thread (where it would start first come, first served).
        workers = self.runner.max_parallel
        sequencer = Sequencer(self.compiled)
        reverts = ThreadPoolExecutor(workers, thread_name_prefix=f"{self.run_id}-revert")
        boots = ThreadPoolExecutor(workers, thread_name_prefix=f"{self.run_id}-boot")
        try:
            self._drive(sequencer, reverts, boots)
        except BaseException:
            # The orchestrator is going down (a crash, an interrupt): workers stop at their next
            # backend call or poll instead of finishing work nobody will record.
            self._abandoned.set()
            raise
        finally:
            reverts.shutdown(wait=True, cancel_futures=True)
            boots.shutdown(wait=True, cancel_futures=True)
        finished_at = self.clock.now()
        report = self._report(sequencer, started_at, finished_at)
        for name, result in ((r.vm, r) for r in report.vms):
            if result.outcome in (Outcome.SKIPPED, Outcome.CANCELLED):
                self.runner._emit(
                    VMFailed(self.run_id, name, result.outcome, result.reason or "", finished_at)
                )
        self.runner._emit(RunFinished(self.run_id, report.result, finished_at, report.rto_seconds))
        return report

    def _drive(
        self, sequencer: Sequencer, reverts: ThreadPoolExecutor, boots: ThreadPoolExecutor
    ) -> None:
        """Start what the sequencer allows, tell it what finished, until it is finished.

        Reverts run ahead on their own threads, in the order the sequencer will want the VMs
        (best first), so a boot rarely waits for its revert.
        """
        best_first = sequencer.compiled.best_first
        prepared = {name: reverts.submit(self._prepare, name) for name in best_first}
        running: dict[Future[VMState], str] = {}
        while True:
            if self.cancelled.is_set() and not sequencer.finished:
                sequencer.cancel()
            for name in sequencer.take_startable():
                running[boots.submit(self._boot, name, prepared[name])] = name
            if not running:
                if sequencer.finished:
                    return
                raise ConflictError(  # a sequencer bug; better loud than a silent hang
                    f"run {self.run_id}: VMs are pending but none may start ({sequencer!r})"
                )
            done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                state = future.result()  # a SimulatedCrash (any BaseException) ends the run
                if state is VMState.READY:
                    sequencer.mark_ready(name)
                elif state is VMState.TIMED_OUT:
                    sequencer.mark_timed_out(name)
                else:
                    sequencer.mark_failed(name, self.progress[name].reason or "")

    # --- per-VM steps ----------------------------------------------------------------------------

    def _prepare(self, name: str) -> None:
        """Revert the replica to the chosen point (it must be off: pre-flight checked)."""
        target = self.targets[name]
        self._step(
            name,
            Step.REVERT,
            self._call,
            self.runner.backend.revert,
            name,
            target.replica.id,
            target.point.id,
        )

    def _boot(self, name: str, prepared: Future[None]) -> VMState:
        """Power on once prepared, then wait for the VM's readiness probe."""
        target = self.targets[name]
        progress = self.progress[name]
        vm_id = target.replica.replica_vm
        try:
            prepared.result()
            progress.started_at = self.clock.now()
            self._step(name, Step.POWER_ON, self._call, self.runner.backend.power_on, name, vm_id)
            progress.powered_on_at = self.clock.now()
            state = self._step(name, Step.WAIT_READY, self._wait_ready, name, vm_id)
        except VMFailoverError as error:
            progress.reason = str(error)
            self._failed(name, VMState.FAILED, progress.reason)
            return VMState.FAILED
        except Exception as error:  # a bug in a backend must not leave the run half-done
            progress.reason = f"unexpected {type(error).__name__}: {error}"
            self._failed(name, VMState.FAILED, progress.reason)
            return VMState.FAILED
        if state is VMState.READY:
            progress.ready_at = self.clock.now()
            self.runner._emit(VMReady(self.run_id, name, progress.ready_at))
        else:
            self._failed(name, state, progress.reason or "")
        return state

    def _wait_ready(self, name: str, vm_id: str) -> VMState:
        entry = self.targets[name].entry
        probe = entry.probe
        timeout = entry.timeout or (probe.timeout if probe else self.runner.readiness_timeout)
        deadline = self.clock.monotonic() + timeout
        backend = self.runner.backend
        while True:
            try:
                if probe_passes(probe, backend, vm_id, name):
                    return VMState.READY
            except TransientBackendError as error:
                self._warn(f"readiness of {name}: {error}", name)
            if self._abandoned.is_set():
                raise _Abandoned(self.run_id)
            if self.clock.monotonic() >= deadline:
                what = probe.describe() if probe else "ready (powered on, heartbeat, address)"
                self.progress[name].reason = f"not {what} within {timeout:g} s"
                return VMState.TIMED_OUT
            self.clock.sleep(self.runner.poll_interval)

    def _call(self, fn: Callable[..., _T], vm: str, *args: object) -> _T:
        if self._abandoned.is_set():
            raise _Abandoned(self.run_id)
        return self.runner._call(fn, *args, on_retry=lambda message: self._warn(message, vm))

    def _step(self, name: str, step: Step, fn: Callable[..., _T], *args: object) -> _T:
        self.runner._emit(StepStarted(self.run_id, name, step, self.clock.now()))
        try:
            result = fn(*args)
        except Exception as error:
            self.runner._emit(StepFinished(self.run_id, name, step, self.clock.now(), str(error)))
            raise
        self.runner._emit(StepFinished(self.run_id, name, step, self.clock.now()))
        return result

    def _warn(self, message: str, vm: str | None = None) -> None:
        with self._lock:
            self.warnings.append(message)
        self.runner._emit(RunWarning(self.run_id, message, self.clock.now(), vm))

    def _failed(self, name: str, state: VMState, reason: str) -> None:
        self.runner._emit(VMFailed(self.run_id, name, _OUTCOMES[state], reason, self.clock.now()))

    # --- the report ------------------------------------------------------------------------------

    def _report(self, sequencer: Sequencer, started: datetime, finished: datetime) -> RunReport:
        results = []
        for name in self.compiled.names:
            target = self.targets[name]
            progress = self.progress[name]
            state = sequencer.state(name)
            point = target.point
            results.append(
                VMResult(
                    vm=name,
                    source_vm_id=target.source.id,
                    replica_vm_id=target.replica.replica_vm,
                    outcome=_OUTCOMES[state],
                    recovery_point=point.id,
                    recovery_point_time=point.created_at,
                    data_loss_seconds=(started - point.created_at).total_seconds(),
                    started_at=progress.started_at,
                    powered_on_at=progress.powered_on_at,
                    ready_at=progress.ready_at,
                    reason=progress.reason or sequencer.reason(name),
                )
            )
        ready = sum(1 for r in results if r.outcome is Outcome.READY)
        if self.cancelled.is_set():
            result = RunResult.CANCELLED
        elif ready == len(results):
            result = RunResult.SUCCEEDED
        elif ready:
            result = RunResult.PARTIAL
        else:
            result = RunResult.FAILED
        warnings = [str(w) for w in sequencer.warnings]
        return RunReport(
            run_id=self.run_id,
            kind=self.kind,
            started_at=started,
            finished_at=finished,
            vms=tuple(results),
            result=result,
            warnings=(*self.warnings, *warnings),
            decisions=tuple(self.decisions),
            rto_target_seconds=self.rto,
        )
