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
picks the recovery point). The :class:`~vmfailover.engine.run.Run` a start returns is
:mod:`vmfailover.engine.run`, its life the transition table in :mod:`vmfailover.engine.run_state`;
what follows a production run (:meth:`Runner.commit`, :meth:`Runner.undo`, the plan's deadline,
:meth:`Runner.failback`) is :mod:`vmfailover.engine.aftercare`; taking a journaled run up again
(:meth:`Runner.resume`, :meth:`Runner.attach`, :meth:`Runner.cleanup_journaled`) is
:mod:`vmfailover.engine.resumption`.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import tenacity

from vmfailover.backends.base import Backend
from vmfailover.clock import Clock, SystemClock, full_clock
from vmfailover.engine import resumption
from vmfailover.engine.claims import claims_for, touched_ids
from vmfailover.engine.events import CleanupFinished, EventBus, RunEvent
from vmfailover.engine.execution import Execution
from vmfailover.engine.host_failover_results import HostFailoverReport, MoveBackReport
from vmfailover.engine.journal import Journal, RunSummary
from vmfailover.engine.journal_writer import JournalWriter
from vmfailover.engine.results import CleanupResult, RunReport
from vmfailover.engine.run import Run, process_owner
from vmfailover.engine.run_journal import RunJournal
from vmfailover.engine.run_record import write_record
from vmfailover.engine.run_state import RunAction
from vmfailover.errors import (
    ConflictError,
    Finding,
    Findings,
    TransientBackendError,
    ValidationError,
    VMFailoverError,
)
from vmfailover.model import (
    FailoverKind,
    Inventory,
    as_enum,
    is_finite_number,
    parse_seconds,
)
from vmfailover.plan import CompiledPlan, FailoverPlan, gather
from vmfailover.plan.check import Facts
from vmfailover.policy.cluster import Cluster, ClusterPolicy
from vmfailover.policy.inventory_diff import inventory_differences
from vmfailover.policy.points import PointChoice
from vmfailover.policy.sequencer import StartOrder

if TYPE_CHECKING:
    from vmfailover.engine.aftercare_results import FailbackResult

__all__ = ["RetryPolicy", "Run", "Runner"]

_T = TypeVar("_T")


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

    ``keep_deadlines`` (default True): this runner keeps the plan's deadline (``auto_commit`` /
    ``auto_undo``) of each run it starts, resumes or attaches, in a thread, while the process
    lives. A journaled deadline outlives the process: ``vmfailover serve`` (an
    :class:`~vmfailover.engine.orchestrator.Orchestrator`) or ``vmfailover deadlines`` acts on
    it (:mod:`vmfailover.engine.deadlines`). False leaves them to those (a command about to
    decide the run itself, say).
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
        keep_deadlines: bool = True,
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
        keep: object = keep_deadlines  # checked: a caller may give anything
        if not isinstance(keep, bool):
            findings.append(
                Finding("Runner keep_deadlines", f"must be True or False, got {keep_deadlines!r}")
            )
        if findings:
            raise ValidationError(findings)
        self.backend = backend
        self.journal = journal
        self.keep_deadlines = keep_deadlines
        self.closed = False
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
        opened it closes it); a runner without a journal has nothing to close. The deadlines
        it kept are left to whoever else keeps them (they are journaled)."""
        self.closed = True
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
            claims_for(self.backend).claim(run_id, touched_ids(compiled))
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
        run._go_live()
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
        inventory: Inventory | None,
    ) -> RunJournal:
        """Journal the run (durable) before anything of it acts (``inventory`` None: the run
        has no undo, so nothing of it is kept; a host failover's)."""
        assert self._writer is not None
        if inventory is not None and run.kind is not FailoverKind.TEST:
            inventory = _touched_inventory(inventory, compiled)
        record = write_record(
            compiled,
            reachable_sources=reachable,
            weights=weights,
            inventory_before=inventory,
            backend=self.backend.name,
            failback_of=None if run.failback_of is None else run.failback_of.id,
            failback=run.failback_result,
            host_run=run.host_run,
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
                owner=process_owner(),
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
        probes: Mapping[str, object] | None = None,
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
        approvers), which a journal cannot store. A host failover or move back has no plan to
        give: ``probes`` gives its callable readiness probes again (VM name -> probe or
        function), as the start order it was called with held them; a ValidationError names
        each VM whose probe is missing. To commit, undo or fail back a run that ended in
        another process, :meth:`attach` it.

        Raises :class:`~vmfailover.errors.ConflictError` naming the run's state if nothing of it
        is in flight (or it is running in this process or in another live process on this
        host), and :class:`~vmfailover.errors.NotFoundError` if the journal lacks it.
        """
        return resumption.resume(
            self,
            run_id,
            plan=plan,
            background=_flag(background, "background"),
            takeover=_flag(takeover, "takeover"),
            probes=probes,
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
        return resumption.attach(self, run_id, plan=plan)

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
        return resumption.cleanup_journaled(self, run_id, plan=plan)

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

    def host_failover_report(self, run_id: str) -> HostFailoverReport:
        """The report of host failover ``run_id`` as the runner's journal holds it (in this
        process or another one): what :meth:`move_back` needs, for a host failover that was
        resumed (:meth:`resume`) or ran in a process that is gone.

        ConflictError if this runner has no journal, the run is not a host failover, or it was
        interrupted (resume it first); NotFoundError if the journal lacks it.
        """
        from vmfailover.engine.host_run import host_failover_report

        return host_failover_report(self, run_id)

    def move_back_report(self, run_id: str) -> MoveBackReport:
        """The report of move back ``run_id`` as the runner's journal holds it (in this process
        or another one), the same one the move back returned: how each VM went home (live,
        cold, started, already home) and whether the original placement was restored, as
        proved against the inventory when the run ended. For a move back that was resumed
        (:meth:`resume`) or ran in a process that is gone.

        A move back whose process died after its run ended but before its proof was journaled
        is proved now, once, and journaled. ConflictError if this runner has no journal, the
        run is not a move back, or it was interrupted (resume it first); NotFoundError if the
        journal lacks it.
        """
        from vmfailover.engine.host_run import move_back_report

        return move_back_report(self, run_id)

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


def _touched_inventory(inventory: Inventory, compiled: CompiledPlan) -> Inventory:
    """The part of ``inventory`` a production run touches (its sources, replicas and replica
    VMs, with the sites, hosts, datastores and networks they name): what its undo restores and
    proves."""
    keys = set(touched_ids(compiled))
    return attrs.evolve(
        inventory,
        vms=tuple(vm for vm in inventory.vms if vm.id in keys),
        replicas=tuple(replica for replica in inventory.replicas if replica.id in keys),
    )
