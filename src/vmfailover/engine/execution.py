"""One run's execution: the sequencer driven on a bounded pool, plan steps around it, the report.

The driver thread asks the sequencer what may start, hands each VM's whole recovery
(:func:`~vmfailover.engine.recovery.recover`) to a worker, and tells the sequencer how each ended.
Every wait goes through the run's clock, and every piece of work is enlisted with it, so on a
virtual clock a threaded run advances exactly as :func:`~vmfailover.simulate` predicts.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Literal, TypeVar

from vmfailover.backends.base import Backend
from vmfailover.clock import Clock, Signal, Ticket
from vmfailover.engine.events import (
    ApprovalAnswered,
    ApprovalWaiting,
    PlanStepFinished,
    PlanStepStarted,
    RunEvent,
    RunFinished,
    RunStarted,
    RunWarning,
    VMFailed,
    VMReady,
)
from vmfailover.engine.plan_steps import ApprovalGates, StepOutcome, run_step
from vmfailover.engine.reconcile import RESULTLESS, Verdict, reconcile
from vmfailover.engine.recovery import VMProgress, recover
from vmfailover.engine.replay import progress_record
from vmfailover.engine.results import Outcome, RunReport, RunResult, VMResult
from vmfailover.engine.run_journal import MUTATING, call_key
from vmfailover.engine.simulate import simulate
from vmfailover.errors import ConflictError, ValidationError, VMFailoverError
from vmfailover.model import FailoverKind
from vmfailover.plan import (
    Approval,
    ApprovalRequest,
    CompiledPlan,
    Step,
    StepContext,
    StepFailure,
    StepScope,
    VMRecovery,
    When,
)
from vmfailover.policy.sequencer import Sequencer, VMState

if TYPE_CHECKING:
    from vmfailover.engine.replay import Replay
    from vmfailover.engine.run_journal import RunJournal
    from vmfailover.engine.runner import Runner

__all__ = ["Abandoned", "Execution"]

_T = TypeVar("_T")

#: The longest the driver waits for a worker before looking again (clock seconds).
_DRIVER_WAIT = 3600.0

_OUTCOMES = {
    VMState.READY: Outcome.READY,
    VMState.FAILED: Outcome.FAILED,
    VMState.TIMED_OUT: Outcome.TIMED_OUT,
    VMState.SKIPPED: Outcome.SKIPPED,
    VMState.CANCELLED: Outcome.CANCELLED,
}


class Abandoned(BaseException):
    """Raised in a worker whose run was abandoned; a BaseException so no handler records it."""


class Execution:
    """The execution of one compiled plan by one runner."""

    def __init__(
        self,
        runner: Runner,
        run_id: str,
        compiled: CompiledPlan,
        *,
        weights: Mapping[str, float] | None,
        reachable_sources: frozenset[str],
        recover_vm: Callable[[Execution, VMRecovery], VMState] = recover,
        journal: RunJournal | None = None,
        replay: Replay | None = None,
    ) -> None:
        self.runner = runner
        self.run_id = run_id
        self.compiled = compiled
        self.plan = compiled.plan
        self.kind = compiled.kind
        self.backend: Backend = runner.backend
        self.clock: Clock = runner.clock
        self.readiness_timeout = runner.readiness_timeout
        self.poll_interval = runner.poll_interval
        self.weights = weights
        self.reachable_sources = reachable_sources
        self.recover_vm = recover_vm  # one VM's whole part: a site failover's, or a host restart's
        self.progress = {vm.name: VMProgress() for vm in compiled.vms}
        self.warnings: list[str] = []
        self.decisions: list[str] = list(compiled.decisions)
        self.gates = ApprovalGates(run_id)
        self.cancelled = threading.Event()
        self.started_at: datetime | None = None
        self.after_end: Callable[[], None] | None = None
        self._abandoned = threading.Event()
        self._lock = threading.Lock()
        self._finished: deque[tuple[str, VMState, BaseException | None]] = deque()
        self._wakeup: Signal | None = None
        self._hooks = self._index_hooks()
        self._groups_started: set[int] = set()
        self._groups_done: set[int] = set()
        self.journal = journal
        self.replay = replay
        self._declared: dict[str, deque[tuple[str, tuple[object, ...], int]]] = {}
        self._acted: dict[str, tuple[datetime, datetime]] = {}

    # --- services the per-VM recovery uses --------------------------------------------------------

    def call(self, vm: str, fn: Callable[..., _T], *args: object) -> _T:
        """A backend call for ``vm``, retried per the runner's policy; stops if abandoned.

        With a journal, a call that changes something is journaled: its intent durable before it
        acts, its outcome after. Resuming, a call the journal holds is replayed or reconciled.
        """
        self.check_abandoned()

        def act() -> _T:
            return self.runner._call(fn, *args, on_retry=lambda message: self.warn(message, vm))

        # A call with options bound (a partial: Hyper-V's test copy with its guest addresses) is
        # journaled as the call it wraps.
        operation = getattr(getattr(fn, "func", fn), "__name__", "")
        if self.journal is None or operation not in MUTATING:
            return act()
        context = self._before_sync(vm, args) if operation == "sync" else None
        return self.journaled(vm, operation, args, act, context=context)

    def _before_sync(self, vm: str, args: tuple[object, ...]) -> Callable[[], Mapping[str, object]]:
        """What reconciling a sync needs: the replica's newest point just before it (its id
        and its time on the backend's clock), so a resumed run tells the sync's point from
        older ones without comparing our clock with the backend's."""

        def newest() -> Mapping[str, object]:
            try:
                points = self.runner._call(self.backend.recovery_points, args[0])
            except VMFailoverError as error:  # the sync itself will say what is wrong
                self.warn(f"the recovery points of {args[0]} could not be read: {error}", vm)
                return {}  # reconciled by the intent's time instead
            if not points:
                return {"newest_point": None}
            newest = points[-1]  # the protocol lists them oldest first
            return {"newest_point": newest.id, "newest_at": newest.created_at}

        return newest

    def call_once(self, vm: str, fn: Callable[..., _T], *args: object) -> _T:
        """A backend call made once (its own timeout bounds it): shutdowns, for one."""
        self.check_abandoned()
        operation = getattr(fn, "__name__", "")
        if self.journal is None or operation not in MUTATING:
            return fn(*args)
        return self.journaled(vm, operation, args, lambda: fn(*args))

    def declare(
        self, vm: str, calls: list[tuple[Callable[..., object], tuple[object, ...]]]
    ) -> None:
        """Make the intents of the calls ``vm`` is about to make durable in one write.

        Each call then finds its intent journaled already. Reconciling an intent that never
        acted finds nothing done, so declaring ahead is as safe as one intent at a time, and
        costs one commit instead of one per call.
        """
        if self.journal is None or (self.replay is not None and self.replay.remaining(vm)):
            return
        items = [
            (getattr(fn, "__name__", ""), args)
            for fn, args in calls
            if getattr(fn, "__name__", "") in MUTATING
        ]
        if not items:
            return
        numbers = self.journal.intents(vm, items)
        queue = self._declared.setdefault(vm, deque())
        for (operation, args), seq in zip(items, numbers, strict=True):
            queue.append((operation, args, seq))

    def journaled(
        self,
        vm: str | None,
        operation: str,
        args: tuple[object, ...],
        act: Callable[[], _T],
        *,
        durable_outcome: bool = False,
        context: Callable[[], Mapping[str, object]] | None = None,
    ) -> _T:
        """Do ``act`` (the call ``operation(*args)``) with its intent and outcome journaled
        (the outcome durable too with ``durable_outcome``, for what cannot be reconciled)."""
        assert self.journal is not None
        seq: int | None = None
        if self.replay is not None:
            record = self.replay.take(vm, operation, call_key(operation, args))
            if record is not None:
                if record.outcome is not None:
                    self._mark_acted(vm, record.at, record.outcome_at or record.at)
                    return record.replayed()  # type: ignore[return-value]
                verdict = (
                    Verdict(True, reason="a later call of the VM acted, so this one had")
                    if record.outlived and operation in RESULTLESS
                    else reconcile(self.runner._call, self.backend, record)
                )
                self.warn(f"{operation} of {vm or 'the run'} was interrupted: {verdict.reason}", vm)
                if verdict.done:
                    self.journal.outcome(
                        record.seq, vm, operation, result=verdict.result, reconciled=True
                    )
                    self._mark_acted(vm, record.at, self.clock.now())
                    return verdict.result  # type: ignore[return-value]
                seq = record.seq
        if seq is None:
            seq = self._declared_intent(vm, operation, args)
        if seq is None:
            seq = self.journal.intent(vm, operation, args, context() if context else None)
        started = self.clock.now()
        try:
            result = act()
        except Exception as error:
            self.journal.outcome(seq, vm, operation, error=error, durable=durable_outcome)
            raise
        self.journal.outcome(seq, vm, operation, result=result, durable=durable_outcome)
        self._mark_acted(vm, started, self.clock.now())
        return result

    def has_steps_before(self, vm: str) -> bool:
        """Whether VM ``vm`` has steps or approvals of its own before it powers on."""
        return bool(self._hooks.get((StepScope.VM, vm, When.BEFORE)))

    def _declared_intent(
        self, vm: str | None, operation: str, args: tuple[object, ...]
    ) -> int | None:
        with self._lock:
            queue = self._declared.get(vm or "")
            if not queue:
                return None
            declared_operation, declared_args, seq = queue[0]
            if declared_operation != operation or declared_args != args:
                queue.clear()  # the VM went another way: those intents stay unacted
                return None
            queue.popleft()
            return seq

    def _mark_acted(self, vm: str | None, started: datetime, finished: datetime) -> None:
        if vm:
            with self._lock:
                self._acted[vm] = (started, finished)

    def acted(self, vm: str) -> tuple[datetime, datetime] | None:
        """When ``vm``'s last journaled call acted (its original times, if replayed)."""
        with self._lock:
            return self._acted.pop(vm, None)

    def saw_before(self, vm: str, *operations: str) -> bool:
        """Whether the interrupted run this one resumes had made one of ``operations`` for
        ``vm`` (so it had found, for one, the source running)."""
        return self.replay is not None and self.replay.saw(vm, operations)

    def vm_started(self, vm: str) -> datetime:
        """Record that ``vm``'s recovery starts; returns when it started (first, if resumed)."""
        if self.replay is not None and vm in self.replay.vm_started:
            return self.replay.vm_started[vm]
        now = self.clock.now()
        if self.journal is not None:
            self.journal.vm_started(vm, now)
        return now

    def check_abandoned(self) -> None:
        if self._abandoned.is_set():
            raise Abandoned(self.run_id)

    def emit(self, event: RunEvent) -> None:
        self.runner._publish(event, self._observer_failed)

    def warn(self, message: str, vm: str | None = None) -> None:
        with self._lock:
            self.warnings.append(message)
        self.emit(RunWarning(self.run_id, message, self.clock.now(), vm))

    def source_answered(self, work: VMRecovery) -> bool:
        """Whether the source's host answered at pre-flight (so its power can be read now)."""
        return work.source.id in self.reachable_sources

    def cancel(self) -> None:
        self.cancelled.set()
        self.gates.close()
        self._wake()

    def abandon(self) -> None:
        """Cancel, and stop VMs in the middle of their recovery at their next backend call or
        readiness poll (what was created so far, a test copy for one, stays recorded)."""
        self._abandoned.set()
        self.cancel()

    def _observer_failed(self, event: RunEvent, error: BaseException) -> None:
        with self._lock:
            self.warnings.append(
                f"a subscriber raised {type(error).__name__} on {type(event).__name__}: {error} "
                "(ignored: observers do not change a run)"
            )

    # --- the run ----------------------------------------------------------------------------------

    def execute(self) -> RunReport:
        started = self.replay.started_at if self.replay is not None else self.clock.now()
        self.started_at = started
        names = tuple(vm.name for vm in self.compiled.vms)
        self.emit(RunStarted(self.run_id, self.kind, names, started, self.plan.name))
        sequencer = Sequencer(
            self.compiled.order.compile(weights=self.weights, workers=self.runner.max_parallel)
        )
        pool = ThreadPoolExecutor(self.runner.max_parallel, thread_name_prefix=self.run_id)
        ticket = self.clock.enlist()
        try:
            with ticket:
                if self._plan_hooks(When.BEFORE):
                    self._drive(sequencer, pool)
                else:
                    sequencer.cancel()
                if not self.cancelled.is_set():
                    self._plan_hooks(When.AFTER)
        except BaseException:
            # The orchestrator is going down (a crash, an interrupt): workers stop at their next
            # backend call or poll instead of finishing work nobody will record.
            self._abandoned.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        finished = self.clock.now()
        report = self._report(sequencer, started, finished)
        for result in report.vms:
            if result.outcome in (Outcome.SKIPPED, Outcome.CANCELLED):
                self.emit(
                    VMFailed(self.run_id, result.vm, result.outcome, result.reason or "", finished)
                )
        self.emit(RunFinished(self.run_id, report.result, finished, report.rto_seconds))
        return report

    def _drive(self, sequencer: Sequencer, pool: ThreadPoolExecutor) -> None:
        """Start what the sequencer allows, tell it what finished, until it is finished."""
        running = 0
        while True:
            if self.cancelled.is_set() and not sequencer.finished:
                sequencer.cancel()
            for name in sequencer.take_startable():
                if self._restore(name):
                    running += 1
                    continue
                self._group_before(name)
                if self.cancelled.is_set():
                    sequencer.withdraw(name)
                    continue
                work_ticket = self.clock.enlist()
                queued = pool.submit(self._work, self.compiled.vm(name), work_ticket)
                # Work the pool never starts (cancelled when a crash shuts it down) must stop
                # holding virtual time back, or the workers still in a clock wait never wake
                # and the shutdown waits for them forever.
                queued.add_done_callback(_release_if_cancelled(work_ticket))
                running += 1
            with self._lock:
                finished = list(self._finished)
                self._finished.clear()
                if not finished and running:
                    self._wakeup = self.clock.signal()
                wakeup = self._wakeup if not finished and running else None
            if wakeup is not None:
                self.clock.wait(wakeup, _DRIVER_WAIT)
                continue
            for name, state, crash in finished:
                running -= 1
                if crash is not None:
                    raise crash
                reason = self.progress[name].reason or ""
                if state is VMState.READY:
                    sequencer.mark_ready(name)
                    ready = self.progress[name].ready_at or self.clock.now()
                    self.emit(VMReady(self.run_id, name, ready))
                elif state is VMState.TIMED_OUT:
                    sequencer.mark_timed_out(name)
                    self.emit(
                        VMFailed(self.run_id, name, Outcome.TIMED_OUT, reason, self.clock.now())
                    )
                else:
                    sequencer.mark_failed(name, reason)
                    self.emit(VMFailed(self.run_id, name, Outcome.FAILED, reason, self.clock.now()))
            self._groups_after(sequencer)
            if not running and not finished:
                if sequencer.finished:
                    return
                raise ConflictError(  # a sequencer bug; better loud than a silent hang
                    f"run {self.run_id}: VMs are pending but none may start ({sequencer!r})"
                )

    def _restore(self, name: str) -> bool:
        """Hand a VM whose recovery the interrupted run finished back with its outcome."""
        if self.replay is None or name not in self.replay.finished:
            return False
        state, progress = self.replay.finished[name]
        self.progress[name] = progress
        group = self.compiled.order.entry(name).group
        if group is not None:
            self._groups_started.add(group)
        with self._lock:
            self._finished.append((name, state, None))
        return True

    def _work(self, work: VMRecovery, ticket: Ticket) -> None:
        with ticket:
            crash: BaseException | None = None
            try:
                state = self.recover_vm(self, work)
                if self.journal is not None:
                    self.journal.vm_finished(
                        work.name, state.value, progress_record(self.progress[work.name])
                    )
            except Abandoned:
                state = VMState.FAILED
                self.progress[work.name].reason = "the run was abandoned"
            except BaseException as error:  # a crash of the orchestrator: the driver re-raises it
                state, crash = VMState.FAILED, error
            with self._lock:
                self._finished.append((work.name, state, crash))
            self._wake()

    def _wake(self) -> None:
        with self._lock:
            wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            wakeup.set()

    # --- plan steps and approvals -----------------------------------------------------------------

    def _index_hooks(self) -> dict[tuple[StepScope, object, When], list[Step | Approval]]:
        hooks: dict[tuple[StepScope, object, When], list[Step | Approval]] = {}
        for item in self.compiled.steps:
            key = {StepScope.PLAN: None, StepScope.GROUP: item.group, StepScope.VM: item.vm}
            hooks.setdefault((item.scope, key[item.scope], item.when), []).append(item)
        return hooks

    def _plan_hooks(self, when: When) -> bool:
        return self._run_hooks(self._hooks.get((StepScope.PLAN, None, when), []), when)

    def _group_before(self, name: str) -> None:
        group = self.compiled.order.entry(name).group
        if group is None or group in self._groups_started:
            return
        self._groups_started.add(group)
        hooks = self._hooks.get((StepScope.GROUP, group, When.BEFORE), [])
        if not self._run_hooks(hooks, When.BEFORE, group=group):
            self.cancel()

    def _groups_after(self, sequencer: Sequencer) -> None:
        """Run the after-steps of every started group whose VMs have all settled."""
        for group in sorted(self._groups_started - self._groups_done):
            members = [e.name for e in self.compiled.order if e.group == group]
            if not all(sequencer.state(name).final for name in members):
                continue
            self._groups_done.add(group)
            if self.cancelled.is_set():
                continue
            hooks = self._hooks.get((StepScope.GROUP, group, When.AFTER), [])
            if not self._run_hooks(hooks, When.AFTER, group=group):
                self.cancel()

    def run_vm_steps(self, work: VMRecovery, when: Literal["before", "after"]) -> None:
        """The VM's own steps and gates; a failure with ``fail_vm`` (or ``abort``) fails it."""
        hooks = self._hooks.get((StepScope.VM, work.name, When(when)), [])
        if hooks and not self._run_hooks(hooks, When(when), vm=work):
            from vmfailover.engine.recovery import VMFailure

            raise VMFailure(self.progress[work.name].reason or f"a {when}-step failed")

    def _run_hooks(
        self,
        hooks: list[Step | Approval],
        when: When,
        *,
        group: int | None = None,
        vm: VMRecovery | None = None,
    ) -> bool:
        """Run steps and gates in order; False when one stops the VM (vm given) or the run."""
        vm_name = vm.name if vm is not None else None
        for item in hooks:
            if self.cancelled.is_set():
                return False
            if isinstance(item, Approval):
                if not self._gate(item, when, group, vm_name):
                    self.cancel()
                    if vm is not None:
                        self.progress[vm.name].reason = f"approval {item.name!r} not given"
                    return False
                continue
            context = StepContext(
                run_id=self.run_id,
                kind=self.kind,
                plan=self.plan.name,
                step=item.name,
                when=when,
                vm=vm_name,
                group=group,
                vm_id=self.progress[vm.name].runs_as if vm is not None else None,
                addresses=tuple(str(a) for a in vm.expected_addresses) if vm else (),
            )
            self.emit(
                PlanStepStarted(
                    self.run_id, item.name, when.value, self.clock.now(), vm_name, group
                )
            )
            outcome = self._step_outcome(item, context, when, group, vm_name)
            self.emit(
                PlanStepFinished(
                    self.run_id,
                    item.name,
                    when.value,
                    self.clock.now(),
                    outcome.error,
                    vm_name,
                    group,
                )
            )
            if outcome.ok:
                continue
            message = f"step {item.name!r} failed: {outcome.error}"
            if item.on_failure is StepFailure.CONTINUE:
                self.warn(message + " (on_failure='continue')", vm_name)
                continue
            if vm is not None:
                self.progress[vm.name].reason = message
            if item.on_failure is StepFailure.ABORT:
                self.warn(message + ": the run is cancelled (on_failure='abort')", vm_name)
                self.cancel()
            return False
        return True

    def _step_outcome(
        self, item: Step, context: StepContext, when: When, group: int | None, vm: str | None
    ) -> StepOutcome:
        """Run a plan step, journaled like a backend call (a resumed run does not repeat a
        step that finished; one that was interrupted runs again)."""
        if self.journal is None:
            return run_step(item, context)

        def act() -> tuple[str | None, str]:
            outcome = run_step(item, context)
            return (outcome.error, outcome.output)

        place = f"{when.value} {'group ' + str(group) if group is not None else 'plan'}"
        error, output = self.journaled(vm, "step", (item.name, place), act, durable_outcome=True)
        return StepOutcome(error, output)

    def _gate(self, approval: Approval, when: When, group: int | None, vm: str | None) -> bool:
        request = ApprovalRequest(
            self.run_id, self.kind, self.plan.name, approval.name, when, vm, group
        )
        answered = None
        if self.replay is not None:
            answered = self.replay.approvals.get((approval.name, vm, group))
        if answered is not None:  # answered before the run was interrupted: not asked again
            approved, by = answered
        else:
            self.emit(ApprovalWaiting(self.run_id, approval.name, self.clock.now(), vm, group))
            approved, by = self.gates.wait(approval, request)
            if self.journal is not None:
                self.journal.approval(approval.name, vm, group, approved, by)
        self.emit(ApprovalAnswered(self.run_id, approval.name, approved, by, self.clock.now()))
        if not approved:
            self.warn(f"approval {approval.name!r} not given ({by}): the run is cancelled", vm)
        return approved

    # --- the report -------------------------------------------------------------------------------

    def _report(self, sequencer: Sequencer, started: datetime, finished: datetime) -> RunReport:
        results = []
        measure = getattr(self.backend, "data_loss_blocks", None)
        for work in self.compiled.vms:
            progress = self.progress[work.name]
            state = sequencer.state(work.name)
            point = progress.point or (work.point if state is not VMState.PENDING else None)
            touched = progress.started_at is not None
            loss_seconds: float | None = None
            loss_blocks: int | None = None
            if point is not None and touched:
                loss_seconds = (
                    0.0
                    if work.final_sync
                    else max(0.0, (started - point.created_at).total_seconds())
                )
                if callable(measure):
                    try:
                        loss_blocks = int(measure(work.source.id, point.id))
                    except Exception as error:  # a measurement, never a reason to fail a report
                        self.warn(f"data loss of {work.name} could not be counted: {error}")
            results.append(
                VMResult(
                    vm=work.name,
                    source_vm_id=work.source.id,
                    replica_vm_id=work.replica_vm.id,
                    outcome=_OUTCOMES[state],
                    recovery_point=point.id if point is not None and touched else None,
                    recovery_point_time=point.created_at if point is not None and touched else None,
                    data_loss_seconds=loss_seconds,
                    data_loss_blocks=loss_blocks,
                    started_at=progress.started_at,
                    powered_on_at=progress.powered_on_at,
                    ready_at=progress.ready_at if state is VMState.READY else None,
                    reason=progress.reason or sequencer.reason(work.name),
                    runs_as=progress.runs_as,
                    addresses=tuple(str(a) for a in work.expected_addresses) if touched else (),
                    addresses_verified=progress.addresses_verified,
                    source=progress.source,
                    steps=tuple(progress.steps),
                )
            )
        ready = sum(1 for r in results if r.outcome is Outcome.READY)
        if self.cancelled.is_set() and ready < len(results):
            result = RunResult.CANCELLED
        elif ready == len(results):
            result = RunResult.SUCCEEDED
        elif ready:
            result = RunResult.PARTIAL
        else:
            result = RunResult.FAILED
        warnings = [*self.warnings, *(str(w) for w in self.compiled.warnings)]
        warnings.extend(str(w) for w in sequencer.warnings)
        return RunReport(
            run_id=self.run_id,
            kind=self.kind,
            plan=self.plan.name,
            started_at=started,
            finished_at=finished,
            vms=tuple(results),
            result=result,
            warnings=tuple(dict.fromkeys(warnings)),
            decisions=tuple(self.decisions),
            rto_target_seconds=self.plan.rto,
            rpo_target_seconds=self.plan.rpo if self.kind is not FailoverKind.PLANNED else None,
            predicted_rto_seconds=self._predicted(),
            ideal_rto_seconds=self._ideal(results, started),
        )

    def _predicted(self) -> float | None:
        if not self.weights:
            return None
        try:
            durations = {name: self.weights.get(name, 0.0) for name in self.compiled.order.vms}
            return simulate(self.compiled.order, durations, workers=self.runner.max_parallel).rto
        except ValidationError as error:
            self.warn(f"no RTO prediction: {error}")
            return None

    def _ideal(self, results: list[VMResult], started: datetime) -> float | None:
        """The RTO the simulator gives for this order with the durations the VMs really took."""
        if self.cancelled.is_set():
            return None
        durations: dict[str, float] = {}
        failures: list[str] = []
        for result in results:
            progress = self.progress[result.vm]
            if progress.started_at is None or progress.ended_at is None:
                durations[result.vm] = 0.0
                continue
            durations[result.vm] = (progress.ended_at - progress.started_at).total_seconds()
            if result.outcome is not Outcome.READY:
                failures.append(result.vm)
        try:
            outcome = simulate(
                self.compiled.order, durations, workers=self.runner.max_parallel, failures=failures
            )
        except ValidationError:
            return None
        return outcome.rto

    def running_copies(self) -> list[str]:
        """Test copies this run created (for cleanup)."""
        return [p.test_copy for p in self.progress.values() if p.test_copy is not None]


def _release_if_cancelled(ticket: Ticket) -> Callable[[Future[None]], None]:
    """A done-callback releasing ``ticket`` when its work was cancelled before it started."""

    def done(future: Future[None]) -> None:
        if future.cancelled():
            ticket.release()

    return done
