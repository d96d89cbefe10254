"""The runner: checks a failover plan, then runs it against a backend, for any kind of failover.

Two phases, and the line between them matters. **Pre-flight** reads the inventory and the recovery
points and refuses the whole run, with every problem named, before anything is touched: a run that
cannot finish must not start. **Execution** hands each VM's whole recovery to a bounded pool the
moment the sequencer lets it start (critical path first; the runner's worker count is one of the
sequencer's limits), so a VM that never starts is never touched. Transient backend errors are
retried with exponential backoff and jitter (tenacity); permanent ones fail the VM, and its
failure policy decides what happens to the rest.

One plan serves the three kinds (:class:`~vmfailover.model.FailoverKind`): ``test`` (isolated
copies, production untouched, :meth:`Runner.cleanup` removes them and proves it), ``planned`` (the
sources shut down, a final sync, no data lost) and ``regular`` (the source site is gone; the plan
picks the recovery point). A run's own life is the transition table in
:mod:`vmfailover.engine.run_state`; what follows a production run (:meth:`Runner.commit`,
:meth:`Runner.undo`, the plan's deadline, :meth:`Runner.failback`) is
:mod:`vmfailover.engine.aftercare`.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import tenacity

from vmfailover.backends.base import Backend
from vmfailover.clock import Clock, SystemClock, full_clock
from vmfailover.engine.claims import claims_for
from vmfailover.engine.events import CleanupFinished, EventBus, RunEvent, RunStateChanged
from vmfailover.engine.execution import Execution
from vmfailover.engine.host_failover_results import HostFailoverReport, MoveBackReport
from vmfailover.engine.journal import EntryKind, Journal, JournaledRun, JournalEntry, RunSummary
from vmfailover.engine.journal_codec import loads
from vmfailover.engine.journal_writer import JournalWriter
from vmfailover.engine.replay import Replay
from vmfailover.engine.results import CleanupResult, RunReport, RunResult
from vmfailover.engine.run_journal import RunJournal
from vmfailover.engine.run_record import RunRecord, read_record, write_record
from vmfailover.engine.run_state import RunAction, RunState, RunStateMachine
from vmfailover.errors import (
    ConflictError,
    Finding,
    Findings,
    NotFoundError,
    TransientBackendError,
    ValidationError,
    VMFailoverError,
)
from vmfailover.model import (
    FailoverKind,
    Inventory,
    as_enum,
    as_name,
    is_finite_number,
    parse_seconds,
)
from vmfailover.plan import CompiledPlan, FailoverPlan, gather
from vmfailover.plan.check import Facts
from vmfailover.policy.cluster import Cluster, ClusterPolicy
from vmfailover.policy.points import PointChoice
from vmfailover.policy.sequencer import StartOrder

if TYPE_CHECKING:
    from vmfailover.engine.aftercare_results import Deadline, FailbackResult

__all__ = ["RetryPolicy", "Run", "Runner", "live_holder"]

_T = TypeVar("_T")

#: Real seconds a finished run waits for its subscribers to catch up before it reports.
OBSERVER_GRACE = 10.0

#: The runs being executed in this process (a live run is not interrupted: it cannot be resumed),
#: each with how many executions it has here: a run taken over in this process under a newer
#: lease (``resume(takeover=True)``) runs beside its fenced-out predecessor until that one ends.
_live_runs: Counter[str] = Counter()
_live_lock = threading.Lock()

_FINISH = {
    RunResult.SUCCEEDED: RunAction.FINISH_ALL_READY,
    RunResult.PARTIAL: RunAction.FINISH_SOME_READY,
    RunResult.FAILED: RunAction.FINISH_NONE_READY,
    RunResult.CANCELLED: RunAction.CANCEL,
}


def _attempts(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ValidationError.of(
            f"RetryPolicy {attribute.name}", f"must be a whole number from 1 to 100, got {value!r}"
        )


def _wait_seconds(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not is_finite_number(value) or not 0 <= value <= 86_400:
        raise ValidationError.of(
            f"RetryPolicy {attribute.name}",
            f"must be a finite number of seconds from 0 to 86400, got {value!r}",
        )


@attrs.frozen
class RetryPolicy:
    """How transient backend errors are retried: exponential backoff with jitter, bounded."""

    attempts: int = attrs.field(default=5, validator=_attempts)
    initial_wait: float = attrs.field(default=1.0, validator=_wait_seconds)
    max_wait: float = attrs.field(default=30.0, validator=_wait_seconds)


class Run:
    """A failover in progress, and afterwards its record.

    :meth:`wait` returns the report once the recovery has ended; :attr:`report` is always the
    latest (a test run's report gains its cleanup, a production run's its commit, undo or
    failback). :meth:`cancel` starts nothing new (VMs in the middle of their recovery finish it;
    the rest are left untouched); :meth:`approve` answers an approval gate the run is waiting at.
    :meth:`commit`, :meth:`undo` and :meth:`failback` are :class:`Runner`'s, for this run.

    ``failback_of`` is the run a failback run brings home; ``failback_run`` the failback of this
    run while it is under way; ``deadline`` the plan's automatic commit or undo, while pending.
    """

    def __init__(
        self,
        runner: Runner,
        run_id: str,
        plan: FailoverPlan,
        kind: FailoverKind,
        state: RunState = RunState.PENDING,
        *,
        failback_of: Run | None = None,
    ) -> None:
        if not isinstance(runner, Runner):
            raise ValidationError.of("Run", f"is made by a Runner (runner.start), not {runner!r}")
        if not isinstance(plan, FailoverPlan):
            raise ValidationError.of("Run plan", f"must be a FailoverPlan, got {plan!r}")
        if failback_of is not None and not isinstance(failback_of, Run):
            raise ValidationError.of("Run failback_of", f"must be a Run, got {failback_of!r}")
        self._runner = runner
        self.id = as_name(run_id, "Run run_id")
        self.plan = plan
        self.kind = kind = as_enum(FailoverKind, kind, "Run", field="kind")
        state = as_enum(RunState, state, "Run", field="state")
        self.failback_of = failback_of
        self.failback_run: Run | None = None
        self.failback_result: FailbackResult | None = None
        self.deadline: Deadline | None = None
        self._machine = RunStateMachine(self.id, kind, state, failback=failback_of is not None)
        self._journal: RunJournal | None = None
        self._execution: Execution | None = None
        self._thread: threading.Thread | None = None
        self._report: RunReport | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._executing = False
        self._lock = threading.RLock()
        self.inventory_before: Inventory | None = None
        #: The interrupted commit, undo or failback's journal, replayed when it is called again
        #: (set by Runner.resume, taken by the next aftercare action).
        self._aftercare_replay: Replay | None = None
        #: The id a failback of this run is (or was about to be) begun under.
        self._failback_link: str | None = None

    def __repr__(self) -> str:
        return f"Run({self.id!r}, {self.kind.value}, plan={self.plan.name!r}, {self.state.value})"

    @property
    def state(self) -> RunState:
        return self._machine.state

    @property
    def done(self) -> bool:
        """The recovery has ended (a test's cleanup may still follow)."""
        return self._done.is_set()

    @property
    def report(self) -> RunReport | None:
        """The latest report, or None while the recovery runs."""
        return self._report

    @property
    def test_copies(self) -> tuple[str, ...]:
        """The ids of the test copies this run created and has not removed (a test run's; what
        :meth:`Runner.cleanup` removes). Empty before the run has started its VMs."""
        return () if self._execution is None else tuple(self._execution.running_copies())

    @property
    def waiting_approvals(self) -> tuple[str, ...]:
        """The approval gates the run is waiting at now."""
        return () if self._execution is None else self._execution.gates.waiting

    def wait(self, timeout: float | None = None) -> RunReport:
        """Block until the recovery ends (at most ``timeout`` real seconds) and return its report.

        Raises :class:`~vmfailover.errors.ConflictError` if it is still running after
        ``timeout``, and re-raises what stopped the run if it did not end normally.
        """
        if timeout is not None:
            timeout = parse_seconds(timeout, "Run.wait timeout", allow_zero=True)
        if self._thread is None:
            with self._lock:  # a run started in the foreground executes once, in the first wait
                first, self._executing = not self._executing, True
            if first:
                self._execute()
        if not self._done.wait(timeout):
            raise ConflictError(f"run {self.id} is still running after {timeout:g} s")
        if self._error is not None:
            raise self._error
        assert self._report is not None
        return self._report

    def cancel(self) -> None:
        """Start nothing new; VMs already in their recovery finish it; the rest end cancelled."""
        if self._execution is not None:
            self._execution.cancel()
        elif self._machine.can(RunAction.CANCEL):
            self._fire(RunAction.CANCEL)

    def approve(self, name: str, approved: bool = True, *, by: str = "run.approve") -> None:
        """Answer the approval gate ``name`` (``approved=False`` refuses it: the run is cancelled).

        Raises our error naming the gate when no gate of that name is waiting.
        """
        as_name(name, "approve")
        as_name(by, "approve by")
        if not isinstance(approved, bool):
            raise ValidationError.of("approve", f"approved must be True or False, got {approved!r}")
        if self._execution is None:
            raise ConflictError(f"run {self.id} is {self.state.value}: no approval is waiting")
        self._execution.gates.answer(name, approved, by)

    def commit(self) -> RunReport:
        """Make this failover permanent (:meth:`Runner.commit`)."""
        return self._runner.commit(self)

    def undo(self) -> RunReport:
        """Revert what this run touched (:meth:`Runner.undo`)."""
        return self._runner.undo(self)

    def failback(self, *, plan: FailoverPlan | None = None, background: bool = True) -> Run:
        """Bring this run's VMs home (:meth:`Runner.failback`); returns the failback run."""
        return self._runner.failback(self, plan=plan, background=background)

    # --- life ------------------------------------------------------------------------------------

    def _fire(self, action: RunAction) -> None:
        old, new = self._machine.fire(action)
        now = self._runner.clock.now()
        if self._journal is not None:
            self._journal.state(old.value, new.value, now)
        self._runner._publish(RunStateChanged(self.id, old.value, new.value, now))

    def _start_background(self) -> None:
        self._thread = threading.Thread(
            target=self._execute, name=f"vmfailover-{self.id}", daemon=True
        )
        self._thread.start()

    def _execute(self) -> None:
        assert self._execution is not None
        try:
            report = self._execution.execute()
            self._fire(_FINISH[report.result])
            self._runner._bus.flush(OBSERVER_GRACE)
            late = (*report.warnings, *self._execution.warnings)
            self._report = attrs.evolve(
                report, state=self.state.value, warnings=tuple(dict.fromkeys(late))
            )
            if self._journal is not None:
                try:
                    self._journal.end(self._report, self.state.value)
                except VMFailoverError as error:
                    message = f"the journal could not record the run's end: {error}"
                    self._report = attrs.evolve(
                        self._report, warnings=(*self._report.warnings, message)
                    )
            # taken off the execution before it runs: it refers to this run, and a run left in a
            # reference cycle would make everything it holds (per VM) cyclic garbage
            after_end, self._execution.after_end = self._execution.after_end, None
            if after_end is not None:
                after_end()
        except BaseException as error:  # handed to wait(), which re-raises it
            self._error = error
        finally:
            if self.kind is not FailoverKind.TEST:
                claims_for(self._runner.backend).release(self.id)
            with _live_lock:
                _live_runs[self.id] -= 1
                if _live_runs[self.id] <= 0:
                    del _live_runs[self.id]
            self._done.set()


class Runner:
    """Runs failover plans against one backend.

    ``max_parallel`` is how many VMs recover at once; the sequencer enforces it as one of its
    limits, so when more VMs could start the ones on the critical path go first
    (``simulate(order, durations, workers=runner.max_parallel)`` predicts a run of this runner).
    ``readiness_timeout`` is the default time a VM gets from power-on to ready (its probe's
    timeout wins); ``poll_interval`` is how often readiness is checked, in the clock's seconds.
    ``clock`` defaults to the backend's clock (the memory backend's virtual time), else real time.

    With a ``journal`` (:class:`~vmfailover.engine.sqlite_journal.SQLiteJournal`, say) every run
    is journaled: each change's intent is durable before it acts, and :meth:`resume` continues
    an interrupted run, in this process or another one, over the same journal and backend.
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
        journal: Journal | None = None,
    ) -> None:
        chosen = clock if clock is not None else getattr(backend, "clock", None) or SystemClock()
        findings = _runner_findings(backend, chosen, max_parallel, retry)
        timeouts = {}
        for name, value in (
            ("readiness_timeout", readiness_timeout),
            ("poll_interval", poll_interval),
        ):
            try:
                timeouts[name] = parse_seconds(value, f"Runner {name}")
            except ValidationError as error:
                findings.extend(error.findings)
        findings.extend(_journal_findings(journal))
        if findings:
            raise ValidationError(findings)
        self.backend = backend
        self.journal = journal
        self._writer = JournalWriter(journal) if journal is not None else None
        self.clock: Clock = full_clock(chosen)
        self.max_parallel = max_parallel
        self.retry = retry or RetryPolicy()
        self.readiness_timeout = timeouts["readiness_timeout"]
        self.poll_interval = timeouts["poll_interval"]
        self._bus = EventBus()
        #: The runs this runner made, resumed or attached, by id: one Run per journaled run.
        self._runs: weakref.WeakValueDictionary[str, Run] = weakref.WeakValueDictionary()
        self._runs_lock = threading.RLock()
        self._retrying_cache: tuple[RetryPolicy, Clock, tenacity.Retrying] | None = None

    def __repr__(self) -> str:
        journal = f", journal={self.journal!r}" if self.journal is not None else ""
        return f"Runner({self.backend!r}, max_parallel={self.max_parallel}{journal})"

    def close(self) -> None:
        """Commit what the journal writer holds and stop it. The journal stays open (whoever
        opened it closes it); a runner without a journal has nothing to close."""
        if self._writer is not None:
            self._writer.close()

    def subscribe(self, callback: Callable[[RunEvent], None]) -> Callable[[], None]:
        """Call ``callback`` with every event of every run; returns a function that unsubscribes.

        Events arrive one at a time, in order, on a delivery thread of their own. A callback that
        raises is logged and reported as a warning of the run; it never changes the run.
        """
        return self._bus.subscribe(callback)

    def _publish(
        self, event: RunEvent, on_error: Callable[[RunEvent, BaseException], None] | None = None
    ) -> None:
        self._bus.publish(event, on_error)

    # --- checking ---------------------------------------------------------------------------------

    def validate(
        self, plan: FailoverPlan, kind: FailoverKind | str, *, force: bool = False
    ) -> Findings:
        """The pre-flight of ``plan`` for a failover of ``kind``: every finding, blocking or not.

        Reads only (with the runner's retries); changes nothing.
        """
        plan = _plan(plan)
        kind = as_enum(FailoverKind, kind, "kind")
        return self._check(plan, kind, force)

    def _facts(self, plan: FailoverPlan) -> Facts:
        """The pre-flight's reads, with retries, the replicas' points read in parallel."""
        with ThreadPoolExecutor(self.max_parallel, thread_name_prefix="vmfailover-read") as pool:
            return gather(
                plan,
                self.backend,
                now=self.clock.now(),
                call=self._call,
                each=lambda fn, items: list(pool.map(_enlisted(self.clock, fn), items)),
            )

    def _check(self, plan: FailoverPlan, kind: FailoverKind, force: bool) -> Findings:
        from vmfailover.plan.check import check

        return check(plan, self._facts(plan), kind, force=_flag(force, "force"))

    # --- running ----------------------------------------------------------------------------------

    def failover(
        self,
        plan: FailoverPlan | StartOrder | Iterable[str],
        *,
        kind: FailoverKind | str = FailoverKind.REGULAR,
        force: bool = False,
        recovery_point: PointChoice | None = None,
        rto: float | str | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> RunReport:
        """Check, then run ``plan`` as a failover of ``kind``, and return the report.

        ``plan`` is a :class:`~vmfailover.plan.FailoverPlan`; a :class:`StartOrder` or a list of
        VM names is accepted as a plan of just those VMs (then ``recovery_point`` and ``rto`` may
        be given here; with a plan they belong in the plan). Raises
        :class:`~vmfailover.errors.ValidationError` listing every blocking problem before anything
        is touched. ``force=True`` starts replicas even where a source may still run (the
        split-brain guard is overridden, and the report says so). ``weights`` maps VMs to their
        expected start-to-ready seconds, for critical-path choices and the RTO prediction.
        """
        run = self.start(
            plan,
            kind=kind,
            force=force,
            recovery_point=recovery_point,
            rto=rto,
            weights=weights,
            background=False,
        )
        return run.wait()

    def start(
        self,
        plan: FailoverPlan | StartOrder | Iterable[str],
        *,
        kind: FailoverKind | str = FailoverKind.REGULAR,
        force: bool = False,
        recovery_point: PointChoice | None = None,
        rto: float | str | None = None,
        weights: Mapping[str, float] | None = None,
        cleanup_after: float | str | None = None,
        background: bool = True,
    ) -> Run:
        """Like :meth:`failover`, but return the :class:`Run` at once (it runs in a thread).

        ``cleanup_after`` (test failovers only) removes the test copies that many seconds (or a
        duration such as ``"1h"``) after the recovery ended, as :meth:`cleanup` does.
        """
        background = _flag(background, "background")
        run = self._prepare(
            _as_plan(plan, recovery_point, rto), kind, force, weights, cleanup_after, None
        )
        if background:
            run._start_background()
        return run

    def _prepare(
        self,
        plan: FailoverPlan,
        kind: FailoverKind | str,
        force: bool,
        weights: Mapping[str, float] | None,
        cleanup_after: float | str | None,
        failback_of: Run | None,
        *,
        run_id: str | None = None,
        failback: FailbackResult | None = None,
    ) -> Run:
        """Check and compile ``plan`` and claim what it touches: a run ready to execute."""
        kind = as_enum(FailoverKind, kind, "kind")
        force = _flag(force, "force")
        delay = None
        if cleanup_after is not None:
            if kind is not FailoverKind.TEST:
                raise ValidationError.of(
                    "cleanup_after", f"only a test failover is cleaned up, not a {kind.value} one"
                )
            delay = parse_seconds(cleanup_after, "cleanup_after", allow_zero=True)
        weights = _weights(weights, plan)
        run_id = run_id or self.new_run_id()
        run = Run(self, run_id, plan, kind, failback_of=failback_of)
        run.failback_result = failback
        run._fire(RunAction.VALIDATE)
        try:
            facts = self._facts(plan)
            compiled = plan.compile(
                facts.inventory,
                kind,
                points=facts.points,
                now=facts.now,
                force=force,
                point_limit=facts.point_limit,
            )
            claims_for(self.backend).claim(run_id, _touched(compiled))
        except BaseException:
            run._fire(RunAction.REFUSE)
            raise
        inventory = facts.inventory
        reachable = frozenset(
            vm.source.id for vm in compiled.vms if inventory.host(vm.source.host).available
        )
        run.inventory_before = inventory
        if self._writer is not None:
            try:
                run._journal = self._begin(run, compiled, reachable, weights, inventory)
                self._runs[run_id] = run
            except BaseException:
                claims_for(self.backend).release(run_id)
                run._fire(RunAction.REFUSE)
                raise
        run._execution = Execution(
            self,
            run_id,
            compiled,
            weights=weights,
            reachable_sources=reachable,
            journal=run._journal,
        )
        with _live_lock:
            _live_runs[run_id] += 1
        run._fire(RunAction.START)
        if delay is not None:
            run._execution.after_end = lambda: self._cleanup_later(run, delay)
        elif kind is not FailoverKind.TEST:
            run._execution.after_end = lambda: self._after_production(run)
        return run

    def _after_production(self, run: Run) -> None:
        """As a production run's recovery ends: its failback's figures, the plan's deadline."""
        from vmfailover.engine import aftercare

        aftercare.finish_failback_report(run)
        deadline = aftercare.schedule_deadline(self, run)
        if deadline is not None and run._report is not None:
            run._report = attrs.evolve(run._report, deadline=deadline)

    def new_run_id(self) -> str:
        """A fresh run id: the moment and a random tail."""
        return f"run-{self.clock.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"

    def _start_failback(
        self, plan: FailoverPlan, *, of: Run, result: FailbackResult, force: bool, run_id: str
    ) -> Run:
        """The planned failover that brings ``of`` home, ready to execute (for aftercare)."""
        return self._prepare(
            plan, FailoverKind.PLANNED, force, None, None, of, run_id=run_id, failback=result
        )

    def _begin(
        self,
        run: Run,
        compiled: CompiledPlan,
        reachable: frozenset[str],
        weights: Mapping[str, float] | None,
        inventory: Inventory,
    ) -> RunJournal:
        """Journal the run (durable) before anything of it acts."""
        assert self._writer is not None
        record = write_record(
            compiled,
            reachable_sources=reachable,
            weights=weights,
            inventory_before=inventory
            if run.kind is FailoverKind.TEST
            else _touched_inventory(inventory, compiled),
            backend=self.backend.name,
            failback_of=None if run.failback_of is None else run.failback_of.id,
            failback=run.failback_result,
        )
        journal = RunJournal(self._writer, run.id, self.clock.now)
        journal.begin(
            RunSummary(
                run_id=run.id,
                kind=run.kind,
                plan=run.plan.name,
                started_at=self.clock.now(),
                state=run.state.value,
                backend=self.backend.name,
                rto_target_seconds=run.plan.rto,
                owner=_owner(),
            ),
            record,
        )
        return journal

    # --- resuming ---------------------------------------------------------------------------------

    def resume(
        self,
        run_id: str,
        *,
        plan: FailoverPlan | None = None,
        background: bool = True,
        takeover: bool = False,
    ) -> Run:
        """Continue what was in flight for run ``run_id`` when its process stopped; returns its
        :class:`Run`.

        **An interrupted recovery** (the run was running): VMs whose recovery finished keep their
        outcome and are not touched again; a VM in the middle of its recovery goes on where it
        was: each backend call its journal holds is replayed from its record, and one whose
        intent has no outcome is first reconciled against the backend's state
        (:mod:`vmfailover.engine.reconcile`), so nothing is done twice; VMs not yet started start
        in order, once what they depend on is ready. The run claims its VMs again.

        ``takeover=True`` resumes the run even when the process that journaled it last is still
        alive on this host: for a caller that holds the plan's lease under a newer fencing token
        (the :class:`~vmfailover.engine.orchestrator.Orchestrator`), so that the old process is
        fenced out by its backend and journal, not by the process table.

        **An interrupted commit or undo** (the run is ``committing`` or ``undoing``) is finished
        before this returns, its journaled calls replayed or reconciled the same way. **An
        interrupted failback** (``failing_back``) goes on too: replication is reversed where it
        was not yet and the failback run begins, or, if it had begun, that run is resumed (its
        recovery, or its commit or undo); it is ``run.failback_run``. A failback run can also be
        resumed by its own id.

        With ``background=False`` a resumed recovery runs when :meth:`Run.wait` is called (a
        failback run resumed through its original's id, before this returns); a commit or undo
        always finishes before this returns.

        ``plan`` is needed only when the plan held Python callables (callable steps, probes or
        approvers), which a journal cannot store. To commit, undo or fail back a run that ended
        in another process, :meth:`attach` it.

        Raises :class:`~vmfailover.errors.ConflictError` naming the run's state if nothing of it
        is in flight (or it is running in this process or in another live process on this
        host), and :class:`~vmfailover.errors.NotFoundError` if the journal lacks it.
        """
        background = _flag(background, "background")
        takeover = _flag(takeover, "takeover")
        loaded = self._load(run_id, "resume", takeover=takeover)
        summary = loaded.summary
        if summary.interrupted:
            return self._resume_recovery(loaded, plan, background, takeover=takeover)
        if summary.state in _IN_AFTERCARE:
            if not takeover:
                _check_owner(run_id, summary.owner)
            run = self._attach_loaded(loaded, plan)
            self._resume_aftercare(run, background)
            return run
        ended = f", ended {summary.ended_at:%Y-%m-%d %H:%M:%S}" if summary.ended_at else ""
        raise ConflictError(
            f"run {run_id} is {summary.state}{ended}: nothing of it is in flight (only a run "
            "whose recovery, commit, undo or failback was interrupted can be resumed); attach "
            "it to commit, undo or fail it back"
        )

    def attach(self, run_id: str, *, plan: FailoverPlan | None = None) -> Run:
        """The journaled run ``run_id`` as a :class:`Run` of this runner, for a run whose
        recovery ended in this process or another one: :meth:`commit`, :meth:`undo` and
        :meth:`failback` act on it as on the run that process held, and its report is the last
        one the journal stored. A failback run comes with the run it fails back
        (``failback_of``), and a run failing back with its failback run (``failback_run``).
        The same id gives the same Run for as long as it is referenced.

        ``plan`` is needed only when the plan held Python callables. Raises
        :class:`~vmfailover.errors.ConflictError` for an interrupted run (:meth:`resume` it)
        and :class:`~vmfailover.errors.NotFoundError` if the journal lacks it.
        """
        with self._runs_lock:
            known = self._runs.get(run_id) if isinstance(run_id, str) else None
            if known is not None:
                return known
            loaded = self._load(run_id, "attach")
            if loaded.summary.interrupted:
                raise ConflictError(
                    f"run {run_id} was interrupted in its recovery ({loaded.summary.state}): "
                    "resume it (runner.resume) to finish it first"
                )
            return self._attach_loaded(loaded, plan)

    def _load(self, run_id: object, what: str, *, takeover: bool = False) -> JournaledRun:
        """The journaled run ``run_id``, checked as one this runner may take over."""
        if self.journal is None or self._writer is None:
            raise ConflictError(
                "this runner has no journal: give Runner(backend, journal=...) the journal "
                "the run was written to"
            )
        if not isinstance(run_id, str) or not run_id:
            raise ValidationError.of(what, f"needs a run id, got {run_id!r}")
        with _live_lock:
            if run_id in _live_runs and not takeover:
                raise ConflictError(
                    f"run {run_id} is running in this process: it is not interrupted"
                )
        return self.journal.load(run_id)

    def _record(self, loaded: JournaledRun, plan: FailoverPlan | None) -> RunRecord:
        record = read_record(loaded.record, plan)
        if record.backend != self.backend.name:
            raise ConflictError(
                f"run {loaded.summary.run_id} ran on a {record.backend} backend, not on this "
                f"{self.backend.name} one"
            )
        return record

    def _failback_of(self, record: RunRecord) -> Run | None:
        """The run a failback run's record names, attached (NotFoundError if the journal lost
        it)."""
        if record.failback_of is None:
            return None
        return self.attach(record.failback_of)

    def _resume_recovery(
        self,
        loaded: JournaledRun,
        plan: FailoverPlan | None,
        background: bool,
        *,
        takeover: bool = False,
    ) -> Run:
        summary = loaded.summary
        run_id = summary.run_id
        if not takeover:
            _check_owner(run_id, summary.owner)
        assert self._writer is not None
        record = self._record(loaded, plan)
        original = self._failback_of(record)
        compiled = record.compiled
        replay = Replay(summary.started_at, loaded.entries)
        claims_for(self.backend).claim(run_id, _touched(compiled))
        run = Run(
            self,
            run_id,
            compiled.plan,
            compiled.kind,
            RunState(summary.state),
            failback_of=original,
        )
        run.inventory_before = record.inventory_before
        run.failback_result = record.failback
        if original is not None:
            original.failback_run = run
        run._journal = RunJournal(
            self._writer, run_id, self.clock.now, first_seq=replay.last_seq + 1
        )
        run._journal.resumed(_owner())
        if run.state is RunState.VALIDATING:
            run._fire(RunAction.START)
        run._execution = Execution(
            self,
            run_id,
            compiled,
            weights=record.weights,
            reachable_sources=record.reachable_sources,
            journal=run._journal,
            replay=replay,
        )
        if compiled.kind is not FailoverKind.TEST:
            run._execution.after_end = lambda: self._after_production(run)
        with _live_lock:
            _live_runs[run_id] += 1
        self._runs[run_id] = run
        if background:
            run._start_background()
        return run

    def _attach_loaded(self, loaded: JournaledRun, plan: FailoverPlan | None) -> Run:
        """A Run for a journaled run whose recovery ended (see :meth:`attach`)."""
        assert self.journal is not None
        assert self._writer is not None
        summary = loaded.summary
        run_id = summary.run_id
        with self._runs_lock:
            record = self._record(loaded, plan)
            original = self._failback_of(record)
            known = self._runs.get(run_id)  # attaching the original attached this one
            if known is not None:
                return known
            compiled = record.compiled
            replay = Replay(summary.started_at, loaded.entries)
            run = Run(
                self,
                run_id,
                compiled.plan,
                compiled.kind,
                RunState(summary.state),
                failback_of=original,
            )
            run.inventory_before = record.inventory_before
            run.failback_result = record.failback
            run._journal = RunJournal(
                self._writer, run_id, self.clock.now, first_seq=replay.last_seq + 1
            )
            run._execution = Execution(
                self,
                run_id,
                compiled,
                weights=record.weights,
                reachable_sources=record.reachable_sources,
                journal=run._journal,
            )
            for name, (_state, progress) in replay.finished.items():
                if name in run._execution.progress:
                    run._execution.progress[name] = progress
            stored = self.journal.stored_report(run_id)
            if stored is not None:
                report = loads(stored)
                if isinstance(report, RunReport):
                    run._report = report
                    run.failback_result = report.failback or run.failback_result
            run._aftercare_replay = _aftercare_replay(run.state, summary.started_at, loaded.entries)
            run._done.set()
            self._runs[run_id] = run
            run._failback_link = _failback_link(loaded.entries)
            link = run._failback_link
            if link is not None and run.state in (RunState.FAILING_BACK, RunState.FAILED_BACK):
                try:
                    back = self.journal.load(link, ()).summary
                except NotFoundError:
                    back = None  # the failback was about to begin: resuming begins it
                if back is not None and back.ended_at is not None:  # it ran (not refused)
                    run.failback_run = self.attach(link)
            return run

    def _resume_aftercare(self, run: Run, background: bool) -> None:
        """Finish the commit, undo or failback of ``run`` that was in flight."""
        from vmfailover.engine import aftercare

        by = "runner.resume"
        if run.state is RunState.COMMITTING:
            aftercare.commit(self, run, by=by)
        elif run.state is RunState.UNDOING:
            aftercare.undo(self, run, by=by)
        elif run.failback_run is not None:
            back = run.failback_run
            if back.state in (RunState.COMMITTING, RunState.UNDOING):
                self._resume_aftercare(back, background)
                return
            raise ConflictError(
                f"run {run.id} is failing back: its failback run {back.id} is "
                f"{back.state.value}, nothing is in flight (commit or undo it)"
            )
        else:
            link = run._failback_link
            assert self.journal is not None
            if link is not None:
                try:
                    back_summary = self.journal.load(link, ()).summary
                except NotFoundError:
                    back_summary = None
                if back_summary is not None and back_summary.interrupted:
                    back = self._resume_recovery(self.journal.load(link), None, background)
                    if not background:
                        back.wait()
                    return
            aftercare.failback(self, run, background=background)

    def _cleanup_later(self, run: Run, delay: float) -> None:
        def later() -> None:
            self.clock.sleep(delay)
            try:
                self.cleanup(run)
            except VMFailoverError as error:
                run._execution.warn(f"automatic cleanup failed: {error}")  # type: ignore[union-attr]

        threading.Thread(target=later, name=f"vmfailover-cleanup-{run.id}", daemon=True).start()

    # --- cleanup ----------------------------------------------------------------------------------

    def cleanup(self, run: Run) -> RunReport:
        """Remove every test copy ``run`` created and prove it: the inventory afterwards must equal
        the inventory before the test. Returns the run's report with its :class:`CleanupResult`.

        Only a test run that has ended can be cleaned up (our ConflictError otherwise, naming its
        state); a cleanup that could not remove everything may simply be called again.
        """
        if not isinstance(run, Run):
            raise ValidationError.of("cleanup", f"needs a Run, got {run!r}")
        if run._runner.backend is not self.backend:
            raise ConflictError(f"run {run.id} ran on another backend: clean it up with its runner")
        return self._clean_up(run, run.test_copies)

    def cleanup_journaled(self, run_id: str, *, plan: FailoverPlan | None = None) -> RunReport:
        """Clean up test run ``run_id`` of the journal, as :meth:`cleanup` does for a run of this
        runner: for a run an earlier process started (the command line's ``cleanup RUN``).

        The copies removed are those the journal says the run created (removing one that is
        gone already is a no-op); the inventory afterwards is compared with the one the run
        recorded before it acted; the cleanup and the report holding it are journaled, so the
        journal's report of the run shows it. ``plan`` is needed only when the plan had Python
        callables. ConflictError if this runner has no journal, the run ran on another kind of
        backend, is interrupted (resume it first), or is not a test run that has ended;
        NotFoundError if the journal lacks it.
        """
        if self.journal is None or self._writer is None:
            raise ConflictError(
                "this runner has no journal: give Runner(backend, journal=...) the journal "
                "the run was written to"
            )
        if not isinstance(run_id, str) or not run_id:
            raise ValidationError.of("cleanup_journaled", f"needs a run id, got {run_id!r}")
        loaded = self.journal.load(run_id)
        summary = loaded.summary
        if summary.interrupted:
            raise ConflictError(
                f"run {run_id} is interrupted ({summary.state}): resume it before cleaning it up"
            )
        record = read_record(loaded.record, plan)
        if record.backend != self.backend.name:
            raise ConflictError(
                f"run {run_id} ran on a {record.backend} backend, not on this "
                f"{self.backend.name} one"
            )
        run = Run(self, run_id, record.compiled.plan, record.compiled.kind, RunState(summary.state))
        run.inventory_before = record.inventory_before
        run._report = self.journal.report(run_id).report
        replay = Replay(summary.started_at, loaded.entries)
        run._journal = RunJournal(
            self._writer, run_id, self.clock.now, first_seq=replay.last_seq + 1
        )
        return self._clean_up(run, _journaled_copies(loaded.entries))

    def _clean_up(self, run: Run, copies: Iterable[str]) -> RunReport:
        with run._lock:
            if not run._machine.can(RunAction.CLEAN_UP):
                run._machine.fire(
                    RunAction.CLEAN_UP
                )  # raises, naming the state and what is allowed
            assert run.inventory_before is not None
            removed: list[str] = []
            errors: list[str] = []
            for copy in copies:
                try:
                    self._remove_copy(run, copy)
                    removed.append(copy)
                except VMFailoverError as error:
                    errors.append(f"test copy {copy!r}: {error}")
            after = self._call(self.backend.inventory)
            differences = inventory_differences(run.inventory_before, after)
            result = CleanupResult(
                at=self.clock.now(),
                removed=tuple(removed),
                restored=not differences and not errors,
                differences=tuple(differences),
                errors=tuple(errors),
            )
            if result.restored:
                run._fire(RunAction.CLEAN_UP)
                claims_for(self.backend).release(run.id)
            self._publish(CleanupFinished(run.id, result.at, result.restored, result.differences))
            if run._report is not None:
                run._report = attrs.evolve(run._report, cleanup=result, state=run.state.value)
                if run._journal is not None:
                    run._journal.cleanup(run._report, result.restored)
            return run._report if run._report is not None else run.wait()

    # --- host failover ----------------------------------------------------------------------------

    def host_failover(
        self,
        cluster: Cluster | str,
        failed_hosts: Iterable[str] | str,
        policy: ClusterPolicy | None = None,
        order: StartOrder | None = None,
        *,
        vms: Iterable[str] | None = None,
        failed_at: datetime | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> HostFailoverReport:
        """Restart the VMs of failed hosts on the other hosts of their cluster, through the
        sequencer, and report each VM's placement, restart and downtime (and every VM that could
        not be placed, with the reason). See :func:`vmfailover.engine.host_failover.host_failover`.
        """
        from vmfailover.engine.host_failover import host_failover

        return host_failover(
            self,
            cluster,
            failed_hosts,
            policy,
            order,
            vms=vms,
            failed_at=failed_at,
            weights=weights,
        )

    def move_back(self, run: HostFailoverReport) -> MoveBackReport:
        """Move the VMs of a host failover back to their original hosts once those answer again
        (live where the backend can, otherwise shut down and restarted in order). See
        :func:`vmfailover.engine.move_back.move_back`."""
        from vmfailover.engine.move_back import move_back

        return move_back(self, run)

    def _remove_copy(self, run: Run, copy: str) -> None:
        journal = run._journal
        if journal is None:
            self._call(self.backend.remove_test_copy, copy)
            return
        seq = journal.intent(None, "remove_test_copy", (copy,))
        try:
            self._call(self.backend.remove_test_copy, copy)
        except Exception as error:
            journal.outcome(seq, None, "remove_test_copy", error=error)
            raise
        journal.outcome(seq, None, "remove_test_copy")

    # --- after a production failover -------------------------------------------------------------

    def commit(self, run: Run) -> RunReport:
        """Make ``run``'s failover permanent: each replica it failed over is committed (the
        backend's ``commit_failover``: Complete-VMFailover on Hyper-V), and can no longer be
        undone. Committing a failback run also hands the original replicas back, replicating in
        their first direction again. Returns the report with its :class:`CommitResult`.

        Only a planned or regular run that has ended can be committed (our ConflictError
        otherwise, naming its state and what is allowed); an interrupted commit is finished by
        calling it again.
        """
        from vmfailover.engine import aftercare

        return aftercare.commit(self, run)

    def undo(self, run: Run) -> RunReport:
        """Revert ``run``: the replicas it failed over are powered off and get back the disks,
        NIC networks and guest addresses they had (``undo_failover``, dependents first), the
        sources it stopped start again in start order, and the result is proved against the
        inventory before the run. Returns the report with its :class:`UndoResult`.

        Partial, failed and cancelled runs can be undone too (only what they touched). An undo
        that could not finish (``restored`` False) may simply be called again.
        """
        from vmfailover.engine import aftercare

        return aftercare.undo(self, run)

    def failback(
        self,
        run: Run,
        *,
        plan: FailoverPlan | None = None,
        force: bool = False,
        background: bool = True,
    ) -> Run:
        """Bring ``run``'s VMs home and return the failback :class:`Run`.

        The failover is committed if it is not yet, replication is reversed (the recovered VMs
        replicate to the original ones, moving only the blocks that differ where the originals
        still exist), and a planned failover back runs: the recovered VMs shut down, a final
        sync, the originals started in the plan's order on their own networks with their own
        addresses (:func:`~vmfailover.plan.reverse.reverse_plan`, or ``plan``). The failback
        run has its own commit (which also resumes replication in the first direction) and
        undo (which gives production back to the recovery site). Its report's
        :class:`FailbackResult` says what the syncs moved.
        """
        from vmfailover.engine import aftercare

        force = _flag(force, "force")
        return aftercare.failback(
            self, run, plan=plan, force=force, background=_flag(background, "background")
        )

    # --- backend calls ----------------------------------------------------------------------------

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


def _owner() -> str:
    """Who runs a run: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _check_owner(run_id: str, owner: str) -> None:
    """Refuse to resume a run another live process on this host still holds."""
    pid = live_holder(owner)
    if pid is not None:
        raise ConflictError(
            f"run {run_id} is held by process {pid} on this host, which is still alive: "
            "resume it once that process has ended"
        )


def live_holder(owner: str) -> int | None:
    """The id of the process ``owner`` (a run's ``host:pid``) names, when that is another
    process on this host that is still alive; None otherwise (another host, this process, an
    ended process, or a platform where it cannot be told)."""
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit() or os.name != "posix":
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return None  # this process: the live-run table decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, and someone else's
    return pid


def _enlisted(clock: Clock, fn: Callable[[str], _T]) -> Callable[[str], _T]:
    """``fn`` as enlisted work of ``clock``, so virtual time waits for it."""

    def work(item: str) -> _T:
        with clock.enlist():
            return fn(item)

    return work


def _runner_findings(
    backend: object, clock: object, max_parallel: object, retry: object
) -> list[Finding]:
    findings: list[Finding] = []
    if not isinstance(backend, Backend):
        findings.append(
            Finding(
                "Runner backend",
                f"{backend!r} is not a backend",
                hint="open one by name with vmfailover.backends.open_backend('memory')",
            )
        )
    if (
        isinstance(max_parallel, bool)
        or not isinstance(max_parallel, int)
        or not 1 <= max_parallel <= 1024
    ):
        findings.append(
            Finding(
                "Runner max_parallel",
                f"must be a whole number from 1 to 1024, got {max_parallel!r}",
            )
        )
    if retry is not None and not isinstance(retry, RetryPolicy):
        findings.append(Finding("Runner retry", f"must be a RetryPolicy, got {retry!r}"))
    try:
        full_clock(clock)
    except ValidationError as error:
        findings.extend(attrs.evolve(f, item="Runner clock") for f in error.findings)
    return findings


def _attempt(fn: Callable[..., _T], on_retry: object, *args: object) -> _T:
    """One try of ``fn``; ``on_retry`` rides along for :meth:`Runner._before_retry_sleep`."""
    return fn(*args)


def _journal_findings(journal: object) -> list[Finding]:
    if journal is None or isinstance(journal, Journal):
        return []
    return [
        Finding(
            "Runner journal",
            f"{journal!r} is not a journal",
            hint="open one with SQLiteJournal(path)",
        )
    ]


def _flag(value: object, item: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError.of(item, f"must be True or False, got {value!r}")
    return value


def _plan(plan: object) -> FailoverPlan:
    if not isinstance(plan, FailoverPlan):
        raise ValidationError.of("plan", f"expected a FailoverPlan, got {plan!r}")
    return plan


def _as_plan(
    plan: object, recovery_point: PointChoice | None, rto: float | str | None
) -> FailoverPlan:
    """A plan from a plan, a start order or names (the latter two with their options here)."""
    if isinstance(plan, FailoverPlan):
        given = [
            name
            for name, value in (("recovery_point", recovery_point), ("rto", rto))
            if value is not None
        ]
        if given:
            raise ValidationError.of(
                ", ".join(given),
                "belongs in the FailoverPlan when a plan is given",
                f"use attrs.evolve(plan, {given[0]}=...)",
            )
        return plan
    if isinstance(plan, StartOrder):
        order = plan
    elif isinstance(plan, str):
        order = StartOrder()
        order.add(plan)
    elif isinstance(plan, Iterable) and not isinstance(plan, Mapping | bytes):
        order = StartOrder()
        for name in plan:
            if not isinstance(name, str):
                raise ValidationError.of("failover", f"VM names must be strings, got {name!r}")
            if name in order:
                raise ValidationError.of(f"VM {name!r}", "is listed twice")
            order.add(name)
    else:
        raise ValidationError.of(
            "failover", f"needs a FailoverPlan, a StartOrder or VM names, got {plan!r}"
        )
    if not order.vms:
        raise ValidationError.of("failover", "no VMs given")
    return FailoverPlan(
        name="ad hoc",
        vms=order.vms,
        order=order,
        recovery_point=recovery_point if recovery_point is not None else "latest",
        rto=rto,
    )


def _weights(weights: object, plan: FailoverPlan) -> Mapping[str, float] | None:
    if weights is None:
        return None
    if not isinstance(weights, Mapping):
        raise ValidationError.of("weights", f"must map VM names to seconds, got {weights!r}")
    checked: dict[str, float] = {}
    for name, seconds in weights.items():
        if name not in plan.vms:
            raise ValidationError.of(f"weight for {name!r}", "names a VM that is not in the plan")
        checked[name] = parse_seconds(seconds, f"weight for {name!r}", allow_zero=True)
    return checked


_IN_AFTERCARE = (
    RunState.COMMITTING.value,
    RunState.UNDOING.value,
    RunState.FAILING_BACK.value,
)


def _aftercare_replay(
    state: RunState, started_at: datetime, entries: Iterable[JournalEntry]
) -> Replay | None:
    """The journal of the last commit, undo or failback attempt that ``state`` says is in
    flight: the entries since the run last entered that state, or since the last attempt that
    ended (it journaled its report, for instance on a backend error), whichever is later. An
    attempt that ended is not replayed: its failed calls are tried again, not raised again."""
    if state.value not in _IN_AFTERCARE:
        return None
    listed = list(entries)
    begin = 0
    for index, entry in enumerate(listed):
        entered = entry.kind is EntryKind.STATE and entry.payload().get("to") == state.value
        ended = begin and entry.kind is EntryKind.AFTERCARE and "report" in entry.payload()
        if entered or ended:
            begin = index + 1
    if begin == 0:
        return None
    return Replay(started_at, listed[begin:])


def _failback_link(entries: Iterable[JournalEntry]) -> str | None:
    """The failback run the journal last linked to this run, if any."""
    link = None
    for entry in entries:
        if entry.kind is EntryKind.AFTERCARE:
            payload = entry.payload()
            if "failback_run" in payload:
                link = str(payload["failback_run"])
    return link


def _touched_inventory(inventory: Inventory, compiled: CompiledPlan) -> Inventory:
    """The part of ``inventory`` a production run touches (its sources, replicas and replica
    VMs, with the sites, hosts, datastores and networks they name): what its undo restores and
    proves."""
    keys = set(_touched(compiled))
    return attrs.evolve(
        inventory,
        vms=tuple(vm for vm in inventory.vms if vm.id in keys),
        replicas=tuple(replica for replica in inventory.replicas if replica.id in keys),
    )


def _touched(compiled: Any) -> list[str]:
    ids: list[str] = []
    for vm in compiled.vms:
        ids += [vm.source.id, vm.replica.id, vm.replica_vm.id]
    return ids


def _journaled_copies(entries: Iterable[JournalEntry]) -> list[str]:
    """The test copies a run's journal says it created, in the order it created them."""
    copies: dict[str, None] = {}
    for entry in entries:
        if entry.kind is EntryKind.OUTCOME and entry.operation == "create_test_copy":
            result = entry.payload().get("result")
            if isinstance(result, str):
                copies[result] = None
    return list(copies)


def inventory_differences(
    before: Inventory, after: Inventory, *, only: Collection[str] | None = None
) -> list[str]:
    """Every site, host, datastore, network, VM and replica that differs between two inventories
    (those whose key is in ``only``, when given)."""
    differences: list[str] = []
    tables = (
        ("site", lambda i: {s.name: s for s in i.sites}),
        ("host", lambda i: {h.name: h for h in i.hosts}),
        ("datastore", lambda i: {d.name: d for d in i.datastores}),
        ("network", lambda i: {f"{n.site}/{n.name}": n for n in i.networks}),
        ("VM", lambda i: {v.id: v for v in i.vms}),
        ("replica", lambda i: {r.id: r for r in i.replicas}),
    )
    for what, index in tables:
        old, new = index(before), index(after)
        if only is not None:
            old = {key: value for key, value in old.items() if key in only}
            new = {key: value for key, value in new.items() if key in only}
        for key in sorted(old.keys() - new.keys()):
            differences.append(f"{what} {key!r} is gone")
        for key in sorted(new.keys() - old.keys()):
            differences.append(f"{what} {key!r} is new")
        for key in sorted(old.keys() & new.keys()):
            if old[key] != new[key]:
                changed = [
                    f"{field.name} {getattr(old[key], field.name)!r} -> "
                    f"{getattr(new[key], field.name)!r}"
                    for field in attrs.fields(type(old[key]))
                    if getattr(old[key], field.name) != getattr(new[key], field.name)
                ]
                differences.append(f"{what} {key!r} changed: {'; '.join(changed)}")
    return differences
