"""Moving the VMs of a host failover back home once the failed hosts answer again.

:func:`move_back` restores the placement a :func:`~vmfailover.engine.host_failover.host_failover`
changed: each VM that restarted elsewhere moves live to its original host where the backend can
(it keeps running), and is otherwise shut down, moved and started again; a VM no survivor could
take starts on its original host. It runs through the same execution and sequencer, in the
failover's start order, and proves the result against the inventory afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vmfailover.engine.events import VMStep
from vmfailover.engine.execution import Execution
from vmfailover.engine.host_failover import _execute, _restart_order, _started, _work_item
from vmfailover.engine.host_failover_results import (
    HostFailoverReport,
    HostRestart,
    MoveBack,
    MoveBackReport,
    MovedBack,
)
from vmfailover.engine.recovery import VMProgress, vm_step
from vmfailover.engine.results import RunReport, RunResult, VMResult
from vmfailover.errors import (
    ConflictError,
    NotFoundError,
    TransientBackendError,
    ValidationError,
    VMFailoverError,
)
from vmfailover.model import FailoverKind, Inventory, PowerState
from vmfailover.plan import VMRecovery
from vmfailover.policy.cluster import ClusterPolicy
from vmfailover.policy.placement import PlacedVM, UnplacedReason
from vmfailover.policy.sequencer import VMState

if TYPE_CHECKING:
    from vmfailover.engine.run import Run
    from vmfailover.engine.run_journal import RunJournal
    from vmfailover.engine.runner import Runner

__all__ = ["move_back", "moved_back_report", "prove_home"]


def move_back(runner: Runner, failover: HostFailoverReport) -> MoveBackReport:
    """Move the VMs of a host failover back to their original hosts; see the module.

    The original hosts must answer again (ConflictError naming those that do not, before
    anything is touched). VMs that restarted elsewhere move back live where the backend can
    and are otherwise shut down, moved and started again; VMs that could not be placed start
    on their original host; VMs whose restart priority is ``disabled`` stay off. Runs through
    the sequencer in the failover's start order. Calling it again moves nothing that is home.
    """
    if not isinstance(failover, HostFailoverReport):
        raise ValidationError.of(
            "move_back", f"needs the HostFailoverReport of a host failover, got {failover!r}"
        )
    inventory = runner._call(runner.backend.inventory)
    homes = failover.original_hosts
    back = [
        restart
        for restart in failover.vms
        if restart.unplaced is None
        or restart.unplaced.reason is not UnplacedReason.RESTART_DISABLED
    ]
    missing_vms = [r.name for r in back if not _has_vm(inventory, r.vm)]
    if missing_vms:
        raise NotFoundError(
            f"VM {', '.join(repr(n) for n in missing_vms)} of {failover.run_id} is no longer in "
            "the inventory: nothing was moved"
        )
    absent = sorted(
        {home for home in (homes[r.vm] for r in back) if not _host_available(inventory, home)}
    )
    if absent:
        raise ConflictError(
            f"host {', '.join(repr(h) for h in absent)} is not back (not connected or powered "
            "off): nothing was moved"
        )
    if not back:
        return _nothing_to_move(runner, failover)
    order = _restart_order(failover.order, [inventory.vm(r.vm) for r in back], ClusterPolicy())
    now = runner.clock.now()
    work = tuple(
        _work_item(
            inventory.vm(r.vm), _home(r, homes[r.vm]), inventory.host(homes[r.vm]).site, order, now
        )
        for r in back
    )
    where = {r.vm: inventory.vm(r.vm).host for r in back}
    home_of = {r.vm: homes[r.vm] for r in back}
    names = {r.name: r.vm for r in back}
    ended: dict[str, Any] = {}

    def prove(run: Run) -> None:
        assert run._execution is not None
        ended["progress"] = dict(run._execution.progress)
        ended["differences"] = prove_home(runner, run._journal, names, home_of)

    report = _execute(
        runner,
        f"move back after {failover.run_id}",
        f"cluster {failover.cluster!r}",
        order,
        work,
        _move_home_with(home_of, where),
        None,
        {
            "operation": "move_back",
            "failover_run": failover.run_id,
            "cluster": failover.cluster,
            "homes": home_of,
            "where": where,
        },
        after=prove,
    )
    return moved_back_report(
        report,
        failover_run=failover.run_id,
        names=names,
        homes=home_of,
        where=where,
        progress=ended["progress"],
        differences=ended["differences"],
    )


def _nothing_to_move(runner: Runner, failover: HostFailoverReport) -> MoveBackReport:
    """The move back of a host failover that restarted nothing: a report that says so."""
    now = runner.clock.now()
    note = (
        f"host failover {failover.run_id} restarted no VM (its failed hosts ran none it could "
        "restart): nothing to move back"
    )
    run = RunReport(
        runner.new_run_id(),
        FailoverKind.REGULAR,
        now,
        now,
        (),
        RunResult.SUCCEEDED,
        warnings=(note,),
        plan=f"move back after {failover.run_id}",
    )
    return MoveBackReport(
        run_id=run.run_id,
        failover_run_id=failover.run_id,
        started_at=now,
        finished_at=now,
        result=RunResult.SUCCEEDED,
        vms=(),
        restored=True,
        differences=(),
        run=run,
        warnings=(note,),
    )


def prove_home(
    runner: Runner,
    journal: RunJournal | None,
    names: Mapping[str, str],
    homes: Mapping[str, str],
) -> tuple[str, ...]:
    """Each VM (name -> id) that does not run on its home host now, in words; journaled (a
    ``checked`` entry) when ``journal`` is given, so the report read back says the same."""
    after = runner._call(runner.backend.inventory)
    differences: list[str] = []
    for name, vm_id in names.items():
        if not _has_vm(after, vm_id):
            differences.append(f"VM {name!r} is no longer in the inventory")
            continue
        vm = after.vm(vm_id)
        if vm.host != homes[vm_id]:
            differences.append(f"VM {name!r} runs on {vm.host!r}, not {homes[vm_id]!r}")
        elif vm.power_state is not PowerState.ON:
            differences.append(f"VM {name!r} is on {homes[vm_id]!r} but not running")
    if journal is not None:
        journal.checked(differences)
    return tuple(differences)


def moved_back_report(
    report: RunReport,
    *,
    failover_run: str,
    names: Mapping[str, str],
    homes: Mapping[str, str],
    where: Mapping[str, str],
    progress: Mapping[str, VMProgress],
    differences: Sequence[str],
) -> MoveBackReport:
    """The move back's report from its run's report, each VM's progress (how it moved) and the
    proof of its end state (also what :func:`~vmfailover.engine.host_run.move_back_report`
    rebuilds from a journal)."""
    moved = tuple(
        _moved(result, names[result.vm], homes, where, progress.get(result.vm))
        for result in report.vms
    )
    return MoveBackReport(
        run_id=report.run_id,
        failover_run_id=failover_run,
        started_at=report.started_at,
        finished_at=report.finished_at,
        result=report.result,
        vms=moved,
        restored=not differences,
        differences=tuple(differences),
        run=report,
        warnings=report.warnings,
    )


def _has_vm(inventory: Inventory, vm_id: str) -> bool:
    try:
        inventory.vm(vm_id)
    except NotFoundError:
        return False
    return True


def _host_available(inventory: Inventory, name: str) -> bool:
    try:
        return inventory.host(name).available
    except NotFoundError:
        return False


def _home(restart: HostRestart, home: str) -> PlacedVM:
    return PlacedVM(restart.vm, restart.name, home, restart.priority)


def _move_home_with(
    homes: Mapping[str, str], where: Mapping[str, str]
) -> Callable[[Execution, VMRecovery], VMState]:
    """One VM's way home: live if it can, else shut down, move, start; or just start there.

    ``where`` is the host each VM was on when the move back began. How it went is in its
    progress (``moved``), which the journal keeps with the VM's end. Resumed, a VM the journal
    shows shut down for its move was running when the move back began, one it shows started was
    not: resumed, each is reported as it began (cold, started), not as the backend shows it now.
    """

    def move_home(execution: Execution, work: VMRecovery) -> VMState:
        backend = execution.backend
        clock = execution.clock
        name, vm_id = work.name, work.source.id
        home, current = homes[vm_id], where[vm_id]
        progress = execution.progress[name]
        progress.runs_as = vm_id
        progress.started_at = clock.now()
        stopped = _journaled_at(execution, name, ("shutdown_guest", "power_off"))
        started = _journaled_at(execution, name, ("power_on",))
        running = stopped is not None
        try:
            if stopped is None and started is None:
                running = execution.call(name, backend.readiness, vm_id).powered_on
            if running and current != home:
                _migrate(execution, work, home)
            if running:
                progress.ready_at = progress.ended_at = clock.now()
                progress.moved = (MoveBack.HOME if current == home else MoveBack.LIVE).value
                return VMState.READY
        except ConflictError as error:
            execution.warn(f"{name} cannot move live ({error}): shutting it down to move it", name)
        except VMFailoverError as error:
            progress.reason = str(error)
            progress.ended_at = clock.now()
            return VMState.FAILED
        stopped_at = stopped or clock.now()

        def act() -> None:
            if running:
                _stop(execution, work)
            if current != home:
                _migrate(execution, work, home)
            vm_step(execution, name, VMStep.POWER_ON, execution.call, name, backend.power_on, vm_id)

        state = _started(execution, work, progress, act)
        if running:
            progress.started_at = stopped_at
        progress.moved = (MoveBack.COLD if running else MoveBack.STARTED).value
        return state

    return move_home


def _journaled_at(execution: Execution, name: str, operations: tuple[str, ...]) -> datetime | None:
    """When a resumed VM's journal shows one of ``operations`` (None: it shows none): a VM
    shut down for its move was running when the move back began, one started was not."""
    replay = execution.replay
    if replay is None:
        return None
    return replay.first_at(name, operations)


def _migrate(execution: Execution, work: VMRecovery, host: str) -> None:
    """The backend's ``migrate_vm`` as a step of the VM (live while it runs)."""
    name = work.name
    migrate = execution.backend.migrate_vm
    vm_step(execution, name, VMStep.MIGRATE_VM, execution.call, name, migrate, work.source.id, host)


def _stop(execution: Execution, work: VMRecovery) -> None:
    """Shut the guest down within the plan's shutdown timeout; cut the power if it does not."""
    backend = execution.backend
    name, vm_id = work.name, work.source.id
    timeout = execution.plan.shutdown_timeout
    try:
        vm_step(
            execution,
            name,
            VMStep.SHUTDOWN_GUEST,
            execution.call_once,
            name,
            backend.shutdown_guest,
            vm_id,
            timeout,
        )
    except TransientBackendError as error:
        execution.warn(
            f"{name} did not shut down in {timeout:g} s ({error}): powering it off", name
        )
        vm_step(
            execution, name, VMStep.POWER_OFF_SOURCE, execution.call, name, backend.power_off, vm_id
        )


def _moved(
    result: VMResult,
    vm_id: str,
    homes: Mapping[str, str],
    where: Mapping[str, str],
    progress: VMProgress | None,
) -> MovedBack:
    how = None if progress is None or progress.moved is None else MoveBack(progress.moved)
    return MovedBack(
        vm_id,
        result.vm,
        where[vm_id],
        homes[vm_id],
        result.outcome,
        how,
        _downtime(how, progress),
        result.reason,
        result.steps,
    )


def _downtime(how: MoveBack | None, progress: VMProgress | None) -> float | None:
    """0 for a VM that kept running; from its shutdown until ready for a cold move."""
    if how in (MoveBack.LIVE, MoveBack.HOME):
        return 0.0
    if how is not MoveBack.COLD or progress is None:
        return None
    if progress.ready_at is None or progress.started_at is None:
        return None
    return (progress.ready_at - progress.started_at).total_seconds()
