"""After a production failover: commit it, undo it, let its deadline decide, or fail back.

A planned or regular run that has ended is *uncommitted*: its replicas run from the recovery
points they were reverted to, and nothing is final yet.

- :func:`commit` makes it permanent (the backend's ``commit_failover`` per replica the run failed
  over). Committing a failback also hands the original replicas back (``reverse_replication`` of
  the failback's replicas), so the plan's VMs are protected in their first direction again.
- :func:`undo` reverts what the run touched, and only that: replicas back to replicating with the
  disks they had (``undo_failover``, in reverse start order), their NICs and guest addresses as
  the inventory before the run showed them, and sources the run stopped started again, in start
  order, each wave once the one before is ready. It proves the result like a test's cleanup: the
  VMs and replicas the run touched must equal the inventory before the run.
- :func:`schedule_deadline` commits or undoes a run when the plan's ``auto_commit`` /
  ``auto_undo`` time is up, unless someone decided first.
- :func:`failback` brings a failed-over run home: the failover is committed, replication reversed
  (:func:`~vmfailover.plan.reverse.reverse_plan` turns the plan around), each reverse
  replica that needs a first sync gets it while the recovered VMs still run (only the blocks that
  differ move where the original VMs still exist), and a planned failover back runs as a run of
  its own, with its own commit and undo.

Every step is a backend call whose idempotency the protocol states, so a step that was cut off
(a crash, an error) is finished by calling the same function again; the run's state
(``committing``, ``undoing``, ``failing_back``) says which.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from vmfailover.engine.aftercare_results import (
    BY_DEADLINE,
    CommitResult,
    Deadline,
    DeadlineAction,
    FailbackResult,
    FailbackVM,
    UndoResult,
)
from vmfailover.engine.claims import claims_for
from vmfailover.engine.run_state import RunAction, RunState
from vmfailover.errors import ConflictError, NotFoundError, ValidationError, VMFailoverError
from vmfailover.model import FailoverKind, Inventory, PowerState, ReplicaState
from vmfailover.plan import CompiledPlan, FailoverPlan, VMRecovery
from vmfailover.plan.reverse import reverse_plan
from vmfailover.policy.inventory_diff import inventory_differences
from vmfailover.policy.sequencer import Sequencer, StartOrder

if TYPE_CHECKING:
    from vmfailover.engine.results import RunReport
    from vmfailover.engine.run import Run
    from vmfailover.engine.runner import Runner

__all__ = ["arm_deadline", "commit", "failback", "schedule_deadline", "start_waves", "undo"]

_T = TypeVar("_T")

#: Real seconds to wait for a run whose recovery has just ended to publish its report.
_REPORT_GRACE = 60.0


# --- commit ---------------------------------------------------------------------------------------


def commit(runner: Runner, run: Run, *, by: str = "runner.commit") -> RunReport:
    """Make ``run``'s failover permanent; see the module's description. Returns its report.

    ``by`` is who decided, for the report (the plan's deadline, or a call)."""
    _check(runner, run, "commit")
    if by != BY_DEADLINE:
        run.deadline = None  # a person decided: the deadline's thread stands back
    with run._lock:
        _settled(run)
        if not run._machine.can(RunAction.COMMIT):
            run._fire(RunAction.COMMIT)  # raises, naming the state and what is allowed
        with _journaled(run, "commit"), _claimed(runner, run):
            return _commit(runner, run, by)


def _commit(runner: Runner, run: Run, by: str) -> RunReport:
    run._fire(RunAction.COMMIT)
    backend = runner.backend
    inventory = _act(runner, run, None, backend.inventory)
    committed: list[str] = []
    errors: list[str] = []
    warnings: list[str] = []
    outcomes = _outcomes(run)
    for work in touched(run):
        state = _replica_state(inventory, work)
        if state is ReplicaState.FAILED_OVER:
            try:
                _act(runner, run, work.name, backend.commit_failover, work.replica.id)
            except VMFailoverError as error:
                errors.append(f"VM {work.name!r}: {error}")
                continue
        elif state is not ReplicaState.COMMITTED:
            continue  # the run never failed this one over
        committed.append(work.name)
        if outcomes.get(work.name) not in (None, "ready"):
            warnings.append(f"VM {work.name!r} was committed though it did not become ready")
    resumed: list[str] = []
    if not errors and run.failback_of is not None:
        for work in touched(run):
            try:
                back = _act(runner, run, work.name, backend.reverse_replication, work.replica.id)
                resumed.append(back.id)
            except VMFailoverError as error:
                errors.append(f"VM {work.name!r}: replication not handed back: {error}")
    result = CommitResult(
        at=runner.clock.now(),
        committed=tuple(committed),
        resumed=tuple(resumed),
        errors=tuple(errors),
        warnings=tuple(warnings),
        by=by,
    )
    if result.done:
        run._fire(RunAction.FINISH_COMMIT)
        original = run.failback_of
        if original is not None:
            with original._lock:
                original._fire(RunAction.FINISH_FAIL_BACK)
                _update(original, state=original.state.value)
                _record(original, "failback")
        run.deadline = None
    return _update(run, commit=result, state=run.state.value)


# --- undo -----------------------------------------------------------------------------------------


def undo(runner: Runner, run: Run, *, by: str = "runner.undo") -> RunReport:
    """Revert what ``run`` touched; see the module's description. Returns its report.

    ``by`` is who decided, for the report (the plan's deadline, or a call)."""
    _check(runner, run, "undo")
    if by != BY_DEADLINE:
        run.deadline = None  # a person decided: the deadline's thread stands back
    with run._lock:
        _settled(run)
        if not run._machine.can(RunAction.UNDO):
            run._fire(RunAction.UNDO)  # raises, naming the state and what is allowed
        before = run.inventory_before
        if before is None:
            raise ConflictError(
                f"run {run.id}: its journal holds no inventory from before the run (written by "
                "an older vmfailover), so what to restore is unknown"
            )
        with _journaled(run, "undo"):
            return _undo_and_record(runner, run, before, by)


def _undo_and_record(runner: Runner, run: Run, before: Inventory, by: str) -> RunReport:
    with _claimed(runner, run):
        run._fire(RunAction.UNDO)
        with runner.clock.enlist():
            result = attrs.evolve(_undo(runner, run, before), by=by)
    if result.restored:
        run._fire(RunAction.FINISH_UNDO)
        original = run.failback_of
        if original is not None:  # production stays at the recovery site; fail back later
            with original._lock:
                original._fire(RunAction.CANCEL_FAIL_BACK)
                original.failback_run = None
                _update(original, state=original.state.value)
                _record(original, "failback")
        run.deadline = None
    return _update(run, undo=result, state=run.state.value)


def _undo(runner: Runner, run: Run, before: Inventory) -> UndoResult:
    backend = runner.backend
    works = touched(run)
    names = {work.name for work in works}
    waves = [[w for w in wave if w in names] for wave in start_waves(_order(run))]
    by_name = {work.name: work for work in works}
    errors: list[str] = []
    warnings: list[str] = []
    undone: list[str] = []
    stuck: set[str] = set()  # replicas that may still run: their sources stay as they are
    inventory = _act(runner, run, None, backend.inventory)
    for wave in reversed(waves):  # dependents first, as a shutdown would go
        for name in wave:
            work = by_name[name]
            state = _replica_state(inventory, work)
            if state is not ReplicaState.FAILED_OVER:
                continue
            try:
                _act(runner, run, work.name, backend.undo_failover, work.replica.id)
                undone.append(name)
            except VMFailoverError as error:
                errors.append(f"VM {name!r}: {error}")
                stuck.add(name)
    inventory = _act(runner, run, None, backend.inventory)
    for work in works:
        if work.name not in stuck:
            errors.extend(_restore_nics(runner, run, work, before, inventory))
    restarted: list[str] = []
    for wave in waves:
        starting = []
        for name in wave:
            work = by_name[name]
            if name in stuck or not _stopped_by_run(work, before, inventory):
                continue
            try:
                _act(runner, run, work.name, backend.power_on, work.source.id)
                starting.append(work)
                restarted.append(name)
            except VMFailoverError as error:
                errors.append(f"VM {name!r}: its source did not start again: {error}")
        warnings.extend(_wait_ready(runner, run, starting))
    after = _act(runner, run, None, backend.inventory)
    keys: set[str] = set()
    for work in works:
        keys.update((work.source.id, work.replica_vm.id, work.replica.id))
    differences = inventory_differences(before, after, only=keys)
    return UndoResult(
        at=runner.clock.now(),
        undone=tuple(undone),
        restarted=tuple(restarted),
        restored=not differences and not errors,
        differences=tuple(differences),
        errors=tuple(errors),
        warnings=tuple(warnings),
    )


def _restore_nics(
    runner: Runner, run: Run, work: VMRecovery, before: Inventory, now: Inventory
) -> list[str]:
    """The replica VM's NICs back on the networks, with the addresses, the inventory showed
    before the run (where the backend shows them)."""
    errors: list[str] = []
    try:
        old, new = before.vm(work.replica_vm.id), now.vm(work.replica_vm.id)
    except NotFoundError as error:
        return [f"VM {work.name!r}: {error}"]
    current = {nic.mac: nic for nic in new.nics}
    for nic in old.nics:
        found = current.get(nic.mac)
        if found is None:
            errors.append(f"VM {work.name!r}: its replica VM lost NIC {nic.mac}")
            continue
        try:
            if found.network != nic.network:
                _act(
                    runner, run, work.name, runner.backend.connect_nic, new.id, nic.mac, nic.network
                )
            if (found.ip_configs, found.dhcp) != (nic.ip_configs, nic.dhcp):
                configs = None if nic.dhcp else tuple(nic.ip_configs)
                _act(runner, run, work.name, runner.backend.set_guest_ip, new.id, nic.mac, configs)
        except VMFailoverError as error:
            errors.append(f"VM {work.name!r} NIC {nic.mac}: {error}")
    return errors


def _stopped_by_run(work: VMRecovery, before: Inventory, now: Inventory) -> bool:
    """The source ran before the run and is off now: the run stopped it (planned failovers, and
    regular ones allowed to shut sources down). A source that was off, or lost with its site,
    stays as it is."""
    try:
        was = before.vm(work.source.id).power_state
        is_ = now.vm(work.source.id).power_state
    except NotFoundError:
        return False
    return was is PowerState.ON and is_ is PowerState.OFF and now.host(work.source.host).available


def _wait_ready(runner: Runner, run: Run, works: list[VMRecovery]) -> list[str]:
    """Wait until the restarted sources of one wave are ready; a late one is a warning (it ran
    before the run, so it starts again whatever happens), never a reason to stop."""
    clock = runner.clock
    waiting = {work.name: work for work in works}
    deadline = clock.monotonic() + runner.readiness_timeout
    warnings: list[str] = []
    while waiting:
        for name, work in list(waiting.items()):
            try:
                if _act(runner, run, name, runner.backend.readiness, work.source.id).ready:
                    del waiting[name]
            except VMFailoverError as error:
                warnings.append(f"VM {name!r}: readiness of its source: {error}")
                del waiting[name]
        left = deadline - clock.monotonic()
        if not waiting:
            break
        if left <= 0:
            warnings.extend(
                f"VM {name!r}: its source was not ready within {runner.readiness_timeout:g} s "
                "of starting again"
                for name in waiting
            )
            break
        clock.sleep(min(runner.poll_interval, left))
    return warnings


# --- deadlines ------------------------------------------------------------------------------------


def deadline_of(plan: FailoverPlan) -> tuple[DeadlineAction, float] | None:
    """The plan's commit policy: what happens, and how long after the recovery ended."""
    if plan.auto_commit is not None:
        return DeadlineAction.COMMIT, plan.auto_commit
    if plan.auto_undo is not None:
        return DeadlineAction.UNDO, plan.auto_undo
    return None


def schedule_deadline(runner: Runner, run: Run) -> Deadline | None:
    """Start the plan's deadline for ``run`` (a production run whose recovery just ended); at it,
    the run is committed or undone if that is still allowed. The deadline is journaled (durable)
    when the run is, so that another process keeps it once this one is gone
    (:mod:`vmfailover.engine.deadlines`). Returns the deadline, or None."""
    policy = deadline_of(run.plan)
    if policy is None or run.kind is FailoverKind.TEST:
        return None
    action, delay = policy
    wanted = RunAction.COMMIT if action is DeadlineAction.COMMIT else RunAction.UNDO
    if not run._machine.can(wanted):
        return None
    deadline = Deadline(action, runner.clock.now() + timedelta(seconds=delay))
    if run._journal is not None:
        try:
            run._journal.deadline(action.value, deadline.at)
        except VMFailoverError as error:  # the journal is gone: this process keeps it alone
            if run._execution is not None:
                run._execution.warn(
                    f"the {action.value} deadline could not be journaled: only this process "
                    f"keeps it ({error})"
                )
    run.deadline = deadline
    arm_deadline(runner, run, deadline)
    return deadline


def arm_deadline(runner: Runner, run: Run, deadline: Deadline) -> None:
    """Keep ``run``'s ``deadline`` in a thread of this process (if the runner keeps deadlines):
    at its time (at once if it is past) the run is committed or undone, unless it was decided
    meanwhile, here or in another process (:func:`vmfailover.engine.deadlines.fire`)."""
    if not runner.keep_deadlines:
        return
    from vmfailover.engine.deadlines import fire

    def later() -> None:
        left = (deadline.at - runner.clock.now()).total_seconds()
        if left > 0:
            runner.clock.sleep(left)
        run._done.wait(_REPORT_GRACE)
        if run.deadline != deadline or runner.closed:
            return  # decided meanwhile, or the runner was closed: others keep it
        fire(runner, run, deadline)

    name = f"vmfailover-{deadline.action.value}-{run.id}"
    threading.Thread(target=later, name=name, daemon=True).start()


# --- failback -------------------------------------------------------------------------------------


def failback(
    runner: Runner,
    run: Run,
    *,
    plan: FailoverPlan | None = None,
    force: bool = False,
    background: bool = True,
) -> Run:
    """Bring ``run``'s VMs home; see the module's description. Returns the failback run."""
    _check(runner, run, "fail back")
    with run._lock:
        _settled(run)
        if not run._machine.can(RunAction.FAIL_BACK):
            run._fire(RunAction.FAIL_BACK)  # raises, naming the state and what is allowed
        if run.failback_run is not None:
            raise ConflictError(
                f"run {run.id} is failing back already: commit or undo its failback "
                f"{run.failback_run.id} first"
            )
        works = touched(run)
        outcomes = _outcomes(run)
        behind = [vm.name for vm in _compiled(run).vms if outcomes.get(vm.name) != "ready"]
        if behind:
            raise ConflictError(
                f"run {run.id}: {', '.join(repr(n) for n in behind)} did not fail over; a "
                "failback brings home a run whose every VM runs at the recovery site (undo the "
                "run, or fail those over first)"
            )
        chosen = plan if plan is not None else reverse_plan(run.plan, _compiled(run))
        if not isinstance(chosen, FailoverPlan):
            raise ValidationError.of("failback plan", f"expected a FailoverPlan, got {chosen!r}")
        with _journaled(run, "failback"):
            with _claimed(runner, run):
                run._fire(RunAction.FAIL_BACK)
                run.deadline = None  # the failback decided: its own plan has its own deadline
                result = _reverse(runner, run, works)
            _update(run, state=run.state.value)
        back_id = _failback_id(runner, run)
        if run._journal is not None:  # durable before the failback run is begun under it
            run._journal.failback_link(back_id)
            run._failback_link = back_id
        back = runner._start_failback(chosen, of=run, result=result, force=force, run_id=back_id)
        run.failback_run = back
    if background:
        back._start_background()
    else:
        back.wait()
    return back


def _failback_id(runner: Runner, run: Run) -> str:
    """The id of ``run``'s failback run: the one journaled for it if that run was never begun
    (a failback interrupted between its link and its begin), else a new one."""
    link = run._failback_link
    if link is not None and runner.journal is not None:
        try:
            runner.journal.load(link, ())
        except NotFoundError:
            return link
    return runner.new_run_id()


def _reverse(runner: Runner, run: Run, works: list[VMRecovery]) -> FailbackResult:
    """Commit what is not committed yet, reverse replication, seed what needs a first sync."""
    backend = runner.backend
    decisions: list[str] = []
    inventory = _act(runner, run, None, backend.inventory)
    for work in works:
        if _replica_state(inventory, work) is ReplicaState.FAILED_OVER:
            _act(runner, run, work.name, backend.commit_failover, work.replica.id)
            decisions.append(f"VM {work.name!r}: its failover was committed by the failback")
    vms = []
    for work in works:
        reverse = _act(runner, run, work.name, backend.reverse_replication, work.replica.id)
        seeded = 0
        if reverse.state is ReplicaState.INITIALIZING:  # its first sync, while the VM still runs
            seeded = _act(runner, run, work.name, backend.sync, reverse.id).size_bytes
        vms.append(
            FailbackVM(
                vm=work.name,
                runs_as=work.replica_vm.id,
                reverse_replica=reverse.id,
                seeded_bytes=seeded,
                final_bytes=None,
                disk_bytes=work.source.disk_bytes,
            )
        )
    block_size = getattr(backend, "block_size", None)
    return FailbackResult(
        of_run=run.id,
        vms=tuple(vms),
        block_size=block_size if isinstance(block_size, int) and block_size > 0 else None,
        decisions=tuple(decisions),
    )


def finish_failback_report(run: Run) -> None:
    """Add what the failback's final syncs moved to its result (called as its recovery ends)."""
    result = run.failback_result
    if result is None or run._execution is None:
        return
    progress = run._execution.progress  # keyed by the failback plan's VMs: the recovered VMs
    vms = []
    for vm in result.vms:
        record = progress.get(vm.runs_as)
        point = record.point if record is not None and record.started_at else None
        vms.append(attrs.evolve(vm, final_bytes=point.size_bytes if point else None))
    run.failback_result = attrs.evolve(result, vms=tuple(vms))
    _update(run, failback=run.failback_result)
    _record(run, "failback")


# --- journaling -----------------------------------------------------------------------------------


def _act(runner: Runner, run: Run, vm: str | None, fn: Callable[..., _T], *args: object) -> _T:
    """A backend call of ``run``'s aftercare, retried per the runner's policy, and journaled as
    the run's recovery journals its calls (a changing call's intent durable before it acts, its
    outcome after; resuming, replayed or reconciled from its record)."""
    execution = run._execution
    if execution is None or execution.journal is None:
        return runner._call(fn, *args)
    return execution.call(vm or "", fn, *args)


@contextmanager
def _journaled(run: Run, action: str) -> Iterator[None]:
    """Around one commit, undo or failback attempt: the interrupted attempt's journal (if
    :meth:`Runner.resume` found one) is what this attempt replays, and whatever way the attempt
    ends, the run's report and state are journaled (durable), so the journal's report shows the
    result."""
    execution = run._execution
    if execution is not None:
        execution.replay, run._aftercare_replay = run._aftercare_replay, None

    try:
        yield
    except Exception:  # our errors, a bug: recorded; a crash of the process records nothing
        _record(run, action)
        raise
    else:
        _record(run, action)
    finally:
        if execution is not None:
            execution.replay = None


def _record(run: Run, action: str) -> None:
    """Journal ``run``'s report and state as ``action`` left them (durable)."""
    if run._journal is not None and run._report is not None:
        run._journal.aftercare(action, run._report, run.state.value)


# --- what a run touched ---------------------------------------------------------------------------


def touched(run: Run) -> list[VMRecovery]:
    """The VMs whose recovery the run started, in the plan's order (the others it left alone)."""
    execution = run._execution
    if execution is None:
        return []
    return [vm for vm in execution.compiled.vms if execution.progress[vm.name].started_at]


def start_waves(order: StartOrder) -> list[list[str]]:
    """The order's VMs in waves: each wave's VMs wait only for VMs of earlier waves (as the
    sequencer starts them when every VM becomes ready at once)."""
    sequencer = Sequencer(order)
    waves: list[list[str]] = []
    while not sequencer.finished:
        wave = sequencer.take_startable()
        if not wave:  # a limit holds the rest back until this wave is ready: nothing left here
            break
        waves.append(wave)
        for name in wave:
            sequencer.mark_ready(name)
    return waves


def _order(run: Run) -> StartOrder:
    return _compiled(run).order


def _compiled(run: Run) -> CompiledPlan:
    assert run._execution is not None
    return run._execution.compiled


def _outcomes(run: Run) -> dict[str, str]:
    report = run._report
    return {} if report is None else {vm.vm: vm.outcome.value for vm in report.vms}


def _replica_state(inventory: Inventory, work: VMRecovery) -> ReplicaState | None:
    try:
        return inventory.replica(work.replica.id).state
    except NotFoundError:
        return None


def _check(runner: Runner, run: object, what: str) -> None:
    from vmfailover.engine.run import Run

    if not isinstance(run, Run):
        raise ValidationError.of(what, f"needs a Run, got {run!r}")
    if run._runner.backend is not runner.backend:
        raise ConflictError(f"run {run.id} ran on another backend: {what} it with its runner")
    if run.host_run is not None:
        from vmfailover.engine.host_run import describe

        raise ConflictError(
            f"run {run.id} is {describe(run.host_run)}, which has no {what}: its VMs restarted "
            "from shared storage, no replica failed over; bring them home with "
            "runner.move_back(runner.host_failover_report(run_id))"
        )


def _settled(run: Run) -> None:
    """Wait (briefly) for a run whose recovery has just ended to publish its report."""
    if run.state not in (RunState.PENDING, RunState.VALIDATING, RunState.RUNNING):
        run._done.wait(_REPORT_GRACE)


def _update(run: Run, **changes: Any) -> RunReport:
    if run._report is not None:
        run._report = attrs.evolve(run._report, **changes)
        return run._report
    return run.wait()


@contextmanager
def _claimed(runner: Runner, run: Run) -> Iterator[None]:
    """Hold what the run touched while its aftercare acts on it: no other run may meanwhile."""
    ids = [key for vm in touched(run) for key in (vm.source.id, vm.replica.id, vm.replica_vm.id)]
    claims = claims_for(runner.backend)
    claims.claim(run.id, ids)
    try:
        yield
    finally:
        claims.release(run.id)
