"""One VM's part of a failover: the steps each kind takes, in order, as one sequenced unit.

Everything a VM's recovery changes happens inside its own step, started only when the sequencer
lets the VM start: a VM that is skipped, cancelled or blocked by a failed dependency is left
exactly as it was, source and replica. Per kind:

- **test**: an isolated test copy of the chosen point; NICs onto the test networks; the test
  addresses; power on; ready; addresses verified. Sources and replicas are never touched.
- **planned**: the source shut down (per ``power_off_source``); a final sync of the stopped
  source; the replica reverted to that point; NICs remapped; re-IP; power on; ready; verified.
- **regular**: the source checked once more where its site answered at pre-flight (and shut down
  where the plan allows); the replica reverted to the chosen point; NICs; re-IP; power on; ready;
  verified.

The split-brain rule holds at every step: a replica is powered on only once its source is known
to be off (or the operator forced the run past that check, which the report records).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import attrs

from vmfailover.engine.events import StepFinished, StepStarted, VMStep
from vmfailover.engine.readiness import probe_passes
from vmfailover.engine.results import StepRecord
from vmfailover.errors import BackendError, TransientBackendError, VMFailoverError
from vmfailover.model import FailoverKind, IPConfig, RecoveryPoint
from vmfailover.plan import PowerOffSource, VMRecovery
from vmfailover.policy.sequencer import VMState

if TYPE_CHECKING:
    from datetime import datetime

    from vmfailover.engine.execution import Execution

__all__ = ["VMFailure", "VMProgress", "recover", "vm_step", "wait_ready"]

_T = TypeVar("_T")


class VMFailure(VMFailoverError):
    """This VM's part of the run failed (the reason is the message); its policy decides the rest."""


@attrs.define
class VMProgress:
    """What happened to one VM so far; turned into its :class:`VMResult` at the end."""

    started_at: datetime | None = None
    powered_on_at: datetime | None = None
    ready_at: datetime | None = None
    ended_at: datetime | None = None
    reason: str | None = None
    runs_as: str | None = None
    test_copy: str | None = None
    point: RecoveryPoint | None = None
    source: str | None = None
    addresses_verified: bool | None = None
    steps: list[StepRecord] = attrs.field(factory=list)
    moved: str | None = None
    """How a move back brought the VM home (a :class:`~vmfailover.engine.host_failover_results.
    MoveBack` value), journaled with the VM's end so that a resumed run reports it too."""


def recover(execution: Execution, work: VMRecovery) -> VMState:
    """Do VM ``work.name``'s whole part of the run; returns how it ended (never raises ours)."""
    progress = execution.progress[work.name]
    progress.started_at = execution.vm_started(work.name)
    try:
        vm_id = _prepare(execution, work, progress)
        execution.run_vm_steps(work, "before")
        vm_step(
            execution,
            work.name,
            VMStep.POWER_ON,
            execution.call,
            work.name,
            execution.backend.power_on,
            vm_id,
        )
        progress.powered_on_at = progress.steps[-1].finished_at
        state = vm_step(execution, work.name, VMStep.WAIT_READY, wait_ready, execution, work, vm_id)
        if state is not VMState.READY:
            return state
        if work.expected_addresses:
            vm_step(execution, work.name, VMStep.VERIFY_ADDRESSES, _verify, execution, work, vm_id)
        progress.ready_at = execution.clock.now()
        execution.run_vm_steps(work, "after")
        return VMState.READY
    except VMFailoverError as error:
        progress.reason = str(error)
        return VMState.FAILED
    except Exception as error:  # a bug in a backend must not leave the run half-done
        progress.reason = f"unexpected {type(error).__name__}: {error}"
        return VMState.FAILED
    finally:
        progress.ended_at = execution.clock.now()


def _prepare(execution: Execution, work: VMRecovery, progress: VMProgress) -> str:
    """Everything before power-on; returns the id of the VM that will be started."""
    backend = execution.backend
    call = execution.call
    name = work.name
    if execution.kind is FailoverKind.TEST:
        assert work.point is not None
        progress.point = work.point
        create: Callable[..., str] = backend.create_test_copy
        if getattr(backend, "guest_ips_at_test_copy", False):  # see backends.base
            # named like the call itself, which is how the journal knows it changes something
            create = functools.update_wrapper(
                functools.partial(create, guest_ips=_guest_ips(work)), create
            )
        copy: str = vm_step(
            execution,
            name,
            VMStep.CREATE_TEST_COPY,
            call,
            name,
            create,
            work.replica.id,
            work.point.id,
            execution.run_id,
        )
        progress.test_copy = progress.runs_as = copy
        progress.source = "untouched (test failover)"
        vm_id = copy
        changes = _changes(execution, work, vm_id)
        execution.declare(name, [*changes, *_power_on(execution, work, vm_id)])
    else:
        _fence(execution, work, progress)
        point = work.point
        if point is None:  # planned: recover from a sync of the stopped source
            point = vm_step(
                execution, name, VMStep.FINAL_SYNC, call, name, backend.sync, work.replica.id
            )
        progress.point = point
        vm_id = work.replica_vm.id
        changes = _changes(execution, work, vm_id)
        revert = (backend.revert, (work.replica.id, point.id))
        execution.declare(name, [revert, *changes, *_power_on(execution, work, vm_id)])
        vm_step(execution, name, VMStep.REVERT, call, name, backend.revert, *revert[1])
        progress.runs_as = vm_id
    for fn, args in changes:
        step = VMStep.CONNECT_NIC if fn == backend.connect_nic else VMStep.SET_GUEST_IP
        vm_step(execution, name, step, call, name, fn, *args)
    return vm_id


def _guest_ips(work: VMRecovery) -> dict[str, tuple[IPConfig, ...] | None]:
    """MAC -> the addresses the copy's guest gets (None: DHCP), for the NICs re-IP changes."""
    return {
        nic.mac: None if nic.dhcp else nic.ip_configs for nic in work.nics if nic.changes_address
    }


def _power_on(
    execution: Execution, work: VMRecovery, vm_id: str
) -> list[tuple[Callable[..., object], tuple[object, ...]]]:
    """The power-on, to declare with the calls before it, unless the VM's own steps come
    between (the journal then holds the calls in the order they are made)."""
    if execution.has_steps_before(work.name):
        return []
    return [(execution.backend.power_on, (vm_id,))]


def _changes(
    execution: Execution, work: VMRecovery, vm_id: str
) -> list[tuple[Callable[..., object], tuple[object, ...]]]:
    """The NIC moves, then the address changes, of ``vm_id`` (calls and their arguments)."""
    backend = execution.backend
    moves: list[tuple[Callable[..., object], tuple[object, ...]]] = [
        (backend.connect_nic, (vm_id, nic.mac, nic.network))
        for nic in work.nics
        if nic.network is not None
    ]
    addresses: list[tuple[Callable[..., object], tuple[object, ...]]] = [
        (backend.set_guest_ip, (vm_id, nic.mac, None if nic.dhcp else nic.ip_configs))
        for nic in work.nics
        if nic.changes_address
    ]
    return moves + addresses


def _fence(execution: Execution, work: VMRecovery, progress: VMProgress) -> None:
    """Make sure the source is off before its replica may start (the split-brain rule)."""
    name = work.name
    source = work.source.id
    policy = work.power_off
    may_stop = policy in (PowerOffSource.GRACEFUL, PowerOffSource.GRACEFUL_THEN_FORCE)
    if execution.kind is FailoverKind.REGULAR and not execution.source_answered(work):
        # Pre-flight found the source's host gone (powered off, or cut off and forced past).
        progress.source = (
            "not reachable; started anyway because force=True"
            if work.accepted_risk
            else "its host was down at pre-flight"
        )
        return
    running = vm_step(execution, name, VMStep.CHECK_SOURCE, _source_running, execution, work)
    if not running and execution.saw_before(name, "shutdown_guest", "power_off"):
        running = True  # it ran when the interrupted run checked it; that run stopped it
    if not running:
        progress.source = "was off"
        return
    if not may_stop:
        if work.accepted_risk:
            progress.source = "running; started anyway because force=True"
            return
        raise VMFailure(
            f"its source {work.source.name!r} is running and power_off_source is "
            f"{policy.value!r}: starting the replica would split the brain"
        )
    timeout = execution.plan.shutdown_timeout
    try:
        vm_step(execution, name, VMStep.SHUTDOWN_SOURCE, _shutdown, execution, work, timeout)
        progress.source = "shut down"
    except TransientBackendError as error:
        if policy is not PowerOffSource.GRACEFUL_THEN_FORCE:
            raise VMFailure(f"its source did not shut down: {error}") from error
        vm_step(
            execution,
            name,
            VMStep.POWER_OFF_SOURCE,
            execution.call,
            name,
            execution.backend.power_off,
            source,
        )
        progress.source = f"powered off after the guest did not shut down in {timeout:g} s"
    if _source_running(execution, work):
        raise VMFailure(f"its source {work.source.name!r} still runs after being stopped")


def _shutdown(execution: Execution, work: VMRecovery, timeout: float) -> None:
    """Shut the source's guest down within ``timeout`` (clock seconds), retrying transient
    errors while time is left; the last error is raised once the time is up."""
    clock = execution.clock
    deadline = clock.monotonic() + timeout
    attempt = 0
    while True:
        execution.check_abandoned()
        left = deadline - clock.monotonic()
        try:
            execution.call_once(
                work.name, execution.backend.shutdown_guest, work.source.id, max(left, 0.0)
            )
            return
        except TransientBackendError as error:
            attempt += 1
            left = deadline - clock.monotonic()
            if left <= 0:
                raise
            execution.warn(f"shutdown of {work.source.name}: {error} (retrying)", work.name)
            clock.sleep(min(left, execution.runner.retry.initial_wait * attempt))


def _source_running(execution: Execution, work: VMRecovery) -> bool:
    readiness = execution.call(work.name, execution.backend.readiness, work.source.id)
    return readiness.powered_on


def wait_ready(execution: Execution, work: VMRecovery, vm_id: str) -> VMState:
    entry = work.entry
    probe = entry.probe
    timeout = entry.timeout or (probe.timeout if probe else execution.readiness_timeout)
    clock = execution.clock
    deadline = clock.monotonic() + timeout
    while True:
        execution.check_abandoned()
        try:
            if probe_passes(probe, execution.backend, vm_id, work.name):
                return VMState.READY
        except TransientBackendError as error:
            execution.warn(f"readiness of {work.name}: {error}", work.name)
        except BackendError as error:
            raise VMFailure(f"readiness could not be read: {error}") from error
        left = deadline - clock.monotonic()
        if left <= 0:
            what = probe.describe() if probe else "ready (powered on, heartbeat, address)"
            execution.progress[work.name].reason = f"not {what} within {timeout:g} s"
            return VMState.TIMED_OUT
        clock.sleep(min(execution.poll_interval, left))


def _verify(execution: Execution, work: VMRecovery, vm_id: str) -> None:
    readiness = execution.call(work.name, execution.backend.readiness, vm_id)
    reported = set(readiness.ip_addresses)
    missing = [str(a) for a in work.expected_addresses if a not in reported]
    progress = execution.progress[work.name]
    progress.addresses_verified = not missing
    if missing:
        shown = ", ".join(str(a) for a in readiness.ip_addresses) or "no address"
        raise VMFailure(f"re-IP not confirmed: the guest reports {shown}, not {', '.join(missing)}")


def vm_step(
    execution: Execution, vm: str, step: VMStep, fn: Callable[..., _T], *args: object
) -> _T:
    """Run one step of a VM, with its events and its record in the report."""
    started = execution.clock.now()
    execution.emit(StepStarted(execution.run_id, vm, step, started))
    try:
        result = fn(*args)
    except Exception as error:
        finished = execution.clock.now()
        execution.progress[vm].steps.append(StepRecord(step.value, started, finished, str(error)))
        execution.emit(StepFinished(execution.run_id, vm, step, finished, str(error)))
        raise
    finished = execution.clock.now()
    acted = execution.acted(vm)
    if acted is not None and acted[1] < started:  # replayed from the journal: when it acted
        started, finished = acted
    execution.progress[vm].steps.append(StepRecord(step.value, started, finished))
    execution.emit(StepFinished(execution.run_id, vm, step, finished))
    return result
