"""Moving the VMs of a host failover back home once the failed hosts answer again.

:func:`move_back` restores the placement a :func:`~vmfailover.engine.host_failover.host_failover`
changed: each VM that restarted elsewhere moves live to its original host where the backend can
(it keeps running), and is otherwise shut down, moved and started again; a VM no survivor could
take starts on its original host. It runs through the same execution and sequencer, in the
failover's start order, and proves the result against the inventory afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

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
from vmfailover.engine.recovery import vm_step
from vmfailover.engine.results import Outcome, VMResult
from vmfailover.errors import (
    ConflictError,
    NotFoundError,
    TransientBackendError,
    ValidationError,
    VMFailoverError,
)
from vmfailover.model import Inventory, PowerState
from vmfailover.plan import VMRecovery
from vmfailover.policy.cluster import ClusterPolicy
from vmfailover.policy.placement import PlacedVM, UnplacedReason
from vmfailover.policy.sequencer import VMState

if TYPE_CHECKING:
    from vmfailover.engine.runner import Runner

__all__ = ["move_back"]


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
    order = _restart_order(failover.order, [inventory.vm(r.vm) for r in back], ClusterPolicy())
    now = runner.clock.now()
    work = tuple(
        _work_item(
            inventory.vm(r.vm), _home(r, homes[r.vm]), inventory.host(homes[r.vm]).site, order, now
        )
        for r in back
    )
    moves: dict[str, MovedBack] = {}
    where = {r.vm: inventory.vm(r.vm).host for r in back}
    report = _execute(
        runner,
        f"move back after {failover.run_id}",
        f"cluster {failover.cluster!r}",
        order,
        work,
        _move_home_with(homes, where, moves),
        None,
        {
            "operation": "move_back",
            "failover_run": failover.run_id,
            "cluster": failover.cluster,
            "homes": {r.vm: homes[r.vm] for r in back},
            "where": where,
        },
    )
    after = runner._call(runner.backend.inventory)
    differences = [
        f"VM {r.name!r} runs on {after.vm(r.vm).host!r}, not {homes[r.vm]!r}"
        if after.vm(r.vm).host != homes[r.vm]
        else f"VM {r.name!r} is on {homes[r.vm]!r} but not running"
        for r in back
        if after.vm(r.vm).host != homes[r.vm] or after.vm(r.vm).power_state is not PowerState.ON
    ]
    moved = tuple(_moved(result, moves.get(result.vm), homes, back, after) for result in report.vms)
    return MoveBackReport(
        run_id=report.run_id,
        failover_run_id=failover.run_id,
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
    homes: Mapping[str, str], where: Mapping[str, str], moves: dict[str, MovedBack]
) -> Callable[[Execution, VMRecovery], VMState]:
    """One VM's way home: live if it can, else shut down, move, start; or just start there.

    ``where`` is the host each VM was on when the move back began.
    """

    def move_home(execution: Execution, work: VMRecovery) -> VMState:
        backend = execution.backend
        clock = execution.clock
        name, vm_id = work.name, work.source.id
        home, current = homes[vm_id], where[vm_id]
        progress = execution.progress[name]
        progress.runs_as = vm_id
        progress.started_at = clock.now()
        try:
            running = execution.call(name, backend.readiness, vm_id).powered_on
            if running and current != home:
                _migrate(execution, work, home)
            if running:
                progress.ready_at = progress.ended_at = clock.now()
                how = MoveBack.HOME if current == home else MoveBack.LIVE
                moves[name] = MovedBack(vm_id, name, current, home, Outcome.READY, how, 0.0)
                return VMState.READY
        except ConflictError as error:
            execution.warn(f"{name} cannot move live ({error}): shutting it down to move it", name)
        except VMFailoverError as error:
            progress.reason = str(error)
            progress.ended_at = clock.now()
            return VMState.FAILED
        stopped_at = clock.now()

        def act() -> None:
            if running:
                _stop(execution, work)
            if current != home:
                _migrate(execution, work, home)
            vm_step(execution, name, VMStep.POWER_ON, execution.call, name, backend.power_on, vm_id)

        state = _started(execution, work, progress, act)
        progress.started_at = stopped_at
        ready = progress.ready_at
        downtime = None if ready is None or not running else (ready - stopped_at).total_seconds()
        outcome = Outcome.READY if state is VMState.READY else Outcome.FAILED
        how = MoveBack.COLD if running else MoveBack.STARTED
        moves[name] = MovedBack(vm_id, name, current, home, outcome, how, downtime)
        return state

    return move_home


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
    moved: MovedBack | None,
    homes: Mapping[str, str],
    back: list[HostRestart],
    after: Inventory,
) -> MovedBack:
    restart = next(r for r in back if r.name == result.vm)
    if moved is None:
        return MovedBack(
            restart.vm,
            restart.name,
            after.vm(restart.vm).host,
            homes[restart.vm],
            result.outcome,
            reason=result.reason,
            steps=result.steps,
        )
    return MovedBack(
        moved.vm,
        moved.name,
        moved.from_host,
        moved.to_host,
        result.outcome,
        moved.how,
        moved.downtime_seconds,
        result.reason,
        result.steps,
    )
