"""Host failover through the runner: restart a failed host's VMs on the survivors, move them back.

A failover cluster's answer to losing a host (what vSphere HA and Hyper-V failover clustering do,
driven here by the library): :func:`host_failover` chooses a surviving host for every VM of the
failed hosts with :func:`~vmfailover.policy.placement.place` (capacity, anti-affinity, affinity,
the datastores and networks each host has, restart priority), then restarts them through the
same execution as a site failover (:class:`~vmfailover.engine.execution.Execution`): the
sequencer starts each VM once its dependencies are ready, the runner's limits hold, readiness
probes decide "ready", and a VM's failure policy decides what its failure does to the others.

Nothing is dropped silently: a VM no survivor can take is reported with the placement's reason
and fails in the sequencer, so its dependents follow their failure policy. Each VM's downtime
runs from the host failure (``failed_at``, when known: a :class:`HostMonitor` decision gives it)
or else from the decision to fail over, until the VM is ready again.

:func:`~vmfailover.engine.move_back.move_back` undoes the placement once the failed hosts answer
again; :class:`HostFailoverResponse` is the ``on_failure`` of a
:class:`~vmfailover.engine.host_monitor.HostMonitor` that starts a host failover.

The execution drives :class:`~vmfailover.plan.VMRecovery` work items. A restart from shared
storage has no copy: its item names the VM itself as the source and as the VM that runs, and
its ``replica`` records where it restarts (target host and datastore, ``failed_over``). Nothing
of that item reaches the backend but the VM's id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from vmfailover.engine.claims import claims_for
from vmfailover.engine.events import VMStep
from vmfailover.engine.execution import Execution
from vmfailover.engine.host_failover_results import (
    HostFailoverReport,
    HostRestart,
)
from vmfailover.engine.journal import RunSummary
from vmfailover.engine.journal_codec import encode
from vmfailover.engine.recovery import VMProgress, vm_step, wait_ready
from vmfailover.engine.results import RunReport, RunResult, VMResult
from vmfailover.engine.run_journal import RunJournal
from vmfailover.engine.run_record import write_decision_record
from vmfailover.engine.run_state import RunAction, RunState
from vmfailover.errors import (
    ConflictError,
    Finding,
    ValidationError,
    VMFailoverError,
)
from vmfailover.model import (
    VM,
    FailoverKind,
    Host,
    Inventory,
    PowerState,
    Replica,
    ReplicaState,
    aware_utc,
)
from vmfailover.plan import CompiledPlan, FailoverPlan, PowerOffSource, VMRecovery
from vmfailover.policy.cluster import Cluster, ClusterPolicy, RestartPriority
from vmfailover.policy.host_health import HostDecision
from vmfailover.policy.placement import PlacedVM, Placement, UnplacedVM, place
from vmfailover.policy.sequencer import GroupMode, StartOrder, VMState

if TYPE_CHECKING:
    from vmfailover.engine.run import Run
    from vmfailover.engine.runner import Runner

__all__ = ["HostFailoverResponse", "failover_report", "host_failover"]

_NOT_FAILED_OVER = (ReplicaState.INITIALIZING, ReplicaState.READY, ReplicaState.TEST_FAILOVER)


# --- host failover --------------------------------------------------------------------------------


def host_failover(
    runner: Runner,
    cluster: Cluster | str,
    failed_hosts: Iterable[str] | str,
    policy: ClusterPolicy | None = None,
    order: StartOrder | None = None,
    *,
    vms: Iterable[str] | None = None,
    failed_at: datetime | None = None,
    weights: Mapping[str, float] | None = None,
) -> HostFailoverReport:
    """Restart the VMs of ``failed_hosts`` on the other hosts of ``cluster``; see the module.

    ``vms`` limits the restart to these VMs of the failed hosts (names or ids; by default every
    VM registered there, but replica VMs whose replica has not failed over, which must stay
    off). ``order`` is a start order over VM names (dependencies, groups, probes, limits,
    failure policies); VMs it does not name start without dependencies, and dependencies on
    VMs that are not restarted count as met. Without an order, VMs start by restart priority,
    each priority once the higher ones have settled (as HA does). Raises our ValidationError
    for bad arguments and ConflictError when a "failed" host still answers, before anything
    is touched.
    """
    decided_at = runner.clock.now()
    chosen = _policy(policy)
    start_order = _order(order)
    when = None if failed_at is None else aware_utc(failed_at, "host_failover failed_at")
    inventory = runner._call(runner.backend.inventory)
    the_cluster = _cluster(cluster, inventory)
    members = the_cluster.members(inventory)
    failed = _failed(failed_hosts, the_cluster, members)
    warnings: list[str] = []
    victims = _victims(inventory, failed, vms, warnings)
    _unique_names(victims)  # a start order needs one VM per name
    survivors = [host for host in members if host.name not in failed]
    running = [
        vm
        for vm in inventory.vms
        if vm.host in {host.name for host in survivors} and vm.power_state is PowerState.ON
    ]
    placement = place(victims, survivors, chosen, running=running)
    restart_order = _restart_order(start_order, victims, chosen)
    blocking = [finding for finding in restart_order.validate() if finding.blocking]
    if blocking:
        raise ValidationError(blocking)  # a cycle, a resource without a capacity: nothing started
    targets: dict[str, PlacedVM | UnplacedVM] = {
        **{entry.name: entry for entry in placement.unplaced},
        **{entry.name: entry for entry in placement.placed},
    }
    site = {host.name: host.site for host in members}
    work = tuple(
        _work_item(vm, targets[vm.name], site[vm.host], restart_order, decided_at) for vm in victims
    )
    origin = when if when is not None else decided_at
    downtime_from = "host failure" if when is not None else "decision"
    report = _execute(
        runner,
        f"host failover of {', '.join(failed)}",
        f"cluster {the_cluster.name!r}",
        restart_order,
        work,
        _restart_with(targets),
        weights,
        {
            "operation": "host_failover",
            "cluster": the_cluster.name,
            "failed_hosts": list(failed),
            "failed_at": encode(origin),
            "downtime_from": downtime_from,
            "placement": encode(placement),
            "warnings": warnings,
        },
    )
    return failover_report(
        report,
        cluster=the_cluster.name,
        failed_hosts=failed,
        failed_at=origin,
        downtime_from=downtime_from,
        victims=victims,
        placement=placement,
        warnings=warnings,
        order=restart_order,
    )


def failover_report(
    report: RunReport,
    *,
    cluster: str,
    failed_hosts: tuple[str, ...],
    failed_at: datetime,
    downtime_from: str,
    victims: list[VM],
    placement: Placement,
    warnings: Iterable[str],
    order: StartOrder,
) -> HostFailoverReport:
    """The host failover's report from its run's report and what it decided before it ran
    (also what :func:`~vmfailover.engine.host_run.host_failover_report` rebuilds from a
    journal)."""
    targets: dict[str, PlacedVM | UnplacedVM] = {
        **{entry.name: entry for entry in placement.unplaced},
        **{entry.name: entry for entry in placement.placed},
    }
    return HostFailoverReport(
        run_id=report.run_id,
        cluster=cluster,
        failed_hosts=failed_hosts,
        failed_at=failed_at,
        downtime_from=downtime_from,
        started_at=report.started_at,
        finished_at=report.finished_at,
        result=report.result,
        vms=_restarts(report, victims, targets, failed_at),
        placement=placement,
        run=report,
        warnings=tuple(dict.fromkeys((*warnings, *report.warnings))),
        order=order,
    )


def _policy(policy: object) -> ClusterPolicy:
    if policy is None:
        return ClusterPolicy()
    if not isinstance(policy, ClusterPolicy):
        raise ValidationError.of("host_failover policy", f"must be a ClusterPolicy, got {policy!r}")
    return policy


def _order(order: object) -> StartOrder | None:
    if order is not None and not isinstance(order, StartOrder):
        raise ValidationError.of("host_failover order", f"must be a StartOrder, got {order!r}")
    return order


def _cluster(cluster: object, inventory: Inventory) -> Cluster:
    if isinstance(cluster, Cluster):
        return cluster
    if isinstance(cluster, str) and cluster.strip():
        return Cluster.of(inventory, cluster)
    raise ValidationError.of(
        "host_failover cluster", f"must be a Cluster or a cluster name, got {cluster!r}"
    )


def _failed(failed_hosts: object, cluster: Cluster, members: tuple[Host, ...]) -> tuple[str, ...]:
    """The failed hosts, checked: hosts of the cluster that do not answer."""
    names = (failed_hosts,) if isinstance(failed_hosts, str) else failed_hosts
    if not isinstance(names, Iterable):
        raise ValidationError.of(
            "host_failover failed_hosts", f"must be host names, got {failed_hosts!r}"
        )
    chosen: list[str] = []
    findings: list[Finding] = []
    for name in names:
        if not isinstance(name, str) or name not in cluster.hosts:
            findings.append(
                Finding(
                    f"failed host {name!r}",
                    f"is not a host of cluster {cluster.name!r}",
                    hint=f"its hosts: {', '.join(cluster.hosts)}",
                )
            )
        elif name not in chosen:
            chosen.append(name)
    if findings:
        raise ValidationError(findings)
    if not chosen:
        raise ValidationError.of("host_failover failed_hosts", "names no host")
    answering = [host for host in members if host.name in chosen and host.available]
    if answering:
        listed = ", ".join(repr(host.name) for host in answering)
        raise ConflictError(
            f"host {listed} answers the management plane (connected, powered on): it has not "
            "failed, and its VMs run there; nothing was restarted"
        )
    return tuple(chosen)


def _victims(
    inventory: Inventory,
    failed: tuple[str, ...],
    wanted: Iterable[str] | None,
    warnings: list[str],
) -> list[VM]:
    """The VMs of the failed hosts to restart, in inventory order."""
    registered = [vm for vm in inventory.vms if vm.host in failed]
    waiting = {
        replica.replica_vm: replica
        for replica in inventory.replicas
        if replica.state in _NOT_FAILED_OVER
    }
    if wanted is not None:
        if isinstance(wanted, str) or not isinstance(wanted, Iterable):
            raise ValidationError.of("host_failover vms", f"must be VM names, got {wanted!r}")
        names = list(wanted)
        known = {vm.id for vm in registered} | {vm.name for vm in registered}
        strangers = [name for name in names if name not in known]
        if strangers:
            raise ValidationError(
                Finding(f"VM {name!r}", f"is not a VM of the failed hosts {', '.join(failed)}")
                for name in strangers
            )
        registered = [vm for vm in registered if vm.id in names or vm.name in names]
    victims: list[VM] = []
    for vm in registered:
        replica = waiting.get(vm.id)
        if replica is None:
            victims.append(vm)
        else:
            warnings.append(
                f"VM {vm.name!r} on {vm.host!r} stays off: it is the replica of "
                f"{replica.source_vm!r}, which is {replica.state.value}"
            )
    return victims


def _unique_names(victims: list[VM]) -> None:
    names: dict[str, VM] = {}
    for vm in victims:
        other = names.setdefault(vm.name, vm)
        if other is not vm:
            raise ValidationError.of(
                f"VM {vm.name!r}",
                f"names two VMs of the failed hosts ({other.id!r}, {vm.id!r}): a start order "
                "needs one VM per name",
                "pass vms= with the ids of the VMs to restart",
            )


def _restart_order(
    order: StartOrder | None, victims: list[VM], policy: ClusterPolicy
) -> StartOrder:
    """The start order over the VMs restarted: the user's (dependencies on VMs that are not
    restarted dropped: they run) or, without one, restart priority as barrier groups."""
    names = {vm.name for vm in victims}
    if order is None:
        groups = StartOrder(groups=GroupMode.BARRIER)
        for vm in victims:
            rank = policy.priority_of(vm).rank
            groups.add(vm.name, group=RestartPriority.HIGHEST.rank + 1 - max(rank, 1))
        return groups
    restricted = StartOrder(max_parallel=order.max_parallel, groups=order.groups)
    for resource, capacity in order.limits.items():
        restricted.limit(resource, capacity)
    for entry in order:
        if entry.name in names:
            restricted.add(
                entry.name,
                after=[name for name in entry.after if name in names],
                group=entry.group,
                probe=entry.probe,
                timeout=entry.timeout,
                on_failure=entry.on_failure,
                resources=entry.resources,
            )
    for vm in victims:
        if vm.name not in restricted:
            restricted.add(vm.name)
    return restricted


def _work_item(
    vm: VM,
    target: PlacedVM | UnplacedVM,
    site: str,
    order: StartOrder,
    decided_at: datetime,
) -> VMRecovery:
    """The execution's work item for one VM's restart (see the module docstring)."""
    to_host = target.host if isinstance(target, PlacedVM) else vm.host
    where = Replica(
        id=f"{vm.id}@{to_host}",
        source_vm=vm.id,
        replica_vm=vm.id,
        target_host=to_host,
        created_at=decided_at,
        state=ReplicaState.FAILED_OVER,
        target_datastore=vm.datastore,
    )
    return VMRecovery(
        name=vm.name,
        source=vm,
        replica=where,
        replica_vm=vm,
        target_site=site,
        point=None,
        power_off=PowerOffSource.NEVER,
        nics=(),
        expected_addresses=(),
        entry=order.entry(vm.name),
    )


def _restart_with(
    targets: Mapping[str, PlacedVM | UnplacedVM],
) -> Callable[[Execution, VMRecovery], VMState]:
    """One VM's part of a host failover: restart it where the placement put it, wait ready."""

    def restart(execution: Execution, work: VMRecovery) -> VMState:
        target = targets[work.name]
        progress = execution.progress[work.name]
        progress.runs_as = work.source.id
        progress.source = f"was on failed host {work.source.host!r}"
        if isinstance(target, UnplacedVM):
            progress.reason = f"not placed: {target.detail}"
            return VMState.FAILED

        def act() -> None:
            vm_step(
                execution,
                work.name,
                VMStep.RESTART_ON_HOST,
                execution.call,
                work.name,
                execution.backend.restart_on_host,
                work.source.id,
                target.host,
            )

        return _started(execution, work, progress, act)

    return restart


def _started(
    execution: Execution, work: VMRecovery, progress: VMProgress, act: Callable[[], None]
) -> VMState:
    """Run ``act`` (which starts the VM) between the VM's own steps, then wait until ready."""
    clock = execution.clock
    progress.started_at = clock.now()
    try:
        execution.run_vm_steps(work, "before")
        act()
        progress.powered_on_at = clock.now()
        state = vm_step(
            execution,
            work.name,
            VMStep.WAIT_READY,
            wait_ready,
            execution,
            work,
            work.source.id,
        )
        if state is not VMState.READY:
            return state
        progress.ready_at = clock.now()
        execution.run_vm_steps(work, "after")
        return VMState.READY
    except VMFailoverError as error:
        progress.reason = str(error)
        return VMState.FAILED
    except Exception as error:  # a bug in a backend must not leave the run half-done
        progress.reason = f"unexpected {type(error).__name__}: {error}"
        return VMState.FAILED
    finally:
        progress.ended_at = clock.now()


def _execute(
    runner: Runner,
    title: str,
    description: str,
    order: StartOrder,
    work: tuple[VMRecovery, ...],
    recover_vm: Callable[[Execution, VMRecovery], VMState],
    weights: Mapping[str, float] | None,
    host_run: Mapping[str, Any],
    after: Callable[[Run], None] | None = None,
) -> RunReport:
    """Run the work items through a :class:`Run`, as :meth:`Runner.start` runs a plan (no work:
    an empty report, nothing run).

    With a journal the run is journaled as a plan's run is: its record (the work items and
    ``host_run``, what the run is) durable before anything acts, every changing backend call's
    intent and outcome, each VM's end, the run's end with its report; so it is in the journal's
    history and :meth:`Runner.resume` finishes it when its process died. ``after`` runs once
    the run's end is journaled (a move back proves its end state there).
    """
    from vmfailover.engine.run import Run

    run_id = runner.new_run_id()
    if not work:
        return _decided(runner, run_id, title, description, host_run)
    plan = FailoverPlan(
        name=title, vms=[item.name for item in work], order=order, description=description
    )
    compiled = CompiledPlan(plan=plan, kind=FailoverKind.REGULAR, order=order, vms=work)
    run = Run(runner, run_id, plan, compiled.kind)
    run.host_run = host_run
    checked = _weights(weights, plan)
    run._fire(RunAction.VALIDATE)
    try:
        claims_for(runner.backend).claim(run_id, [item.source.id for item in work])
    except BaseException:
        run._fire(RunAction.REFUSE)
        raise
    if runner._writer is not None:
        try:
            run._journal = runner._begin(run, compiled, frozenset(), checked, None)
            runner._runs[run_id] = run
        except BaseException:
            claims_for(runner.backend).release(run_id)
            run._fire(RunAction.REFUSE)
            raise
    run._execution = Execution(
        runner,
        run_id,
        compiled,
        weights=checked,
        reachable_sources=frozenset(),
        recover_vm=recover_vm,
        journal=run._journal,
    )
    if after is not None:
        run._execution.after_end = lambda: after(run)
    run._go_live()
    run._fire(RunAction.START)
    return run.wait()


def _decided(
    runner: Runner, run_id: str, title: str, description: str, host_run: Mapping[str, Any]
) -> RunReport:
    """A host run with nothing to do (no VM to restart): it ends as it is decided. With a
    journal it is journaled all the same, begun and ended at once with what it decided (the
    placement, the warnings), so the audit trail shows the decision."""
    from vmfailover.engine.run import process_owner

    now = runner.clock.now()
    state = RunState.FAILED_OVER.value
    report = RunReport(
        run_id,
        FailoverKind.REGULAR,
        now,
        now,
        (),
        RunResult.SUCCEEDED,
        plan=title,
        state=state,
        decisions=("no VM to restart: nothing was done",),
    )
    if runner._writer is None:
        return report
    journal = RunJournal(runner._writer, run_id, runner.clock.now)
    journal.begin(
        RunSummary(
            run_id=run_id,
            kind=FailoverKind.REGULAR,
            plan=title,
            started_at=now,
            state=state,
            backend=runner.backend.name,
            owner=process_owner(),
        ),
        write_decision_record(
            name=title,
            description=description,
            kind=FailoverKind.REGULAR,
            backend=runner.backend.name,
            host_run=host_run,
        ),
    )
    journal.end(report, state)
    return report


def _weights(weights: object, plan: FailoverPlan) -> Mapping[str, float] | None:
    from vmfailover.engine.runner import _weights as checked

    return checked(weights, plan)


def _restarts(
    report: RunReport,
    victims: list[VM],
    targets: Mapping[str, PlacedVM | UnplacedVM],
    origin: datetime,
) -> tuple[HostRestart, ...]:
    """Each VM's restart, placed ones in restart order, then the unplaced."""
    by_name = {vm.name: vm for vm in victims}
    rows: list[HostRestart] = []
    for result in _in_restart_order(report, targets):
        vm = by_name[result.vm]
        target = targets[result.vm]
        placed = isinstance(target, PlacedVM)
        downtime = (
            None
            if result.ready_at is None
            else max(0.0, (result.ready_at - origin).total_seconds())
        )
        rows.append(
            HostRestart(
                vm=vm.id,
                name=vm.name,
                from_host=vm.host,
                to_host=target.host if isinstance(target, PlacedVM) else None,
                priority=target.priority,
                outcome=result.outcome,
                started_at=result.started_at,
                restarted_at=result.powered_on_at,
                ready_at=result.ready_at,
                downtime_seconds=downtime,
                reason=result.reason,
                unplaced=None if placed else target,  # type: ignore[arg-type]
                steps=result.steps,
            )
        )
    return tuple(rows)


def _in_restart_order(
    report: RunReport, targets: Mapping[str, PlacedVM | UnplacedVM]
) -> list[VMResult]:
    def key(result: VMResult) -> tuple[int, float]:
        if isinstance(targets[result.vm], UnplacedVM):
            return (2, 0.0)
        if result.started_at is None:
            return (1, 0.0)
        return (0, result.started_at.timestamp())

    return sorted(report.vms, key=key)


# --- the monitor's response -----------------------------------------------------------------------


class HostFailoverResponse:
    """An ``on_failure`` for :class:`~vmfailover.engine.host_monitor.HostMonitor`: each host the
    monitor declares failed gets a host failover on ``cluster``.

    The VMs restarted are those the monitor last saw running on the host (its decision's
    evidence; every VM registered there when the monitor never saw the host answer) or, for a
    partitioned host whose isolation response stopped VMs (a ``vms_stopped`` decision), exactly
    the VMs the witness saw powered off (:attr:`~vmfailover.HostDecision.restart_vms`); their
    downtime runs from the first poll that found the host silent. The failover runs in the
    monitor's poll, which waits for it; what it reported is in :attr:`reports`, and a failover
    that could not run is in :attr:`errors` (the monitor goes on either way).
    """

    def __init__(
        self,
        runner: Runner,
        cluster: Cluster | str,
        policy: ClusterPolicy | None = None,
        order: StartOrder | None = None,
        *,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        from vmfailover.engine.runner import Runner

        if not isinstance(runner, Runner):
            raise ValidationError.of(
                "HostFailoverResponse runner", f"must be a Runner, got {runner!r}"
            )
        if not isinstance(cluster, Cluster | str):
            raise ValidationError.of(
                "HostFailoverResponse cluster", f"must be a Cluster or a name, got {cluster!r}"
            )
        self.runner = runner
        self.cluster = cluster
        self.policy = _policy(policy)
        self.order = _order(order)
        self.weights = weights
        self.reports: list[HostFailoverReport] = []
        self.errors: list[str] = []

    def __repr__(self) -> str:
        name = self.cluster if isinstance(self.cluster, str) else self.cluster.name
        return f"HostFailoverResponse(cluster={name!r}, {len(self.reports)} failovers)"

    def __call__(self, decision: HostDecision) -> None:
        if not isinstance(decision, HostDecision):
            raise ValidationError.of(
                "HostFailoverResponse", f"is called with a HostDecision, got {decision!r}"
            )
        lost = decision.restart_vms
        silent_since = decision.at - timedelta(seconds=decision.silent_for)
        if lost == ():
            return  # the host ran no VMs when it was last seen: nothing to restart
        try:
            report = self.runner.host_failover(
                self.cluster,
                [decision.host],
                self.policy,
                self.order,
                vms=lost,
                failed_at=silent_since,
                weights=self.weights,
            )
        except VMFailoverError as error:
            self.errors.append(f"host failover of {decision.host!r}: {error}")
            raise
        self.reports.append(report)
