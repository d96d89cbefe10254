"""A run: one failover in progress, and afterwards its record.

:class:`Run` is the handle :meth:`~vmfailover.engine.runner.Runner.start` returns: it owns the
run's state machine (:mod:`vmfailover.engine.run_state`), the thread that executes it and the
report it ends with. The runner makes runs (:meth:`~vmfailover.engine.runner.Runner.start`) and
takes journaled ones up again (:mod:`vmfailover.engine.resumption`); this module also keeps the
table of the runs this process is executing, so that a live run is never resumed beside itself.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from vmfailover.engine.claims import claims_for
from vmfailover.engine.events import RunStateChanged
from vmfailover.engine.results import RunReport, RunResult
from vmfailover.engine.run_state import RunAction, RunState, RunStateMachine
from vmfailover.errors import ConflictError, ValidationError, VMFailoverError
from vmfailover.model import FailoverKind, Inventory, as_enum, as_name, parse_seconds
from vmfailover.plan import FailoverPlan

if TYPE_CHECKING:
    from vmfailover.engine.aftercare_results import Deadline, FailbackResult
    from vmfailover.engine.execution import Execution
    from vmfailover.engine.replay import Replay
    from vmfailover.engine.run_journal import RunJournal
    from vmfailover.engine.runner import Runner

__all__ = ["OBSERVER_GRACE", "Run", "executing_here", "process_owner"]

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


def executing_here(run_id: str) -> bool:
    """Whether run ``run_id`` is being executed in this process."""
    with _live_lock:
        return run_id in _live_runs


def process_owner() -> str:
    """Who runs a run: this host and process (what the journal records as a run's owner)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Run:
    """A failover in progress, and afterwards its record.

    :meth:`wait` returns the report once the recovery has ended; :attr:`report` is always the
    latest (a test run's report gains its cleanup, a production run's its commit, undo or
    failback). :meth:`cancel` starts nothing new (VMs in the middle of their recovery finish it;
    the rest are left untouched); :meth:`approve` answers an approval gate the run is waiting at.
    :meth:`commit`, :meth:`undo` and :meth:`failback` are
    :class:`~vmfailover.engine.runner.Runner`'s, for this run.

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
        from vmfailover.engine.runner import Runner  # runner.py imports this module

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
        #: What a host failover or move back run is (its record's ``host_run``); None for a
        #: plan's run. Such a run has no commit, undo or failback.
        self.host_run: Mapping[str, Any] | None = None

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
        :meth:`~vmfailover.engine.runner.Runner.cleanup` removes). Empty before the run has
        started its VMs."""
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
        """Make this failover permanent (:meth:`~vmfailover.engine.runner.Runner.commit`)."""
        return self._runner.commit(self)

    def undo(self) -> RunReport:
        """Revert what this run touched (:meth:`~vmfailover.engine.runner.Runner.undo`)."""
        return self._runner.undo(self)

    def failback(self, *, plan: FailoverPlan | None = None, background: bool = True) -> Run:
        """Bring this run's VMs home (:meth:`~vmfailover.engine.runner.Runner.failback`); returns
        the failback run."""
        return self._runner.failback(self, plan=plan, background=background)

    # --- life ------------------------------------------------------------------------------------

    def _fire(self, action: RunAction) -> None:
        old, new = self._machine.fire(action)
        now = self._runner.clock.now()
        if self._journal is not None:
            self._journal.state(old.value, new.value, now)
        self._runner._publish(RunStateChanged(self.id, old.value, new.value, now))

    def _go_live(self) -> None:
        """Count this run among those executing in this process, until :meth:`_execute` ends."""
        with _live_lock:
            _live_runs[self.id] += 1

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
                    message = (
                        f"the journal could not record the run's end: {error}; it keeps the "
                        f"run interrupted: resume run {self.id} once the journal answers, to "
                        "finish what it could not record"
                    )
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
